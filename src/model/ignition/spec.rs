//! Ignition specs as input: reading a JSON config of spec 3.0.0–3.6.0.

//! Gates for the fields that only some Butane variants and versions have.

use crate::model::decode::{Dialect, Gates};

/// `boot_device` exists (fcos ≥ 1.3).
pub fn has_boot_device(g: &Gates) -> bool {
    g.dialect == Dialect::Butane && g.boot_device
}

/// `grub` exists (fcos ≥ 1.5).
pub fn has_grub(g: &Gates) -> bool {
    g.dialect == Dialect::Butane && g.grub
}

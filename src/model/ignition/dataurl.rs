//! `data:` URLs: made exactly as Butane makes them, and read back for apply and comparison.
//!
//! Butane picks the shortest of three encodings: RFC 2396 percent-escaping, base64, and
//! gzip+base64 (which must win by more than the length of `"gzip"`). A tie keeps escaping.

use std::borrow::Cow;
use std::io::Read;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use flate2::{Compress, Compression, Crc, FlushCompress, Status};

/// A `data:` URL and the compression it was made with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataUrl {
    /// The URL, starting `data:`.
    pub url: String,
    /// `Some("gzip")` when the payload is gzipped, `Some("")` for Butane's explicit "none".
    pub compression: Option<String>,
}

/// How a data URL is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Butane's choice (fcos ≥ 1.1): the shortest of escaped, base64 and gzip+base64, with a
    /// `compression` key.
    Shortest,
    /// Butane's fcos 1.0 (spec 3.0): always escaped, no `compression` key.
    Escaped,
    /// Plain base64 with `compression: ""`: for configs decoded right away (plan and apply),
    /// where choosing the shortest form would only cost time.
    Fast,
}

/// Builds the data URL for `bytes` as Butane does. `user_compression` is what the config
/// said: unset or `""` lets Butane gzip on its own; anything else is kept and the bytes are
/// taken as already compressed.
///
/// The lengths of the escaped and base64 forms are counted without building them, and only
/// the winning form is built.
pub fn make(bytes: &[u8], user_compression: Option<&str>, encoding: Encoding) -> DataUrl {
    let user_set = matches!(user_compression, Some(c) if !c.is_empty());
    let kept = if user_set { user_compression.map(str::to_string) } else { Some(String::new()) };
    match encoding {
        Encoding::Escaped => {
            let compression = if user_set { kept } else { None };
            return DataUrl { url: escaped_url(bytes), compression };
        }
        Encoding::Fast => return DataUrl { url: base64_url(bytes), compression: kept },
        Encoding::Shortest => {}
    }
    let escaped_len = ESCAPED_PREFIX.len() + escaped_len(bytes);
    let base64_len = BASE64_PREFIX.len() + base64_len(bytes.len());
    let longest_gzip = longest_winning_gzip(escaped_len.min(base64_len));
    // Even the smallest gzip stream cannot beat a short payload.
    if !user_set && longest_gzip >= MIN_GZIP_LEN {
        let gz = gzip(bytes);
        if gz.len() <= longest_gzip {
            return DataUrl { url: base64_url(&gz), compression: Some(GZIP.to_string()) };
        }
    }
    // A tie keeps escaping.
    let url = if base64_len < escaped_len { base64_url(bytes) } else { escaped_url(bytes) };
    DataUrl { url, compression: kept }
}

/// `data:` and the separator of an escaped payload.
const ESCAPED_PREFIX: &str = ",";
/// The media-type parameter and separator of a base64 payload.
const BASE64_PREFIX: &str = ";base64,";
/// The `compression` value of a gzipped payload.
const GZIP: &str = "gzip";

/// The longest gzip stream that still wins against a payload of `best_len` characters (the
/// shorter of escaped and base64, from its `,` or `;`): gzip+base64 must be shorter by more
/// than the length of `"gzip"`, i.e. `BASE64_PREFIX + base64(n) + "gzip" < best_len`.
fn longest_winning_gzip(best_len: usize) -> usize {
    let overhead = BASE64_PREFIX.len() + GZIP.len();
    // The largest whole number of base64 quads q with 4q + overhead < best_len, and the most
    // bytes that encode into q quads.
    let quads = best_len.saturating_sub(overhead + 1) / 4;
    quads * 3
}

/// `data:,` followed by the escaped bytes.
fn escaped_url(bytes: &[u8]) -> String {
    let mut url = String::with_capacity("data:".len() + ESCAPED_PREFIX.len() + escaped_len(bytes));
    url.push_str("data:");
    url.push_str(ESCAPED_PREFIX);
    escape_into(&mut url, bytes);
    url
}

/// `data:;base64,` followed by the bytes in base64.
fn base64_url(bytes: &[u8]) -> String {
    let mut url = String::with_capacity("data:".len() + BASE64_PREFIX.len() + base64_len(bytes.len()));
    url.push_str("data:");
    url.push_str(BASE64_PREFIX);
    STANDARD.encode_string(bytes, &mut url);
    url
}

/// The length of padded base64 for `n` bytes.
fn base64_len(n: usize) -> usize {
    n.div_ceil(3) * 4
}

/// Inputs smaller than this in total are encoded on the calling thread: starting a thread
/// would cost more than it saves.
const PARALLEL_MIN_BYTES: usize = 64 * 1024;

/// Encodes each input as [`make`] does with no compression given, spread over the
/// processors; the URLs come back in the order of `inputs`.
pub fn make_all(inputs: &[&[u8]], encoding: Encoding) -> Vec<DataUrl> {
    let total: usize = inputs.iter().map(|b| b.len()).sum();
    let threads = if total < PARALLEL_MIN_BYTES { 1 } else { crate::spread::cores() };
    crate::spread::claimed(inputs, threads, |bytes| make(bytes, None, encoding))
}

/// The smallest possible gzip stream: a 10-byte header, an empty deflate block, an 8-byte trailer.
const MIN_GZIP_LEN: usize = 20;
/// Go's gzip header: magic, deflate, no flags, mtime 0, XFL 2 (best compression), OS 255.
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0x02, 0xff];

/// Gzip at the best compression level with Go's header fields (no name, mtime 0, XFL 2,
/// OS 255). The deflate state is large to set up, so one per thread is kept and reset.
///
/// Every stream is run to its end: zlib-rs 0.6.8 panics in a later stream when a reset
/// follows a stream that was given up half-way for want of output space.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    thread_local! {
        static DEFLATE: std::cell::RefCell<Compress> = std::cell::RefCell::new(Compress::new(Compression::best(), false));
    }
    // What the stream usually needs; more is added when it does not fit.
    let step = bytes.len() / 2 + 64;
    let mut out = Vec::with_capacity(GZIP_HEADER.len() + step);
    out.extend_from_slice(&GZIP_HEADER);
    DEFLATE.with(|cell| {
        let mut deflate = cell.borrow_mut();
        deflate.reset();
        loop {
            out.reserve(step);
            let consumed = usize::try_from(deflate.total_in()).expect("the input length fits a usize");
            let status = deflate
                .compress_vec(&bytes[consumed..], &mut out, FlushCompress::Finish)
                .expect("deflate into a Vec cannot fail");
            if status == Status::StreamEnd {
                break;
            }
        }
    });
    let mut crc = Crc::new();
    crc.update(bytes);
    out.extend_from_slice(&crc.sum().to_le_bytes());
    // ISIZE is the input length modulo 2^32 (RFC 1952).
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out
}

/// The bytes RFC 2396 leaves as they are: ASCII letters and digits and the "mark" characters.
const UNRESERVED: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] =
            c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'!' | b'~' | b'*' | b'\'' | b'(' | b')');
        b += 1;
    }
    table
};

/// The length of [`escape`]`(bytes)`, counted without building it.
pub fn escaped_len(bytes: &[u8]) -> usize {
    let reserved = bytes.iter().filter(|&&b| !UNRESERVED[usize::from(b)]).count();
    bytes.len() + 2 * reserved
}

/// RFC 2396 escaping: unreserved bytes stay, every other byte becomes `%XX`.
pub fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(escaped_len(bytes));
    escape_into(&mut out, bytes);
    out
}

/// Appends the RFC 2396 escaping of `bytes` to `out`.
fn escape_into(out: &mut String, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut text = std::mem::take(out).into_bytes();
    for &b in bytes {
        if UNRESERVED[usize::from(b)] {
            text.push(b);
        } else {
            text.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
        }
    }
    *out = String::from_utf8(text).expect("escaped text is ASCII");
}

/// Why a data URL could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DataUrlError {
    /// Not of the form `data:[<mediatype>][;base64],<data>`.
    #[error("malformed data URL: {0}")]
    Malformed(&'static str),
    /// The base64 payload is invalid.
    #[error("invalid base64 in data URL")]
    Base64,
    /// The gzip payload is invalid.
    #[error("invalid gzip data in data URL")]
    Gzip,
}

/// Decodes a data URL's payload (percent-escaped or base64), without decompressing it.
pub fn decode(url: &str) -> Result<Vec<u8>, DataUrlError> {
    let rest = url.strip_prefix("data:").ok_or(DataUrlError::Malformed("missing data: prefix"))?;
    let comma = rest.find(',').ok_or(DataUrlError::Malformed("missing comma"))?;
    let (meta, data) = (&rest[..comma], &rest[comma + 1..]);
    // Base64 payloads seldom hold escapes or whitespace: they are read in place then.
    let raw = if data.contains('%') { Cow::Owned(unescape(data)?) } else { Cow::Borrowed(data.as_bytes()) };
    if meta.split(';').any(|p| p == "base64") {
        let cleaned = if raw.iter().any(u8::is_ascii_whitespace) {
            Cow::Owned(raw.iter().copied().filter(|b| !b.is_ascii_whitespace()).collect())
        } else {
            raw
        };
        STANDARD.decode(&cleaned).map_err(|_| DataUrlError::Base64)
    } else {
        Ok(raw.into_owned())
    }
}

/// Decodes and, for `compression: gzip`, decompresses a data URL's payload.
pub fn decode_contents(url: &str, compression: Option<&str>) -> Result<Vec<u8>, DataUrlError> {
    let bytes = decode(url)?;
    if compression == Some("gzip") {
        let mut out = Vec::with_capacity(gunzipped_size_hint(&bytes));
        flate2::bufread::GzDecoder::new(bytes.as_slice()).read_to_end(&mut out).map_err(|_| DataUrlError::Gzip)?;
        Ok(out)
    } else {
        Ok(bytes)
    }
}

/// The most a deflate stream can expand (a 258-byte match per 2 bits, rounded up).
const MAX_DEFLATE_RATIO: usize = 1032;

/// The uncompressed size a gzip stream names in its trailer (ISIZE, RFC 1952), bounded by what
/// its length can inflate to, so a forged trailer cannot reserve more.
fn gunzipped_size_hint(gz: &[u8]) -> usize {
    let Some(trailer) = gz.len().checked_sub(4).and_then(|at| gz.get(at..)) else { return 0 };
    let named = u32::from_le_bytes(trailer.try_into().unwrap_or_default()) as usize;
    named.min(gz.len().saturating_mul(MAX_DEFLATE_RATIO))
}

fn unescape(data: &str) -> Result<Vec<u8>, DataUrlError> {
    let bytes = data.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or(DataUrlError::Malformed("truncated escape"))?;
            let text = std::str::from_utf8(hex).map_err(|_| DataUrlError::Malformed("bad escape"))?;
            out.push(u8::from_str_radix(text, 16).map_err(|_| DataUrlError::Malformed("bad escape"))?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn picks_butanes_encoding() {
        let cases: [(&str, &[u8], &str); 4] = [
            ("empty", b"", "data:,"),
            ("short text", b"hello world\n", "data:,hello%20world%0A"),
            ("forty x", &[b'x'; 40], "data:,xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"),
            (
                "shell line",
                b"#!/bin/sh\n[ -x /a ] && echo \"$x\" > /b\n",
                "data:;base64,IyEvYmluL3NoClsgLXggL2EgXSAmJiBlY2hvICIkeCIgPiAvYgo=",
            ),
        ];
        for (label, input, want) in cases {
            let got = make(input, None, Encoding::Shortest);
            assert_eq!(got.url, want, "case {label}");
            assert_eq!(got.compression.as_deref(), Some(""), "case {label}");
        }
    }

    /// Deterministic pseudo-random bytes (xorshift64).
    pub(crate) fn noise(seed: u64, len: usize) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }

    /// Inputs of the kinds the encoder meets (random bytes, text, repetition, and mixtures of
    /// them) at every length around the points where Butane's choice changes.
    fn samples() -> Vec<Vec<u8>> {
        let text = b"[Unit]\nDescription=A service & <its> \"quoted\" name\n[Service]\nExecStart=/usr/bin/x --flag=1\n";
        let mut out = Vec::new();
        for len in 0..300 {
            out.push(noise(len as u64 + 1, len));
            out.push(text.iter().copied().cycle().take(len).collect());
            out.push(b"abc".iter().copied().cycle().take(len).collect());
            let mut mixed = noise(len as u64 + 7, len / 3);
            mixed.extend(text.iter().copied().cycle().take(len - len / 3));
            out.push(mixed);
        }
        out.push((0..=255).collect());
        out.push(noise(99, 70_000));
        out
    }

    /// RFC 2396 escaping, spelled out independently of the encoder's table.
    fn escape_rfc2396(bytes: &[u8]) -> String {
        const UNRESERVED: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.!~*'()";
        bytes
            .iter()
            .map(|&b| if UNRESERVED.contains(&b) { char::from(b).to_string() } else { format!("%{b:02X}") })
            .collect()
    }

    /// Butane's rule as its source states it: build all three payloads; base64 replaces
    /// escaping only when strictly shorter; gzip wins only when shorter by more than "gzip".
    fn butane_choice(bytes: &[u8]) -> (String, &'static str) {
        let escaped = format!(",{}", escape_rfc2396(bytes));
        let b64 = format!(";base64,{}", STANDARD.encode(bytes));
        let gz = format!(";base64,{}", STANDARD.encode(gzip(bytes)));
        let opaque = if b64.len() < escaped.len() { b64 } else { escaped };
        if gz.len() + "gzip".len() < opaque.len() {
            (format!("data:{gz}"), "gzip")
        } else {
            (format!("data:{opaque}"), "")
        }
    }

    #[test]
    fn escaped_length_is_counted_without_building_the_text() {
        for input in samples() {
            let want = escape_rfc2396(&input);
            assert_eq!(escape(&input), want, "input {input:?}");
            assert_eq!(escaped_len(&input), want.len(), "input {input:?}");
        }
    }

    #[test]
    fn builds_only_the_winner_and_picks_as_butane_does() {
        let mut kinds = std::collections::BTreeMap::new();
        for input in samples() {
            let (url, compression) = butane_choice(&input);
            let got = make(&input, None, Encoding::Shortest);
            assert_eq!((got.url.as_str(), got.compression.as_deref()), (url.as_str(), Some(compression)), "{input:?}");
            let kind = if compression == "gzip" { "gzip" } else { url.split(',').next().unwrap_or_default() };
            *kinds.entry(kind.to_string()).or_insert(0) += 1;
        }
        // The samples reach each of the three forms.
        assert_eq!(kinds.keys().collect::<Vec<_>>(), ["data:", "data:;base64", "gzip"], "{kinds:?}");
    }

    #[test]
    fn the_gzip_bound_is_butanes_inequality() {
        // best_len → the longest gzip stream n with 8 + 4·ceil(n/3) + 4 < best_len, by hand.
        for (best_len, longest) in
            [(12, 0), (13, 0), (16, 0), (17, 3), (40, 18), (41, 21), (44, 21), (45, 24), (1000, 738)]
        {
            assert_eq!(longest_winning_gzip(best_len), longest, "best_len {best_len}");
        }
    }

    #[test]
    fn make_all_keeps_the_order_of_its_inputs() {
        let inputs = samples();
        assert!(inputs.iter().map(Vec::len).sum::<usize>() > PARALLEL_MIN_BYTES, "large enough to be spread");
        let refs: Vec<&[u8]> = inputs.iter().map(Vec::as_slice).collect();
        let got = make_all(&refs, Encoding::Shortest);
        assert_eq!(got.len(), inputs.len());
        for (input, made) in inputs.iter().zip(got) {
            let (url, compression) = butane_choice(input);
            assert_eq!((made.url, made.compression.as_deref()), (url, Some(compression)), "{input:?}");
        }
        let fast = make_all(&refs, Encoding::Fast);
        for (input, made) in inputs.iter().zip(fast) {
            assert_eq!(made.url, format!("data:;base64,{}", STANDARD.encode(input)));
        }
        assert!(make_all(&[], Encoding::Shortest).is_empty());
    }

    #[test]
    fn long_repetitive_content_is_gzipped_and_round_trips() {
        let input = [b'x'; 60];
        let got = make(&input, None, Encoding::Shortest);
        assert_eq!(got.compression.as_deref(), Some("gzip"));
        assert_eq!(decode_contents(&got.url, Some("gzip")).unwrap(), input);
    }

    #[test]
    fn gzip_stream_has_gos_header_and_is_reusable() {
        let a = gzip(b"hello hello hello hello");
        assert_eq!(&a[..10], &[0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0x02, 0xff]);
        let b = gzip(b"other");
        assert_eq!(a, gzip(b"hello hello hello hello"), "a reset compressor gives the same stream");
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(b.as_slice()).read_to_end(&mut out).unwrap();
        assert_eq!(out, b"other");
    }

    #[test]
    fn user_compression_is_kept_and_not_recompressed() {
        let got = make(&[b'x'; 60], Some("gzip"), Encoding::Shortest);
        assert_eq!(got.compression.as_deref(), Some("gzip"));
        assert_eq!(decode(&got.url).unwrap(), vec![b'x'; 60]);
    }

    #[test]
    fn decodes_as_base64_and_gunzip_do() {
        // A URL of conformance case 003; `base64 -d | gunzip` of its payload gives 475 bytes
        // with this `sha256sum`, and the gzip trailer names 475.
        let url = "data:;base64,H4sIAAAAAAAC/3SQ3Yq7QAzF7/MUA/97lX5R/uCTiEgco02dD8nEbt2nX0basjfLXJ2ck8nh98/4DZfFJFLlMCVoEsmDpAXHSSmY2lTF/v5fq2sFX1FmkmRqcwJlT3FVU5tj9d4r1KUWKGDvaDC1GdElAkuiPLJFJVObktSW+9lSXSpfi1YUZtr+9GfaoHFxmjhMLTh6kDO14TBGGKN4zD3uKQYYKCkHVI65/T2uEtBBM6Bij4lauMWUw0Nf0BP94qjgoLSnlijZOp+OBwjoc9u9CKyJ5COWGF3nOX9/eAl8ZlFBY9HeqIUe7UwhE/Dko2yQ+Js6z32OnS+g6rpENoYhs7xUFTQjoa5CH3ydJxW22VdZ6T1VQcth+rB9jReJI7vfxk8AAAD//6j5qOzbAQAA";
        let bytes = decode_contents(url, Some("gzip")).unwrap();
        assert_eq!(bytes.len(), 475);
        let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
        assert_eq!(digest, "e7efe82ae188f6cb7f482e073b36f816c5d43a289e51155523811ca3063fec6d");
        assert_eq!(gunzipped_size_hint(&decode(url).unwrap()), 475);
        // `SGVsbG8=` is base64 of `Hello`; escapes and whitespace in the payload are dropped.
        for url in ["data:;base64,SGVsbG8=", "data:;base64,SGVs%0AbG8=", "data:;base64,SGVs bG8=", "data:,Hello"] {
            assert_eq!(decode(url).unwrap(), b"Hello", "{url}");
        }
        assert_eq!(decode("data:;base64,SGVsbG8"), Err(DataUrlError::Base64));
        assert_eq!(decode_contents("data:,not-gzip", Some("gzip")), Err(DataUrlError::Gzip));
    }

    #[test]
    fn a_forged_gzip_trailer_reserves_no_more_than_deflate_can_make() {
        let mut forged = gzip(b"tiny");
        let at = forged.len() - 4;
        forged[at..].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(gunzipped_size_hint(&forged), forged.len() * MAX_DEFLATE_RATIO);
        assert_eq!(gunzipped_size_hint(&gzip(b"tiny")), 4);
        assert_eq!(gunzipped_size_hint(b"ab"), 0);
    }

    #[test]
    fn spec_3_0_has_no_compression_key() {
        let got = make(b"#!/bin/sh\n", None, Encoding::Escaped);
        assert_eq!(got.compression, None);
        assert_eq!(got.url, "data:,%23!%2Fbin%2Fsh%0A", "fcos 1.0 always escapes");
        let fast = make(b"hi", None, Encoding::Fast);
        assert_eq!((fast.url.as_str(), fast.compression.as_deref()), ("data:;base64,aGk=", Some("")));
    }
}

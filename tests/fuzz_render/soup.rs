//! Generator 3: token soup, random runs of raw tokens, bare or behind a valid header.

use crate::rng::Rng;
use crate::vocabulary::{KEYS, TOKENS};

/// A valid `variant`/`version` header.
const HEADER: &str = "variant: fcos\nversion: 1.6.0\n";

/// Up to 200 random tokens, short soups more likely: bare, after a valid header, or as the
/// value of a Butane key after the header (so that it gets past the variant check).
pub fn token_soup(rng: &mut Rng) -> String {
    let longest = rng.below(200) + 1;
    let len = rng.below(longest);
    let soup: String = (0..len).map(|_| rng.pick(TOKENS)).collect();
    match rng.below(3) {
        0 => soup,
        1 => format!("{HEADER}{soup}"),
        _ => format!("{HEADER}{}: {soup}", rng.pick(KEYS)),
    }
}

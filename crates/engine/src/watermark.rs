//! The keyed green-list watermark of Kirchenbauer et al. (2023, "A Watermark for Large Language
//! Models", the soft watermark with a context of one token): at every step a secret key and the
//! previous token choose a "green" fraction `gamma` of the vocabulary, and `delta` is added to
//! the green tokens' logits before sampling. Text written that way holds more green tokens than
//! chance allows; [`detect`] counts them with the key alone (no model) and gives a z-score.
//!
//! The green list of a step: `seed = HMAC-SHA256(key, "modelspec-watermark/v1" ‖ prev as u32
//! little-endian)`, first 8 bytes little-endian; token `t` is green when the `t`-th output of
//! splitmix64 started at `seed` (`mix(seed + (t + 1) · 0x9E3779B97F4A7C15)`) is below
//! `gamma · 2^64`. Each token is green with probability `gamma` independently of the others,
//! so a text written without the key has `gamma · T` green tokens in expectation whatever the
//! tokenizer; deciding one token costs one multiply-and-mix, so a step over Gemma's 262,144
//! entries costs well under a millisecond, and detection needs no vocabulary-sized list.
//!
//! Detection counts each (previous, next) pair once: a repeated pair is not new evidence, and a
//! loop repeating a green pair would otherwise push plain text over the threshold (the repeated
//! n-gram rule of Kirchenbauer et al., "On the Reliability of Watermarks", 2023). With `T`
//! distinct scored pairs of which `G` are green, `z = (G − gamma·T) / sqrt(T·gamma·(1 − gamma))`;
//! [`DEFAULT_Z_THRESHOLD`] (4) is the paper's, a one-sided false-positive rate of 3·10⁻⁵.
//!
//! The list depends only on the key and the previous token, never on the position, the request
//! or its batch, so a watermarked request samples the same tokens alone or batched, and the
//! same seed gives the same text.

use std::fmt;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::sampler::Candidate;

/// Bytes of key material.
pub const KEY_BYTES: usize = 32;
/// The fraction of the vocabulary that is green when a plan does not say (the paper's 0.25).
pub const DEFAULT_GAMMA: f64 = 0.25;
/// The logit bias of green tokens when a plan does not say (the paper's 2.0).
pub const DEFAULT_DELTA: f32 = 2.0;
/// The z-score from which [`detect`] calls a text watermarked.
pub const DEFAULT_Z_THRESHOLD: f64 = 4.0;
/// Largest `delta` (the bound of OpenAI's `logit_bias`: beyond it a green token is forced).
pub const MAX_DELTA: f32 = 100.0;
/// Longest key id.
pub const MAX_KEY_ID: usize = 64;

const DOMAIN: &[u8] = b"modelspec-watermark/v1";
const FINGERPRINT_DOMAIN: &[u8] = b"modelspec-watermark-key-fingerprint/v1";
const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// A secret watermark key and the id plans name it by. `Debug` shows the id and the
/// fingerprint, never the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct WatermarkKey {
    id: String,
    secret: [u8; KEY_BYTES],
}

impl fmt::Debug for WatermarkKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WatermarkKey")
            .field("id", &self.id)
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

/// Whether `id` is a valid key id: 1 to 64 of `A-Z a-z 0-9 . _ -`, starting with a letter or
/// digit (it names files and appears in reports). The error says what is wrong.
pub fn check_key_id(id: &str) -> Result<(), String> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if id.is_empty() || id.len() > MAX_KEY_ID {
        return Err(format!(
            "a watermark key id has 1 to {MAX_KEY_ID} characters, got {}",
            id.len()
        ));
    }
    if !id.starts_with(|c: char| c.is_ascii_alphanumeric()) || !id.chars().all(ok_char) {
        return Err(format!(
            "watermark key id {id:?}: use letters, digits, `.`, `_` and `-`, starting with a letter or digit"
        ));
    }
    Ok(())
}

impl WatermarkKey {
    /// A key from its id and secret bytes; the id is checked ([`check_key_id`]).
    pub fn new(id: &str, secret: [u8; KEY_BYTES]) -> Result<Self, String> {
        check_key_id(id)?;
        Ok(Self {
            id: id.to_string(),
            secret,
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// The secret bytes, for writing a key file.
    pub fn secret(&self) -> &[u8; KEY_BYTES] {
        &self.secret
    }

    /// `sha256:<hex>` of a fixed domain string and the secret: names the key in reports and
    /// tells two keys apart without revealing either.
    pub fn fingerprint(&self) -> String {
        let digest = Sha256::new()
            .chain_update(FINGERPRINT_DOMAIN)
            .chain_update(self.secret)
            .finalize();
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        format!("sha256:{hex}")
    }

    /// The seed of the green list that follows `prev` (see the module note).
    fn step_seed(&self, prev: u32) -> u64 {
        let mac = hmac_sha256(&self.secret, &[DOMAIN, &prev.to_le_bytes()]);
        let mut first = [0u8; 8];
        first.copy_from_slice(&mac[..8]);
        u64::from_le_bytes(first)
    }

    /// The green list of the step after `prev`, `gamma` of the vocabulary.
    pub fn green_list(&self, prev: u32, gamma: f64) -> GreenList {
        GreenList {
            seed: self.step_seed(prev),
            threshold: gamma_threshold(gamma),
        }
    }
}

/// HMAC-SHA256 (RFC 2104) of the concatenated `parts` under a 32-byte key.
fn hmac_sha256(key: &[u8; KEY_BYTES], parts: &[&[u8]]) -> [u8; 32] {
    // A key shorter than the 64-byte block is zero-padded.
    let mut ipad = [0x36u8; 64];
    let mut opad = [0x5cu8; 64];
    for (i, &k) in key.iter().enumerate() {
        ipad[i] ^= k;
        opad[i] ^= k;
    }
    let mut inner = Sha256::new().chain_update(ipad);
    for p in parts {
        inner.update(p);
    }
    Sha256::new()
        .chain_update(opad)
        .chain_update(inner.finalize())
        .finalize()
        .into()
}

/// `gamma · 2^64`, the bound under which a token's hash is green.
fn gamma_threshold(gamma: f64) -> u64 {
    // 2^64 as f64 is exact; the cast saturates at the ends.
    (gamma * 18_446_744_073_709_551_616.0) as u64
}

/// splitmix64's output function (Steele, Lea and Flood; Vigna's constants).
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The green tokens of one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GreenList {
    seed: u64,
    threshold: u64,
}

impl GreenList {
    /// Whether `token` is green.
    #[inline]
    pub fn contains(&self, token: u32) -> bool {
        let state = self
            .seed
            .wrapping_add((u64::from(token) + 1).wrapping_mul(GOLDEN));
        mix(state) < self.threshold
    }
}

/// A watermark switched on for a generation: the key, the green fraction and the bias.
#[derive(Debug, Clone, PartialEq)]
pub struct Watermark {
    pub key: Arc<WatermarkKey>,
    /// The green fraction of the vocabulary, in (0, 1).
    pub gamma: f64,
    /// Added to the green tokens' logits, in (0, [`MAX_DELTA`]].
    pub delta: f32,
}

impl Watermark {
    /// Checks the ranges; the message names the parameter.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.gamma > 0.0 && self.gamma < 1.0) {
            return Err(format!(
                "watermark gamma must be between 0 and 1 (both excluded), got {}",
                self.gamma
            ));
        }
        if !(self.delta.is_finite() && self.delta > 0.0 && self.delta <= MAX_DELTA) {
            return Err(format!(
                "watermark delta must be above 0 and at most {MAX_DELTA}, got {}",
                self.delta
            ));
        }
        Ok(())
    }

    /// Adds `delta` to the logit of every green token of the step after `prev`. `cands` must
    /// be in id order (a candidate's id is its index), as the sampler has them before sorting.
    pub fn apply(&self, cands: &mut [Candidate], prev: u32) {
        let green = self.key.green_list(prev, self.gamma);
        for c in cands.iter_mut() {
            if green.contains(c.id) {
                c.logit += self.delta;
            }
        }
    }
}

/// What [`detect`] found in a token sequence.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    /// Tokens in the text.
    pub tokens: usize,
    /// Distinct (previous, next) pairs scored: every token but the first, repeated pairs once.
    pub scored: usize,
    /// How many of them were green.
    pub green: usize,
    pub gamma: f64,
    /// `(green − gamma·scored) / sqrt(scored·gamma·(1 − gamma))`; 0 when nothing was scored.
    pub z: f64,
}

impl Detection {
    /// Whether `z` reaches `threshold` (e.g. [`DEFAULT_Z_THRESHOLD`]).
    pub fn is_watermarked(&self, threshold: f64) -> bool {
        self.scored > 0 && self.z >= threshold
    }

    /// The share of scored pairs that were green.
    pub fn green_fraction(&self) -> f64 {
        if self.scored == 0 {
            0.0
        } else {
            self.green as f64 / self.scored as f64
        }
    }
}

/// Scores `tokens` (a text's tokenization, or generated ids) against `key` with green fraction
/// `gamma` (see the module note for the counting rule).
pub fn detect(key: &WatermarkKey, gamma: f64, tokens: &[u32]) -> Detection {
    let mut seen = std::collections::HashSet::new();
    let mut green = 0usize;
    for pair in tokens.windows(2) {
        let (prev, next) = (pair[0], pair[1]);
        if !seen.insert((prev, next)) {
            continue;
        }
        if key.green_list(prev, gamma).contains(next) {
            green += 1;
        }
    }
    let scored = seen.len();
    let z = if scored == 0 || !(gamma > 0.0 && gamma < 1.0) {
        0.0
    } else {
        let t = scored as f64;
        (green as f64 - gamma * t) / (t * gamma * (1.0 - gamma)).sqrt()
    };
    Detection {
        tokens: tokens.len(),
        scored,
        green,
        gamma,
        z,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> WatermarkKey {
        WatermarkKey::new("test", [byte; KEY_BYTES]).unwrap()
    }

    #[test]
    fn hmac_matches_rfc_4231_test_case_1() {
        // A 20-byte key is zero-padded to the block, so as 32 bytes ending in zeros it is the
        // same key.
        let mut k = [0u8; KEY_BYTES];
        k[..20].fill(0x0b);
        let hex: String = hmac_sha256(&k, &[b"Hi ", b"There"])
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            hex,
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
    }

    #[test]
    fn about_gamma_of_the_vocabulary_is_green_and_lists_differ() {
        let k = key(7);
        for gamma in [0.1, 0.25, 0.5] {
            let g = k.green_list(42, gamma);
            let n = 262_144;
            let green = (0..n).filter(|&t| g.contains(t)).count() as f64;
            // Binomial(n, gamma): 5 standard deviations.
            let sd = (f64::from(n) * gamma * (1.0 - gamma)).sqrt();
            assert!((green - gamma * f64::from(n)).abs() < 5.0 * sd, "{gamma}");
        }
        let a = k.green_list(1, 0.5);
        let b = k.green_list(2, 0.5);
        let c = key(8).green_list(1, 0.5);
        let same = |x: GreenList, y: GreenList| {
            (0..4096)
                .filter(|&t| x.contains(t) == y.contains(t))
                .count()
        };
        // Independent lists agree on about half the tokens.
        assert!((1700..2400).contains(&same(a, b)));
        assert!((1700..2400).contains(&same(a, c)));
        assert_eq!(same(a, a), 4096);
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let k = key(0xab);
        let text = format!("{k:?}");
        assert!(text.contains("test") && text.contains("sha256:"), "{text}");
        assert!(
            !text.contains("171") && !text.to_lowercase().contains("abab"),
            "{text}"
        );
    }

    #[test]
    fn key_ids_are_checked() {
        assert!(check_key_id("news-2026.v1_a").is_ok());
        for bad in ["", "-x", "a b", "a/b", &"x".repeat(65)] {
            assert!(check_key_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_text_of_green_tokens_scores_high_and_repeats_count_once() {
        let k = key(3);
        let gamma = 0.25;
        // Build a sequence choosing a green next token each time.
        let mut tokens = vec![5u32];
        while tokens.len() < 60 {
            let prev = *tokens.last().unwrap();
            let g = k.green_list(prev, gamma);
            let next = (1000..)
                .find(|&t| g.contains(t) && !tokens.contains(&t))
                .unwrap();
            tokens.push(next);
        }
        let d = detect(&k, gamma, &tokens);
        assert_eq!((d.scored, d.green), (59, 59));
        assert!(d.is_watermarked(DEFAULT_Z_THRESHOLD), "{d:?}");
        // The same text under another key is not.
        assert!(!detect(&key(4), gamma, &tokens).is_watermarked(DEFAULT_Z_THRESHOLD));
        // A repeated pair is scored once.
        let d = detect(&k, gamma, &[1, 2, 1, 2, 1, 2]);
        assert_eq!(d.scored, 2);
        let d = detect(&k, gamma, &[9]);
        assert_eq!((d.scored, d.z), (0, 0.0));
        assert!(!d.is_watermarked(0.0));
    }
}

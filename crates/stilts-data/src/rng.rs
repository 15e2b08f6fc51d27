//! A small deterministic random number generator whose streams are fixed forever: the same seed
//! gives the same numbers on every platform and in every version of stilts.
//!
//! - [`SplitMix64`] (Steele, Lea & Flood 2014) expands a 64-bit seed into generator state.
//! - [`Rng`] is xoshiro256** 1.0 (Blackman & Vigna 2018) seeded with four SplitMix64 outputs, as
//!   its authors recommend.
//! - [`derive_seed`] / [`Rng::derive`] give an independent stream per purpose: SHA-256 over the
//!   seed and a list of labels (`derive(seed, ["downsample", restart])`).
//! - Bounded integers use Lemire's multiply-shift with rejection (unbiased); shuffles are
//!   Fisher–Yates from the last element down; [`Rng::sample_indices`] is a partial Fisher–Yates.
//!
//! Every one of these definitions is part of the stream contract: the unit tests pin known-answer
//! vectors computed with an independent reference implementation, so any change is caught.
//!
//! ```
//! use stilts_data::rng::Rng;
//! let mut rng = Rng::derive(1234, &["downsample".into(), 0u64.into()]);
//! let mut xs: Vec<u32> = (0..10).collect();
//! rng.shuffle(&mut xs);
//! assert_eq!(xs.len(), 10);
//! let picked = rng.sample_indices(100, 5);
//! assert!(picked.iter().all(|&i| i < 100));
//! ```

use sha2::{Digest, Sha256};

/// SplitMix64: a 64-bit counter passed through a bijective mixing function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// The generator that starts from `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    /// The next output.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// One label of a derived stream: a purpose string or an integer (restart index, epoch, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamLabel<'a> {
    /// A purpose (`"downsample"`, `"order"`, ...).
    Str(&'a str),
    /// An integer (restart index, epoch, ...).
    Int(u64),
}

impl<'a> From<&'a str> for StreamLabel<'a> {
    fn from(s: &'a str) -> Self {
        StreamLabel::Str(s)
    }
}

impl<'a> From<&'a String> for StreamLabel<'a> {
    fn from(s: &'a String) -> Self {
        StreamLabel::Str(s)
    }
}

impl From<u64> for StreamLabel<'_> {
    fn from(v: u64) -> Self {
        StreamLabel::Int(v)
    }
}

impl From<u32> for StreamLabel<'_> {
    fn from(v: u32) -> Self {
        StreamLabel::Int(u64::from(v))
    }
}

impl From<usize> for StreamLabel<'_> {
    fn from(v: usize) -> Self {
        StreamLabel::Int(v as u64)
    }
}

const DERIVE_DOMAIN: &[u8] = b"stilts-rng-derive-v1";

/// The seed of the stream named by `labels` under `seed`: the first 8 bytes (little-endian) of
/// SHA-256 over `"stilts-rng-derive-v1"`, the seed (u64 LE), then per label either `0x01`, its
/// UTF-8 length (u64 LE) and bytes, or `0x02` and the integer (u64 LE). The encoding is
/// prefix-free, so distinct label lists give unrelated seeds.
pub fn derive_seed(seed: u64, labels: &[StreamLabel<'_>]) -> u64 {
    let mut h = Sha256::new();
    h.update(DERIVE_DOMAIN);
    h.update(seed.to_le_bytes());
    for label in labels {
        match label {
            StreamLabel::Str(s) => {
                h.update([0x01]);
                h.update((s.len() as u64).to_le_bytes());
                h.update(s.as_bytes());
            }
            StreamLabel::Int(v) => {
                h.update([0x02]);
                h.update(v.to_le_bytes());
            }
        }
    }
    let digest = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(first)
}

/// xoshiro256** seeded through [`SplitMix64`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// The generator whose state is the first four SplitMix64 outputs for `seed` (never all zero,
    /// since SplitMix64's mixing function is a bijection over distinct counters).
    pub fn new(seed: u64) -> Self {
        let mut sm = SplitMix64::new(seed);
        Rng {
            s: [sm.next_u64(), sm.next_u64(), sm.next_u64(), sm.next_u64()],
        }
    }

    /// The generator of the stream `labels` under `seed` ([`derive_seed`]).
    pub fn derive(seed: u64, labels: &[StreamLabel<'_>]) -> Self {
        Rng::new(derive_seed(seed, labels))
    }

    /// The next output.
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// A uniform float in `[0, 1)` from the top 53 bits of one output.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// A uniform integer in `0..n` (Lemire's method with rejection: unbiased).
    ///
    /// # Panics
    /// When `n` is 0.
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "Rng::below(0)");
        let mut m = u128::from(self.next_u64()) * u128::from(n);
        if (m as u64) < n {
            let threshold = n.wrapping_neg() % n;
            while (m as u64) < threshold {
                m = u128::from(self.next_u64()) * u128::from(n);
            }
        }
        (m >> 64) as u64
    }

    /// [`Rng::below`] for `usize` bounds.
    pub fn below_usize(&mut self, n: usize) -> usize {
        self.below(n as u64) as usize
    }

    /// Fisher–Yates: for `i` from `len - 1` down to 1, swap `i` with `below(i + 1)`.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below_usize(i + 1);
            items.swap(i, j);
        }
    }

    /// `k` distinct indices of `0..n`, uniformly, in the order drawn (partial Fisher–Yates over
    /// `0..n`: for `i` in `0..k`, swap `i` with `i + below(n - i)`).
    ///
    /// # Panics
    /// When `k > n`.
    pub fn sample_indices(&mut self, n: usize, k: usize) -> Vec<usize> {
        assert!(k <= n, "Rng::sample_indices: k = {k} > n = {n}");
        let mut idx: Vec<usize> = (0..n).collect();
        for i in 0..k {
            let j = i + self.below_usize(n - i);
            idx.swap(i, j);
        }
        idx.truncate(k);
        idx
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_known_answers() {
        let mut sm = SplitMix64::new(0);
        let got: Vec<u64> = (0..5).map(|_| sm.next_u64()).collect();
        assert_eq!(
            got,
            [
                0xe220a8397b1dcdaf,
                0x6e789e6aa1b965f4,
                0x06c45d188009454f,
                0xf88bb8a8724c81ec,
                0x1b39896a51a8749b,
            ]
        );
        let mut sm = SplitMix64::new(1234567);
        let got: Vec<u64> = (0..5).map(|_| sm.next_u64()).collect();
        assert_eq!(
            got,
            [
                0x599ed017fb08fc85,
                0x2c73f08458540fa5,
                0x883ebce5a3f27c77,
                0x3fbef740e9177b3f,
                0xe3b8346708cb5ecd,
            ]
        );
    }

    #[test]
    fn xoshiro_known_answers() {
        let mut rng = Rng::new(0);
        let got: Vec<u64> = (0..5).map(|_| rng.next_u64()).collect();
        assert_eq!(
            got,
            [
                0x99ec5f36cb75f2b4,
                0xbf6e1f784956452a,
                0x1a5f849d4933e6e0,
                0x6aa594f1262d2d2c,
                0xbba5ad4a1f842e59,
            ]
        );
        let mut rng = Rng::new(1234567);
        let got: Vec<u64> = (0..5).map(|_| rng.next_u64()).collect();
        assert_eq!(
            got,
            [
                0x30a3a1c363600467,
                0x19405f0f579929ca,
                0x115beaac046ddbd9,
                0xeb17caf48f27d7f6,
                0xa0c94fe1cce9d136,
            ]
        );
    }

    #[test]
    fn bounded_shuffle_and_sample_known_answers() {
        let mut rng = Rng::new(42);
        let small: Vec<u64> = (0..10).map(|_| rng.below(10)).collect();
        assert_eq!(small, [0, 3, 6, 9, 9, 7, 7, 8, 7, 5]);
        let three: Vec<u64> = (0..5).map(|_| rng.below(3)).collect();
        assert_eq!(three, [2, 0, 2, 0, 2]);
        assert_eq!(rng.below((1 << 63) + 12345), 856482903962276070);

        let mut rng = Rng::new(7);
        let mut xs: Vec<usize> = (0..10).collect();
        rng.shuffle(&mut xs);
        assert_eq!(xs, [1, 8, 3, 0, 4, 5, 9, 6, 2, 7]);

        let mut rng = Rng::new(7);
        assert_eq!(rng.sample_indices(20, 5), [14, 6, 17, 19, 3]);
    }

    #[test]
    fn derive_known_answers() {
        assert_eq!(derive_seed(0, &[]), 0x6badc5905f410a96);
        assert_eq!(
            derive_seed(1234, &["downsample".into(), 0u64.into()]),
            0x501300329f979a0c
        );
        assert_eq!(
            derive_seed(1234, &["downsample".into(), 1usize.into()]),
            0xf2a65e1e9ed6bef7
        );
    }

    #[test]
    fn derived_labels_are_prefix_free() {
        let ab = derive_seed(1, &["ab".into()]);
        let a_b = derive_seed(1, &["a".into(), "b".into()]);
        let int = derive_seed(1, &[0x6261u64.into()]);
        assert_ne!(ab, a_b);
        assert_ne!(ab, int);
        assert_ne!(derive_seed(1, &["x".into()]), derive_seed(2, &["x".into()]));
    }

    #[test]
    fn below_is_in_range_and_roughly_uniform() {
        let mut rng = Rng::new(99);
        let mut counts = [0u32; 7];
        for _ in 0..70_000 {
            counts[rng.below_usize(7)] += 1;
        }
        for c in counts {
            assert!((9_400..10_600).contains(&c), "{counts:?}");
        }
        assert_eq!(rng.below(1), 0);
        let f = rng.next_f64();
        assert!((0.0..1.0).contains(&f));
    }

    #[test]
    fn sample_indices_are_distinct() {
        let mut rng = Rng::new(3);
        let mut got = rng.sample_indices(50, 50);
        got.sort_unstable();
        assert_eq!(got, (0..50).collect::<Vec<_>>());
        assert!(rng.sample_indices(5, 0).is_empty());
    }
}

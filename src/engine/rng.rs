//! SplitMix64 (Steele, Lea and Flood, OOPSLA 2014): the small seeded generator behind PatchMatch's
//! random search, the paired bootstrap of `compare-evals` and the generated test forgeries, so
//! that every run with the same seed gives the same figures.

/// SplitMix64 state; `SplitMix64(seed)` starts a stream.
#[derive(Debug, Clone)]
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[lo, hi)` from the top 53 bits.
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64)
    }

    /// Uniform index in `0..n` by scaling (`n = 0` gives 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.uniform(0.0, n as f64) as usize) % n.max(1)
    }

    /// Index in `0..n` by remainder (`n > 0`), the bootstrap's draw.
    pub fn below_mod(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

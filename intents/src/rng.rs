//! A small seeded random number generator, so that the shuffles, initial
//! weights and dropout masks of training depend only on the seed, not on the
//! version of a random-number crate.

/// SplitMix64: a 64-bit state advanced by a fixed odd constant and scrambled
/// by a bijective mixing function. It is enough for weight initialisation,
/// shuffling and dropout masks, and not meant for cryptography.
#[derive(Clone, Debug)]
pub(crate) struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub(crate) fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Returns a float uniformly distributed in `[0, 1)`, from the top 24 bits.
    pub(crate) fn next_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Returns a float uniformly distributed in `[-limit, limit)`.
    pub(crate) fn uniform(&mut self, limit: f32) -> f32 {
        (self.next_f32() * 2.0 - 1.0) * limit
    }

    /// Returns an index in `0..bound`, almost uniformly distributed; `bound` must be positive.
    pub(crate) fn below(&mut self, bound: usize) -> usize {
        // Multiply-shift (Lemire) maps 64 random bits onto the range without a
        // division; the bias is below bound / 2^64.
        ((u128::from(self.next_u64()) * bound as u128) >> 64) as usize
    }

    /// Shuffles `items` in place (Fisher-Yates).
    pub(crate) fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::SplitMix64;

    #[test]
    fn splitmix_same_seed_same_sequence() {
        let mut a = SplitMix64::new(7);
        let mut b = SplitMix64::new(7);
        let first: Vec<u64> = (0..4).map(|_| a.next_u64()).collect();
        let second: Vec<u64> = (0..4).map(|_| b.next_u64()).collect();
        assert_eq!(first, second);
    }

    #[test]
    fn splitmix_below_stays_in_bound() {
        let mut rng = SplitMix64::new(1);
        assert!((0..1000).all(|_| rng.below(3) < 3));
    }

    #[test]
    fn splitmix_f32_in_unit_interval() {
        let mut rng = SplitMix64::new(2);
        assert!((0..1000).map(|_| rng.next_f32()).all(|x| (0.0..1.0).contains(&x)));
    }
}

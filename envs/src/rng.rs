//! The random number generator Gymnasium's environments draw from, bit for bit.
//!
//! Gymnasium seeds every environment with `np.random.Generator(PCG64(SeedSequence(seed)))`
//! and draws initial states with `Generator.uniform`. Reproducing that chain here means that
//! `reset(Some(seed))` gives the very same initial state as Gymnasium does for the same seed,
//! so a trajectory can be compared step for step with one recorded from Gymnasium.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// PCG64 (XSL-RR 128/64), seeded through NumPy's `SeedSequence`, as NumPy's default generator.
/// It serialises as its exact state (two 128-bit numbers in hex), so that a run saved
/// mid-way continues with the very same draws.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvRng {
    state: u128,
    increment: u128,
}

const PCG_MULTIPLIER: u128 = 0x2360_ED05_1FC6_5DA4_4385_DF64_9FCC_F645;

impl EnvRng {
    /// The generator NumPy builds for `np.random.default_rng(seed)`.
    pub fn from_seed(seed: u64) -> Self {
        let words = seed_sequence_state(seed, 8);
        let word64 = |i: usize| u64::from(words[2 * i]) | (u64::from(words[2 * i + 1]) << 32);
        let initial_state = (u128::from(word64(0)) << 64) | u128::from(word64(1));
        let sequence = (u128::from(word64(2)) << 64) | u128::from(word64(3));
        let mut rng = Self {
            state: 0,
            increment: (sequence << 1) | 1,
        };
        rng.advance();
        rng.state = rng.state.wrapping_add(initial_state);
        rng.advance();
        rng
    }

    /// A generator seeded from operating-system entropy (Gymnasium's `reset(seed=None)` on a
    /// fresh environment).
    pub fn from_entropy() -> Self {
        Self::from_seed(rand::random::<u64>())
    }

    fn advance(&mut self) {
        self.state = self
            .state
            .wrapping_mul(PCG_MULTIPLIER)
            .wrapping_add(self.increment);
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.advance();
        let folded = ((self.state >> 64) as u64) ^ (self.state as u64);
        folded.rotate_right((self.state >> 122) as u32)
    }

    /// A double in `[0, 1)` with 53 random bits, as NumPy's `random()`.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / 9_007_199_254_740_992.0)
    }

    /// `Generator.uniform(low, high)`: `low + (high - low) * random()`.
    pub fn uniform(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.next_f64()
    }

    /// `Generator.uniform(low, high, size=N)` for scalar bounds.
    pub fn uniform_array<const N: usize>(&mut self, low: f64, high: f64) -> [f64; N] {
        std::array::from_fn(|_| self.uniform(low, high))
    }

    /// A uniformly random integer in `0..n` (for sampling discrete actions; not NumPy's
    /// algorithm, which nothing here needs to reproduce).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// A standard normal draw (Box-Muller over two uniform draws; not NumPy's ziggurat,
    /// which nothing here needs to reproduce).
    pub fn standard_normal(&mut self) -> f64 {
        // 1 - u lies in (0, 1], so the logarithm is finite.
        let radius = (-2.0 * (1.0 - self.next_f64()).ln()).sqrt();
        radius * (std::f64::consts::TAU * self.next_f64()).cos()
    }

    /// Shuffles `values` in place (Fisher-Yates).
    pub fn shuffle<T>(&mut self, values: &mut [T]) {
        for i in (1..values.len()).rev() {
            values.swap(i, self.below(i as u64 + 1) as usize);
        }
    }
}

impl Serialize for EnvRng {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        format!("{:032x}:{:032x}", self.state, self.increment).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for EnvRng {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let parse = |part: &str| u128::from_str_radix(part, 16).ok();
        match text.split_once(':').map(|(s, i)| (parse(s), parse(i))) {
            Some((Some(state), Some(increment))) if increment % 2 == 1 => {
                Ok(Self { state, increment })
            }
            _ => Err(serde::de::Error::custom(format!(
                "invalid generator state `{text}`"
            ))),
        }
    }
}

/// NumPy's `SeedSequence(seed).generate_state(n_words, np.uint32)` for a non-negative integer
/// seed and no spawn key.
fn seed_sequence_state(seed: u64, n_words: usize) -> Vec<u32> {
    const POOL_SIZE: usize = 4;
    const INIT_A: u32 = 0x43b0_d7e5;
    const MULT_A: u32 = 0x931e_8875;
    const INIT_B: u32 = 0x8b51_f9dd;
    const MULT_B: u32 = 0x58f3_8ded;
    const MIX_MULT_L: u32 = 0xca01_f9dd;
    const MIX_MULT_R: u32 = 0x4973_f715;
    const XSHIFT: u32 = 16;

    // The seed as little-endian 32-bit words, `[0]` for zero.
    let entropy: Vec<u32> = if seed >> 32 == 0 {
        vec![seed as u32]
    } else {
        vec![seed as u32, (seed >> 32) as u32]
    };

    let mut hash_const = INIT_A;
    let mut hashmix = |value: u32| {
        let mut value = value ^ hash_const;
        hash_const = hash_const.wrapping_mul(MULT_A);
        value = value.wrapping_mul(hash_const);
        value ^ (value >> XSHIFT)
    };
    let mix = |x: u32, y: u32| {
        let result = MIX_MULT_L
            .wrapping_mul(x)
            .wrapping_sub(MIX_MULT_R.wrapping_mul(y));
        result ^ (result >> XSHIFT)
    };

    let mut pool = [0u32; POOL_SIZE];
    for (i, slot) in pool.iter_mut().enumerate() {
        *slot = hashmix(entropy.get(i).copied().unwrap_or(0));
    }
    for src in 0..POOL_SIZE {
        for dst in 0..POOL_SIZE {
            if src != dst {
                pool[dst] = mix(pool[dst], hashmix(pool[src]));
            }
        }
    }
    for &word in entropy.iter().skip(POOL_SIZE) {
        for slot in pool.iter_mut() {
            *slot = mix(*slot, hashmix(word));
        }
    }

    let mut hash_const = INIT_B;
    (0..n_words)
        .map(|i| {
            let mut value = pool[i % POOL_SIZE] ^ hash_const;
            hash_const = hash_const.wrapping_mul(MULT_B);
            value = value.wrapping_mul(hash_const);
            value ^ (value >> XSHIFT)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_sequence_matches_numpy() {
        // np.random.SeedSequence(42).generate_state(4, np.uint64)
        let words = seed_sequence_state(42, 8);
        let word64 = |i: usize| u64::from(words[2 * i]) | (u64::from(words[2 * i + 1]) << 32);
        assert_eq!(
            [word64(0), word64(1), word64(2), word64(3)],
            [
                11465652750463011511,
                15382171918060459190,
                9018504550953525431,
                3703499796004394495
            ]
        );
    }

    #[test]
    fn uniform_draws_match_numpy_default_rng() {
        // np.random.default_rng(42).uniform(-0.05, 0.05, size=4)
        let mut rng = EnvRng::from_seed(42);
        let draws: [f64; 4] = rng.uniform_array(-0.05, 0.05);
        let expected = [
            0.027395604855596334,
            -0.006112156024794771,
            0.03585979199113824,
            0.019736802905936393,
        ];
        assert_eq!(draws, expected);
    }

    #[test]
    fn seeds_above_32_bits_use_two_entropy_words() {
        // np.random.SeedSequence(2**40 + 5).generate_state(4, np.uint64)[0]
        let words = seed_sequence_state((1 << 40) + 5, 2);
        let first = u64::from(words[0]) | (u64::from(words[1]) << 32);
        assert_eq!(first, 15772757452565124875);
    }

    #[test]
    fn serialised_state_continues_the_same_stream() {
        let mut rng = EnvRng::from_seed(7);
        rng.next_u64();
        let json = serde_json::to_string(&rng).unwrap();
        let mut restored: EnvRng = serde_json::from_str(&json).unwrap();
        assert_eq!(restored, rng);
        assert_eq!(restored.next_u64(), rng.next_u64());
        assert!(
            serde_json::from_str::<EnvRng>("\"12:34\"").is_err(),
            "even increment"
        );
        assert!(serde_json::from_str::<EnvRng>("\"zz\"").is_err());
    }

    #[test]
    fn standard_normal_has_unit_moments_and_shuffle_permutes() {
        let mut rng = EnvRng::from_seed(3);
        let draws: Vec<f64> = (0..100_000).map(|_| rng.standard_normal()).collect();
        let mean = draws.iter().sum::<f64>() / draws.len() as f64;
        let var = draws.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / draws.len() as f64;
        assert!(
            mean.abs() < 0.01 && (var - 1.0).abs() < 0.02,
            "{mean} {var}"
        );
        let mut values: Vec<u32> = (0..100).collect();
        rng.shuffle(&mut values);
        assert_ne!(values, (0..100).collect::<Vec<_>>());
        values.sort_unstable();
        assert_eq!(values, (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn below_stays_in_range() {
        let mut rng = EnvRng::from_seed(7);
        let mut counts = [0usize; 3];
        for _ in 0..3000 {
            counts[rng.below(3) as usize] += 1;
        }
        assert!(counts.iter().all(|&c| c > 800), "{counts:?}");
    }
}

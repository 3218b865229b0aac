//! Seeded, portable randomness: every random choice in this crate is a pure function of a seed,
//! so the same seed gives the same degradations and the same batches on every machine.

use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Deserializer, Serialize};

/// The generator used everywhere (xoshiro256++: fast, portable, documented output).
pub type DataRng = Xoshiro256PlusPlus;

/// A generator for the stream `(seed, labels...)`: distinct labels give independent streams.
pub fn rng_for(seed: u64, labels: &[u64]) -> DataRng {
    DataRng::seed_from_u64(mix(seed, labels))
}

/// Hashes a seed and labels into one 64-bit value (SplitMix64 finaliser per label).
pub fn mix(seed: u64, labels: &[u64]) -> u64 {
    labels.iter().fold(splitmix(seed), |state, &label| splitmix(state ^ splitmix(label.wrapping_add(0x9e37_79b9_7f4a_7c15))))
}

/// A stable label for a task (its index in [`Task::ALL`]).
pub fn task_label(task: ipt_core::Task) -> u64 {
    ipt_core::Task::ALL.iter().position(|candidate| *candidate == task).expect("every task is in Task::ALL") as u64
}

/// A stable 64-bit label for a string (file names in seeds), FNV-1a.
pub fn label(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3))
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A closed interval a parameter is drawn from, uniformly; written in TOML either as a number
/// (a fixed value) or as `{ min = .., max = .. }`.
#[derive(Serialize, Clone, Copy, Debug, PartialEq)]
pub struct Span {
    /// Smallest value.
    pub min: f32,
    /// Largest value.
    pub max: f32,
}

impl Span {
    /// The interval `[min, max]`.
    pub const fn new(min: f32, max: f32) -> Self {
        Self { min, max }
    }

    /// A single value.
    pub const fn fixed(value: f32) -> Self {
        Self { min: value, max: value }
    }

    /// A uniform draw (the fixed value when `min == max`).
    pub fn sample(&self, rng: &mut DataRng) -> f32 {
        if self.max > self.min { rng.random_range(self.min..=self.max) } else { self.min }
    }

    /// A uniform integer draw from the rounded bounds.
    pub fn sample_int(&self, rng: &mut DataRng) -> usize {
        let (low, high) = (self.min.round().max(0.0) as usize, self.max.round().max(0.0) as usize);
        if high > low { rng.random_range(low..=high) } else { low }
    }

    /// Checks `lower <= min <= max <= upper`, naming `what` in the error.
    pub fn check(&self, what: &str, lower: f32, upper: f32) -> crate::Result<()> {
        if self.min.is_finite() && self.max.is_finite() && lower <= self.min && self.min <= self.max && self.max <= upper {
            Ok(())
        } else {
            Err(crate::DataError::Invalid {
                what: what.into(),
                message: format!("range [{}, {}] must satisfy {lower} <= min <= max <= {upper}", self.min, self.max),
            })
        }
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Written {
            Fixed(f32),
            Range { min: f32, max: f32 },
        }
        Ok(match Written::deserialize(deserializer)? {
            Written::Fixed(value) => Span::fixed(value),
            Written::Range { min, max } => Span::new(min, max),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let draw = |labels: &[u64]| rng_for(7, labels).random::<u64>();
        assert_eq!(draw(&[1, 2]), draw(&[1, 2]));
        assert_ne!(draw(&[1, 2]), draw(&[2, 1]));
        assert_ne!(draw(&[1]), draw(&[1, 0]));
    }

    #[test]
    fn spans_parse_from_a_number_or_a_table() {
        #[derive(Deserialize)]
        struct Holder {
            a: Span,
            b: Span,
        }
        let holder: Holder = toml::from_str("a = 25\nb = { min = 0.5, max = 2 }").unwrap();
        assert_eq!(holder.a, Span::fixed(25.0));
        assert_eq!(holder.b, Span::new(0.5, 2.0));
        assert!(Span::new(3.0, 1.0).check("x", 0.0, 10.0).is_err());
    }
}

//! Seeded input mutations for the fuzz tests of every crate (images, weight files, configs):
//! the same seed gives the same mutants on every machine, so a failure reproduces.

/// Seeded pseudo-random numbers (SplitMix64).
#[derive(Clone, Debug)]
pub struct FuzzRandom(u64);

impl FuzzRandom {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..bound` (0 when `bound` is 0).
    pub fn below(&mut self, bound: usize) -> usize {
        (self.next_u64() % bound.max(1) as u64) as usize
    }
}

/// One random mutation of `bytes`: flipped bits, a run of `0xFF` (huge sizes in headers), a run
/// of zeros, a truncation, a duplicated slice, or every byte after the first `keep` replaced by
/// random ones (a file that starts right and then is noise).
pub fn mutate(bytes: &[u8], random: &mut FuzzRandom, keep: usize) -> Vec<u8> {
    let mut out = bytes.to_vec();
    if out.is_empty() {
        return out;
    }
    let at = random.below(out.len());
    match random.below(6) {
        0 => {
            for _ in 0..1 + random.below(8) {
                let index = random.below(out.len());
                out[index] ^= 1 << random.below(8);
            }
        }
        1 => out[at..(at + 1 + random.below(8)).min(bytes.len())].fill(0xFF),
        2 => out[at..(at + 1 + random.below(16)).min(bytes.len())].fill(0),
        3 => out.truncate(at),
        4 => {
            let slice = out[at..(at + random.below(64)).min(bytes.len())].to_vec();
            let to = random.below(out.len());
            out.splice(to..to, slice);
        }
        _ => out.iter_mut().skip(keep).for_each(|byte| *byte = random.next_u64() as u8),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutants_are_reproducible_and_differ_from_the_input() {
        let input: Vec<u8> = (0..200).map(|i| i as u8).collect();
        let (mut first, mut second) = (FuzzRandom::new(9), FuzzRandom::new(9));
        let mut changed = 0;
        for _ in 0..50 {
            let mutant = mutate(&input, &mut first, 4);
            assert_eq!(mutant, mutate(&input, &mut second, 4));
            changed += usize::from(mutant != input);
        }
        assert!(changed >= 45, "only {changed} of 50 mutants differ");
    }
}

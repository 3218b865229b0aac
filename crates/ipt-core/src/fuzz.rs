//! Seeded input mutations for the fuzz tests of every crate (images, weight files, configs):
//! the same seed gives the same mutants on every machine, so a failure reproduces.

use std::path::Path;

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

/// One random mutation of a TOML config's text: a value replaced by an extreme or wrong-typed
/// one (0, -1, 1e308, nan, 2^64 - 1, 2^32, a string, an empty array), a line dropped, or
/// [`mutate`]'s byte damage.
pub fn mutate_toml(text: &str, random: &mut FuzzRandom) -> Vec<u8> {
    const VALUES: [&str; 8] = ["0", "-1", "1e308", "nan", "18446744073709551615", "4294967296", "\"x\"", "[]"];
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    if lines.is_empty() {
        return mutate(text.as_bytes(), random, 0);
    }
    let line = random.below(lines.len());
    match random.below(3) {
        0 => {
            if let Some((key, _)) = lines[line].split_once('=') {
                lines[line] = format!("{key}= {}", VALUES[random.below(VALUES.len())]);
            }
        }
        1 => {
            lines.remove(line);
        }
        _ => return mutate(text.as_bytes(), random, 0),
    }
    lines.join("\n").into_bytes()
}

/// How many fuzzed files [`fuzz_files`] saw loaded and refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tally {
    /// Files the loader accepted.
    pub loaded: usize,
    /// Files the loader refused.
    pub refused: usize,
}

/// Writes `count` mutants (each made by `mutant`) into `folder` as `fuzz-<case>.<extension>`
/// and hands each path to `load`, which checks whatever an accepted file must satisfy and
/// returns the refusal's message otherwise. Panics (it is for tests) when a message does not
/// name its file, or when no mutant was refused: such a run tests nothing.
pub fn fuzz_files(
    folder: &Path,
    extension: &str,
    count: usize,
    random: &mut FuzzRandom,
    mut mutant: impl FnMut(&mut FuzzRandom) -> Vec<u8>,
    mut load: impl FnMut(&Path) -> Result<(), String>,
) -> Tally {
    let mut tally = Tally { loaded: 0, refused: 0 };
    for case in 0..count {
        let name = format!("fuzz-{case}.{extension}");
        let path = folder.join(&name);
        std::fs::write(&path, mutant(random)).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
        match load(&path) {
            Ok(()) => tally.loaded += 1,
            Err(message) => {
                assert!(message.contains(&name), "the refusal does not name {name}: {message}");
                tally.refused += 1;
            }
        }
    }
    assert!(tally.refused > 0, "{tally:?}: mutants that all load test nothing");
    tally
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

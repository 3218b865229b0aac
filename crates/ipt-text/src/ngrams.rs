//! Hashed character n-grams: typo-robust features that need no vocabulary (3- and 4-grams of
//! the lower-cased text with word boundaries marked, hashed into a fixed number of buckets).

/// Number of hash buckets.
pub const BUCKETS: usize = 2048;
const SIZES: [usize; 2] = [3, 4];

/// L2-normalised bucket counts of the character 3- and 4-grams of `text`; all zeros when the
/// text has no n-gram.
pub fn char_ngrams(text: &str) -> Vec<f32> {
    let normalised: String = text.to_lowercase().split_whitespace().collect::<Vec<_>>().join(" ");
    let chars: Vec<char> = format!(" {normalised} ").chars().collect();
    let mut counts = vec![0f32; BUCKETS];
    for size in SIZES {
        for window in chars.windows(size) {
            counts[bucket(window)] += 1.0;
        }
    }
    let norm = counts.iter().map(|count| count * count).sum::<f32>().sqrt();
    if norm > 0.0 {
        counts.iter_mut().for_each(|count| *count /= norm);
    }
    counts
}

/// FNV-1a of the n-gram's UTF-8 bytes: stable across platforms and releases.
fn bucket(gram: &[char]) -> usize {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut buffer = [0u8; 4];
    for character in gram {
        for byte in character.encode_utf8(&mut buffer).bytes() {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    (hash % BUCKETS as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cosine(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn features_are_unit_length_case_and_space_insensitive() {
        let features = char_ngrams("Remove the  RAIN");
        assert!((features.iter().map(|v| v * v).sum::<f32>() - 1.0).abs() < 1e-6);
        assert_eq!(features, char_ngrams("remove the rain"));
        assert!(char_ngrams("").iter().all(|&v| v == 0.0));
    }

    #[test]
    fn typos_stay_close_and_other_words_do_not() {
        let clean = char_ngrams("remove the noise");
        assert!(cosine(&clean, &char_ngrams("remove the nois")) > 0.8);
        assert!(cosine(&clean, &char_ngrams("brighten it up")) < 0.2);
    }

    #[test]
    fn buckets_are_stable() {
        // FNV-1a 64 of the UTF-8 bytes mod 2048, as Python computes it:
        // h = 0xcbf29ce484222325; for b in s.encode(): h = ((h ^ b) * 0x100000001b3) % 2**64
        // A change of hash would silently invalidate trained heads.
        assert_eq!(bucket(&[' ', 'r', 'a']), 898);
        assert_eq!(bucket(&['雨', 'を', '消']), 156);
    }
}

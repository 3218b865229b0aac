//! Hashed n-grams: features that need no vocabulary. Character 3- and 4-grams of the
//! lower-cased text with word boundaries marked are typo-robust; word unigrams and bigrams keep
//! word order ("make it rain" against "remove the rain"); CJK characters and character pairs are
//! the words of scripts written without spaces (雨 rain, 去雾 dehaze, 暗すぎる too dark), which
//! 3/4-grams padded with spaces miss. All are hashed into fixed buckets.

/// Number of character n-gram buckets.
pub const BUCKETS: usize = 2048;
/// Number of word n-gram buckets.
pub const WORD_BUCKETS: usize = 1024;
/// Number of CJK character n-gram buckets.
pub const CJK_BUCKETS: usize = 512;
/// Length of [`ngram_features`].
pub const NGRAM_FEATURES: usize = BUCKETS + WORD_BUCKETS + CJK_BUCKETS;
const SIZES: [usize; 2] = [3, 4];

/// Character n-grams, then word n-grams, then CJK character n-grams.
pub fn ngram_features(text: &str) -> Vec<f32> {
    let mut features = char_ngrams(text);
    features.extend(word_ngrams(text));
    features.extend(cjk_ngrams(text));
    features
}

/// L2-normalised bucket counts of the CJK characters of `text` and of its pairs of adjacent CJK
/// characters; all zeros for a text without CJK.
pub fn cjk_ngrams(text: &str) -> Vec<f32> {
    let chars: Vec<char> = text.chars().collect();
    let mut counts = vec![0f32; CJK_BUCKETS];
    for (index, &character) in chars.iter().enumerate().filter(|&(_, &character)| is_cjk(character)) {
        counts[bucket(&[character], CJK_BUCKETS)] += 1.0;
        if let Some(&next) = chars.get(index + 1).filter(|&&next| is_cjk(next)) {
            counts[bucket(&[character, next], CJK_BUCKETS)] += 1.0;
        }
    }
    unit_length(counts)
}

/// Han ideographs, hiragana, katakana and hangul syllables.
fn is_cjk(character: char) -> bool {
    matches!(character, '\u{3040}'..='\u{30ff}' | '\u{3400}'..='\u{4dbf}' | '\u{4e00}'..='\u{9fff}' | '\u{ac00}'..='\u{d7af}')
}

/// L2-normalised bucket counts of the words and word pairs of `text` (lower-cased, split at
/// anything but letters, digits and apostrophes, and at CJK characters, which [`cjk_ngrams`]
/// reads); all zeros for a text without words.
pub fn word_ngrams(text: &str) -> Vec<f32> {
    let lower = text.to_lowercase();
    let words: Vec<Vec<char>> = lower
        .split(|character: char| is_cjk(character) || !(character.is_alphanumeric() || character == '\''))
        .filter(|word| !word.is_empty())
        .map(|word| word.chars().collect())
        .collect();
    let mut counts = vec![0f32; WORD_BUCKETS];
    for word in &words {
        counts[bucket(word, WORD_BUCKETS)] += 1.0;
    }
    for pair in words.windows(2) {
        let joined: Vec<char> = pair[0].iter().chain(&[' ']).chain(&pair[1]).copied().collect();
        counts[bucket(&joined, WORD_BUCKETS)] += 1.0;
    }
    unit_length(counts)
}

fn unit_length(mut counts: Vec<f32>) -> Vec<f32> {
    let norm = counts.iter().map(|count| count * count).sum::<f32>().sqrt();
    if norm > 0.0 {
        counts.iter_mut().for_each(|count| *count /= norm);
    }
    counts
}

/// L2-normalised bucket counts of the character 3- and 4-grams of `text`, CJK characters read as
/// spaces (a CJK sentence's 3-grams would only add hash collisions with other words); all zeros
/// when the text has no n-gram.
pub fn char_ngrams(text: &str) -> Vec<f32> {
    let spaced: String = text.to_lowercase().chars().map(|character| if is_cjk(character) { ' ' } else { character }).collect();
    let normalised = spaced.split_whitespace().collect::<Vec<_>>().join(" ");
    let chars: Vec<char> = format!(" {normalised} ").chars().collect();
    let mut counts = vec![0f32; BUCKETS];
    for size in SIZES {
        for window in chars.windows(size) {
            counts[bucket(window, BUCKETS)] += 1.0;
        }
    }
    unit_length(counts)
}

/// FNV-1a of the n-gram's UTF-8 bytes, modulo `buckets`: stable across platforms and releases.
fn bucket(gram: &[char], buckets: usize) -> usize {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut buffer = [0u8; 4];
    for character in gram {
        for byte in character.encode_utf8(&mut buffer).bytes() {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    (hash % buckets as u64) as usize
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
    fn word_pairs_keep_the_order_that_changes_the_meaning() {
        let remove = word_ngrams("remove the rain!");
        assert!((remove.iter().map(|v| v * v).sum::<f32>() - 1.0).abs() < 1e-6);
        assert_eq!(remove, word_ngrams("Remove  the RAIN"), "case and punctuation are ignored");
        assert!(word_ngrams("...").iter().all(|&v| v == 0.0));
        let (rain_it_make, make_it_rain) = (word_ngrams("rain it make"), word_ngrams("make it rain"));
        assert!(cosine(&rain_it_make, &make_it_rain) < 0.99, "same words, other pairs");
        assert_eq!(ngram_features("make it rain").len(), NGRAM_FEATURES);
    }

    #[test]
    fn cjk_characters_and_pairs_are_features_of_their_own() {
        assert!(cjk_ngrams("remove the rain").iter().all(|&v| v == 0.0));
        assert!(char_ngrams("去雨").iter().chain(&word_ngrams("去雨")).all(|&v| v == 0.0), "left to the CJK block");
        let rain = cjk_ngrams("去雨");
        assert!((rain.iter().map(|v| v * v).sum::<f32>() - 1.0).abs() < 1e-6);
        assert_eq!(rain.iter().filter(|&&v| v > 0.0).count(), 3, "two characters and one pair");
        assert!(cosine(&cjk_ngrams("雨太大了"), &rain) > 0.0, "the rain character is shared");
        assert_eq!(cosine(&cjk_ngrams("雪"), &cjk_ngrams("雨")), 0.0);
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
        assert_eq!(bucket(&[' ', 'r', 'a'], BUCKETS), 898);
        assert_eq!(bucket(&['雨', 'を', '消'], BUCKETS), 156);
    }
}

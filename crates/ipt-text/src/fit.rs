//! Fitting a router on a corpus: typo augmentation, the head, and the rejection threshold
//! chosen by cross-validation on the training split (never on held-out sentences).

use burn::tensor::Device;
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};

use crate::corpus::{Example, Label};
use crate::encoder::SentenceEncoder;
use crate::head_training::{HeadTraining, train_head};
use crate::intent::Intent;
use crate::router::Router;
use crate::tokenizer::WordPiece;

/// How a router is fitted.
#[derive(Clone, Debug)]
pub struct Fitting {
    /// The head's training.
    pub head: HeadTraining,
    /// Typo-ridden copies added per training sentence.
    pub typo_copies: usize,
    /// Folds of the cross-validation that sets the threshold.
    pub folds: usize,
    /// Share of in-domain (restoration) sentences the threshold accepts in cross-validation.
    pub acceptance: f32,
}

impl Default for Fitting {
    fn default() -> Self {
        Self { head: HeadTraining::default(), typo_copies: 2, folds: 5, acceptance: 0.95 }
    }
}

/// Fits a router on `examples`: the threshold accepts `acceptance` of the in-domain sentences
/// in `folds`-fold cross-validation, then the head is trained on every example. Returns the
/// cross-validation figures too.
pub fn fit_router(encoder: SentenceEncoder, examples: &[Example], fitting: &Fitting, device: &Device) -> (Router, CrossValidation) {
    let tokenizer = WordPiece::minilm();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(fitting.head.seed);
    let mut owner = Vec::new();
    let mut texts = Vec::new();
    for (index, example) in examples.iter().enumerate() {
        for copy in 0..=fitting.typo_copies {
            owner.push(index);
            texts.push(if copy == 0 { example.text.clone() } else { with_typos(&example.text, &mut rng) });
        }
    }
    let borrowed: Vec<&str> = texts.iter().map(String::as_str).collect();
    let features = encoder.features(&tokenizer, &borrowed);
    let targets: Vec<[f32; 7]> = owner.iter().map(|&index| examples[index].label.target()).collect();

    let fold_of = |index: usize| index % fitting.folds;
    let (mut in_domain, mut none) = (Vec::new(), Vec::new());
    let (mut correct, mut singles) = (0usize, 0usize);
    let mut mistakes = Vec::new();
    let mut none_scores = Vec::new();
    for fold in 0..fitting.folds {
        let train: Vec<usize> = (0..owner.len()).filter(|&row| fold_of(owner[row]) != fold).collect();
        let head = train_head(&pick(&features, &train), &pick(&targets, &train), &fitting.head, device);
        let held: Vec<usize> = (0..examples.len()).filter(|&index| fold_of(index) == fold).collect();
        let held_features: Vec<Vec<f32>> = held.iter().map(|&index| features[index * (fitting.typo_copies + 1)].clone()).collect();
        for (&index, probabilities) in held.iter().zip(head.probabilities(&held_features, device)) {
            let restoration = 1.0 - probabilities[Intent::None.index()];
            let best = (0..7).max_by(|&a, &b| probabilities[a].total_cmp(&probabilities[b])).expect("seven intents");
            match examples[index].label {
                Label::Single(Intent::None) => {
                    none.push(restoration);
                    let task = (0..6).max_by(|&a, &b| probabilities[a].total_cmp(&probabilities[b])).expect("six tasks");
                    none_scores.push((index, restoration, Intent::ALL[task]));
                }
                _ => in_domain.push(restoration),
            }
            if let Label::Single(intent) = examples[index].label {
                correct += usize::from(best == intent.index());
                singles += 1;
                if best != intent.index() {
                    mistakes.push(Mistake { example: index, predicted: Intent::ALL[best] });
                }
            }
        }
    }
    let threshold = quantile(&mut in_domain, 1.0 - fitting.acceptance);
    let accepted_none: Vec<Mistake> = none_scores
        .iter()
        .filter(|&&(index, score, _)| score >= threshold && !mistakes.iter().any(|mistake| mistake.example == index))
        .map(|&(example, _, predicted)| Mistake { example, predicted })
        .collect();
    mistakes.extend(accepted_none);
    mistakes.sort_by_key(|mistake| mistake.example);
    let validation = CrossValidation {
        mistakes,
        accuracy: correct as f32 / singles.max(1) as f32,
        none_rejection: none.iter().filter(|&&score| score < threshold).count() as f32 / none.len().max(1) as f32,
        threshold,
    };
    let head = train_head(&features, &targets, &fitting.head, device);
    (Router::new(encoder, head, threshold, device), validation)
}

/// What cross-validation on the training split measured while fitting (the only figures
/// settings may be chosen on).
#[derive(Clone, Debug, PartialEq)]
pub struct CrossValidation {
    /// Held-back training sentences routed wrongly: misclassified single-intent requests, and
    /// `none` sentences the threshold accepts (the corpus's weak spots, to write more for).
    pub mistakes: Vec<Mistake>,
    /// Accuracy on single-intent sentences of the held-back folds.
    pub accuracy: f32,
    /// Share of held-back `none` sentences below the threshold.
    pub none_rejection: f32,
    /// The threshold accepting `acceptance` of held-back restoration requests.
    pub threshold: f32,
}

/// One training sentence that cross-validation routed wrongly.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Mistake {
    /// Index into the examples given to [`fit_router`].
    pub example: usize,
    /// What the held-back head chose (for an accepted `none` sentence: its most likely task).
    pub predicted: Intent,
}

fn pick<T: Clone>(values: &[T], rows: &[usize]) -> Vec<T> {
    rows.iter().map(|&row| values[row].clone()).collect()
}

/// The `q` quantile (lower) of `values`.
pub fn quantile(values: &mut [f32], q: f32) -> f32 {
    values.sort_by(f32::total_cmp);
    values.get(((values.len() as f32 * q).floor() as usize).min(values.len().saturating_sub(1))).copied().unwrap_or(0.5)
}

/// A copy of `text` with keyboard-style typos: each letter is, with small probability,
/// dropped, doubled, swapped with the next or replaced by a neighbouring letter.
pub fn with_typos(text: &str, rng: &mut Xoshiro256PlusPlus) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    let mut index = 0;
    while index < chars.len() {
        if chars[index].is_ascii_alphabetic() && rng.random::<f32>() < 0.05 {
            match rng.random_range(0..4) {
                0 => {
                    chars.remove(index);
                    continue;
                }
                1 => chars.insert(index, chars[index]),
                2 if index + 1 < chars.len() => chars.swap(index, index + 1),
                _ => chars[index] = neighbour(chars[index]),
            }
        }
        index += 1;
    }
    chars.into_iter().collect()
}

/// The next letter on the same QWERTY row (wrapping), keeping case.
fn neighbour(letter: char) -> char {
    const ROWS: [&str; 3] = ["qwertyuiop", "asdfghjkl", "zxcvbnm"];
    let lower = letter.to_ascii_lowercase();
    let replaced =
        ROWS.iter().find_map(|row| row.find(lower).map(|position| row.as_bytes()[(position + 1) % row.len()] as char)).unwrap_or(lower);
    if letter.is_ascii_uppercase() { replaced.to_ascii_uppercase() } else { replaced }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_change_little_and_are_seeded() {
        let text = "please remove the noise from this photo";
        let mut first = Xoshiro256PlusPlus::seed_from_u64(3);
        let mut second = Xoshiro256PlusPlus::seed_from_u64(3);
        let copies: Vec<String> = (0..20).map(|_| with_typos(text, &mut first)).collect();
        assert_eq!(copies, (0..20).map(|_| with_typos(text, &mut second)).collect::<Vec<_>>());
        assert!(copies.iter().any(|copy| copy != text));
        assert!(copies.iter().all(|copy| copy.len().abs_diff(text.len()) <= 6));
        assert_eq!(neighbour('p'), 'q');
        assert_eq!(neighbour('A'), 'S');
    }

    #[test]
    fn quantiles_pick_the_lower_value() {
        assert_eq!(quantile(&mut [0.9, 0.1, 0.5, 0.7], 0.25), 0.5);
        assert_eq!(quantile(&mut [0.9, 0.1, 0.5, 0.7], 0.0), 0.1);
        assert_eq!(quantile(&mut [], 0.05), 0.5);
    }
}

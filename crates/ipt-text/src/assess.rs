//! Scoring a router on a corpus split: accuracy, confusion matrix, compound requests, and how
//! many `none` requests are rejected when 95% of the restoration requests are accepted.

use std::fmt::Write as _;

use ipt_core::Task;

use crate::corpus::{Example, Label};
use crate::fit::quantile;
use crate::intent::Intent;
use crate::router::{Decision, Router};

/// In-domain acceptance at which `none` rejection is reported.
pub const ACCEPTANCE: f32 = 0.95;

/// How a router did on a split.
#[derive(Clone, Debug)]
pub struct TextScores {
    /// The encoder's name.
    pub encoder: String,
    /// Share of single-intent sentences (the six tasks and `none`) whose top intent is right.
    pub accuracy: f32,
    /// Per intent: (correct, total).
    pub per_intent: Vec<(Intent, usize, usize)>,
    /// `confusion[truth][predicted]` over single-intent sentences, [`Intent::ALL`] order.
    pub confusion: [[usize; 7]; 7],
    /// Share of compound requests whose two best tasks are the two named.
    pub compound_accuracy: f32,
    /// Compound requests scored.
    pub compound_total: usize,
    /// Share of `none` sentences below the threshold that accepts 95% of restoration requests.
    pub none_rejection: f32,
    /// That threshold (on the restoration probability), measured on this split.
    pub threshold_at_acceptance: f32,
    /// The router's own threshold (set by cross-validation on the training split).
    pub threshold: f32,
    /// With the router's own decisions: share of restoration requests restored.
    pub accepted: f32,
    /// With the router's own decisions: share of `none` requests left unchanged.
    pub rejected: f32,
}

/// Scores `router` on `examples`.
pub fn assess(router: &Router, examples: &[Example]) -> TextScores {
    let texts: Vec<&str> = examples.iter().map(|example| example.text.as_str()).collect();
    let routings = router.route_all(&texts);
    let mut confusion = [[0usize; 7]; 7];
    let (mut compound_right, mut compound_total) = (0, 0);
    let (mut in_domain, mut none_scores) = (Vec::new(), Vec::new());
    let (mut accepted, mut rejected) = (0usize, 0usize);
    for (example, routing) in examples.iter().zip(&routings) {
        let restored = matches!(routing.decision, Decision::Restore(_));
        match example.label {
            Label::Single(Intent::None) => {
                none_scores.push(routing.restoration_probability());
                rejected += usize::from(!restored);
            }
            _ => {
                in_domain.push(routing.restoration_probability());
                accepted += usize::from(restored);
            }
        }
        match example.label {
            Label::Single(intent) => confusion[intent.index()][routing.top_intent().index()] += 1,
            Label::Compound(first, second) => {
                compound_total += 1;
                let [(a, _), (b, _)] = routing.top_tasks();
                let named = |task: Task| task == first || task == second;
                compound_right += usize::from(named(a) && named(b) && routing.top_intent() != Intent::None);
            }
        }
    }
    let per_intent: Vec<(Intent, usize, usize)> = Intent::ALL
        .iter()
        .map(|&intent| (intent, confusion[intent.index()][intent.index()], confusion[intent.index()].iter().sum()))
        .collect();
    let singles: usize = per_intent.iter().map(|(_, _, total)| total).sum();
    let correct: usize = per_intent.iter().map(|(_, right, _)| right).sum();
    let in_domain_total = in_domain.len();
    let threshold_at_acceptance = quantile(&mut in_domain, 1.0 - ACCEPTANCE);
    let share = |count: usize, total: usize| if total == 0 { 0.0 } else { count as f32 / total as f32 };
    TextScores {
        encoder: router.encoder().name().into(),
        accuracy: share(correct, singles),
        per_intent,
        confusion,
        compound_accuracy: share(compound_right, compound_total),
        compound_total,
        none_rejection: share(none_scores.iter().filter(|&&score| score < threshold_at_acceptance).count(), none_scores.len()),
        threshold_at_acceptance,
        threshold: router.threshold,
        accepted: share(accepted, in_domain_total),
        rejected: share(rejected, none_scores.len()),
    }
}

impl TextScores {
    /// A Markdown summary with the confusion matrix.
    pub fn markdown(&self) -> String {
        let mut text = format!(
            "Encoder `{}`: accuracy {:.1}% (six tasks + none), compound {:.1}% of {}; `none` rejected at {:.0}% in-domain acceptance: {:.1}% (threshold {:.3}); with the router's own threshold {:.3}: {:.1}% of restoration requests restored, {:.1}% of `none` requests left unchanged.\n\n",
            self.encoder,
            100.0 * self.accuracy,
            100.0 * self.compound_accuracy,
            self.compound_total,
            100.0 * ACCEPTANCE,
            100.0 * self.none_rejection,
            self.threshold_at_acceptance,
            self.threshold,
            100.0 * self.accepted,
            100.0 * self.rejected,
        );
        let names: Vec<&str> = Intent::ALL.iter().map(|intent| intent.name()).collect();
        let _ = writeln!(text, "| truth \\ predicted | {} | accuracy |", names.join(" | "));
        let _ = writeln!(text, "|---|{}---|", "---|".repeat(7));
        for (row, (intent, right, total)) in self.per_intent.iter().enumerate() {
            let cells: Vec<String> = self.confusion[row].iter().map(usize::to_string).collect();
            let _ = writeln!(text, "| {intent} | {} | {:.1}% |", cells.join(" | "), 100.0 * *right as f32 / (*total).max(1) as f32);
        }
        text
    }
}

//! What the recogniser scores: each degradation and "clean".

use ipt_core::Task;

/// One output of the recogniser.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Class {
    /// The photo has the degradation this task removes.
    Degraded(Task),
    /// The photo has none of them.
    Clean,
}

impl Class {
    /// Every class, in the network's output order: the tasks in [`Task::ALL`] order, then clean.
    pub const ALL: [Class; 7] = [
        Class::Degraded(Task::Denoise),
        Class::Degraded(Task::Deblur),
        Class::Degraded(Task::Derain),
        Class::Degraded(Task::Dehaze),
        Class::Degraded(Task::Desnow),
        Class::Degraded(Task::LowLight),
        Class::Clean,
    ];

    /// The class's name: the task's, or `clean`.
    pub fn name(self) -> &'static str {
        match self {
            Class::Degraded(task) => task.name(),
            Class::Clean => "clean",
        }
    }

    /// The network output index of this class.
    pub fn index(self) -> usize {
        Class::ALL.iter().position(|class| *class == self).expect("every class is in ALL")
    }
}

/// Above this probability a degradation counts as present.
pub const PRESENT: f32 = 0.5;

/// Below this probability a degradation counts as absent: a request is doubted
/// ([`Recognition::doubt`]) only when its degradations are all below it, and a photo is judged
/// clean ([`Recognition::is_clean`]) only when every degradation is.
pub const ABSENT: f32 = 0.2;

/// Above this probability a second degradation is removed too by blind restoration. Higher than
/// [`PRESENT`]: removing a degradation the photo does not have costs more than leaving one in
/// (a bundled rainy sample, whose out-of-focus background also looked 75% blurred, lost 3 dB
/// to the added deblurring), so only a clearly seen second one is acted on.
pub const SECOND_PRESENT: f32 = 0.9;

/// The recogniser's verdict on one photo: a probability per class, each on its own.
#[derive(Clone, Debug, PartialEq)]
pub struct Recognition {
    /// Probabilities in [`Class::ALL`] order.
    pub probabilities: [f32; 7],
}

impl Recognition {
    /// The probability of `class`.
    pub fn probability(&self, class: Class) -> f32 {
        self.probabilities[class.index()]
    }

    /// The degradations above [`PRESENT`], most likely first; empty for a clean photo.
    pub fn present(&self) -> Vec<(Task, f32)> {
        let mut present: Vec<(Task, f32)> =
            Task::ALL.iter().map(|&task| (task, self.probability(Class::Degraded(task)))).filter(|(_, p)| *p > PRESENT).collect();
        present.sort_by(|a, b| b.1.total_cmp(&a.1));
        present
    }

    /// Whether the photo looks clean: "clean" is more likely than every degradation, and every
    /// degradation is below [`ABSENT`]. The second condition was chosen on examples of the
    /// validation photos (`cargo xtask eval-recogniser --validation --restore 2000`): a photo
    /// left unrestored loses far more than a clean one restored for nothing (hazy examples
    /// judged clean cost their task 0.37 dB on average, 0.08 dB with it), and the clean-vs-
    /// degraded verdict stays as often right (95.9% of 6,000 examples either way).
    pub fn is_clean(&self) -> bool {
        let clean = self.probability(Class::Clean);
        Task::ALL.iter().all(|&task| {
            let degraded = self.probability(Class::Degraded(task));
            degraded < clean && degraded < ABSENT
        })
    }

    /// What blind restoration removes: nothing from a clean photo; otherwise the most likely
    /// degradation, and the second most likely when it is above [`SECOND_PRESENT`] (the
    /// recogniser is trained on photos with up to two).
    pub fn blind_tasks(&self) -> Vec<Task> {
        if self.is_clean() { Vec::new() } else { self.degraded_tasks() }
    }

    /// What blind restoration removes when the photo is not judged clean: the most likely
    /// degradation, and the second most likely when it is above [`SECOND_PRESENT`].
    pub fn degraded_tasks(&self) -> Vec<Task> {
        let present = self.present();
        if let [(first, _), rest @ ..] = present.as_slice() {
            let second = rest.first().filter(|(_, probability)| *probability > SECOND_PRESENT).map(|(task, _)| *task);
            return std::iter::once(*first).chain(second).collect();
        }
        let likeliest =
            Task::ALL.into_iter().max_by(|a, b| self.probability(Class::Degraded(*a)).total_cmp(&self.probability(Class::Degraded(*b))));
        likeliest.into_iter().collect()
    }

    /// What blind restoration removes, with probabilities: "seems to have noise (87%) and low
    /// light (62%)", or "seems clean (90%)".
    pub fn summary(&self) -> String {
        let tasks = self.blind_tasks();
        if tasks.is_empty() {
            return format!("seems clean ({})", percent(self.probability(Class::Clean)));
        }
        let found: Vec<(Task, f32)> = tasks.iter().map(|&task| (task, self.probability(Class::Degraded(task)))).collect();
        format!("seems to have {}", degradations(&found, " and "))
    }

    /// Why restoring `requested` does not fit this photo, or `None` when it may: every requested
    /// degradation is below [`ABSENT`] while the photo looks clean or has another one above
    /// [`PRESENT`].
    pub fn doubt(&self, requested: &[Task]) -> Option<Doubt> {
        if requested.is_empty() || requested.iter().any(|&task| self.probability(Class::Degraded(task)) >= ABSENT) {
            return None;
        }
        let seen = self.present();
        if seen.is_empty() && !self.is_clean() {
            return None;
        }
        Some(Doubt {
            requested: requested.iter().map(|&task| (task, self.probability(Class::Degraded(task)))).collect(),
            seen,
            clean: self.probability(Class::Clean),
        })
    }
}

/// A request that contradicts what the recogniser sees in the photo ([`Recognition::doubt`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Doubt {
    /// The requested tasks, each with the probability that the photo has its degradation.
    pub requested: Vec<(Task, f32)>,
    /// What the photo seems to have instead (above [`PRESENT`], most likely first); empty when
    /// it looks clean.
    pub seen: Vec<(Task, f32)>,
    /// The probability that the photo is clean.
    pub clean: f32,
}

impl std::fmt::Display for Doubt {
    /// "asked to derain, but the photo shows no rain (3%); it seems to have noise (87%)".
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let asked: Vec<&str> = self.requested.iter().map(|(task, _)| task.name()).collect();
        write!(f, "asked to {}, but the photo shows no {}", asked.join(" and "), degradations(&self.requested, " or "))?;
        if self.seen.is_empty() {
            write!(f, "; it seems clean ({})", percent(self.clean))
        } else {
            write!(f, "; it seems to have {}", degradations(&self.seen, " and "))
        }
    }
}

/// A probability as a whole percentage: "87%".
fn percent(probability: f32) -> String {
    format!("{:.0}%", 100.0 * probability)
}

/// Degradations with their probabilities, joined by `separator`: "noise (87%) and rain (60%)".
fn degradations(found: &[(Task, f32)], separator: &str) -> String {
    let named: Vec<String> =
        found.iter().map(|(task, probability)| format!("{} ({})", task.degradation(), percent(*probability))).collect();
    named.join(separator)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn present_degradations_are_sorted_and_clean_wins_only_over_all() {
        let recognition = Recognition { probabilities: [0.9, 0.1, 0.6, 0.2, 0.0, 0.7, 0.3] };
        assert_eq!(recognition.present(), [(Task::Denoise, 0.9), (Task::LowLight, 0.7), (Task::Derain, 0.6)]);
        assert!(!recognition.is_clean());
        let clean = Recognition { probabilities: [0.1, 0.1, 0.0, 0.15, 0.0, 0.1, 0.8] };
        assert!(clean.is_clean() && clean.present().is_empty());
        // Clean is the likeliest, but haze may be there: not clean.
        let maybe_hazy = Recognition { probabilities: [0.1, 0.1, 0.0, 0.25, 0.0, 0.1, 0.8] };
        assert!(!maybe_hazy.is_clean());
        assert_eq!(maybe_hazy.blind_tasks(), [Task::Dehaze]);
        assert_eq!(Class::Clean.index(), 6);
        assert_eq!(Class::Degraded(Task::Dehaze).name(), "dehaze");
    }

    #[test]
    fn blind_restoration_removes_the_likeliest_and_a_clear_second_or_the_likeliest_alone() {
        let three = Recognition { probabilities: [0.97, 0.1, 0.6, 0.2, 0.0, 0.95, 0.3] };
        assert_eq!(three.blind_tasks(), [Task::Denoise, Task::LowLight]);
        let unclear_second = Recognition { probabilities: [0.97, 0.1, 0.6, 0.2, 0.0, 0.85, 0.3] };
        assert_eq!(unclear_second.blind_tasks(), [Task::Denoise]);
        let faint = Recognition { probabilities: [0.1, 0.4, 0.2, 0.0, 0.0, 0.0, 0.3] };
        assert_eq!(faint.blind_tasks(), [Task::Deblur]);
        let clean = Recognition { probabilities: [0.1, 0.1, 0.0, 0.15, 0.0, 0.1, 0.8] };
        assert!(clean.blind_tasks().is_empty());
        assert_eq!(three.summary(), "seems to have noise (97%) and low light (95%)");
        assert_eq!(faint.summary(), "seems to have blur (40%)");
        assert_eq!(clean.summary(), "seems clean (80%)");
    }

    #[test]
    fn a_request_is_doubted_only_when_its_degradation_is_absent_and_something_else_is_seen() {
        let noisy = Recognition { probabilities: [0.87, 0.1, 0.03, 0.0, 0.1, 0.0, 0.05] };
        let doubt = noisy.doubt(&[Task::Derain]).expect("rain absent, noise present");
        assert_eq!(doubt.to_string(), "asked to derain, but the photo shows no rain (3%); it seems to have noise (87%)");
        assert_eq!(noisy.doubt(&[Task::Denoise]), None);
        // One requested degradation that may be there is enough to go ahead.
        assert_eq!(noisy.doubt(&[Task::Derain, Task::Denoise]), None);
        assert_eq!(noisy.doubt(&[Task::Derain, Task::Desnow]).map(|doubt| doubt.requested.len()), Some(2));
        let clean = Recognition { probabilities: [0.05, 0.1, 0.0, 0.0, 0.0, 0.0, 0.9] };
        assert_eq!(
            clean.doubt(&[Task::Dehaze]).unwrap().to_string(),
            "asked to dehaze, but the photo shows no haze (0%); it seems clean (90%)"
        );
        // Unsure about everything: no doubt is raised.
        let unsure = Recognition { probabilities: [0.15, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1] };
        assert_eq!(unsure.doubt(&[Task::Derain]), None);
        assert_eq!(noisy.doubt(&[]), None);
    }
}

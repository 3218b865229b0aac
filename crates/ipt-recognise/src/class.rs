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

    /// Whether the photo looks clean: "clean" is more likely than every degradation.
    pub fn is_clean(&self) -> bool {
        let clean = self.probability(Class::Clean);
        Task::ALL.iter().all(|&task| self.probability(Class::Degraded(task)) < clean)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn present_degradations_are_sorted_and_clean_wins_only_over_all() {
        let recognition = Recognition { probabilities: [0.9, 0.1, 0.6, 0.2, 0.0, 0.7, 0.3] };
        assert_eq!(recognition.present(), [(Task::Denoise, 0.9), (Task::LowLight, 0.7), (Task::Derain, 0.6)]);
        assert!(!recognition.is_clean());
        let clean = Recognition { probabilities: [0.1, 0.1, 0.0, 0.2, 0.0, 0.1, 0.8] };
        assert!(clean.is_clean() && clean.present().is_empty());
        assert_eq!(Class::Clean.index(), 6);
        assert_eq!(Class::Degraded(Task::Dehaze).name(), "dehaze");
    }
}

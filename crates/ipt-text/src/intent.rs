//! What a request asks for: one of the restoration tasks, or nothing restorable.

use std::fmt;

use ipt_core::Task;

/// The classes the router tells apart: a task, or `None` for requests that are not a
/// restoration (other edits, effects that add a degradation, chit-chat, prompt injections).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Intent {
    /// Restore with this task.
    Restore(Task),
    /// Leave the image untouched.
    None,
}

impl Intent {
    /// Every intent, in the order of the router's output columns: the tasks, then `None`.
    pub const ALL: [Intent; 7] = [
        Intent::Restore(Task::Denoise),
        Intent::Restore(Task::Deblur),
        Intent::Restore(Task::Derain),
        Intent::Restore(Task::Dehaze),
        Intent::Restore(Task::Desnow),
        Intent::Restore(Task::LowLight),
        Intent::None,
    ];

    /// The column of this intent in [`Intent::ALL`].
    pub fn index(self) -> usize {
        Intent::ALL.iter().position(|&intent| intent == self).expect("ALL lists every intent")
    }

    /// The corpus file stem of this intent (`denoise`, ..., `low_light`, `none`).
    pub fn name(self) -> &'static str {
        match self {
            Intent::Restore(task) => task.name(),
            Intent::None => "none",
        }
    }

    /// The intent named `name` (as [`Intent::name`] writes it).
    pub fn from_name(name: &str) -> Option<Intent> {
        Intent::ALL.into_iter().find(|intent| intent.name() == name)
    }
}

impl fmt::Display for Intent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_tasks_come_first() {
        for (index, intent) in Intent::ALL.into_iter().enumerate() {
            assert_eq!(Intent::from_name(intent.name()), Some(intent));
            assert_eq!(intent.index(), index);
        }
        assert_eq!(Intent::ALL.len(), Task::ALL.len() + 1);
        assert_eq!(Intent::from_name("sharpen"), None);
    }
}

//! The restoration tasks an all-in-one model can be asked for.

use serde::{Deserialize, Serialize};

/// One kind of degradation the model removes.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    /// Additive Gaussian noise (CBSD68, Kodak24, McMaster).
    Denoise,
    /// Camera-motion and defocus blur (GoPro).
    Deblur,
    /// Rain streaks (Rain100L).
    Derain,
    /// Haze (SOTS).
    Dehaze,
    /// Snow (CSD, Snow100K).
    Desnow,
    /// Under-exposure and its noise (LOL).
    LowLight,
}

impl Task {
    /// Every task, in the canonical order used for task indices.
    pub const ALL: [Task; 6] = [Task::Denoise, Task::Deblur, Task::Derain, Task::Dehaze, Task::Desnow, Task::LowLight];

    /// The task's name on the command line and in weight files.
    pub fn name(self) -> &'static str {
        match self {
            Task::Denoise => "denoise",
            Task::Deblur => "deblur",
            Task::Derain => "derain",
            Task::Dehaze => "dehaze",
            Task::Desnow => "desnow",
            Task::LowLight => "low_light",
        }
    }

    /// The degradation the task removes, as messages name it ("noise", "low light").
    pub fn degradation(self) -> &'static str {
        match self {
            Task::Denoise => "noise",
            Task::Deblur => "blur",
            Task::Derain => "rain",
            Task::Dehaze => "haze",
            Task::Desnow => "snow",
            Task::LowLight => "low light",
        }
    }

    /// The names of `tasks`, comma-separated, for messages.
    pub fn list(tasks: &[Task]) -> String {
        tasks.iter().map(|task| task.name()).collect::<Vec<_>>().join(", ")
    }
}

impl std::fmt::Display for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Task {
    type Err = String;

    /// Accepts the canonical names and `low-light` / `lowlight`.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        let normalised = name.trim().to_ascii_lowercase().replace(['-', ' '], "_");
        let normalised = if normalised == "lowlight" { "low_light".to_string() } else { normalised };
        Task::ALL.into_iter().find(|task| task.name() == normalised).ok_or_else(|| {
            let names: Vec<&str> = Task::ALL.iter().map(|task| task.name()).collect();
            format!("unknown task '{name}' (expected one of {})", names.join(", "))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_aliases_parse() {
        for task in Task::ALL {
            assert_eq!(task.name().parse::<Task>().unwrap(), task);
        }
        assert_eq!("Low-Light".parse::<Task>().unwrap(), Task::LowLight);
        let error = "sharpen".parse::<Task>().unwrap_err();
        assert!(error.contains("sharpen") && error.contains("denoise"), "{error}");
        assert_eq!(Task::list(&[Task::Denoise, Task::LowLight]), "denoise, low_light");
        assert_eq!(Task::list(&[]), "");
    }
}

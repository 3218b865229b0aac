//! Errors of the model's configuration and task operations.

use crate::Task;

/// Why a model could not be configured or a task operation could not be done.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelError {
    /// A configuration value is out of range or inconsistent.
    #[error("{key}: {problem}")]
    InvalidConfig {
        /// The offending key (e.g. `heads[2]`, `targets`, `pip: tokens`).
        key: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The model has no task bias or conditioning column for the task.
    #[error("{operation}: the model is not conditioned on '{task}' (its tasks: {})", Task::list(known))]
    TaskNotConditioned {
        /// What was attempted.
        operation: &'static str,
        /// The requested task.
        task: Task,
        /// The tasks the model has.
        known: Vec<Task>,
    },
    /// The operation does not apply to this model's kind of conditioning.
    #[error("{operation}: {reason}")]
    Unsupported {
        /// What was attempted.
        operation: &'static str,
        /// Why this model cannot do it.
        reason: String,
    },
}

impl ModelError {
    /// An [`ModelError::InvalidConfig`] for `key`.
    pub(crate) fn invalid(key: impl Into<String>, problem: impl Into<String>) -> Self {
        Self::InvalidConfig { key: key.into(), problem: problem.into() }
    }
}

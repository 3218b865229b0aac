//! Mixtures: a task's degradation drawn from several families, each with a weight. Written in a
//! spec as
//!
//! ```toml
//! [tasks.deblur]
//! kind = "mixture"
//! [[tasks.deblur.families]]
//! weight = 2
//! kind = "motion_blur"
//! size = { min = 5, max = 25 }
//! defocus = { min = 0.0, max = 1.0 }
//! [[tasks.deblur.families]]
//! kind = "defocus_blur"
//! radius = { min = 1, max = 6 }
//! ```

use rand::RngExt;
use serde::{Deserialize, Serialize};

use super::Degradation;
use crate::{DataError, DataRng, Result};
use ipt_core::Task;

/// Several degradations of one task; each patch draws one family, with probability
/// proportional to its weight.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Mixture {
    /// The families (at least one, all of the same task, none a mixture itself).
    pub families: Vec<Family>,
}

/// One family of a [`Mixture`].
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Family {
    /// Relative probability of this family (default 1).
    #[serde(default = "unit_weight")]
    pub weight: f32,
    /// The degradation, written inline (`kind = ".."` and its ranges).
    #[serde(flatten)]
    pub degradation: Degradation,
}

fn unit_weight() -> f32 {
    1.0
}

impl Mixture {
    /// The task of the families (the first one's; [`Mixture::check`] checks they agree).
    pub fn task(&self) -> Task {
        self.families.first().map_or(Task::Denoise, |family| family.degradation.task())
    }

    /// Checks that there is a family, that weights are positive and finite, that every family
    /// removes the same task and is not itself a mixture, and each family's ranges.
    pub fn check(&self) -> Result<()> {
        let invalid = |message: String| DataError::Invalid { what: "mixture.families".into(), message };
        let first = self.families.first().ok_or_else(|| invalid("lists no family".into()))?;
        for (index, family) in self.families.iter().enumerate() {
            if !(family.weight.is_finite() && family.weight > 0.0) {
                return Err(invalid(format!("family {index}: weight {} must be positive and finite", family.weight)));
            }
            if matches!(family.degradation, Degradation::Mixture(_)) {
                return Err(invalid(format!("family {index} is a mixture itself")));
            }
            if family.degradation.task() != first.degradation.task() {
                let (task, expected) = (family.degradation.task(), first.degradation.task());
                return Err(invalid(format!("family {index} belongs to task {task}, the first to {expected}")));
            }
            family.degradation.check()?;
        }
        Ok(())
    }

    /// Draws a family by weight.
    pub fn choose(&self, rng: &mut DataRng) -> &Degradation {
        let total: f32 = self.families.iter().map(|family| family.weight).sum();
        let mut draw = rng.random_range(0.0..total.max(f32::MIN_POSITIVE));
        for family in &self.families {
            if draw < family.weight {
                return &family.degradation;
            }
            draw -= family.weight;
        }
        &self.families.last().expect("a checked mixture has a family").degradation
    }
}

//! Task shares that favour lagging tasks (`data.task_sampling = "lagging"`): after each
//! validation, each task's share of the next patches grows as its gain over the degraded
//! inputs shrinks, so a task the model has not learnt yet gets more of the batches.

use std::collections::BTreeMap;

use ipt_model::Task;

/// Temperature of the softmax over negative gains, dB: a task gaining this much less than
/// another gets e (≈ 2.7) times its adaptive share.
const TEMPERATURE_DB: f64 = 2.0;

/// Part of every share that stays uniform, so no task is ever starved.
const UNIFORM_PART: f64 = 0.5;

/// Shares (summing to 1) from the validation PSNR and the inputs' PSNR per task:
/// `UNIFORM_PART / n + (1 - UNIFORM_PART) · softmax(-(validation - input) / TEMPERATURE_DB)`.
/// Tasks missing from `input` count as gaining nothing.
pub fn lagging_shares(validation: &BTreeMap<Task, f64>, input: &BTreeMap<Task, f64>) -> BTreeMap<Task, f64> {
    let gains: BTreeMap<Task, f64> =
        validation.iter().map(|(task, psnr)| (*task, psnr - input.get(task).copied().unwrap_or(*psnr))).collect();
    let lowest = gains.values().copied().fold(f64::INFINITY, f64::min);
    let weights: BTreeMap<Task, f64> = gains.iter().map(|(task, gain)| (*task, (-(gain - lowest) / TEMPERATURE_DB).exp())).collect();
    let total: f64 = weights.values().sum();
    let uniform = UNIFORM_PART / weights.len().max(1) as f64;
    weights.into_iter().map(|(task, weight)| (task, uniform + (1.0 - UNIFORM_PART) * weight / total)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_task_gaining_least_gets_the_largest_share_and_none_is_starved() {
        let input = BTreeMap::from([(Task::Denoise, 20.0), (Task::Deblur, 24.0), (Task::LowLight, 9.0)]);
        let validation = BTreeMap::from([(Task::Denoise, 28.0), (Task::Deblur, 24.0), (Task::LowLight, 21.0)]);
        let shares = lagging_shares(&validation, &input);
        assert!((shares.values().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!(shares[&Task::Deblur] > shares[&Task::Denoise] && shares[&Task::Denoise] > shares[&Task::LowLight]);
        assert!(shares.values().all(|share| *share >= UNIFORM_PART / 3.0));
        // Gains 8, 0 and 12 dB: softmax weights e^-4, 1 and e^-6 of the adaptive half.
        let total = 1.0 + (-4.0f64).exp() + (-6.0f64).exp();
        assert!((shares[&Task::Deblur] - (0.5 / 3.0 + 0.5 / total)).abs() < 1e-12);
    }

    #[test]
    fn equal_gains_give_equal_shares() {
        let input = BTreeMap::from([(Task::Derain, 20.0), (Task::Desnow, 18.0)]);
        let validation = BTreeMap::from([(Task::Derain, 22.0), (Task::Desnow, 20.0)]);
        let shares = lagging_shares(&validation, &input);
        assert!((shares[&Task::Derain] - 0.5).abs() < 1e-12 && (shares[&Task::Desnow] - 0.5).abs() < 1e-12);
    }
}

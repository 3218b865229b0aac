//! Validation: mean PSNR (RGB, float, no border crop, outputs clamped to `[0, 1]`, capped as
//! `ipt_eval` caps it) per task on the fixed validation samples cut from the training folders.

use std::collections::BTreeMap;

use burn::tensor::{Device, Tensor, TensorData};
use ipt_core::psnr_from_mse;
use ipt_data::Sample;
use ipt_model::{IptModel, Task};

/// Samples per forward pass.
const CHUNK: usize = 8;

/// Mean PSNR in dB per task of the degraded inputs themselves (the identity's score), the
/// floor a restorer must beat; the same metric as [`validation_psnr`].
pub fn input_psnr(samples: &[Sample]) -> BTreeMap<Task, f64> {
    let mut by_task: BTreeMap<Task, Vec<f64>> = BTreeMap::new();
    for sample in samples {
        let pairs = sample.degraded.data.iter().zip(&sample.clean.data);
        let mse = pairs.map(|(a, b)| f64::from(a.clamp(0.0, 1.0) - b).powi(2)).sum::<f64>() / sample.clean.data.len().max(1) as f64;
        by_task.entry(sample.task).or_default().push(psnr_from_mse(mse));
    }
    by_task.into_iter().map(|(task, scores)| (task, scores.iter().sum::<f64>() / scores.len() as f64)).collect()
}

/// Mean PSNR in dB per task of `model` on `samples` (all the same size).
pub fn validation_psnr(model: &IptModel, samples: &[Sample], device: &Device) -> BTreeMap<Task, f64> {
    let mut by_task: BTreeMap<Task, Vec<&Sample>> = BTreeMap::new();
    samples.iter().for_each(|sample| by_task.entry(sample.task).or_default().push(sample));
    by_task
        .into_iter()
        .map(|(task, samples)| {
            let mut total = 0.0;
            for chunk in samples.chunks(CHUNK) {
                let (width, height) = (chunk[0].clean.width, chunk[0].clean.height);
                let stack = |pick: fn(&Sample) -> &[f32]| {
                    let data: Vec<f32> = chunk.iter().flat_map(|sample| pick(sample).iter().copied()).collect();
                    Tensor::<4>::from_data(TensorData::new(data, [chunk.len(), 3, height, width]), device)
                };
                let input = stack(|sample| &sample.degraded.data);
                let target = stack(|sample| &sample.clean.data);
                let weights = (!model.tasks().is_empty())
                    .then(|| model.task_weights(&vec![task; chunk.len()], device).expect("validation tasks are the model's tasks"));
                let output = model.forward(input, weights.as_ref()).clamp(0.0, 1.0);
                let mse: Vec<f32> = (output - target)
                    .powi_scalar(2)
                    .reshape([chunk.len() as i32, -1])
                    .mean_dim(1)
                    .to_data()
                    .try_to_vec::<f32>()
                    .expect("f32 read back");
                total += mse.iter().map(|&error| psnr_from_mse(f64::from(error))).sum::<f64>();
            }
            (task, total / samples.len() as f64)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipt_data::Rgb;

    #[test]
    fn input_psnr_scores_the_degraded_inputs_per_task() {
        let clean = Rgb::filled(4, 4, 0.5);
        let offset = |amount: f32| Rgb::filled(4, 4, 0.5 + amount);
        let samples = [
            Sample { task: Task::Denoise, degraded: offset(0.1), clean: clean.clone() },
            Sample { task: Task::Denoise, degraded: offset(0.01), clean: clean.clone() },
            Sample { task: Task::Dehaze, degraded: offset(0.6), clean: clean.clone() },
        ];
        let scores = input_psnr(&samples);
        // 20 dB and 40 dB averaged; the dehaze input is clamped to 1.0 first (an error of 0.5).
        assert!((scores[&Task::Denoise] - 30.0).abs() < 1e-4, "{scores:?}");
        assert!((scores[&Task::Dehaze] - 6.0206).abs() < 1e-3, "{scores:?}");
    }
}

//! AdamW over every parameter of a model at once: the parameters, gradients and moments laid
//! end to end in flat buffers, one run of values per parameter tensor, with per-parameter
//! gradient scales (clipping), step counts (bias correction) and a flag saying whether the
//! parameter takes part in the step.
//!
//! On a GPU the trainer's generic formulation (about twenty whole-buffer ops) is what counts:
//! launches, not bytes. On flex each of those ops reads and writes the whole buffer, and the
//! optimiser phase of a modulated `tiny` step took longer as twenty flat ops than as Burn's
//! per-tensor AdamW (`cargo xtask bench-train`); this kernel does the step in one pass.

use burn::tensor::Tensor;

/// The step's hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamWHyper {
    /// Learning rate.
    pub lr: f32,
    /// First-moment decay.
    pub beta_1: f32,
    /// Second-moment decay.
    pub beta_2: f32,
    /// Added to the corrected second moment's square root.
    pub epsilon: f32,
    /// Decoupled weight decay (multiplied by the learning rate).
    pub weight_decay: f32,
}

/// The flat buffers of one step; `lengths[i]` values of each `[elements]` buffer belong to
/// parameter `i`, and each `[params]` tensor holds one value per parameter.
#[derive(Clone, Copy, Debug)]
pub struct FlatAdamWInputs<'a> {
    /// Parameter values, `[elements]`.
    pub params: &'a Tensor<1>,
    /// Gradients before scaling, `[elements]`.
    pub grads: &'a Tensor<1>,
    /// First moments, `[elements]`.
    pub moment_1: &'a Tensor<1>,
    /// Second moments, `[elements]`.
    pub moment_2: &'a Tensor<1>,
    /// Each parameter's gradient scale (1 unless clipped), `[params]`.
    pub grad_scale: &'a Tensor<1>,
    /// Each parameter's step count including this step, `[params]`.
    pub steps: &'a Tensor<1>,
    /// 1 for parameters that take part, 0 for those left as they are, `[params]`.
    pub update: &'a Tensor<1>,
    /// Values per parameter.
    pub lengths: &'a [usize],
}

/// The updated `[params, moment_1, moment_2]` after one AdamW step (Burn's `AdamW` update,
/// parameter by parameter), when the buffers are flex tensors; `None` otherwise.
pub fn flat_adamw(inputs: &FlatAdamWInputs, hyper: AdamWHyper) -> Option<[Tensor<1>; 3]> {
    #[cfg(feature = "flex")]
    return crate::cpu_backend::on_flex(&cpu::Step { inputs, hyper });
    #[cfg(not(feature = "flex"))]
    {
        let _ = (inputs, hyper);
        None
    }
}

/// The sum of squares of each parameter's run of `values` (`lengths[i]` values each),
/// `[params]`, when `values` is a flex tensor; `None` otherwise.
pub fn sums_of_squares(values: &Tensor<1>, lengths: &[usize]) -> Option<Tensor<1>> {
    #[cfg(feature = "flex")]
    return crate::cpu_backend::on_flex(&cpu::SumsOfSquares { values, lengths });
    #[cfg(not(feature = "flex"))]
    {
        let _ = (values, lengths);
        None
    }
}

/// The host kernels.
#[cfg(feature = "flex")]
mod host {
    use rayon::prelude::*;

    use super::AdamWHyper;

    /// Values per parallel task.
    const CHUNK: usize = 1 << 15;

    /// Per-parameter values of a step, on the host.
    pub(super) struct PerParam<'a> {
        pub grad_scale: &'a [f32],
        pub steps: &'a [f32],
        pub update: &'a [f32],
        pub lengths: &'a [usize],
    }

    /// One AdamW step of the flat buffers `params`, `grads`, `moment_1`, `moment_2`.
    pub(super) fn step([params, grads, moment_1, moment_2]: [&[f32]; 4], per_param: &PerParam, hyper: AdamWHyper) -> [Vec<f32>; 3] {
        let elements = params.len();
        let offsets = starts(per_param.lengths);
        let mut outputs = [vec![0.0f32; elements], vec![0.0f32; elements], vec![0.0f32; elements]];
        let [new_params, new_moment_1, new_moment_2] = &mut outputs;
        let decay = 1.0 - hyper.lr * hyper.weight_decay;
        new_params
            .par_chunks_mut(CHUNK)
            .zip(new_moment_1.par_chunks_mut(CHUNK))
            .zip(new_moment_2.par_chunks_mut(CHUNK))
            .enumerate()
            .for_each(|(chunk, ((p_out, m_out), v_out))| {
                let start = chunk * CHUNK;
                let end = start + p_out.len();
                // The parameter holding `start`, then each parameter overlapping the chunk.
                let mut param = offsets.partition_point(|&offset| offset <= start) - 1;
                let mut at = start;
                while at < end {
                    let run_end = (offsets[param] + per_param.lengths[param]).min(end);
                    let (from, to) = (at - start, run_end - start);
                    let range = at..run_end;
                    if per_param.update[param] == 0.0 {
                        p_out[from..to].copy_from_slice(&params[range.clone()]);
                        m_out[from..to].copy_from_slice(&moment_1[range.clone()]);
                        v_out[from..to].copy_from_slice(&moment_2[range]);
                    } else {
                        let scale = per_param.grad_scale[param];
                        let time = per_param.steps[param] as i32;
                        let correction_1 = 1.0 - hyper.beta_1.powi(time);
                        let correction_2 = 1.0 - hyper.beta_2.powi(time);
                        let outs = p_out[from..to].iter_mut().zip(&mut m_out[from..to]).zip(&mut v_out[from..to]);
                        let ins =
                            params[range.clone()].iter().zip(&grads[range.clone()]).zip(&moment_1[range.clone()]).zip(&moment_2[range]);
                        for (((p_new, m_new), v_new), (((p, g), m), v)) in outs.zip(ins) {
                            let g = g * scale;
                            *m_new = m * hyper.beta_1 + g * (1.0 - hyper.beta_1);
                            *v_new = v * hyper.beta_2 + g * g * (1.0 - hyper.beta_2);
                            let delta = (*m_new / correction_1) / ((*v_new / correction_2).sqrt() + hyper.epsilon);
                            *p_new = p * decay - delta * hyper.lr;
                        }
                    }
                    at = run_end;
                    param += 1;
                }
            });
        outputs
    }

    /// The sum of squares of each run of `lengths[i]` values.
    pub(super) fn sums_of_squares(values: &[f32], lengths: &[usize]) -> Vec<f32> {
        let offsets = starts(lengths);
        offsets
            .par_iter()
            .zip(lengths)
            .map(|(&start, &length)| values[start..start + length].iter().map(|&v| f64::from(v * v)).sum::<f64>() as f32)
            .collect()
    }

    /// Where each run starts.
    fn starts(lengths: &[usize]) -> Vec<usize> {
        lengths
            .iter()
            .scan(0, |next, &length| {
                let start = *next;
                *next += length;
                Some(start)
            })
            .collect()
    }
}

#[cfg(feature = "flex")]
mod cpu {
    use burn::backend::{Autodiff, Backend, DispatchKindConversion, DispatchTensor, TensorMetadata};
    use burn::tensor::Tensor;

    use super::{AdamWHyper, FlatAdamWInputs, host};
    use crate::cpu_backend::{CpuBackendOp, from_host, host_values};

    /// A step's inputs, for `on_flex`.
    pub(super) struct Step<'a> {
        pub(super) inputs: &'a FlatAdamWInputs<'a>,
        pub(super) hyper: AdamWHyper,
    }

    impl CpuBackendOp for Step<'_> {
        type Output = [Tensor<1>; 3];

        fn dtype(&self) -> burn::tensor::DType {
            self.inputs.params.dtype()
        }

        fn on<B: Backend>(&self) -> Option<[Tensor<1>; 3]>
        where
            DispatchTensor: DispatchKindConversion<B> + DispatchKindConversion<Autodiff<B>>,
        {
            let inputs = self.inputs;
            let plain = |tensor: &Tensor<1>| tensor.clone().try_into_primitive::<B>().ok();
            let buffers = [plain(inputs.params)?, plain(inputs.grads)?, plain(inputs.moment_1)?, plain(inputs.moment_2)?];
            let per_param = [plain(inputs.grad_scale)?, plain(inputs.steps)?, plain(inputs.update)?];
            let device = buffers[0].device();
            let elements = buffers[0].shape().num_elements();
            let [params, grads, moment_1, moment_2] = buffers.each_ref().map(|buffer| host_values::<B>(buffer));
            let [grad_scale, steps, update] = per_param.each_ref().map(|values| host_values::<B>(values));
            let per_param = host::PerParam { grad_scale: &grad_scale, steps: &steps, update: &update, lengths: inputs.lengths };
            let outputs = host::step([&params, &grads, &moment_1, &moment_2], &per_param, self.hyper);
            Some(outputs.map(|values| Tensor::from_primitive::<B>(from_host::<B>(values, [elements], &device))))
        }
    }

    /// The runs whose sums of squares are asked for.
    pub(super) struct SumsOfSquares<'a> {
        pub(super) values: &'a Tensor<1>,
        pub(super) lengths: &'a [usize],
    }

    impl CpuBackendOp for SumsOfSquares<'_> {
        type Output = Tensor<1>;

        fn dtype(&self) -> burn::tensor::DType {
            self.values.dtype()
        }

        fn on<B: Backend>(&self) -> Option<Tensor<1>>
        where
            DispatchTensor: DispatchKindConversion<B> + DispatchKindConversion<Autodiff<B>>,
        {
            let values = self.values.clone().try_into_primitive::<B>().ok()?;
            let sums = host::sums_of_squares(&host_values::<B>(&values), self.lengths);
            Some(Tensor::from_primitive::<B>(from_host::<B>(sums, [self.lengths.len()], &values.device())))
        }
    }
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use super::*;
    use burn::tensor::{Device, Distribution, TensorData, Tolerance};

    fn tensor(values: Vec<f32>) -> Tensor<1> {
        let count = values.len();
        Tensor::from_data(TensorData::new(values, [count]), &Device::flex())
    }

    /// The kernel equals AdamW written out in tensor ops, run by run, across chunk borders;
    /// a parameter that does not take part keeps its values and moments bit for bit.
    #[test]
    fn the_kernel_equals_adamw_in_tensor_ops_run_by_run() {
        let device = Device::flex();
        let lengths = [3, 70_000, 1, 5_000, 40_000];
        let elements: usize = lengths.iter().sum();
        let random = |std: f64| Tensor::<1>::random([elements], Distribution::Normal(0.0, std), &device);
        let (params, grads, moment_1) = (random(1.0), random(0.1), random(0.01));
        let moment_2 = random(0.01).abs();
        let (scale, steps, update) = ([1.0, 0.5, 1.0, 0.25, 1.0], [1.0, 7.0, 2.0, 7.0, 3.0], [1.0, 1.0, 0.0, 1.0, 1.0]);
        let hyper = AdamWHyper { lr: 1e-2, beta_1: 0.9, beta_2: 0.999, epsilon: 1e-5, weight_decay: 1e-2 };
        let inputs = FlatAdamWInputs {
            params: &params,
            grads: &grads,
            moment_1: &moment_1,
            moment_2: &moment_2,
            grad_scale: &tensor(scale.to_vec()),
            steps: &tensor(steps.to_vec()),
            update: &tensor(update.to_vec()),
            lengths: &lengths,
        };
        let [new_params, new_moment_1, new_moment_2] = flat_adamw(&inputs, hyper).expect("flex tensors take the kernel");
        let mut start = 0;
        for (index, &length) in lengths.iter().enumerate() {
            let run = |tensor: &Tensor<1>| tensor.clone().narrow(0, start, length);
            let (p, g, m, v) = (run(&params), run(&grads).mul_scalar(scale[index]), run(&moment_1), run(&moment_2));
            let (expected_p, expected_m, expected_v) = if update[index] == 0.0 {
                (p, m, v)
            } else {
                let time = steps[index] as i32;
                let m = m.mul_scalar(0.9) + g.clone().mul_scalar(0.1);
                let v = v.mul_scalar(0.999) + g.square().mul_scalar(1.0 - 0.999);
                let delta =
                    m.clone().div_scalar(1.0 - 0.9f32.powi(time)) / v.clone().div_scalar(1.0 - 0.999f32.powi(time)).sqrt().add_scalar(1e-5);
                (p.mul_scalar(1.0 - 1e-2 * 1e-2) - delta.mul_scalar(1e-2), m, v)
            };
            let tolerance = Tolerance::rel_abs(1e-5, 1e-7);
            run(&new_params).into_data().assert_approx_eq::<f32>(&expected_p.into_data(), tolerance);
            run(&new_moment_1).into_data().assert_approx_eq::<f32>(&expected_m.into_data(), tolerance);
            run(&new_moment_2).into_data().assert_approx_eq::<f32>(&expected_v.into_data(), tolerance);
            if update[index] == 0.0 {
                assert_eq!(run(&new_params).into_data(), run(&params).into_data(), "a frozen run is copied bit for bit");
            }
            start += length;
        }

        let sums: Vec<f32> = sums_of_squares(&grads, &lengths).expect("flex").into_data().try_to_vec::<f32>().unwrap();
        let mut start = 0;
        for (sum, length) in sums.iter().zip(lengths) {
            let expected = grads.clone().narrow(0, start, length).square().sum().into_scalar::<f32>();
            assert!((sum - expected).abs() <= 1e-4 * expected.abs() + 1e-9, "{sum} against {expected}");
            start += length;
        }
    }
}

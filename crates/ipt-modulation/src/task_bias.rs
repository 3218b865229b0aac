//! One task's low-rank bias `B1 @ B2` for one layer.

use burn::module::{Module, Param};
use burn::tensor::{Device, Distribution, Tensor};

use crate::{RankPolicy, TaskWeights};

/// The task-specific bias of one weight: `B = B1 @ B2`, `B1: [rows, rank]`, `B2: [rank, columns]`.
///
/// `B1` starts at zero so a new task starts exactly at the general model (LoRA's convention);
/// `B2` starts random so `B1` receives gradients from the first step.
#[derive(Module, Debug)]
pub struct TaskBias {
    /// `[rows, rank]`, zero-initialised.
    pub b1: Param<Tensor<2>>,
    /// `[rank, columns]`, Kaiming-uniform-initialised.
    pub b2: Param<Tensor<2>>,
}

impl TaskBias {
    /// A zero bias of shape `[rows, columns]` and rank `rank`.
    pub fn new(rows: usize, columns: usize, rank: usize, device: &Device) -> Self {
        let bound = (1.0 / columns as f64).sqrt();
        Self {
            b1: Param::from_tensor(Tensor::zeros([rows, rank], device)),
            b2: Param::from_tensor(Tensor::random([rank, columns], Distribution::Uniform(-bound, bound), device)),
        }
    }

    /// The dense bias `B1 @ B2`, `[rows, columns]`.
    pub fn dense(&self) -> Tensor<2> {
        self.b1.val().matmul(self.b2.val())
    }

    /// Number of parameters this bias adds.
    pub fn num_params(&self) -> usize {
        let [rows, rank] = self.b1.dims();
        let [_, columns] = self.b2.dims();
        rank * (rows + columns)
    }
}

/// The factors of every task active in a batch, side by side: `B = up @ diag(scale[b]) @ down`
/// is sample `b`'s mixed bias.
pub(crate) struct ActiveFactors {
    /// Every active task's `B1`, concatenated: `[rows, total rank]`.
    pub up: Tensor<2>,
    /// Every active task's `B2`, stacked: `[total rank, columns]`.
    pub down: Tensor<2>,
    /// Each sample's task weight, repeated over its task's rank: `[batch, total rank]`.
    pub scale: Tensor<2>,
}

impl ActiveFactors {
    /// The factors of the tasks active in `tasks`; the others take no part (no gradient).
    pub fn of(biases: &[TaskBias], tasks: &TaskWeights) -> Self {
        assert_eq!(
            tasks.tasks(),
            biases.len(),
            "task weights have {} columns but the layer has {} task biases",
            tasks.tasks(),
            biases.len()
        );
        let active: Vec<&TaskBias> = tasks.active().iter().map(|&task| &biases[task]).collect();
        Self {
            up: Tensor::cat(active.iter().map(|bias| bias.b1.val()).collect(), 1),
            down: Tensor::cat(active.iter().map(|bias| bias.b2.val()).collect(), 0),
            scale: tasks.repeated_active(&active.iter().map(|bias| bias.b2.dims()[0]).collect::<Vec<_>>()),
        }
    }

    /// The summed rank of the active tasks.
    pub fn rank(&self) -> usize {
        self.down.dims()[0]
    }
}

/// `general + sum_t a[b, t] B_t` for every sample `b`, `[batch, rows, columns]`, as one batched
/// product of the active tasks' factors; only the tasks active in the batch take part, so the
/// others get no gradient.
pub(crate) fn per_sample_weights(general: Tensor<2>, biases: &[TaskBias], tasks: &TaskWeights) -> Tensor<3> {
    let factors = ActiveFactors::of(biases, tasks);
    ipt_kernels::mixed_weights(general, factors.up, factors.down, factors.scale)
}

/// `general + sum_t mix[t] B_t`, detached: the weight of a merged layer.
pub(crate) fn merged_weight(general: Tensor<2>, biases: &[TaskBias], mix: &[f32]) -> Tensor<2> {
    assert_eq!(mix.len(), biases.len(), "merge needs one weight per task bias");
    biases.iter().zip(mix).filter(|(_, a)| **a != 0.0).fold(general, |weight, (bias, &a)| weight + bias.dense() * a).detach()
}

/// A layer whose weight matrix carries one low-rank bias per task.
pub trait TaskBiased: Sized {
    /// The weight seen as a matrix: `(rows, columns)`.
    fn matrix_shape(&self) -> (usize, usize);
    /// The layer's task biases, in task order.
    fn task_biases(&self) -> &[TaskBias];
    /// Appends a task bias.
    fn push_task_bias(&mut self, bias: TaskBias);
    /// Where the layer's parameters live.
    fn device(&self) -> Device;

    /// Adds a bias for a new task, initialised so that the task starts at the general weight.
    fn add_task(mut self, policy: &RankPolicy) -> Self {
        let (rows, columns) = self.matrix_shape();
        let bias = TaskBias::new(rows, columns, policy.rank(rows, columns), &self.device());
        self.push_task_bias(bias);
        self
    }

    /// Adds one zero task bias per task.
    fn with_task_biases(self, tasks: usize, policy: &RankPolicy) -> Self {
        (0..tasks).fold(self, |layer, _| layer.add_task(policy))
    }

    /// Number of parameters task `task`'s bias adds (0 for a task the layer has no bias for).
    fn task_params(&self, task: usize) -> usize {
        self.task_biases().get(task).map_or(0, TaskBias::num_params)
    }
}

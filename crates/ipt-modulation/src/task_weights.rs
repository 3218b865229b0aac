//! Per-sample task weights, with the set of tasks active anywhere in the batch.

use burn::tensor::{Device, Tensor, TensorData};

/// `[batch, tasks]` weights of each task's bias for each sample, plus the tasks whose column is
/// not all zero (read once per batch, so every layer can skip the inactive ones).
#[derive(Clone, Debug)]
pub struct TaskWeights {
    weights: Tensor<2>,
    active: Vec<usize>,
}

impl TaskWeights {
    /// Wraps `[batch, tasks]` weights (one-hot rows for known tasks, soft rows for instructions).
    pub fn new(weights: Tensor<2>) -> Self {
        let [_, tasks] = weights.dims();
        let column_mass: Vec<f32> = weights.clone().detach().abs().sum_dim(0).into_data().try_into_vec().expect("task weights are f32");
        let active = (0..tasks).filter(|&task| column_mass[task] > 0.0).collect();
        Self { weights, active }
    }

    /// One-hot weights: sample `b` uses task `indices[b]` of `tasks`.
    pub fn one_hot(indices: &[usize], tasks: usize, device: &Device) -> Self {
        let mut values = vec![0.0f32; indices.len() * tasks];
        for (sample, &task) in indices.iter().enumerate() {
            assert!(task < tasks, "task index {task} out of range for {tasks} tasks");
            values[sample * tasks + task] = 1.0;
        }
        Self::new(Tensor::from_data(TensorData::new(values, [indices.len(), tasks]), device))
    }

    /// The `[batch, tasks]` weights.
    pub fn weights(&self) -> &Tensor<2> {
        &self.weights
    }

    /// Indices of the tasks with a non-zero weight for some sample.
    pub fn active(&self) -> &[usize] {
        &self.active
    }

    /// Number of samples.
    pub fn batch(&self) -> usize {
        self.weights.dims()[0]
    }

    /// Number of task columns.
    pub fn tasks(&self) -> usize {
        self.weights.dims()[1]
    }

    /// The `[batch]` weights of task `task`.
    pub fn column(&self, task: usize) -> Tensor<1> {
        let [batch, _] = self.weights.dims();
        self.weights.clone().slice([0..batch, task..task + 1]).reshape([batch])
    }
}

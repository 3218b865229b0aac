//! Per-sample task weights, with the set of tasks active anywhere in the batch.

use std::sync::{Arc, Mutex};

use burn::tensor::{Device, Tensor, TensorData};

/// `[batch, tasks]` weights of each task's bias for each sample, plus the tasks whose column is
/// not all zero (known once per batch, so every layer can skip the inactive ones).
#[derive(Clone, Debug)]
pub struct TaskWeights {
    weights: Tensor<2>,
    active: Vec<usize>,
    /// [`TaskWeights::repeated_active`] by rank list, shared by the clones of one batch's weights.
    repeated: Arc<Mutex<Vec<RepeatedActive>>>,
}

/// A rank list and the repeated task weights built for it.
type RepeatedActive = (Vec<usize>, Tensor<2>);

impl TaskWeights {
    /// Wraps `[batch, tasks]` weights (soft rows for instructions). The active tasks are read
    /// back from the device once; [`TaskWeights::one_hot`] knows them without a read-back.
    pub fn new(weights: Tensor<2>) -> Self {
        let [_, tasks] = weights.dims();
        let column_mass: Vec<f32> =
            weights.clone().detach().abs().sum_dim(0).into_data().convert::<f32>().try_into_vec().expect("task weights are floats");
        let active = (0..tasks).filter(|&task| column_mass[task] > 0.0).collect();
        Self { weights, active, repeated: Arc::default() }
    }

    /// One-hot weights: sample `b` uses task `indices[b]` of `tasks`. Built on the host, so the
    /// training step never waits for the device to learn which tasks are active.
    pub fn one_hot(indices: &[usize], tasks: usize, device: &Device) -> Self {
        let mut values = vec![0.0f32; indices.len() * tasks];
        for (sample, &task) in indices.iter().enumerate() {
            assert!(task < tasks, "task index {task} out of range for {tasks} tasks");
            values[sample * tasks + task] = 1.0;
        }
        let active = (0..tasks).filter(|task| indices.contains(task)).collect();
        Self { weights: Tensor::from_data(TensorData::new(values, [indices.len(), tasks]), device), active, repeated: Arc::default() }
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

    /// Each sample's weight of the `i`-th active task repeated `ranks[i]` times, side by side:
    /// `[batch, sum of ranks]`. Built once per rank list and batch: every modulated layer of a
    /// constant-rank model asks for the same one.
    pub fn repeated_active(&self, ranks: &[usize]) -> Tensor<2> {
        assert_eq!(ranks.len(), self.active.len(), "one rank per active task");
        let mut cache = self.repeated.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((_, repeated)) = cache.iter().find(|(known, _)| known == ranks) {
            return repeated.clone();
        }
        let batch = self.batch();
        let columns = self.active.iter().zip(ranks).map(|(&task, &rank)| self.column(task).reshape([batch, 1]).expand([batch, rank]));
        let repeated = Tensor::cat(columns.collect(), 1);
        cache.push((ranks.to_vec(), repeated.clone()));
        repeated
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_hot_knows_the_active_tasks_that_a_read_back_finds() {
        let device = Device::flex();
        for indices in [vec![2, 0, 2], vec![1], vec![3, 3, 3, 3]] {
            let hot = TaskWeights::one_hot(&indices, 4, &device);
            let read = TaskWeights::new(hot.weights().clone());
            assert_eq!(hot.active(), read.active(), "tasks {indices:?}");
        }
        assert_eq!(TaskWeights::one_hot(&[2, 0, 2], 4, &device).active(), &[0, 2]);
    }

    #[test]
    fn repeated_active_repeats_each_active_column_by_its_rank_and_is_shared_by_clones() {
        let device = Device::flex();
        let weights = TaskWeights::new(Tensor::from_data(TensorData::new(vec![0.25f32, 0.0, 0.75, 1.0, 0.0, 0.0], [2, 3]), &device));
        let clone = weights.clone();
        let repeated: Vec<f32> = weights.repeated_active(&[2, 1]).into_data().try_to_vec().unwrap();
        assert_eq!(repeated, [0.25, 0.25, 0.75, 1.0, 1.0, 0.0]);
        assert_eq!(clone.repeated.lock().unwrap().len(), 1, "a clone sees the cached entry");
        let other: Vec<f32> = clone.repeated_active(&[1, 3]).into_data().try_to_vec().unwrap();
        assert_eq!(other, [0.25, 0.75, 0.75, 0.75, 1.0, 0.0, 0.0, 0.0]);
    }
}

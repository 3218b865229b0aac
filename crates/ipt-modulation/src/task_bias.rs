//! One task's low-rank bias `B1 @ B2` for one layer.

use burn::module::{Module, Param};
use burn::tensor::{Device, Distribution, Tensor};

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

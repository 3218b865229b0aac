//! Weight modulation, the heart of Instruct-IPT: each task-sensitive weight becomes
//! `W_general + B_task`, with `B_task = B1_task @ B2_task` of low rank (conv weights seen as
//! `[C_out, C_in / groups * k * k]`).
//!
//! Per-sample task weights `a` (`[batch, tasks]`: one-hot for a known task, soft from an
//! instruction) let one batch mix tasks: sample `b` is filtered by
//! `W + sum_t a[b, t] * B1_t @ B2_t`. That per-sample weight is small, so it is materialised and
//! applied as one batched matmul (1x1 convs) or one grouped conv with `groups = batch * groups`,
//! which costs about one plain conv whatever the number of tasks. Tasks with zero weight in the
//! whole batch are skipped, so they receive no gradient.
//!
//! [`ModulatedConv2d::merge`] folds a task mix into `W` once, giving a plain conv whose inference
//! cost is exactly the backbone's.

mod conv;
mod linear;
mod rank;
mod task_bias;
mod task_weights;

pub use conv::ModulatedConv2d;
pub use linear::ModulatedLinear;
pub use rank::RankPolicy;
pub use task_bias::{TaskBias, TaskBiased};
pub use task_weights::TaskWeights;

//! The glue every custom op with a backward shares: recording it on Burn's autodiff graph.

use std::fmt::Debug;

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::ops::{Backward, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend};

/// `output`, computed by the caller from `inputs`' values, recorded as the output of `op` on the
/// autodiff graph. Only when some input needs a gradient is `state` called, with a function
/// that checkpoints an input (giving the id `op`'s backward retrieves it by) and with the output,
/// to build what the backward keeps.
pub fn record<B, const N: usize, Op>(
    op: Op,
    inputs: &[FloatTensor<Autodiff<B>>; N],
    output: FloatTensor<B>,
    state: impl FnOnce(&mut dyn FnMut(&FloatTensor<Autodiff<B>>) -> NodeId, &FloatTensor<B>) -> Op::State,
) -> FloatTensor<Autodiff<B>>
where
    B: Backend,
    Op: Backward<B, N>,
    Op::State: Clone + Send + Debug + 'static,
{
    match op.prepare::<NoCheckpointing>(inputs.each_ref().map(|input| input.node())).compute_bound().stateful() {
        OpsKind::Tracked(mut prep) => {
            let state = state(&mut |input| prep.checkpoint(input), &output);
            prep.finish(state, output)
        }
        OpsKind::UnTracked(prep) => prep.finish(output),
    }
}

//! The glue every custom op with a backward shares: recording it on Burn's autodiff graph.

use std::fmt::Debug;

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::ops::{Backward, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, DispatchKindConversion, DispatchTensor};
use burn::tensor::Tensor;

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

/// A one-input op on `B`'s tensors: on autodiff ones `forward`, recorded as `op` with what
/// `state` builds from the checkpoint function, the input and the output (see [`record`]); on
/// plain ones `forward` alone; `None` when `x` is on neither.
pub fn unary_op<B, const D: usize, Op>(
    x: &Tensor<D>,
    op: Op,
    forward: impl Fn(&FloatTensor<B>) -> FloatTensor<B>,
    state: impl FnOnce(&mut dyn FnMut(&FloatTensor<Autodiff<B>>) -> NodeId, &FloatTensor<Autodiff<B>>, &FloatTensor<B>) -> Op::State,
) -> Option<Tensor<D>>
where
    B: Backend,
    Op: Backward<B, 1>,
    Op::State: Clone + Send + Debug + 'static,
    DispatchTensor: DispatchKindConversion<B> + DispatchKindConversion<Autodiff<B>>,
{
    if let Ok(x) = x.clone().try_into_primitive::<Autodiff<B>>() {
        let y = forward(x.primitive());
        let inputs = [x];
        let output = record(op, &inputs, y, |checkpoint, y| state(checkpoint, &inputs[0], y));
        return Some(Tensor::from_primitive::<Autodiff<B>>(output));
    }
    let x = x.clone().try_into_primitive::<B>().ok()?;
    Some(Tensor::from_primitive::<B>(forward(&x)))
}

//! Every float parameter of a model laid end to end in one flat buffer, in module order: the
//! optimiser, the gradient clipping and the EMA then run a handful of large operations per step
//! instead of a handful per parameter tensor (a modulated `tiny` has 1,159 of them, 984 of
//! which are task biases). On a GPU each small operation is a kernel launch; on flex each one
//! costs its dispatch.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Device, FloatDType, IndexingUpdateOp, Int, Shape, Tensor, TensorData, s};
use ipt_model::IptModel;

/// Values each parameter's run starts on a multiple of: 256 bytes, so that its slice of the
/// buffer is a view on burn-cubecl (GPUs), which copies a slice at an unaligned offset.
const ALIGNMENT: usize = 64;

/// Where each float parameter of a model sits in the flat buffer: parameter `i` takes
/// `runs[i]` values from `offsets[i]`, its own values first, then zeros up to the next run.
#[derive(Clone, Debug)]
pub(crate) struct FlatLayout {
    /// Each parameter's shape, in module order.
    shapes: Vec<Shape>,
    /// Where each parameter's run starts (a multiple of [`ALIGNMENT`]).
    offsets: Vec<usize>,
    /// Each parameter's run: its values and the zeros that pad it.
    runs: Vec<usize>,
    /// The index of the parameter whose run each value belongs to, `[elements]`.
    owner: Tensor<1, Int>,
}

impl FlatLayout {
    /// The layout of `model`'s float parameters, with its index tensor on `device`.
    pub fn of(model: &IptModel, device: &Device) -> Self {
        struct Shapes(Vec<Shape>);
        impl ModuleVisitor for Shapes {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                self.0.push(param.shape());
            }
        }
        let mut shapes = Shapes(Vec::new());
        model.visit(&mut shapes);
        let runs: Vec<usize> = shapes.0.iter().map(|shape| shape.num_elements().div_ceil(ALIGNMENT) * ALIGNMENT).collect();
        let offsets = runs
            .iter()
            .scan(0, |next, run| {
                let offset = *next;
                *next += run;
                Some(offset)
            })
            .collect();
        let owner: Vec<i64> = runs.iter().enumerate().flat_map(|(index, &run)| std::iter::repeat_n(index as i64, run)).collect();
        let elements = owner.len();
        Self { shapes: shapes.0, offsets, runs, owner: Tensor::from_data(TensorData::new(owner, [elements]), device) }
    }

    /// Number of parameter tensors.
    pub fn params(&self) -> usize {
        self.shapes.len()
    }

    /// Each parameter's run of values (its own, then padding zeros), in module order.
    pub fn runs(&self) -> &[usize] {
        &self.runs
    }

    /// Number of values in the buffer.
    pub fn elements(&self) -> usize {
        self.owner.dims()[0]
    }

    /// `model`'s parameter values in a buffer of this layout, without autodiff, `[elements]`.
    pub fn values(&self, model: &IptModel) -> Tensor<1> {
        struct Values(Vec<Tensor<1>>);
        impl ModuleVisitor for Values {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                let value = param.val().inner();
                let count = value.shape().num_elements();
                self.0.push(value.reshape([count]));
            }
        }
        let mut values = Values(Vec::new());
        model.visit(&mut values);
        self.check(values.0.len());
        let device = values.0.first().map_or_else(Device::default, Tensor::device);
        self.assemble(values.0.into_iter().map(Some).collect(), &device)
    }

    /// `model`'s gradients in an `f32` buffer of this layout (zeros for parameters without
    /// one), `[elements]`, and which parameters have one. Takes them out of `grads`.
    pub fn gradients(&self, model: &IptModel, grads: &mut GradientsParams, device: &Device) -> (Tensor<1>, Vec<bool>) {
        struct Gradients<'a> {
            grads: &'a mut GradientsParams,
            parts: Vec<Option<Tensor<1>>>,
        }
        impl ModuleVisitor for Gradients<'_> {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                let count = param.shape().num_elements();
                self.parts.push(self.grads.remove::<D>(param.id).map(|grad| grad.reshape([count])));
            }
        }
        let mut gradients = Gradients { grads, parts: Vec::new() };
        model.visit(&mut gradients);
        self.check(gradients.parts.len());
        let present = gradients.parts.iter().map(Option::is_some).collect();
        (self.assemble(gradients.parts, device), present)
    }

    /// A zero `f32` buffer with each given part written at its parameter's offset, in place:
    /// parts in half precision are gathered in their type and the buffer cast once.
    fn assemble(&self, parts: Vec<Option<Tensor<1>>>, device: &Device) -> Tensor<1> {
        let dtype = parts.iter().flatten().next().map_or(FloatDType::F32.into(), Tensor::dtype);
        let buffer = Tensor::zeros([self.elements()], (device, dtype));
        let buffer = parts.into_iter().zip(&self.offsets).fold(buffer, |buffer, (part, &offset)| match part {
            Some(part) => {
                let count = part.dims()[0];
                buffer.slice_assign(s![offset..offset + count], part)
            }
            None => buffer,
        });
        buffer.cast(FloatDType::F32)
    }

    /// `model` with every parameter's value read from `flat` (`[elements]`), each parameter
    /// keeping whether it is tracked by autodiff and requires a gradient.
    pub fn write(&self, model: IptModel, flat: &Tensor<1>) -> IptModel {
        struct Write<'a> {
            flat: &'a Tensor<1>,
            offsets: std::slice::Iter<'a, usize>,
            count: usize,
        }
        impl ModuleMapper for Write<'_> {
            fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
                let shape = param.shape();
                let offset = *self.offsets.next().expect("the layout has a run for every parameter");
                let values = self.flat.clone().narrow(0, offset, shape.num_elements()).reshape(shape);
                self.count += 1;
                param.map(|old| {
                    let tracked = old.is_autodiff();
                    let required = old.is_require_grad();
                    match (tracked, required) {
                        (true, true) => values.autodiff().require_grad(),
                        (true, false) => values.autodiff(),
                        (false, _) => values,
                    }
                })
            }
        }
        let mut write = Write { flat, offsets: self.offsets.iter(), count: 0 };
        let model = model.map(&mut write);
        self.check(write.count);
        model
    }

    /// The L2 norm of each parameter's run in `values` (`[elements]`), `[params]`.
    pub fn norms(&self, values: Tensor<1>) -> Tensor<1> {
        match ipt_kernels::sums_of_squares(&values, &self.runs) {
            Some(sums) => sums.sqrt(),
            None => self.norms_in_tensor_ops(values),
        }
    }

    /// [`FlatLayout::norms`] as a scatter-add of the squares (GPUs: burn-cubecl adds them with
    /// one atomic add per value where the device has float atomics; `select_assign` would walk
    /// the whole buffer in one thread).
    fn norms_in_tensor_ops(&self, values: Tensor<1>) -> Tensor<1> {
        let zeros = Tensor::zeros([self.params()], &values.device());
        zeros.scatter(0, self.owner.clone(), values.square(), IndexingUpdateOp::Add).sqrt()
    }

    /// One value per parameter (`[params]`) repeated over its elements, `[elements]`.
    pub fn spread<K: burn::tensor::kind::Basic>(&self, per_param: Tensor<1, K>) -> Tensor<1, K> {
        per_param.select(0, self.owner.clone())
    }

    /// Which parameters `present` lists, as a `[params]` tensor on `device`.
    pub fn mask(&self, present: &[bool], device: &Device) -> Tensor<1, burn::tensor::Bool> {
        Tensor::from_data(TensorData::new(present.to_vec(), [present.len()]), device)
    }

    fn check(&self, params: usize) {
        assert_eq!(params, self.params(), "the model has {params} float parameters but its flat layout {}", self.params());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::seeded_init;
    use ipt_model::{ModulationConfig, Preset, Task};

    fn model(device: &Device) -> IptModel {
        let tasks = ModulationConfig::new(vec![Task::Denoise, Task::Derain]);
        seeded_init(|| Preset::Tiny.config().init_modulated(&tasks, device), device, 2)
    }

    fn floats(tensor: Tensor<1>) -> Vec<f32> {
        tensor.into_data().try_to_vec::<f32>().unwrap()
    }

    #[test]
    fn runs_are_aligned_padded_with_zeros_and_round_trip_through_the_model() {
        let device = Device::flex();
        let model = model(&device);
        let layout = FlatLayout::of(&model, &device);
        assert!(layout.offsets.iter().all(|offset| offset % ALIGNMENT == 0));
        let flat = layout.values(&model);
        assert_eq!(flat.dims(), [layout.elements()]);
        let values = floats(flat.clone());
        for ((offset, run), shape) in layout.offsets.iter().zip(&layout.runs).zip(&layout.shapes) {
            assert!(values[offset + shape.num_elements()..offset + run].iter().all(|&pad| pad == 0.0), "padding holds zeros");
        }
        let doubled = layout.write(model.clone(), &flat.mul_scalar(2.0));
        let again = floats(layout.values(&doubled));
        assert!(again.iter().zip(&values).all(|(a, b)| *a == 2.0 * b));

        let twos = Tensor::full([layout.elements()], 2.0, &device);
        for norms in [layout.norms(twos.clone()), layout.norms_in_tensor_ops(twos)] {
            let norms = floats(norms);
            assert!(norms.iter().zip(&layout.runs).all(|(norm, &run)| (norm - 2.0 * (run as f32).sqrt()).abs() < 1e-3 * norm));
        }
        let runs: Vec<f32> = layout.runs.iter().map(|&run| run as f32).collect();
        let spread = floats(layout.spread(Tensor::<1>::from_data(TensorData::new(runs.clone(), [runs.len()]), &device)));
        assert_eq!(spread.len(), layout.elements());
        assert_eq!((spread[0], *spread.last().unwrap()), (runs[0], *runs.last().unwrap()));
    }
}

//! Every float parameter of a model laid end to end in one flat buffer, in module order: the
//! optimiser, the gradient clipping and the EMA then run a handful of large operations per step
//! instead of a handful per parameter tensor (a modulated `tiny` has 1,159 of them, 984 of
//! which are task biases). On a GPU each small operation is a kernel launch; on flex each one
//! costs its dispatch.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Device, IndexingUpdateOp, Int, Shape, Tensor, TensorData};
use ipt_model::IptModel;

/// Where each float parameter of a model sits in the flat buffer.
#[derive(Clone, Debug)]
pub(crate) struct FlatLayout {
    /// Each parameter's shape, in module order; its values follow the previous one's.
    shapes: Vec<Shape>,
    /// Each parameter's number of values, in module order.
    lengths: Vec<usize>,
    /// The index of the parameter each element belongs to, `[elements]`.
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
        let owner: Vec<i64> =
            shapes.0.iter().enumerate().flat_map(|(index, shape)| std::iter::repeat_n(index as i64, shape.num_elements())).collect();
        let elements = owner.len();
        let lengths = shapes.0.iter().map(Shape::num_elements).collect();
        Self { shapes: shapes.0, lengths, owner: Tensor::from_data(TensorData::new(owner, [elements]), device) }
    }

    /// Number of parameter tensors.
    pub fn params(&self) -> usize {
        self.shapes.len()
    }

    /// Each parameter's number of values, in module order.
    pub fn lengths(&self) -> &[usize] {
        &self.lengths
    }

    /// Number of values in all parameters together.
    pub fn elements(&self) -> usize {
        self.owner.dims()[0]
    }

    /// `model`'s parameter values end to end, without autodiff, `[elements]`.
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
        Tensor::cat(values.0, 0)
    }

    /// `model`'s gradients end to end (zeros for parameters without one), `[elements]`, and which
    /// parameters have one. Takes them out of `grads`.
    pub fn gradients(&self, model: &IptModel, grads: &mut GradientsParams, device: &Device) -> (Tensor<1>, Vec<bool>) {
        struct Gradients<'a> {
            grads: &'a mut GradientsParams,
            parts: Vec<Tensor<1>>,
            present: Vec<bool>,
            zeros: Tensor<1>,
        }
        impl ModuleVisitor for Gradients<'_> {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                let count = param.shape().num_elements();
                let grad = self.grads.remove::<D>(param.id);
                self.present.push(grad.is_some());
                self.parts.push(match grad {
                    Some(grad) => grad.reshape([count]),
                    None => self.zeros.clone().slice([0..count]),
                });
            }
        }
        let largest = self.lengths.iter().copied().max().unwrap_or(0);
        let mut gradients = Gradients { grads, parts: Vec::new(), present: Vec::new(), zeros: Tensor::zeros([largest.max(1)], device) };
        model.visit(&mut gradients);
        self.check(gradients.parts.len());
        (Tensor::cat(gradients.parts, 0), gradients.present)
    }

    /// `model` with every parameter's value read from `flat` (`[elements]`), each parameter
    /// keeping whether it is tracked by autodiff and requires a gradient.
    pub fn write(&self, model: IptModel, flat: &Tensor<1>) -> IptModel {
        struct Write<'a> {
            flat: &'a Tensor<1>,
            offset: usize,
            count: usize,
        }
        impl ModuleMapper for Write<'_> {
            fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
                let shape = param.shape();
                let count = shape.num_elements();
                let values = self.flat.clone().slice([self.offset..self.offset + count]).reshape(shape);
                self.offset += count;
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
        let mut write = Write { flat, offset: 0, count: 0 };
        let model = model.map(&mut write);
        self.check(write.count);
        model
    }

    /// The L2 norm of each parameter's values in `values` (`[elements]`), `[params]`.
    pub fn norms(&self, values: Tensor<1>) -> Tensor<1> {
        match ipt_kernels::sums_of_squares(&values, &self.lengths) {
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
    use ipt_model::{ModulationConfig, Preset, Task};

    fn model(device: &Device) -> IptModel {
        Preset::Tiny.config().init_modulated(&ModulationConfig::new(vec![Task::Denoise, Task::Derain]), device)
    }

    #[test]
    fn values_written_back_round_trip_and_sums_add_up_each_parameter() {
        let device = Device::flex();
        let model = model(&device);
        let layout = FlatLayout::of(&model, &device);
        let flat = layout.values(&model);
        assert_eq!(flat.dims(), [layout.elements()]);
        let doubled = layout.write(model.clone(), &flat.clone().mul_scalar(2.0));
        let again: Vec<f32> = layout.values(&doubled).into_data().to_vec().unwrap();
        let original: Vec<f32> = flat.clone().into_data().to_vec().unwrap();
        assert!(again.iter().zip(&original).all(|(a, b)| *a == 2.0 * b));

        let twos = Tensor::full([layout.elements()], 2.0, &device);
        let counts: Vec<f32> = layout.lengths.iter().map(|&length| length as f32).collect();
        for norms in [layout.norms(twos.clone()), layout.norms_in_tensor_ops(twos)] {
            let norms: Vec<f32> = norms.into_data().to_vec().unwrap();
            assert!(norms.iter().zip(&counts).all(|(norm, count)| (norm - 2.0 * count.sqrt()).abs() < 1e-3 * norm));
        }
        let spread: Vec<f32> =
            layout.spread(Tensor::<1>::from_data(TensorData::new(counts.clone(), [counts.len()]), &device)).into_data().to_vec().unwrap();
        assert_eq!(spread.len(), layout.elements());
        assert_eq!((spread[0], *spread.last().unwrap()), (counts[0], *counts.last().unwrap()));
    }
}

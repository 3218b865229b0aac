//! Whole-model parameter maps: the exponential moving average of the weights, and a seeded
//! re-draw of the initial weights (Burn's CPU initialisers are not reproducible from a seed).

use std::collections::HashMap;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::tensor::{Tensor, TensorData};
use ipt_data::random::rng_for;
use rand::RngExt;
use ipt_model::IptModel;

/// Every float parameter of a module, flattened, by id.
struct Collect(HashMap<ParamId, Tensor<1>>);

impl ModuleVisitor for Collect {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let value = param.val();
        let count = value.shape().num_elements();
        self.0.insert(param.id, value.reshape([count]));
    }
}

/// `ema = decay * ema + (1 - decay) * current`, parameter by parameter (matched by id).
struct Average<'a> {
    current: &'a HashMap<ParamId, Tensor<1>>,
    decay: f32,
}

impl ModuleMapper for Average<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let Some(current) = self.current.get(&param.id) else { return param };
        let decay = self.decay;
        param.map(|ema| {
            let shape = ema.shape();
            ema.clone().mul_scalar(decay) + current.clone().to_device(&ema.device()).reshape(shape).mul_scalar(1.0 - decay)
        })
    }
}

/// Updates `ema` towards `current` (same architecture, same parameter ids).
pub fn update_ema(ema: IptModel, current: &IptModel, decay: f32) -> IptModel {
    let mut collect = Collect(HashMap::new());
    current.visit(&mut collect);
    ema.map(&mut Average { current: &collect.0, decay })
}

/// Re-draws every non-constant float parameter from a seeded uniform distribution with the
/// same mean and variance it was initialised with; constant parameters (zero biases, unit
/// norms, the zero `B1` of task biases) stay as they are.
struct SeededRedraw {
    seed: u64,
    index: u64,
}

impl ModuleMapper for SeededRedraw {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        self.index += 1;
        let mut rng = rng_for(self.seed, &[self.index]);
        param.map(|value| {
            let data: Vec<f32> = value.to_data().try_to_vec::<f32>().expect("float parameters read back as f32");
            let count = data.len() as f64;
            let mean = data.iter().map(|&v| f64::from(v)).sum::<f64>() / count;
            let variance = data.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / count;
            if variance <= 0.0 {
                return value;
            }
            // A uniform on [-a, a] has variance a^2 / 3.
            let half_width = (3.0 * variance).sqrt();
            let redrawn: Vec<f32> = (0..data.len()).map(|_| (mean + half_width * rng.random_range(-1.0..1.0)) as f32).collect();
            Tensor::from_data(TensorData::new(redrawn, value.shape()), &value.device())
        })
    }
}

/// Re-draws the initial weights reproducibly from `seed` (see [`SeededRedraw`]).
pub fn seeded_init(model: IptModel, seed: u64) -> IptModel {
    model.map(&mut SeededRedraw { seed, index: 0 })
}

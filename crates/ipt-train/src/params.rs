//! Seeded, reproducible initial weights.

use std::convert::Infallible;
use std::sync::Mutex;

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Device, Tensor};
use ipt_model::IptModel;

/// Reads every float parameter, which forces lazily initialised ones to draw their values now.
struct Touch;

impl ModuleVisitor for Touch {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let _ = param.val();
    }
}

/// Serialises seeded initialisations: the backend's generator is process-wide.
static INIT_LOCK: Mutex<()> = Mutex::new(());

/// Builds a model whose initial weights depend only on `seed`: the device's generator is seeded,
/// the model built and every parameter initialised in module order while no other seeded
/// initialisation can draw from the same generator.
pub fn seeded_init(build: impl FnOnce() -> IptModel, device: &Device, seed: u64) -> IptModel {
    seeded_try_init(|| Ok::<_, Infallible>(build()), device, seed).unwrap_or_else(|never| match never {})
}

/// [`seeded_init`] for a build that can fail.
pub fn seeded_try_init<E>(build: impl FnOnce() -> Result<IptModel, E>, device: &Device, seed: u64) -> Result<IptModel, E> {
    let _guard = INIT_LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    device.seed(seed);
    let model = build()?;
    model.visit(&mut Touch);
    Ok(model)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;
    use ipt_model::{ModulationConfig, Preset, Task};

    fn values(model: &IptModel) -> Vec<f32> {
        let mut all = Vec::new();
        struct Ordered<'a>(&'a mut Vec<f32>);
        impl ModuleVisitor for Ordered<'_> {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                self.0.extend(param.val().to_data().try_to_vec::<f32>().unwrap());
            }
        }
        model.visit(&mut Ordered(&mut all));
        all
    }

    #[test]
    fn seeded_init_is_reproducible() {
        let device = Device::default();
        let modulation = ModulationConfig::new(Task::ALL.to_vec());
        let make = |seed| values(&seeded_init(|| Preset::Tiny.config().init_modulated(&modulation, &device), &device, seed));
        let first = make(5);
        assert!(first == make(5), "same seed, same weights");
        assert!(first != make(6), "another seed, other weights");
    }
}

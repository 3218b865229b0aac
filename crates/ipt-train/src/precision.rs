//! Mixed-precision training (`precision = "bf16"` or `"f16"` in a training config): the forward
//! and backward passes compute in half precision while the parameters, the optimiser's moments
//! and the EMA stay `f32` in their flat buffers (master weights), as PyTorch's autocast with a
//! `GradScaler` trains. Each step the model's parameters are the `f32` buffer cast once to the
//! half type; the gradients come back in it, are gathered into one buffer and cast to `f32`
//! once; the loss is computed in `f32` from the output cast back.
//!
//! `bf16` has `f32`'s exponent range and needs nothing more. `f16` gradients underflow below
//! ~6e-8, so the loss is multiplied by a dynamic scale before the backward pass and the
//! gradients divided by it after ([`LossScale`]): a step whose gradients overflow is skipped on
//! the device (like a non-finite loss) and halves the scale; every [`GROWTH_INTERVAL`] steps
//! in a row without overflow double it (PyTorch's `GradScaler` defaults).
//!
//! Validation, checkpoints and exported weights use the `f32` buffers, so weight files are the
//! same whatever the precision. Whether half precision is faster is the device's business: on
//! GPUs with tensor cores it can be; on the CPU backends it is slower (the CPU kernels of
//! `ipt-kernels` are `f32`, so half tensors take Burn's generic ops) and only there to test.

use burn::module::{Module, Param};
use burn::tensor::{Bool, Device, FloatDType, Tensor};
use serde::{Deserialize, Serialize};

/// The float type training computes the forward and backward passes in.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// Everything in `f32` (the default).
    #[default]
    F32,
    /// `bfloat16` passes, `f32` master weights (CUDA; Vulkan stores bf16 but has no arithmetic).
    Bf16,
    /// IEEE half passes with dynamic loss scaling, `f32` master weights (Vulkan, CUDA).
    F16,
}

impl Precision {
    /// The float type of the passes.
    pub fn dtype(self) -> FloatDType {
        match self {
            Precision::F32 => FloatDType::F32,
            Precision::Bf16 => FloatDType::BF16,
            Precision::F16 => FloatDType::F16,
        }
    }

    /// The config's name.
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
            Precision::F16 => "f16",
        }
    }

    /// True for the default, which resolved configs leave out (so runs recorded before the
    /// option existed resume).
    pub fn is_f32(&self) -> bool {
        *self == Precision::F32
    }

    /// Whether the loss needs scaling in this precision.
    pub(crate) fn scales_loss(self) -> bool {
        self == Precision::F16
    }

    /// An error unless `device` computes in this precision.
    pub fn check(self, device: &Device) -> Result<(), crate::TrainError> {
        if device.supports_dtype(self.dtype()) {
            Ok(())
        } else {
            Err(crate::TrainError::Invalid(format!(
                "precision = \"{}\": the device {device:?} cannot compute in {:?}; use \"f32\"{}",
                self.name(),
                self.dtype(),
                if self == Precision::Bf16 { " or \"f16\"" } else { "" }
            )))
        }
    }
}

/// The loss scale's first value (PyTorch's `GradScaler` default).
pub(crate) const INITIAL_SCALE: f32 = 65536.0;

/// Steps in a row without overflow after which the scale doubles.
pub(crate) const GROWTH_INTERVAL: f32 = 2000.0;

/// The dynamic loss scale of `f16` training, on the device (saved in checkpoints).
#[derive(Module, Debug)]
pub(crate) struct LossScale {
    /// The factor the loss is multiplied by, `[1]`.
    pub scale: Param<Tensor<1>>,
    /// Steps since the last overflow or growth, `[1]`.
    pub good_steps: Param<Tensor<1>>,
}

impl LossScale {
    /// The initial scale on `device`.
    pub fn new(device: &Device) -> Self {
        Self::from_tensors(Tensor::full([1], INITIAL_SCALE, device), Tensor::zeros([1], device))
    }

    fn from_tensors(scale: Tensor<1>, good_steps: Tensor<1>) -> Self {
        let frozen = |tensor| Param::from_tensor(tensor).set_require_grad(false);
        Self { scale: frozen(scale), good_steps: frozen(good_steps) }
    }

    /// The scale, `[1]`.
    pub fn value(&self) -> Tensor<1> {
        self.scale.val()
    }

    /// The scale after a step whose gradients overflowed or not (`overflow`, `[1]`): halved
    /// after an overflow, doubled after [`GROWTH_INTERVAL`] good steps in a row.
    pub fn update(&self, overflow: Tensor<1, Bool>) -> Self {
        let good_steps = self.good_steps.val().add_scalar(1.0).mask_fill(overflow.clone(), 0.0);
        let grow = good_steps.clone().greater_equal_elem(GROWTH_INTERVAL);
        let value = self.value();
        let scale = value.clone().mask_where(overflow, value.clone().mul_scalar(0.5)).mask_where(grow.clone(), value.mul_scalar(2.0));
        Self::from_tensors(scale, good_steps.mask_fill(grow, 0.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    fn read(scale: &LossScale) -> (f32, f32) {
        (scale.value().into_scalar::<f32>(), scale.good_steps.val().into_scalar::<f32>())
    }

    fn flag(value: bool, device: &Device) -> Tensor<1, Bool> {
        Tensor::from_data(TensorData::new(vec![value], [1]), device)
    }

    #[test]
    fn the_scale_halves_on_overflow_and_doubles_after_the_growth_interval() {
        let device = Device::flex();
        let mut scale = LossScale::new(&device);
        assert_eq!(read(&scale), (INITIAL_SCALE, 0.0));
        scale = scale.update(flag(false, &device)).update(flag(false, &device));
        assert_eq!(read(&scale), (INITIAL_SCALE, 2.0));
        scale = scale.update(flag(true, &device));
        assert_eq!(read(&scale), (INITIAL_SCALE / 2.0, 0.0), "an overflow halves the scale and restarts the count");
        for _ in 0..GROWTH_INTERVAL as usize - 1 {
            scale = scale.update(flag(false, &device));
        }
        assert_eq!(read(&scale), (INITIAL_SCALE / 2.0, GROWTH_INTERVAL - 1.0));
        scale = scale.update(flag(false, &device));
        assert_eq!(read(&scale), (INITIAL_SCALE, 0.0), "the interval's last good step doubles it");
    }

    #[test]
    fn precisions_parse_by_name_and_flex_computes_in_each() {
        for precision in [Precision::F32, Precision::Bf16, Precision::F16] {
            let parsed: Precision = serde_json::from_str(&format!("\"{}\"", precision.name())).unwrap();
            assert_eq!(parsed, precision);
            precision.check(&Device::flex()).unwrap();
        }
        assert!(serde_json::from_str::<Precision>("\"f8\"").is_err());
    }
}

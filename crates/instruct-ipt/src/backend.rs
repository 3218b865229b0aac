//! Choosing a device among the backends the binary was built with.
//!
//! The library itself enables no backend: the features of this crate (`flex`, `ndarray`, `tch`,
//! `wgpu`, `vulkan`, `cuda`) only compile the matching arms below in, and are turned on by
//! binaries.

use burn::tensor::{Device, Tensor};

/// The kind of device a user asks for on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceChoice {
    /// The CPU: `flex`, else `tch` (libtorch), else `ndarray`.
    Cpu,
    /// The CPU through libtorch (feature `tch`), even when `flex` is built in too: for comparing
    /// the two (docs/performance.md).
    LibTorch,
    /// An NVIDIA GPU through CUDA.
    Cuda,
    /// Any GPU through wgpu (Vulkan on Linux).
    Wgpu,
}

impl std::str::FromStr for DeviceChoice {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "cpu" => Ok(DeviceChoice::Cpu),
            "libtorch" | "tch" => Ok(DeviceChoice::LibTorch),
            "cuda" => Ok(DeviceChoice::Cuda),
            "wgpu" | "vulkan" => Ok(DeviceChoice::Wgpu),
            other => Err(format!("unknown device '{other}' (expected cpu, libtorch, cuda or wgpu)")),
        }
    }
}

impl DeviceChoice {
    /// The name [`FromStr`](std::str::FromStr) reads back.
    pub fn name(self) -> &'static str {
        match self {
            DeviceChoice::Cpu => "cpu",
            DeviceChoice::LibTorch => "libtorch",
            DeviceChoice::Cuda => "cuda",
            DeviceChoice::Wgpu => "wgpu",
        }
    }
}

/// Why a device is not available.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    /// The binary was built without a backend for the device.
    #[error("this binary was built without a {} backend: rebuild with {how}", .device.name())]
    NotBuilt {
        /// The device asked for.
        device: DeviceChoice,
        /// How to build one in.
        how: &'static str,
    },
    /// The backend is built in but its first computation failed (a missing driver panics).
    #[error("the {} device failed to start: is its driver installed?", .device.name())]
    FailedToStart {
        /// The device asked for.
        device: DeviceChoice,
    },
}

/// The device for `choice`, checked by running a tiny computation on it, or why it is unavailable.
pub fn select_device(choice: DeviceChoice) -> Result<Device, DeviceError> {
    let (built, how) = match choice {
        DeviceChoice::Cpu => (cpu_device(), "`--features flex` (or tch, ndarray)"),
        DeviceChoice::LibTorch => (libtorch_device(), "`--features tch` (docs/performance.md, libtorch)"),
        DeviceChoice::Cuda => (cuda_device(), "`--features cuda`"),
        DeviceChoice::Wgpu => (wgpu_device(), "`--features vulkan` or `--features wgpu`"),
    };
    let device = built.ok_or(DeviceError::NotBuilt { device: choice, how })?;
    probe(&device, choice)?;
    Ok(device)
}

/// Backends panic rather than return errors when a driver is missing: turn that into an error.
fn probe(device: &Device, choice: DeviceChoice) -> Result<(), DeviceError> {
    let device = device.clone();
    std::panic::catch_unwind(move || Tensor::<1>::ones([2], &device).sum().into_scalar::<f32>())
        .map(|_| ())
        .map_err(|_| DeviceError::FailedToStart { device: choice })
}

#[allow(unreachable_code)]
fn cpu_device() -> Option<Device> {
    #[cfg(feature = "flex")]
    return Some(Device::flex());
    // Deprecated in Burn 0.22; kept opt-in because libtorch may still train faster on CPU.
    #[cfg(feature = "tch")]
    #[allow(deprecated)]
    return Some(Device::libtorch());
    // Deprecated in Burn 0.22, kept as the reference backend the performance work compares with.
    #[cfg(feature = "ndarray")]
    #[allow(deprecated)]
    return Some(Device::ndarray());
    None
}

#[allow(unreachable_code)]
fn libtorch_device() -> Option<Device> {
    #[cfg(feature = "tch")]
    #[allow(deprecated)]
    return Some(Device::libtorch());
    None
}

#[allow(unreachable_code)]
fn cuda_device() -> Option<Device> {
    #[cfg(feature = "cuda")]
    return Some(Device::cuda(0));
    None
}

#[allow(unreachable_code)]
fn wgpu_device() -> Option<Device> {
    #[cfg(feature = "vulkan")]
    return Some(Device::vulkan(burn::tensor::DeviceKind::DefaultDevice));
    #[cfg(feature = "wgpu")]
    return Some(Device::wgpu(burn::tensor::DeviceKind::DefaultDevice));
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_names_round_trip_and_unknown_names_are_listed() {
        for choice in [DeviceChoice::Cpu, DeviceChoice::LibTorch, DeviceChoice::Cuda, DeviceChoice::Wgpu] {
            assert_eq!(choice.name().parse::<DeviceChoice>(), Ok(choice));
        }
        assert_eq!("tch".parse::<DeviceChoice>(), Ok(DeviceChoice::LibTorch));
        assert_eq!("gpu".parse::<DeviceChoice>(), Err("unknown device 'gpu' (expected cpu, libtorch, cuda or wgpu)".to_string()));
    }

    #[cfg(not(feature = "tch"))]
    #[test]
    fn libtorch_without_its_feature_says_how_to_get_it() {
        let error = select_device(DeviceChoice::LibTorch).unwrap_err();
        assert!(matches!(error, DeviceError::NotBuilt { device: DeviceChoice::LibTorch, .. }));
        assert!(error.to_string().contains("--features tch"), "{error}");
    }
}

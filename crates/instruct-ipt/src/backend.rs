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
    /// The CPU through libtorch (feature `tch`), even when `flex` is built in too: it trains the
    /// tiny and small presets ~1.5-1.7x faster than flex (README, Benchmarks).
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

/// The device for `choice`, checked by running a tiny computation on it, or why it is unavailable.
pub fn select_device(choice: DeviceChoice) -> Result<Device, String> {
    let device = match choice {
        DeviceChoice::Cpu => cpu_device(),
        DeviceChoice::LibTorch => libtorch_device(),
        DeviceChoice::Cuda => cuda_device(),
        DeviceChoice::Wgpu => wgpu_device(),
    }?;
    probe(&device, choice)?;
    Ok(device)
}

/// Backends panic rather than return errors when a driver is missing: turn that into a message.
fn probe(device: &Device, choice: DeviceChoice) -> Result<(), String> {
    let device = device.clone();
    std::panic::catch_unwind(move || Tensor::<1>::ones([2], &device).sum().into_scalar::<f32>())
        .map(|_| ())
        .map_err(|_| format!("the {choice:?} device failed to start: is its driver installed?"))
}

#[allow(unreachable_code)]
fn cpu_device() -> Result<Device, String> {
    #[cfg(feature = "flex")]
    return Ok(Device::flex());
    // Deprecated in Burn 0.22; kept opt-in because libtorch may still train faster on CPU.
    #[cfg(feature = "tch")]
    #[allow(deprecated)]
    return Ok(Device::libtorch());
    // Deprecated in Burn 0.22, kept as the reference backend the performance work compares with.
    #[cfg(feature = "ndarray")]
    #[allow(deprecated)]
    return Ok(Device::ndarray());
    Err("this binary was built without a CPU backend (features flex, tch or ndarray)".into())
}

#[allow(unreachable_code)]
fn libtorch_device() -> Result<Device, String> {
    #[cfg(feature = "tch")]
    #[allow(deprecated)]
    return Ok(Device::libtorch());
    Err("this binary was built without libtorch: rebuild with `--features tch` (see README, Backends)".into())
}

#[allow(unreachable_code)]
fn cuda_device() -> Result<Device, String> {
    #[cfg(feature = "cuda")]
    return Ok(Device::cuda(0));
    Err("this binary was built without CUDA: rebuild with `--features cuda`".into())
}

#[allow(unreachable_code)]
fn wgpu_device() -> Result<Device, String> {
    #[cfg(feature = "vulkan")]
    return Ok(Device::vulkan(burn::tensor::DeviceKind::DefaultDevice));
    #[cfg(feature = "wgpu")]
    return Ok(Device::wgpu(burn::tensor::DeviceKind::DefaultDevice));
    Err("this binary was built without wgpu: rebuild with `--features wgpu` or `--features vulkan`".into())
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
        assert!(select_device(DeviceChoice::LibTorch).unwrap_err().contains("--features tch"));
    }
}

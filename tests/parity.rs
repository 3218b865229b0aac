//! Numerical parity with the PyTorch twin in `bench/pytorch`: the same weight file and input give
//! outputs within 1e-4 relative error. This also checks that our layers compute what the twin's
//! standard PyTorch ops compute (pixel shuffles, rolls, grouped convs, LayerNorm, tanh-GELU).
//!
//! `cargo xtask parity` installs the twin's venv and runs this test.

use std::path::{Path, PathBuf};
use std::process::Command;

use burn::tensor::{Device, Distribution, Tensor, TensorData};
use burn_store::{ModuleSnapshot, bridge};
use ipt_model::{IptConfig, IptModel, ModulationConfig, Preset, RankPolicy, Task, TaskWeights, WeightMetadata, save_weights};
use safetensors::{Dtype, SafeTensors, tensor::TensorView};

fn twin_folder() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../bench/pytorch")
}

/// Every parameter nudged by Gaussian noise, so norms, temperatures and task biases are all
/// non-trivial.
fn perturbed(mut model: IptModel, device: &Device) -> IptModel {
    let tensors = model
        .collect(None, None, false)
        .into_iter()
        .map(|snapshot| {
            let data = bridge::to_data(&snapshot).unwrap();
            let shape = snapshot.shape.as_slice().to_vec();
            let values = Tensor::<1>::from_data(data.clone().convert::<f32>().try_into_vec::<f32>().unwrap().as_slice(), device);
            let noise = Tensor::<1>::random([values.dims()[0]], Distribution::Normal(0.0, 0.05), device);
            let nudged = TensorData::new((values + noise).into_data().try_into_vec::<f32>().unwrap(), shape);
            bridge::from_data(nudged, snapshot.name.clone(), None)
        })
        .collect();
    let result = model.apply(tensors, None, None, false);
    assert!(result.errors.is_empty());
    model
}

fn f32_view<'a>(values: &'a [u8], shape: Vec<usize>) -> TensorView<'a> {
    TensorView::new(Dtype::F32, shape, values).unwrap()
}

fn bytes(tensor: &Tensor<2>) -> Vec<u8> {
    tensor.to_data().try_into_vec::<f32>().unwrap().iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn bytes4(tensor: &Tensor<4>) -> Vec<u8> {
    tensor.to_data().try_into_vec::<f32>().unwrap().iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Runs the twin on `weights` and `image` (and `tasks`), returning its `[B, 3, H, W]` output.
fn twin_restore(folder: &Path, weights: &Path, image: &Tensor<4>, tasks: Option<&Tensor<2>>) -> Vec<f32> {
    let python = twin_folder().join(".venv/bin/python");
    assert!(python.exists(), "no twin venv at {}: run `cargo xtask parity`", python.display());
    let inputs = folder.join("inputs.safetensors");
    let image_bytes = bytes4(image);
    let task_bytes = tasks.map(bytes);
    let mut views = vec![("image".to_string(), f32_view(&image_bytes, image.dims().to_vec()))];
    if let (Some(tasks), Some(task_bytes)) = (tasks, &task_bytes) {
        views.push(("task_weights".to_string(), f32_view(task_bytes, tasks.dims().to_vec())));
    }
    std::fs::write(&inputs, safetensors::serialize(views, None).unwrap()).unwrap();
    let output = folder.join("output.safetensors");
    let run = Command::new(python)
        .current_dir(twin_folder())
        .args(["parity.py", weights.to_str().unwrap(), inputs.to_str().unwrap(), output.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(run.status.success(), "the twin failed: {}", String::from_utf8_lossy(&run.stderr));
    let bytes = std::fs::read(output).unwrap();
    let tensors = SafeTensors::deserialize(&bytes).unwrap();
    let restored = tensors.tensor("restored").unwrap();
    restored.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
}

fn assert_parity(config: IptConfig, modulation: Option<ModulationConfig>, tasks: Option<Vec<f32>>) {
    let device = Device::flex();
    let folder = tempfile::tempdir().unwrap();
    let model = match &modulation {
        Some(modulation) => config.init_modulated(modulation, &device),
        None => config.init(&device),
    };
    let model = perturbed(model, &device);
    let weights = folder.path().join("weights.safetensors");
    save_weights(&model, &WeightMetadata::new(config, Task::ALL.to_vec()), &weights).unwrap();
    let image = Tensor::<4>::random([2, 3, 37, 53], Distribution::Default, &device);
    let task_tensor = tasks.map(|values| {
        let count = values.len() / 2;
        Tensor::<2>::from_data(TensorData::new(values, [2, count]), &device)
    });
    let ours: Vec<f32> =
        model.restore(image.clone(), task_tensor.clone().map(TaskWeights::new).as_ref()).into_data().try_into_vec().unwrap();
    let theirs = twin_restore(folder.path(), &weights, &image, task_tensor.as_ref());
    assert_eq!(ours.len(), theirs.len());
    let scale = theirs.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let worst = ours.iter().zip(&theirs).fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
    println!("max |burn - torch| = {worst:e}, relative {:e}", worst / scale);
    assert!(worst / scale <= 1e-4, "relative error {} exceeds 1e-4", worst / scale);
}

#[test]
#[ignore = "needs the PyTorch twin: `cargo xtask parity` installs it and runs this test"]
fn the_twin_matches_the_plain_tiny_backbone() {
    assert_parity(Preset::Tiny.config(), None, None);
}

#[test]
#[ignore = "needs the PyTorch twin: `cargo xtask parity` installs it and runs this test"]
fn the_twin_matches_a_modulated_model_on_a_mixed_soft_batch() {
    let modulation = ModulationConfig {
        tasks: vec![Task::Denoise, Task::Deblur, Task::Derain],
        rank: RankPolicy::Proportional { ratio: 0.25 },
        targets: ModulationConfig::paper_targets(),
    };
    // Two blocks at the shallow levels, so shifted windows are exercised where there are many.
    let config = IptConfig { encoder_blocks: [2, 2, 1, 2], ffn_expansion: 2.66, ..Preset::Tiny.config() };
    assert_parity(config, Some(modulation), Some(vec![1.0, 0.0, 0.0, 0.0, 0.3, 0.7]));
}

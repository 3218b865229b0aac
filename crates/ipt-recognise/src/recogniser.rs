//! [`Recogniser`]: load the network once, recognise many photos.

use std::collections::HashMap;
use std::path::Path;

use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Tensor, TensorData};
use burn_store::{ModuleSnapshot, SafetensorsStore};
use image::DynamicImage;

use crate::network::RecogniserNet;
use crate::views::{GLOBAL_SIDE, LOCAL_CROPS, LOCAL_SIDE, Views};
use crate::{Class, RecogniseError, Recognition};

/// Metadata key naming the file's kind, so a restorer's or router's weights are refused.
const KEY_KIND: &str = "instruct_ipt.kind";

/// The value of [`KEY_KIND`].
const KIND: &str = "recogniser";

/// Metadata key of the class names in output order.
const KEY_CLASSES: &str = "instruct_ipt.classes";

/// How errors and `inspect` name the bundled recogniser.
pub const BUNDLED_RECOGNISER: &str = "recogniser.safetensors (bundled)";

/// The shipped recogniser (see `crates/ipt-recognise/assets/README.md`), compiled in so blind
/// restoration works anywhere.
static BUNDLED_BYTES: &[u8] = include_bytes!("../assets/recogniser.safetensors");

/// A loaded recogniser on one device.
#[derive(Debug)]
pub struct Recogniser {
    net: RecogniserNet,
    device: Device,
}

impl Recogniser {
    /// Wraps a network (one just trained).
    pub fn new(net: RecogniserNet, device: &Device) -> Self {
        Self { net, device: device.clone() }
    }

    /// Loads the weight file at `path`.
    pub fn load(path: &Path, device: &Device) -> Result<Self, RecogniseError> {
        let bytes = std::fs::read(path).map_err(|source| RecogniseError::Io { path: path.into(), action: "read", source })?;
        Self::from_bytes(&bytes, path, device)
    }

    /// Loads the shipped recogniser (see [`BUNDLED_RECOGNISER`]) onto `device`.
    pub fn bundled(device: &Device) -> Result<Self, RecogniseError> {
        Self::from_bytes(BUNDLED_BYTES, Path::new(BUNDLED_RECOGNISER), device)
    }

    /// Loads the weight file at `path`, or the bundled recogniser when there is none.
    pub fn load_or_bundled(path: Option<&Path>, device: &Device) -> Result<Self, RecogniseError> {
        match path {
            Some(path) => Self::load(path, device),
            None => Self::bundled(device),
        }
    }

    /// Loads weights already in memory; `path` names their origin in errors.
    pub fn from_bytes(bytes: &[u8], path: &Path, device: &Device) -> Result<Self, RecogniseError> {
        let refuse = |reason: String| RecogniseError::Weights { path: path.into(), reason };
        let (_, header) = safetensors::SafeTensors::read_metadata(bytes).map_err(|error| refuse(error.to_string()))?;
        let metadata: HashMap<String, String> = header.metadata().clone().unwrap_or_default();
        if metadata.get(KEY_KIND).map(String::as_str) != Some(KIND) {
            return Err(refuse(format!("metadata '{KEY_KIND}' is not '{KIND}'")));
        }
        if metadata.get(KEY_CLASSES) != Some(&class_names()) {
            return Err(refuse(format!("trained for other classes than {}", class_names())));
        }
        let mut net = RecogniserNet::new(device);
        let mut store = SafetensorsStore::from_bytes(Some(bytes.to_vec()));
        let result = net.load_from(&mut store).map_err(|error| refuse(error.to_string()))?;
        if !result.missing.is_empty() || !result.errors.is_empty() || !result.unused.is_empty() {
            return Err(refuse(format!("missing {:?}, unexpected {:?}, errors {:?}", result.missing, result.unused, result.errors)));
        }
        Ok(Self::new(net, device))
    }

    /// The weight file's bytes, with `provenance` (how they were trained) in its metadata.
    pub fn to_bytes(&self, provenance: &str) -> Result<Vec<u8>, RecogniseError> {
        let fail = |error: String| RecogniseError::Weights { path: "(in memory)".into(), reason: error };
        let mut store = SafetensorsStore::from_bytes(None)
            .metadata(KEY_KIND, KIND)
            .metadata(KEY_CLASSES, class_names())
            .metadata("provenance", provenance);
        self.net.save_into(&mut store).map_err(|error| fail(error.to_string()))?;
        store.get_bytes().map_err(|error| fail(error.to_string()))
    }

    /// Writes the weights to `path` atomically.
    pub fn save(&self, path: &Path, provenance: &str) -> Result<(), RecogniseError> {
        ipt_core::write_atomically(path, &self.to_bytes(provenance)?).map_err(|source| RecogniseError::Io {
            path: path.into(),
            action: "write",
            source,
        })
    }

    /// The network.
    pub fn net(&self) -> &RecogniserNet {
        &self.net
    }

    /// Recognises one photo given as `[3, height, width]` planar RGB in `[0, 1]`.
    pub fn recognise(&self, rgb: &[f32], height: usize, width: usize) -> Recognition {
        self.recognise_views(&[Views::of(rgb, height, width)]).pop().expect("one recognition per photo")
    }

    /// Recognises a decoded image of any format and size (it reads a bounded number of pixels).
    pub fn recognise_image(&self, image: &DynamicImage) -> Recognition {
        self.recognise_views(&[Views::of_image(image)]).pop().expect("one recognition per photo")
    }

    /// Recognises a batch of photos' views.
    pub fn recognise_views(&self, views: &[Views]) -> Vec<Recognition> {
        if views.is_empty() {
            return Vec::new();
        }
        let (global, local) = stack(views, &self.device);
        let probabilities: Vec<f32> = sigmoid(self.net.forward(global, local)).into_data().try_into_vec().expect("f32 logits");
        probabilities.chunks_exact(Class::ALL.len()).map(|row| Recognition { probabilities: row.try_into().expect("7 classes") }).collect()
    }
}

/// The class names in output order, comma-separated.
fn class_names() -> String {
    Class::ALL.map(Class::name).join(",")
}

/// The views of a batch as the network's `[batch, 3, G, G]` and `[batch x crops, 3, L, L]` inputs.
pub fn stack(views: &[Views], device: &Device) -> (Tensor<4>, Tensor<4>) {
    let batch = views.len();
    let global: Vec<f32> = views.iter().flat_map(|view| view.global.iter().copied()).collect();
    let local: Vec<f32> = views.iter().flat_map(|view| view.local.iter().copied()).collect();
    (
        Tensor::from_data(TensorData::new(global, [batch, 3, GLOBAL_SIDE, GLOBAL_SIDE]), device),
        Tensor::from_data(TensorData::new(local, [batch * LOCAL_CROPS, 3, LOCAL_SIDE, LOCAL_SIDE]), device),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn photo(height: usize, width: usize) -> Vec<f32> {
        (0..3 * height * width).map(|i| ((i * 7919) % 1000) as f32 / 1000.0).collect()
    }

    #[test]
    fn weights_round_trip_and_recognition_is_deterministic() {
        let device = Device::flex();
        let recogniser = Recogniser::new(RecogniserNet::new(&device), &device);
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("recogniser.safetensors");
        recogniser.save(&path, "unit test").unwrap();
        let loaded = Recogniser::load(&path, &device).unwrap();
        let (rgb, height, width) = (photo(90, 130), 90, 130);
        let (a, b) = (recogniser.recognise(&rgb, height, width), loaded.recognise(&rgb, height, width));
        assert_eq!(a, b);
        assert!(a.probabilities.iter().all(|p| (0.0..=1.0).contains(p)));
        // A batch scores each photo as it would alone.
        let views = [Views::of(&rgb, height, width), Views::of(&photo(40, 40), 40, 40)];
        let batched = &loaded.recognise_views(&views)[0];
        assert!(batched.probabilities.iter().zip(&a.probabilities).all(|(x, y)| (x - y).abs() < 1e-5), "{batched:?} vs {a:?}");
    }

    #[test]
    fn the_bundled_recogniser_loads_and_reads_images_of_any_format() {
        let device = Device::flex();
        let recogniser = Recogniser::load_or_bundled(None, &device).unwrap();
        let photo = image::RgbImage::from_fn(120, 80, |x, y| image::Rgb([(x * 2) as u8, (y * 3) as u8, ((x + y) % 256) as u8]));
        let planar: Vec<f32> = (0..3).flat_map(|channel| photo.pixels().map(move |pixel| f32::from(pixel.0[channel]) / 255.0)).collect();
        let from_image = recogniser.recognise_image(&DynamicImage::ImageRgb8(photo.clone()));
        assert_eq!(from_image, recogniser.recognise(&planar, 80, 120));
        let sixteen_bit = recogniser.recognise_image(&DynamicImage::ImageRgb16(DynamicImage::ImageRgb8(photo).to_rgb16()));
        assert_eq!(sixteen_bit, from_image);
    }

    #[test]
    fn other_files_are_refused_by_name() {
        let device = Device::flex();
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("not-a-recogniser.safetensors");
        std::fs::write(&path, b"garbage").unwrap();
        let message = Recogniser::load(&path, &device).unwrap_err().to_string();
        assert!(message.contains("not-a-recogniser.safetensors"), "{message}");
    }
}

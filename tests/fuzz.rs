//! Fuzzed inputs through the library facade: seeded random and mutated image files of every
//! supported format and mutated weight files. Whatever the bytes, reading never panics, never
//! allocates beyond the limits, and every refusal names the file.
//!
//! The cases are seeded, so a failure reproduces; each test prints how many inputs were read
//! and refused. This binary holds only these tests, so the process's peak memory is theirs.

use std::io::Cursor;
use std::path::Path;

use instruct_ipt::image::{DynamicImage, ImageBuffer, ImageFormat, Rgba};
use instruct_ipt::{Device, IptConfig, Preset, Restorer, Task, WeightMetadata, read_image_within, save_weights};
use ipt_core::fuzz::{FuzzRandom, fuzz_files, mutate};

/// Peak resident memory of this process so far, in MiB.
fn peak_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

/// Memory a fuzz test may reach: the limits below allow a few MiB of pixels and a small model.
const PEAK_LIMIT_MIB: f64 = 2048.0;

/// `png` with every chunk's CRC recomputed where its length still fits the file, so that a
/// mutation reaches the decoder's parsing of the chunk instead of failing its checksum.
fn with_valid_crcs(mut png: Vec<u8>) -> Vec<u8> {
    let mut at = 8;
    while at + 12 <= png.len() {
        let length = u32::from_be_bytes(png[at..at + 4].try_into().unwrap()) as usize;
        let Some(end) = (at + 8).checked_add(length).filter(|end| end + 4 <= png.len()) else { break };
        let crc = crc32fast::hash(&png[at + 4..end]);
        png[end..end + 4].copy_from_slice(&crc.to_be_bytes());
        at = end + 4;
    }
    png
}

fn encoded(image: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut bytes = Cursor::new(Vec::new());
    image.write_to(&mut bytes, format).unwrap();
    bytes.into_inner()
}

#[test]
fn mutated_and_random_images_of_every_format_are_refused_by_name_or_decoded_within_the_limit() {
    const MAX_MEGAPIXELS: f64 = 0.05;
    let rgba = DynamicImage::ImageRgba8(ImageBuffer::from_fn(37, 23, |x, y| Rgba([(x * 7) as u8, (y * 11) as u8, (x * y) as u8, 200])));
    let rgb = DynamicImage::ImageRgb8(rgba.to_rgb8());
    let formats = [
        ("png", encoded(&rgba, ImageFormat::Png)),
        ("jpg", encoded(&rgb, ImageFormat::Jpeg)),
        ("tif", encoded(&rgba, ImageFormat::Tiff)),
        ("bmp", encoded(&rgba, ImageFormat::Bmp)),
        ("webp", encoded(&rgba, ImageFormat::WebP)),
    ];
    let folder = tempfile::tempdir().unwrap();
    let mut random = FuzzRandom::new(24);
    for (extension, valid) in &formats {
        let mutant = |random: &mut FuzzRandom| {
            let mutant = mutate(valid, random, 16);
            if *extension == "png" { with_valid_crcs(mutant) } else { mutant }
        };
        let tally = fuzz_files(folder.path(), extension, 300, &mut random, mutant, |path| {
            let image = read_image_within(path, MAX_MEGAPIXELS).map_err(|error| error.to_string())?;
            assert!(f64::from(image.width()) * f64::from(image.height()) <= MAX_MEGAPIXELS * 1e6, "{}", path.display());
            Ok(())
        });
        println!("{extension}: {tally:?}");
    }
    assert!(peak_mib() < PEAK_LIMIT_MIB, "peak memory {} MiB", peak_mib());
}

/// A small valid weight file (a narrow `tiny` with two task biases) and its bytes.
fn small_weights(folder: &Path) -> Vec<u8> {
    let device = Device::flex();
    let config = IptConfig { width: 8, heads: [1, 1, 2, 2], window_size: 2, grid_size: 2, ..Preset::Tiny.config() };
    let tasks = vec![Task::Denoise, Task::Derain];
    let model = config.init_modulated(&instruct_ipt::ModulationConfig::new(tasks.clone()), &device);
    let path = folder.join("valid.safetensors");
    save_weights(&model, &WeightMetadata::new(config, tasks), &path).unwrap();
    std::fs::read(path).unwrap()
}

/// The JSON header and the data of a safetensors file.
fn split(bytes: &[u8]) -> (serde_json::Map<String, serde_json::Value>, &[u8]) {
    let length = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    (serde_json::from_slice(&bytes[8..8 + length]).unwrap(), &bytes[8 + length..])
}

fn join(header: &serde_json::Map<String, serde_json::Value>, data: &[u8]) -> Vec<u8> {
    let header = serde_json::to_vec(header).unwrap();
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend(header);
    bytes.extend(data);
    bytes
}

/// The first tensor's name in the header (not the metadata entry).
fn first_tensor(header: &serde_json::Map<String, serde_json::Value>) -> String {
    header.keys().find(|key| *key != "__metadata__").unwrap().clone()
}

/// Writes `bytes` as `name` and loads it: it must be refused with the file's name.
fn refused(folder: &Path, name: &str, bytes: &[u8]) -> String {
    let path = folder.join(name);
    std::fs::write(&path, bytes).unwrap();
    match Restorer::load(&path, &Device::flex()) {
        Ok(_) => panic!("{name}: loaded"),
        Err(error) => {
            let message = error.to_string();
            assert!(message.contains(name), "{message}");
            message
        }
    }
}

#[test]
fn weight_files_with_lying_headers_bad_values_or_random_damage_are_refused_by_name() {
    let folder = tempfile::tempdir().unwrap();
    let valid = small_weights(folder.path());
    let (header, data) = split(&valid);
    let tensor = first_tensor(&header);
    let with_tensor = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut header = header.clone();
        edit(header.get_mut(&tensor).unwrap());
        join(&header, data)
    };

    let huge = refused(folder.path(), "huge.safetensors", &with_tensor(&|t| t["shape"] = serde_json::json!([1u64 << 40, 1u64 << 40])));
    assert!(huge.contains("not a safetensors weight file"), "{huge}");
    refused(folder.path(), "wrong-dtype.safetensors", &with_tensor(&|t| t["dtype"] = "I32".into()));
    refused(folder.path(), "float64.safetensors", &with_tensor(&|t| t["dtype"] = "F64".into()));
    refused(folder.path(), "shape.safetensors", &with_tensor(&|t| t["shape"] = serde_json::json!([1])));
    refused(folder.path(), "offsets.safetensors", &with_tensor(&|t| t["data_offsets"] = serde_json::json!([0, 1u64 << 50])));
    refused(folder.path(), "truncated.safetensors", &valid[..valid.len() - 10]);

    // A NaN and an infinity in the first tensor's data: refused with the tensor's name.
    let start = header[&tensor]["data_offsets"][0].as_u64().unwrap() as usize;
    for (name, value) in [("nan.safetensors", f32::NAN), ("inf.safetensors", f32::NEG_INFINITY)] {
        let mut bad = data.to_vec();
        bad[start..start + 4].copy_from_slice(&value.to_le_bytes());
        let message = refused(folder.path(), name, &join(&header, &bad));
        assert!(message.contains(&tensor) && message.contains("NaN or infinite"), "{message}");
    }

    // A config claiming an enormous model: refused before the model is built.
    let mut metadata = header["__metadata__"].clone();
    let mut config: serde_json::Value = serde_json::from_str(metadata["instruct_ipt.config"].as_str().unwrap()).unwrap();
    config["width"] = 32768.into(); // within the size limit, about 10^12 parameters
    metadata["instruct_ipt.config"] = config.to_string().into();
    let mut claiming = header.clone();
    claiming.insert("__metadata__".into(), metadata);
    let claims = refused(folder.path(), "claims-a-huge-model.safetensors", &join(&claiming, data));
    assert!(claims.contains("describes a backbone of"), "{claims}");

    let mut random = FuzzRandom::new(7);
    let load = |path: &Path| Restorer::load(path, &Device::flex()).map(drop).map_err(|error| error.to_string());
    println!("{:?}", fuzz_files(folder.path(), "safetensors", 200, &mut random, |random| mutate(&valid, random, 8), load));
    assert!(peak_mib() < PEAK_LIMIT_MIB, "peak memory {} MiB", peak_mib());
}

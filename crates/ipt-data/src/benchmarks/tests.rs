use super::*;

fn write_png(path: &Path, width: u32, height: u32) {
    write_image(path, width, height, [90, 120, 150]);
}

/// A flat image of `colour` at `path` (format from the extension), folders created.
fn write_image(path: &Path, width: u32, height: u32, colour: [u8; 3]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    image::RgbImage::from_pixel(width, height, image::Rgb(colour)).save(path).unwrap();
}

/// AirNet's test-pair layout (`input/` and `target/`, with a macOS `.DS_Store` as in the
/// published archives) under `dir`: inputs grey-blue, targets darker.
fn write_airnet_pairs(dir: &Path, inputs: &[&str], targets: &[&str]) {
    for name in inputs {
        write_image(&dir.join("input").join(name), 24, 16, [150, 150, 170]);
    }
    for name in targets {
        write_image(&dir.join("target").join(name), 24, 16, [60, 80, 100]);
    }
    std::fs::write(dir.join(".DS_Store"), b"\0\0\0\x01Bud1").unwrap();
}

#[test]
fn airnet_rain100l_and_sots_pairs_load() {
    let dir = tempfile::tempdir().unwrap();
    let (derain, dehaze) = (dir.path().join("airnet_derain"), dir.path().join("airnet_dehaze"));
    write_airnet_pairs(&derain, &["1.png", "2.png"], &["2.png", "1.png"]);
    write_airnet_pairs(&dehaze, &["0001_0.8_0.2.jpg", "0002_0.8_0.08.jpg"], &["0001.png", "0002.png"]);
    let rain = BenchmarkSet::open(&derain, Benchmark::Rain100L, None, 0).unwrap();
    assert_eq!(rain.len(), 2);
    let sots = open_pairs(&dehaze, Benchmark::Sots).unwrap();
    assert_eq!(sots.len(), 2);
    assert!(sots[0].input.ends_with("0001_0.8_0.2.jpg") && sots[0].target.ends_with("0001.png"), "{sots:?}");
    let image = rain.load(0).unwrap();
    assert_eq!((image.input.width, image.input.height), (image.target.width, image.target.height));
    assert_ne!(image.input, image.target);
}

#[test]
fn naming_rules_match_the_benchmarks_conventions() {
    assert_eq!(key_of(Path::new("rainy/rain-001.png"), NameKey::Number), "1");
    assert_eq!(key_of(Path::new("norain/norain-1.png"), NameKey::Number), "1");
    assert_eq!(key_of(Path::new("hazy/0001_0.8_0.2.jpg"), NameKey::BeforeUnderscore), "0001");
    assert_eq!(key_of(Path::new("low/22.png"), NameKey::Stem), "22");
}

#[test]
fn denoising_sets_add_the_same_noise_every_time() {
    let dir = tempfile::tempdir().unwrap();
    write_png(&dir.path().join("a.png"), 16, 16);
    let open = |seed| BenchmarkSet::open(dir.path(), Benchmark::Kodak24, Some(25.0), seed).unwrap().load(0).unwrap();
    assert_eq!(open(1), open(1));
    assert_ne!(open(1).input, open(2).input);
    let missing_sigma = BenchmarkSet::open(dir.path(), Benchmark::Cbsd68, None, 0).unwrap_err();
    assert!(missing_sigma.to_string().contains("sigma"));
}

#[test]
fn gopro_sequences_are_collected() {
    let dir = tempfile::tempdir().unwrap();
    for sequence in ["GOPR0384_11_00", "GOPR0385_11_01"] {
        write_png(&dir.path().join(sequence).join("blur/000001.png"), 8, 8);
        write_png(&dir.path().join(sequence).join("sharp/000001.png"), 8, 8);
    }
    assert_eq!(open_pairs(dir.path(), Benchmark::GoPro).unwrap().len(), 2);
}

#[test]
fn broken_folders_give_errors_naming_the_files() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write_png(&root.join("low/1.png"), 8, 8);
    write_png(&root.join("low/2.png"), 8, 8);
    write_png(&root.join("high/1.png"), 8, 8);
    let missing = open_pairs(root, Benchmark::Lol).unwrap_err().to_string();
    assert!(missing.contains("2.png") && missing.contains("high"), "{missing}");

    write_png(&root.join("high/2.png"), 8, 8);
    write_png(&root.join("high/3.png"), 8, 8);
    let orphan = open_pairs(root, Benchmark::Lol).unwrap_err().to_string();
    assert!(orphan.contains("3.png"), "{orphan}");

    std::fs::remove_file(root.join("high/3.png")).unwrap();
    write_png(&root.join("high/2.png"), 9, 8);
    let pairs = open_pairs(root, Benchmark::Lol).unwrap();
    let mismatch = pairs[1].load().unwrap_err().to_string();
    assert!(mismatch.contains("low/2.png") && mismatch.contains("high/2.png"), "{mismatch}");

    let unknown = open_pairs(root, Benchmark::Csd).unwrap_err().to_string();
    assert!(unknown.contains("CSD") && unknown.contains("Snow/ + Gt/"), "{unknown}");
}

#[test]
fn ambiguous_inputs_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    write_png(&dir.path().join("rainy/rain-1.png"), 8, 8);
    write_png(&dir.path().join("rainy/rain-001.png"), 8, 8);
    write_png(&dir.path().join("norain/norain-1.png"), 8, 8);
    let message = open_pairs(dir.path(), Benchmark::Rain100L).unwrap_err().to_string();
    assert!(message.contains("rain-1.png") && message.contains("rain-001.png"), "{message}");
}

//! `cargo xtask samples`: rebuilds the bundled samples under `datasets/samples/`: three photos
//! from the scikit-image 0.25.2 wheel on PyPI (public domain / CC0, see LICENSE.md there),
//! shrunk to a 256-pixel short side, then degraded once per task by our own synthesizers as
//! `datasets/samples/samples.toml` says (seeded, with a manifest): the same files every time.

use anyhow::{Context, Result};
use image::imageops::FilterType;
use ipt_data::Rgb;
use ipt_data::eval_set::EvalSetSpec;

use crate::parity::workspace_root;
use crate::pypi::Wheel;

const PACKAGE: &str = "scikit-image==0.25.2";
/// Pins one wheel, so its checksum is the same on every machine.
const PLATFORM: [&str; 8] = ["--platform", "manylinux_2_17_x86_64", "--python-version", "3.11", "--implementation", "cp", "--abi", "cp311"];
const WHEEL_SHA256: &str = "24cc986e1f4187a12aa319f777b36008764e856e5013666a4a83f8df083c2641";
/// scikit-image's `skimage/data/<name>.png`.
const PHOTOS: [&str; 3] = ["astronaut", "chelsea", "coffee"];
/// Short side of the bundled photos: big enough to see, small enough to restore in a second on CPU.
const SHORT_SIDE: u32 = 256;

/// Fetches the photos and writes the clean and degraded samples.
pub fn run() -> Result<()> {
    let samples = workspace_root().join("datasets/samples");
    println!("downloading {PACKAGE} from PyPI (15 MB)");
    let mut wheel = Wheel::download(PACKAGE, &PLATFORM, WHEEL_SHA256)?;
    for photo in PHOTOS {
        let bytes = wheel.read(&format!("skimage/data/{photo}.png"))?;
        let image = image::load_from_memory(&bytes).with_context(|| format!("skimage/data/{photo}.png"))?.to_rgb8();
        let scale = SHORT_SIDE as f64 / image.width().min(image.height()) as f64;
        let (width, height) = ((image.width() as f64 * scale).round() as u32, (image.height() as f64 * scale).round() as u32);
        let small = image::imageops::resize(&image, width, height, FilterType::Lanczos3);
        let path = samples.join("clean").join(format!("{photo}.png"));
        Rgb::from_rgb8(&small).write_png(&path)?;
        println!("wrote {} ({width}x{height})", path.display());
    }
    let spec = EvalSetSpec::load(&samples.join("samples.toml"))?;
    for (dir, manifest) in spec.build(&samples)? {
        println!("{}: {} degraded photos", dir.display(), manifest.images.len());
    }
    Ok(())
}

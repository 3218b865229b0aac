//! `cargo xtask compound`: how a request naming two problems ("dark and grainy") should be
//! applied, measured on doubly-degraded photos of the training spec's validation split (never
//! eval/): one pass with the two tasks' weights mixed half and half (what the router's soft
//! weights do), the two tasks one after the other in either order, or one task alone.

use std::path::PathBuf;

use anyhow::Result;
use instruct_ipt::{Device, Restorer, Task};
use ipt_data::random::{label, rng_for, task_label};
use ipt_data::{DatasetSpec, Degradation, Rgb};
use ipt_eval::grid::center_crop;
use ipt_eval::metrics::{Protocol, score};

use crate::parity::workspace_root;

/// Options of `cargo xtask compound`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Weight file; the bundled weights when omitted.
    #[arg(long)]
    weights: Option<PathBuf>,
    /// Training spec whose validation photos are degraded.
    #[arg(long, default_value = "datasets/all-in-one.toml")]
    spec: PathBuf,
    /// Side of the centre crop restored per photo.
    #[arg(long, default_value_t = 192)]
    crop: usize,
}

/// Problem pairs, each degradation applied in this order (the second over the first).
const PAIRS: [(Task, Task); 4] =
    [(Task::Dehaze, Task::Derain), (Task::Dehaze, Task::Denoise), (Task::LowLight, Task::Denoise), (Task::Dehaze, Task::Desnow)];

/// Prints, per pair, the mean PSNR of each way of applying the two tasks.
pub fn run(args: Args) -> Result<()> {
    let root = workspace_root();
    let device = Device::flex();
    let restorer = Restorer::load_or_bundled(args.weights.map(|path| root.join(path)).as_deref(), &device)?;
    let spec = DatasetSpec::load(&root.join(&args.spec))?;
    let (_, validation) = spec.split()?;
    let photos: Vec<(String, Rgb)> =
        validation.iter().map(|path| Ok((path.display().to_string(), center_crop(&Rgb::read(path)?, args.crop)))).collect::<Result<_>>()?;
    println!(
        "{} validation photos of {}, {}x{} centre crops; mean PSNR (dB, RGB, 8-bit)\n",
        photos.len(),
        args.spec.display(),
        args.crop,
        args.crop
    );
    println!(
        "| problems | degraded | first alone | second alone | soft mix 50/50 | first then second | second then first |\n|---|---|---|---|---|---|---|"
    );
    for (first, second) in PAIRS {
        let mut sums = [0f64; 6];
        for (name, clean) in &photos {
            let degrade = |image: &Rgb, task: Task| {
                let params = Degradation::default_for(task).sample(&mut rng_for(7, &[task_label(task), label(name)]));
                params.apply(image)
            };
            let degraded = degrade(&degrade(clean, first), second);
            let restore = |image: &Rgb, weights: &[(Task, f32)]| -> Result<Rgb> {
                let data = restorer.restore_planar_mixed(image.data.clone(), image.height, image.width, weights)?;
                Ok(Rgb { data, width: image.width, height: image.height })
            };
            let outputs = [
                degraded.clone(),
                restore(&degraded, &[(first, 1.0)])?,
                restore(&degraded, &[(second, 1.0)])?,
                restore(&degraded, &[(first, 0.5), (second, 0.5)])?,
                restore(&restore(&degraded, &[(first, 1.0)])?, &[(second, 1.0)])?,
                restore(&restore(&degraded, &[(second, 1.0)])?, &[(first, 1.0)])?,
            ];
            for (sum, output) in sums.iter_mut().zip(&outputs) {
                *sum += score(output, clean, &Protocol::default())?.psnr;
            }
        }
        let means: Vec<String> = sums.iter().map(|sum| format!("{:.2}", sum / photos.len() as f64)).collect();
        println!("| {first} + {second} | {} |", means.join(" | "));
    }
    Ok(())
}

//! `cargo xtask showcase`: the README's before/after picture. Each row is one bundled sample
//! restored by the bundled weights from a plain sentence routed by the bundled text router:
//! degraded input | restored | clean target (centre crops), written to
//! `datasets/samples/before-after.png`.

use anyhow::{Context, Result, bail};
use instruct_ipt::{Decision, Device, Restorer, Router};
use ipt_data::Rgb;
use ipt_eval::grid::{CROP, center_crop, compose};
use ipt_eval::metrics::{Protocol, score};

use crate::parity::workspace_root;

/// (task folder, photo, instruction) per row, as the README lists them.
pub const ROWS: [(&str, &str, &str); 6] = [
    ("denoise", "chelsea", "pls remove the nois"),
    ("deblur", "coffee", "my hand shook, it's all smeared"),
    ("derain", "chelsea", "please get rid of the rain"),
    ("dehaze", "coffee", "it was so foggy"),
    ("desnow", "astronaut", "too much snow in the way"),
    ("low_light", "astronaut", "way too dark, brighten it"),
];

/// Restores every row and writes the picture; prints each row's routing and PSNR before/after.
pub fn run() -> Result<()> {
    let samples = workspace_root().join("datasets/samples");
    let device = Device::flex();
    let (router, restorer) = (Router::bundled(&device), Restorer::bundled(&device)?);
    println!("| sample | instruction | routed to | PSNR degraded | PSNR restored |\n|---|---|---|---|---|");
    let mut rows = Vec::new();
    for (task, photo, instruction) in ROWS {
        let set = samples.join("degraded").join(task);
        let (input_path, target_path) = (set.join("input").join(format!("{photo}.png")), set.join("target").join(format!("{photo}.png")));
        let Decision::Restore(weights) = router.route(instruction).decision else {
            bail!("the bundled router leaves '{instruction}' unchanged");
        };
        let input = instruct_ipt::read_image(&input_path)?;
        let restored = Rgb::from_rgb8(&restorer.restore_requested(&input, &weights)?.to_rgb8());
        let (input, target) = (Rgb::read(&input_path)?, Rgb::read(&target_path)?);
        let psnr = |image: &Rgb| score(image, &target, &Protocol::default()).map(|score| score.psnr).context("scoring");
        let routed: Vec<String> = weights.iter().map(|(task, weight)| format!("{task} {:.0}%", weight * 100.0)).collect();
        println!("| {task}/{photo} | \"{instruction}\" | {} | {:.2} dB | {:.2} dB |", routed.join(", "), psnr(&input)?, psnr(&restored)?);
        rows.push([input, restored, target].iter().map(|image| center_crop(image, CROP)).collect());
    }
    let path = samples.join("before-after.png");
    compose(&rows).write_png(&path)?;
    println!("wrote {}", path.display());
    Ok(())
}

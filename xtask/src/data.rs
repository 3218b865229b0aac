//! `cargo xtask data`: dataset statistics, the depth-proxy check against real Middlebury depth,
//! a contact sheet with one example of every degradation, and (optionally) the fixed
//! evaluation sets.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use ipt_data::degrade::haze::{colour_attenuation_depth, depth_proxy};
use ipt_data::random::rng_for;
use ipt_data::{DatasetSpec, EvalSetSpec, Rgb};

/// Options of `cargo xtask data`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The training dataset spec.
    #[arg(long, default_value = "datasets/all-in-one.toml")]
    spec: PathBuf,
    /// Where the contact sheet is written.
    #[arg(long, default_value = "out/data")]
    out: PathBuf,
    /// Also build the fixed evaluation sets of this spec (under `out/eval-sets`).
    #[arg(long)]
    eval_sets: Option<PathBuf>,
    /// Seeds in the contact sheet (one block of task rows each).
    #[arg(long, default_value_t = 2)]
    rows: usize,
    /// The photo of the contact sheet [default: the first validation photo].
    #[arg(long)]
    photo: Option<PathBuf>,
}

/// Prints statistics, checks the depth proxy, writes the contact sheet.
pub fn run(args: Args) -> Result<()> {
    let spec = DatasetSpec::load(&args.spec)?;
    let root = spec.data_root()?;
    println!("dataset '{}' from {}", spec.name, root.display());
    let (training, validation) = spec.split()?;
    let mut megapixels = 0.0;
    let (mut smallest, mut largest) = ((u32::MAX, u32::MAX), (0u32, 0u32));
    let area = |(width, height): (u32, u32)| u64::from(width) * u64::from(height);
    for path in training.iter().chain(&validation) {
        let (width, height) = image::image_dimensions(path).with_context(|| path.display().to_string())?;
        megapixels += f64::from(width) * f64::from(height) / 1e6;
        if area((width, height)) < area(smallest) {
            smallest = (width, height);
        }
        if area((width, height)) > area(largest) {
            largest = (width, height);
        }
    }
    for folder in &spec.clean {
        let count = training.iter().chain(&validation).filter(|path| path.starts_with(root.join(folder))).count();
        println!("  {:<20} {count:>4} photos", folder.display());
    }
    println!(
        "  {} photos ({megapixels:.1} MP): {} training, {} validation; smallest {}x{}, largest {}x{}",
        training.len() + validation.len(),
        training.len(),
        validation.len(),
        smallest.0,
        smallest.1,
        largest.0,
        largest.1
    );
    for (task, degradation) in &spec.tasks {
        println!("  {task:<10} {}", serde_json::to_string(degradation)?);
    }
    depth_check(&root)?;
    let photo = args.photo.as_ref().unwrap_or(&validation[0]);
    let sheet = contact_sheet(&spec, photo, args.rows)?;
    let path = args.out.join("contact-sheet.png");
    sheet.write_png(&path)?;
    println!("contact sheet {} of {}: per seed, one row per task: clean, then one draw of each family:", path.display(), photo.display());
    for (task, degradation) in &spec.tasks {
        let kinds: Vec<String> = degradation.families().iter().map(|family| family.kind()).collect();
        println!("  {task:<10} {}", kinds.join(", "));
    }
    if let Some(eval_spec) = args.eval_sets {
        let eval_spec = EvalSetSpec::load(&eval_spec)?;
        for (dir, manifest) in eval_spec.build(Path::new("out/eval-sets"))? {
            println!("eval set {}: {} images of {}", dir.display(), manifest.images.len(), manifest.task);
        }
    }
    Ok(())
}

/// Rank correlation of the haze depth proxy with real depth (1 / disparity) on the Middlebury
/// scenes in `<root>/depth`, next to the naive "farther towards the top" prior.
fn depth_check(root: &Path) -> Result<()> {
    let depth = root.join("depth");
    let scenes = [
        ("aloe", read_disparity_png(&depth.join("aloeGT.png"))?, Rgb::read(&depth.join("aloeL.jpg"))?),
        ("motorcycle", read_disparity_npz(&depth.join("motorcycle_disp.npz"))?, Rgb::read(&depth.join("motorcycle_left.png"))?),
    ];
    println!("haze depth proxy vs Middlebury depth (Spearman rank correlation with 1/disparity, valid pixels):");
    for (name, disparity, photo) in scenes {
        if disparity.len() != photo.pixels() {
            bail!("{name}: disparity has {} values for a {}x{} photo", disparity.len(), photo.width, photo.height);
        }
        let proxy = depth_proxy(&photo);
        let rows: Vec<f32> = (0..photo.pixels()).map(|index| 1.0 - (index / photo.width) as f32 / photo.height as f32).collect();
        let valid: Vec<usize> = (0..disparity.len()).filter(|&index| disparity[index].is_finite() && disparity[index] > 0.0).collect();
        let truth: Vec<f32> = valid.iter().map(|&index| 1.0 / disparity[index]).collect();
        let pick = |values: &[f32]| valid.iter().map(|&index| values[index]).collect::<Vec<f32>>();
        let colour = colour_attenuation_depth(&photo);
        println!(
            "  {name:<11} proxy {:+.3}   (top-is-far prior alone {:+.3}, colour attenuation prior alone {:+.3}; {} valid pixels)",
            spearman(&pick(&proxy), &truth),
            spearman(&pick(&rows), &truth),
            spearman(&pick(&colour), &truth),
            valid.len()
        );
    }
    Ok(())
}

/// Per seed, one row per task: the clean crop, then one draw of each of the task's families.
fn contact_sheet(spec: &DatasetSpec, photo: &Path, seeds: usize) -> Result<Rgb> {
    let clean = Rgb::read(photo)?;
    let side = 192.min(clean.width).min(clean.height);
    let crop = clean.crop_reflect(((clean.width - side) / 2) as isize, ((clean.height - side) / 2) as isize, side, side);
    let gutter = 4;
    let columns = 1 + spec.tasks.values().map(|degradation| degradation.families().len()).max().unwrap_or(0);
    let rows = seeds * spec.tasks.len();
    let mut sheet = Rgb::filled(columns * (side + gutter) - gutter, rows * (side + gutter) - gutter, 1.0);
    for seed in 0..seeds {
        for (task_row, degradation) in spec.tasks.values().enumerate() {
            let mut tiles = vec![crop.clone()];
            tiles.extend(degradation.families().iter().map(|family| family.sample(&mut rng_for(seed as u64, &[])).apply(&crop)));
            let top = (seed * spec.tasks.len() + task_row) * (side + gutter);
            for (column, tile) in tiles.iter().enumerate() {
                paste(&mut sheet, tile, column * (side + gutter), top);
            }
        }
    }
    Ok(sheet)
}

fn paste(sheet: &mut Rgb, tile: &Rgb, left: usize, top: usize) {
    let width = sheet.width;
    for channel in 0..3 {
        let source = tile.channel(channel);
        let target = sheet.channel_mut(channel);
        for y in 0..tile.height {
            target[(top + y) * width + left..][..tile.width].copy_from_slice(&source[y * tile.width..][..tile.width]);
        }
    }
}

/// Spearman's rank correlation (Pearson correlation of the ranks).
fn spearman(a: &[f32], b: &[f32]) -> f64 {
    let (ra, rb) = (ranks(a), ranks(b));
    let n = ra.len() as f64;
    let (ma, mb) = (ra.iter().sum::<f64>() / n, rb.iter().sum::<f64>() / n);
    let covariance: f64 = ra.iter().zip(&rb).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let spread = |r: &[f64], m: f64| r.iter().map(|x| (x - m).powi(2)).sum::<f64>().sqrt();
    covariance / (spread(&ra, ma) * spread(&rb, mb))
}

/// Average ranks (ties share the mean rank).
fn ranks(values: &[f32]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&i, &j| values[i].total_cmp(&values[j]));
    let mut ranks = vec![0.0; values.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start;
        while end + 1 < order.len() && values[order[end + 1]] == values[order[start]] {
            end += 1;
        }
        let mean = (start + end) as f64 / 2.0;
        order[start..=end].iter().for_each(|&index| ranks[index] = mean);
        start = end + 1;
    }
    ranks
}

/// An 8-bit disparity map (0 = unknown), row-major.
fn read_disparity_png(path: &Path) -> Result<Vec<f32>> {
    let image = image::open(path).with_context(|| path.display().to_string())?.to_luma8();
    Ok(image.pixels().map(|pixel| f32::from(pixel.0[0])).collect())
}

/// The single float32 array of a `.npz` archive (inf = unknown), row-major.
fn read_disparity_npz(path: &Path) -> Result<Vec<f32>> {
    let file = std::fs::File::open(path).with_context(|| path.display().to_string())?;
    let mut archive = zip::ZipArchive::new(file).with_context(|| format!("{}: not a zip archive", path.display()))?;
    let mut bytes = Vec::new();
    archive.by_index(0)?.read_to_end(&mut bytes)?;
    if !bytes.starts_with(b"\x93NUMPY") || bytes.len() < 10 {
        bail!("{}: the archive's first member is not a .npy array", path.display());
    }
    let (header_len, offset) = match bytes[6] {
        1 => (usize::from(u16::from_le_bytes([bytes[8], bytes[9]])), 10),
        _ => (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize, 12),
    };
    let header = String::from_utf8_lossy(&bytes[offset..offset + header_len]);
    if !header.contains("'<f4'") || header.contains("'fortran_order': True") {
        bail!("{}: expected a C-ordered little-endian float32 array, header {header}", path.display());
    }
    Ok(bytes[offset + header_len..].chunks_exact(4).map(|chunk| f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]])).collect())
}

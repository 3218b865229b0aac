//! `instruct-ipt inspect`: what the recogniser sees in a photo, and what blind restoration
//! would do with it.

use std::path::Path;

use anyhow::Result;
use instruct_ipt::{Class, Recogniser, application_order, read_image_within};

/// Prints the probability of every class for the image at `path`, most likely first, and the
/// verdict of blind restoration.
pub fn run(path: &Path, recogniser: &Recogniser, max_megapixels: f64) -> Result<()> {
    let recognition = recogniser.recognise_image(&read_image_within(path, max_megapixels)?);
    let mut ranked: Vec<(Class, f32)> = Class::ALL.iter().map(|&class| (class, recognition.probability(class))).collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
    for (class, probability) in ranked {
        println!("{:>10} {:>6.1}%", class.name(), 100.0 * probability);
    }
    let tasks = recognition.blind_tasks();
    if tasks.is_empty() {
        println!("verdict: looks clean; blind restoration leaves it unchanged");
    } else {
        let weights: Vec<_> = tasks.iter().map(|&task| (task, 1.0)).collect();
        let order: Vec<&str> = application_order(&weights).iter().map(|task| task.name()).collect();
        println!("verdict: {}; blind restoration applies {}", recognition.summary(), order.join(" then "));
    }
    Ok(())
}

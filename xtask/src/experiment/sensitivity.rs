//! `cargo xtask experiment sensitivity`: which weights does a task move? Fine-tune the
//! mixed-trained plain model on each task alone and compare each layer group's weights before
//! and after by cosine similarity (paper Table 2, the evidence for which groups get task biases).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::Result;
use ipt_model::{LayerGroup, Task};

use super::arms::{Arm, Context, PhasePlan, TrainedArm};
use super::report::reproduce;
use super::table1;
use super::weights::{cosine, read};

/// The two tasks of the experiments, fine-tuned one at a time.
const TASKS: [Task; 2] = [Task::Denoise, Task::Deblur];

/// Paper Table 2's cosine similarities, per group.
const PAPER: [(LayerGroup, f64); 9] = [
    (LayerGroup::Embedder, 0.97),
    (LayerGroup::Norm, 0.99),
    (LayerGroup::Qkv, 0.72),
    (LayerGroup::AttnProj, 0.80),
    (LayerGroup::Ffn, 0.73),
    (LayerGroup::Downsample, 0.52),
    (LayerGroup::Upsample, 0.52),
    (LayerGroup::ChannelReduction, 0.73),
    (LayerGroup::Output, 0.68),
];

/// The arm fine-tuning the plain mixed-trained model (`base`) on `task` alone for half the
/// base schedule, with a short warm-up.
fn fine_tune(task: Task, base: &TrainedArm) -> Result<Arm> {
    let weights = std::path::absolute(&base.weights)?;
    Ok(Arm {
        label: format!("fine-tuned on {task}"),
        stem: format!("finetune_{task}"),
        overrides: vec!["conditioning.kind=none".into(), format!("init_backbone={}", weights.display()), "optim.warmup_steps=25".into()],
        steps: 0.5,
        phases: vec![PhasePlan { share: 1.0, trainable: "synchronous", tasks: Some(vec![task]) }],
    })
}

/// Trains (or reuses) the plain mixed model and one fine-tune per task.
pub fn fine_tunes(context: &Context) -> Result<(TrainedArm, Vec<(Task, TrainedArm)>)> {
    let base = table1::plain().train(context)?;
    let tuned = TASKS.iter().map(|&task| Ok((task, fine_tune(task, &base)?.train(context)?))).collect::<Result<Vec<_>>>()?;
    Ok((base, tuned))
}

/// Runs the fine-tunes, measures and writes the report.
pub fn run(context: &Context) -> Result<()> {
    let (base, tuned) = fine_tunes(context)?;
    let before = read(&base.weights)?;
    // group -> per task: cosines of the group's tensors.
    let mut cosines: BTreeMap<LayerGroup, Vec<Vec<f64>>> = BTreeMap::new();
    for (index, (_, arm)) in tuned.iter().enumerate() {
        for (name, after) in read(&arm.weights)? {
            let (Some(group), Some(original)) = (LayerGroup::of_path(&name), before.get(&name)) else { continue };
            let per_task = cosines.entry(group).or_insert_with(|| vec![Vec::new(); tuned.len()]);
            per_task[index].push(cosine(&original.data, &after.data));
        }
    }
    let mean = |values: &[f64]| values.iter().sum::<f64>() / values.len().max(1) as f64;
    let rows: Vec<(LayerGroup, Vec<f64>, f64)> = cosines
        .iter()
        .map(|(group, per_task)| {
            let means: Vec<f64> = per_task.iter().map(|values| mean(values)).collect();
            let overall = mean(&means);
            (*group, means, overall)
        })
        .collect();

    let mut text = String::from("# Paper Table 2 at small scale: which weights does a task move?\n\n## What the paper reports\n\n");
    text.push_str("After fine-tuning a mixed-trained IPT-V2 on one task, the cosine similarity of each layer group's weights before and after: the image embedder (0.97) and LayerNorm (0.99) hardly change; up/down-sampling (0.52), the output layer (0.68), QKV (0.72), FFN and channel reduction (0.73) and the post-attention projection (0.80) change most. These task-sensitive groups get the task biases.\n\n## What we measured\n\n");
    let ours: Vec<(LayerGroup, f64)> = rows.iter().map(|(group, _, overall)| (*group, *overall)).collect();
    let compared: Vec<(f64, f64)> =
        PAPER.iter().filter_map(|(group, paper)| ours.iter().find(|(g, _)| g == group).map(|(_, value)| (*value, *paper))).collect();
    let correlation = spearman(&compared);
    let lowest = ours.iter().min_by(|a, b| a.1.total_cmp(&b.1)).map_or("—", |(group, _)| group.name());
    let insensitive = [LayerGroup::Embedder, LayerGroup::Norm];
    let median = {
        let mut values: Vec<f64> = ours.iter().map(|(_, value)| *value).collect();
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    let stable = insensitive.iter().filter(|group| ours.iter().any(|(g, value)| g == *group && *value >= median)).count();
    let _ = writeln!(
        text,
        "- The group that moved most is `{lowest}` (the paper: up/down-sampling). {stable} of the paper's 2 task-insensitive groups (embedder, norms) are at or above our median similarity. Spearman rank correlation between our mean similarities and the paper's over the {} groups both report: {correlation:.2} (1 = same order).",
        compared.len()
    );
    let _ = writeln!(
        text,
        "- Our fine-tunes are short ({} steps from a {}-step mixed model), so every similarity is close to 1: the order of the groups is the comparable part, not the values.\n",
        tuned[0].1.config.schedule.steps, base.config.schedule.steps
    );
    let _ = write!(
        text,
        "| group | {} | mean | paper |\n|---|{}---|---|\n",
        TASKS.map(|task| format!("cos, {task}")).join(" | "),
        "---|".repeat(TASKS.len())
    );
    for (group, means, overall) in &rows {
        let paper = PAPER.iter().find(|(g, _)| g == group).map_or("—".to_string(), |(_, value)| format!("{value:.2}"));
        let cells: Vec<String> = means.iter().map(|value| format!("{value:.4}")).collect();
        let _ = writeln!(text, "| {} | {} | {overall:.4} | {paper} |", group.name(), cells.join(" | "));
    }
    let _ = writeln!(
        text,
        "\nCosine similarity per parameter tensor between the plain mixed model and each fine-tune (EMA weights), averaged over the tensors of each group (`LayerGroup::of_path`).\n"
    );
    let arms: Vec<&TrainedArm> = std::iter::once(&base).chain(tuned.iter().map(|(_, arm)| arm)).collect();
    text.push_str(&reproduce(context, &arms));
    std::fs::create_dir_all(&context.out)?;
    ipt_core::write_atomically(&context.out.join("README.md"), text.as_bytes())?;
    println!("{text}\nwrote {}", context.out.display());
    Ok(())
}

/// Spearman's rank correlation of the pairs (ties share their mean rank).
fn spearman(pairs: &[(f64, f64)]) -> f64 {
    let ranks = |values: Vec<f64>| -> Vec<f64> {
        values
            .iter()
            .map(|value| {
                let below = values.iter().filter(|other| *other < value).count() as f64;
                let equal = values.iter().filter(|other| *other == value).count() as f64;
                below + (equal + 1.0) / 2.0
            })
            .collect()
    };
    let a = ranks(pairs.iter().map(|pair| pair.0).collect());
    let b = ranks(pairs.iter().map(|pair| pair.1).collect());
    let mean = (pairs.len() as f64 + 1.0) / 2.0;
    let (mut covariance, mut va, mut vb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(&b) {
        covariance += (x - mean) * (y - mean);
        va += (x - mean).powi(2);
        vb += (y - mean).powi(2);
    }
    if va == 0.0 || vb == 0.0 { 0.0 } else { covariance / (va * vb).sqrt() }
}

#[cfg(test)]
mod tests {
    use super::spearman;

    #[test]
    fn spearman_of_same_reversed_and_tied_orders() {
        assert!((spearman(&[(1.0, 10.0), (2.0, 20.0), (3.0, 30.0)]) - 1.0).abs() < 1e-12);
        assert!((spearman(&[(1.0, 30.0), (2.0, 20.0), (3.0, 10.0)]) + 1.0).abs() < 1e-12);
        let tied = spearman(&[(1.0, 0.5), (2.0, 0.5), (3.0, 0.9)]);
        assert!(tied > 0.8 && tied < 0.9, "{tied}");
    }
}

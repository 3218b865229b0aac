//! Instructions in plain words: `instruct-ipt parse` and the routing of `restore --instruction`.

use instruct_ipt::{Decision, Device, Intent, Router, Task};

/// The task weights an instruction asks for, or `None` (after saying why) when the image must
/// be left untouched.
pub fn route(instruction: &str) -> Option<Vec<(Task, f32)>> {
    match Router::bundled(&Device::flex()).route(instruction).decision {
        Decision::Restore(weights) => {
            println!("instruction understood as: {}", describe(&weights));
            Some(weights)
        }
        Decision::Unchanged(reason) => {
            println!("left unchanged, nothing written: {reason}");
            None
        }
    }
}

/// Prints the probability of every intent and the decision.
pub fn parse(instruction: &str) {
    let routing = Router::bundled(&Device::flex()).route(instruction);
    let mut ranked: Vec<(Intent, f32)> = Intent::ALL.iter().map(|&intent| (intent, routing.probabilities[intent.index()])).collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
    for (intent, probability) in ranked {
        println!("{:>10} {:>6.1}%", intent.name(), 100.0 * probability);
    }
    match routing.decision {
        Decision::Restore(weights) => println!("decision: restore with {}", describe(&weights)),
        Decision::Unchanged(reason) => println!("decision: leave unchanged ({reason})"),
    }
}

fn describe(weights: &[(Task, f32)]) -> String {
    weights.iter().map(|(task, weight)| format!("{task} ({:.0}%)", 100.0 * weight)).collect::<Vec<_>>().join(" + ")
}

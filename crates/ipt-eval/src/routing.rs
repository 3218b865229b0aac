//! How the task reaches the model in an evaluation row: given (oracle), read from a held-out
//! instruction through the text router, seen by the recogniser (blind), or not at all (the
//! shared weights only).

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use burn::tensor::Device;
use instruct_ipt::{Decision, Recogniser, Router, Task};
use ipt_text::corpus::{Label, load};

use crate::EvalError;

/// The routing of a row.
#[derive(Clone)]
pub enum Routing {
    /// The benchmark's task is given to the model.
    Oracle,
    /// The model gets no task: the shared weights alone.
    Shared,
    /// The recogniser looks at the degraded image and the restorer removes what it sees
    /// (`Restorer::blind_request`); an image it judges clean stays as it is.
    Blind(Arc<Recogniser>),
    /// A held-out instruction for the benchmark's task goes through the text router; a request
    /// the router refuses leaves the image unchanged.
    Instruction(Arc<Instructions>),
}

impl fmt::Display for Routing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Routing::Oracle => "oracle",
            Routing::Shared => "shared",
            Routing::Blind(_) => "blind",
            Routing::Instruction(_) => "instruction",
        })
    }
}

/// The held-out instructions of each task, and the router that reads them.
pub struct Instructions {
    router: Router,
    sentences: BTreeMap<Task, Vec<String>>,
}

impl Instructions {
    /// The single-task sentences of the corpus split `dir` (the held-out one: never trained on)
    /// and the bundled router.
    pub fn load(dir: &Path, device: &Device) -> Result<Self, EvalError> {
        let examples = load(dir).map_err(|error| EvalError::Suite { path: dir.into(), message: error.to_string() })?;
        let mut sentences: BTreeMap<Task, Vec<String>> = BTreeMap::new();
        for example in examples {
            if let Label::Single(ipt_text::Intent::Restore(task)) = example.label {
                sentences.entry(task).or_default().push(example.text);
            }
        }
        Ok(Self { router: Router::bundled(device), sentences })
    }

    /// The instruction used for image `index` of a `task` benchmark (cycling through them).
    pub fn sentence(&self, task: Task, index: usize) -> Option<&str> {
        let sentences = self.sentences.get(&task)?;
        sentences.get(index % sentences.len()).map(String::as_str)
    }

    /// The task weights the router reads from that instruction; `None` when it refuses.
    pub fn weights(&self, task: Task, index: usize) -> Option<Vec<(Task, f32)>> {
        match self.router.route(self.sentence(task, index)?).decision {
            Decision::Restore(weights) => Some(weights),
            Decision::Unchanged(_) => None,
        }
    }
}

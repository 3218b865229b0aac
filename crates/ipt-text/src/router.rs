//! Routing a sentence to soft task weights: the head's intent probabilities, a rejection
//! threshold on the probability that the request is a restoration at all, and compound
//! requests split between their two tasks.

use std::collections::HashMap;
use std::path::Path;

use burn::tensor::Device;
use burn_store::{ModuleSnapshot, SafetensorsStore};
use ipt_core::Task;
use safetensors::SafeTensors;

use crate::TextError;
use crate::encoder::SentenceEncoder;
use crate::head::RouterHead;
use crate::intent::Intent;
use crate::minilm::MiniLm;
use crate::tokenizer::WordPiece;

const BUNDLED_HEAD: &[u8] = include_bytes!("../assets/router-static.safetensors");

/// Longest instruction routed (characters); longer texts leave the image unchanged.
pub const MAX_INSTRUCTION_CHARS: usize = 1000;

/// File name of the MiniLM router's head beside MiniLM's weights.
pub const MINILM_HEAD: &str = "router-minilm.safetensors";

/// A second task is mixed in when its probability reaches this share of the first's.
pub const SECOND_TASK_SHARE: f32 = 0.5;

/// What to do with the image.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// Restore with these task weights (one task, or two summing to 1).
    Restore(Vec<(Task, f32)>),
    /// Leave the image as it is, and say why.
    Unchanged(String),
}

/// The router's answer for one sentence.
#[derive(Clone, Debug, PartialEq)]
pub struct Routing {
    /// Probability of each intent, in [`Intent::ALL`] order.
    pub probabilities: [f32; 7],
    /// The decision taken from them.
    pub decision: Decision,
}

impl Routing {
    /// Probability that the sentence asks for a restoration (1 - P(none)).
    pub fn restoration_probability(&self) -> f32 {
        1.0 - self.probabilities[Intent::None.index()]
    }

    /// The most probable intent.
    pub fn top_intent(&self) -> Intent {
        let best = (0..7).max_by(|&a, &b| self.probabilities[a].total_cmp(&self.probabilities[b])).expect("seven intents");
        Intent::ALL[best]
    }

    /// The two most probable tasks, best first.
    pub fn top_tasks(&self) -> [(Task, f32); 2] {
        let mut tasks: Vec<(Task, f32)> = Task::ALL.iter().map(|&task| (task, self.probabilities[Intent::Restore(task).index()])).collect();
        tasks.sort_by(|a, b| b.1.total_cmp(&a.1));
        [tasks[0], tasks[1]]
    }
}

/// Sentence encoder, trained head and rejection threshold.
pub struct Router {
    encoder: SentenceEncoder,
    tokenizer: WordPiece,
    head: RouterHead,
    device: Device,
    /// Requests whose restoration probability is below this are left unchanged.
    pub threshold: f32,
}

/// Metadata keys of a router head file.
const KEY_ENCODER: &str = "encoder";
const KEY_HIDDEN: &str = "hidden";
const KEY_THRESHOLD: &str = "threshold";

impl Router {
    /// The default router: the compiled-in static encoder and its trained head.
    pub fn bundled(device: &Device) -> Self {
        Self::load(SentenceEncoder::bundled(), BUNDLED_HEAD, device).expect("the bundled router head loads")
    }

    /// The MiniLM router: `model.safetensors` (`cargo xtask fetch-minilm`) and
    /// `router-minilm.safetensors` (`cargo xtask train-router --encoder minilm`) in `dir`.
    pub fn minilm(dir: &Path, device: &Device) -> Result<Self, TextError> {
        let model = MiniLm::load(&dir.join("model.safetensors"), device)?;
        let head_path = dir.join(MINILM_HEAD);
        let hint = "train it with `cargo xtask train-router --encoder minilm`";
        let head = std::fs::read(&head_path).map_err(|source| TextError::Read { path: head_path.clone(), hint, source })?;
        Self::load(SentenceEncoder::MiniLm(Box::new(model)), &head, device).map_err(|error| error.in_file(head_path))
    }

    /// A router from an encoder and a head file written by [`Router::to_bytes`] for that encoder.
    pub fn load(encoder: SentenceEncoder, head_bytes: &[u8], device: &Device) -> Result<Self, TextError> {
        let (_, header) = SafeTensors::read_metadata(head_bytes)?;
        let metadata: HashMap<String, String> = header.metadata().clone().unwrap_or_default();
        let field = |key: &'static str| metadata.get(key).ok_or(TextError::Metadata { key, problem: "is missing" });
        let trained = field(KEY_ENCODER)?;
        if trained != encoder.name() {
            return Err(TextError::WrongEncoder { trained: trained.clone(), encoder: encoder.name() });
        }
        let malformed = |key| TextError::Metadata { key, problem: "is not a number" };
        let hidden: usize = field(KEY_HIDDEN)?.parse().map_err(|_| malformed(KEY_HIDDEN))?;
        let threshold: f32 = field(KEY_THRESHOLD)?.parse().map_err(|_| malformed(KEY_THRESHOLD))?;
        let inputs = SafeTensors::deserialize(head_bytes)?.tensor("hidden.weight")?.shape()[0];
        if inputs != encoder.feature_len() {
            return Err(TextError::StaleHead { inputs, features: encoder.feature_len(), encoder: encoder.name() });
        }
        let mut head = RouterHead::new(encoder.feature_len(), hidden, 0.0, device);
        let mut store = SafetensorsStore::from_bytes(Some(head_bytes.to_vec()));
        let result = head.load_from(&mut store).map_err(|error| TextError::Layout(error.to_string()))?;
        if !result.missing.is_empty() || !result.errors.is_empty() {
            return Err(TextError::Layout(format!("missing {:?}, errors {:?}", result.missing, result.errors)));
        }
        Ok(Self::new(encoder, head, threshold, device))
    }

    /// A router from parts (a head just trained).
    pub fn new(encoder: SentenceEncoder, head: RouterHead, threshold: f32, device: &Device) -> Self {
        Self { encoder, tokenizer: WordPiece::minilm(), head, device: device.clone(), threshold }
    }

    /// The head file: weights plus the encoder name, hidden size, threshold and `provenance`.
    pub fn to_bytes(&self, provenance: &str) -> Result<Vec<u8>, TextError> {
        let mut store = SafetensorsStore::from_bytes(None)
            .metadata(KEY_ENCODER, self.encoder.name())
            .metadata(KEY_HIDDEN, self.head.hidden.weight.dims()[1].to_string())
            .metadata(KEY_THRESHOLD, self.threshold.to_string())
            .metadata("provenance", provenance);
        self.head.save_into(&mut store).map_err(|error| TextError::Layout(error.to_string()))?;
        store.get_bytes().map_err(|error| TextError::Layout(error.to_string()))
    }

    /// The encoder in use.
    pub fn encoder(&self) -> &SentenceEncoder {
        &self.encoder
    }

    /// Routes one sentence.
    pub fn route(&self, text: &str) -> Routing {
        self.route_all(&[text]).pop().expect("one routing per text")
    }

    /// Routes many sentences at once. A text longer than [`MAX_INSTRUCTION_CHARS`] is left
    /// unchanged whatever the head says: no request is that long, and the head, trained on
    /// sentences, reads kilobytes of noise as a confident task.
    pub fn route_all(&self, texts: &[&str]) -> Vec<Routing> {
        let features = self.encoder.features(&self.tokenizer, texts);
        let probabilities = self.head.probabilities(&features, &self.device);
        probabilities
            .into_iter()
            .zip(texts)
            .map(|(probabilities, text)| {
                let mut routing = self.decide(probabilities);
                let length = text.chars().count();
                if length > MAX_INSTRUCTION_CHARS {
                    routing.decision = Decision::Unchanged(format!(
                        "the instruction is {length} characters long, more than the {MAX_INSTRUCTION_CHARS} a request needs; please say what is wrong with the photo in a sentence or two"
                    ));
                }
                routing
            })
            .collect()
    }

    fn decide(&self, probabilities: [f32; 7]) -> Routing {
        let mut routing = Routing { probabilities, decision: Decision::Unchanged(String::new()) };
        let [(first, p1), (second, p2)] = routing.top_tasks();
        routing.decision = if routing.top_intent() == Intent::None {
            Decision::Unchanged(format!(
                "this does not ask for a restoration I can do (P(none) = {:.0}%); I can remove noise, blur, rain, haze or snow, or brighten a dark photo",
                100.0 * probabilities[Intent::None.index()]
            ))
        } else if routing.restoration_probability() < self.threshold {
            Decision::Unchanged(format!(
                "not sure this asks for a restoration (best guess: {first} at {:.0}%); please say what is wrong with the photo",
                100.0 * p1
            ))
        } else if p2 >= SECOND_TASK_SHARE * p1 {
            Decision::Restore(vec![(first, p1 / (p1 + p2)), (second, p2 / (p1 + p2))])
        } else {
            Decision::Restore(vec![(first, 1.0)])
        };
        routing
    }
}

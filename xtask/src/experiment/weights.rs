//! The float tensors of a weight file by name, and what fine-tuning did to them: cosine
//! similarity before/after (paper Table 2) and the energy spectrum of the change (Fig. 2).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context as _, Result, bail};
use nalgebra::DMatrix;
use safetensors::{Dtype, SafeTensors};

/// A tensor's shape and values.
pub struct Values {
    /// The shape.
    pub shape: Vec<usize>,
    /// Row-major values.
    pub data: Vec<f32>,
}

/// Every f32 tensor of the weight file at `path`, by name.
pub fn read(path: &Path) -> Result<BTreeMap<String, Values>> {
    let bytes = std::fs::read(path).with_context(|| path.display().to_string())?;
    let file = SafeTensors::deserialize(&bytes).with_context(|| format!("{}: not a safetensors file", path.display()))?;
    let mut tensors = BTreeMap::new();
    for (name, view) in file.tensors() {
        if view.dtype() != Dtype::F32 {
            bail!("{}: tensor '{name}' is {:?}, expected f32", path.display(), view.dtype());
        }
        let data = view.data().chunks_exact(4).map(|bytes| f32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])).collect();
        tensors.insert(name, Values { shape: view.shape().to_vec(), data });
    }
    Ok(tensors)
}

/// Cosine similarity of two equally long vectors (1 when either is zero).
pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let (mut dot, mut aa, mut bb) = (0.0f64, 0.0f64, 0.0f64);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (f64::from(x), f64::from(y));
        dot += x * y;
        aa += x * x;
        bb += y * y;
    }
    if aa == 0.0 || bb == 0.0 { 1.0 } else { dot / (aa.sqrt() * bb.sqrt()) }
}

/// The accumulated energy `E(r) = sum_{i<=r} s_i^2 / sum_i s_i^2` of the singular values of
/// `after - before` seen as `[rows, len / rows]` (a conv weight as `[C_out, C_in/g * k * k]`),
/// for `r = 1..=min(rows, columns)`.
pub fn delta_energy(before: &Values, after: &Values) -> Vec<f64> {
    let rows = before.shape[0];
    let columns = before.data.len() / rows;
    let delta: Vec<f64> = after.data.iter().zip(&before.data).map(|(a, b)| f64::from(a - b)).collect();
    let matrix = DMatrix::from_row_slice(rows, columns, &delta);
    let mut squares: Vec<f64> = matrix.singular_values().iter().map(|value| value * value).collect();
    squares.sort_by(|a, b| b.total_cmp(a));
    let total: f64 = squares.iter().sum();
    let mut running = 0.0;
    squares
        .iter()
        .map(|square| {
            running += square;
            if total > 0.0 { running / total } else { 1.0 }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_of_parallel_and_orthogonal_vectors() {
        assert!((cosine(&[1.0, 2.0], &[2.0, 4.0]) - 1.0).abs() < 1e-12);
        assert!(cosine(&[1.0, 0.0], &[0.0, 3.0]).abs() < 1e-12);
        assert!((cosine(&[1.0, 0.0], &[-1.0, 0.0]) + 1.0).abs() < 1e-12);
    }

    #[test]
    fn a_rank_one_change_has_all_its_energy_in_one_component() {
        let before = Values { shape: vec![3, 4], data: vec![0.5; 12] };
        // after - before = u v^T with u = (1, 2, 3), v = (1, 0, -1, 2).
        let (u, v) = ([1.0f32, 2.0, 3.0], [1.0f32, 0.0, -1.0, 2.0]);
        let data = (0..12).map(|index| 0.5 + u[index / 4] * v[index % 4]).collect();
        let energy = delta_energy(&before, &Values { shape: vec![3, 4], data });
        assert_eq!(energy.len(), 3);
        assert!((energy[0] - 1.0).abs() < 1e-9 && (energy[2] - 1.0).abs() < 1e-9, "{energy:?}");
    }

    #[test]
    fn equal_singular_values_share_the_energy_evenly() {
        let before = Values { shape: vec![2, 2], data: vec![0.0; 4] };
        let energy = delta_energy(&before, &Values { shape: vec![2, 2], data: vec![3.0, 0.0, 0.0, 3.0] });
        assert!((energy[0] - 0.5).abs() < 1e-9 && (energy[1] - 1.0).abs() < 1e-9, "{energy:?}");
    }
}

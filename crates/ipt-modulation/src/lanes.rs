//! Sums written to vectorise: a single running f32 sum cannot (its additions must stay in
//! order), [`LANES`] interleaved ones can.

/// Independent accumulators per sum.
pub(crate) const LANES: usize = 8;

/// Adds `a[i] * b[i]` into `lanes[i % LANES]` for every `i`.
pub(crate) fn accumulate_products(lanes: &mut [f32; LANES], a: &[f32], b: &[f32]) {
    let (a_chunks, b_chunks) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    for (lane, (x, y)) in lanes.iter_mut().zip(a_chunks.remainder().iter().zip(b_chunks.remainder())) {
        *lane += x * y;
    }
    for (x, y) in a_chunks.zip(b_chunks) {
        for ((lane, x), y) in lanes.iter_mut().zip(x).zip(y) {
            *lane += x * y;
        }
    }
}

/// `sum(values)` in [`LANES`] accumulators.
#[cfg(feature = "flex")]
pub(crate) fn sum(values: &[f32]) -> f32 {
    let mut lanes = [0f32; LANES];
    let chunks = values.chunks_exact(LANES);
    let tail: f32 = chunks.remainder().iter().sum();
    for chunk in chunks {
        lanes.iter_mut().zip(chunk).for_each(|(lane, value)| *lane += value);
    }
    lanes.into_iter().fold(tail, |total, lane| total + lane)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lane_sums_equal_the_sequential_ones() {
        for length in [0, 3, 8, 21] {
            let a: Vec<f32> = (0..length).map(|i| i as f32 * 0.5 - 2.0).collect();
            let b: Vec<f32> = (0..length).map(|i| 1.0 + (i % 4) as f32).collect();
            let mut lanes = [0f32; LANES];
            accumulate_products(&mut lanes, &a, &b);
            let products: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            assert!((lanes.iter().sum::<f32>() - products).abs() <= 1e-5 * products.abs().max(1.0), "length {length}");
            #[cfg(feature = "flex")]
            {
                let total: f32 = a.iter().sum();
                assert!((sum(&a) - total).abs() <= 1e-5 * total.abs().max(1.0), "length {length}");
            }
        }
    }
}

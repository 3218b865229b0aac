//! Elementary functions written so that loops over them vectorise (no branches, no library
//! calls), for the kernels' element-wise passes; each within a few ulp or 1e-6 of the library's.

/// `e^x` within a few ulp for `x` in [-87, 88] (below, the smallest normal's neighbourhood),
/// branch-free and without library calls so loops over it vectorise: Cephes' `expf`
/// polynomial on `x - n ln 2`, scaled by `2^n` through the exponent bits.
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    const ROUNDING: f32 = 12_582_912.0; // 1.5 * 2^23: adding it rounds to an integer
    const LN2_HIGH: f32 = 0.693_359_4;
    const LN2_LOW: f32 = -2.121_944_4e-4;
    let x = x.clamp(-87.0, 88.0);
    let shifted = x * std::f32::consts::LOG2_E + ROUNDING;
    let n = shifted.to_bits() as i32 - ROUNDING.to_bits() as i32;
    let whole = shifted - ROUNDING;
    let r = x - whole * LN2_HIGH - whole * LN2_LOW;
    let polynomial = ((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r + 1.666_666_5e-1) * r + 0.5;
    (polynomial * r * r + r + 1.0) * f32::from_bits(((n + 127) << 23) as u32)
}

/// `erf(x)` within a few ulp, branch-free: the odd rational approximation `x P(x²) / Q(x²)` on
/// `[-4, 4]` that Eigen's vectorised `erf` uses; exactly ±1 from |x| = 3.9, where f32's erf
/// rounds to 1 (so `1 + erf(x)` vanishes there as the library's does).
#[inline(always)]
pub(crate) fn erf(x: f32) -> f32 {
    const NUMERATOR: [f32; 7] =
        [-2.726_142_3e-10, 2.770_681_4e-8, -2.101_024e-6, -5.692_506_4e-5, -7.349_906_3e-4, -2.954_6e-3, -1.609_603_3e-2];
    const DENOMINATOR: [f32; 5] = [-1.456_607_2e-5, -2.133_740_6e-4, -1.682_827e-3, -7.373_329_2e-3, -1.426_474e-2];
    let x = x.clamp(-4.0, 4.0);
    let square = x * x;
    let numerator = NUMERATOR[1..].iter().fold(NUMERATOR[0], |total, &coefficient| total * square + coefficient);
    let denominator = DENOMINATOR[1..].iter().fold(DENOMINATOR[0], |total, &coefficient| total * square + coefficient);
    let value = x * numerator / denominator;
    if square >= 3.9 * 3.9 { 1f32.copysign(x) } else { value }
}

/// Independent accumulators of [`reduce`] (what lets a reduction vectorise).
const LANES: usize = 8;

/// `values` folded with `combine` in [`LANES`] interleaved accumulators.
#[inline(always)]
pub(crate) fn reduce(values: &[f32], identity: f32, combine: impl Fn(f32, f32) -> f32 + Copy) -> f32 {
    let mut lanes = [identity; LANES];
    let chunks = values.chunks_exact(LANES);
    let tail = chunks.remainder().iter().fold(identity, |total, &value| combine(total, value));
    for chunk in chunks {
        lanes.iter_mut().zip(chunk).for_each(|(lane, &value)| *lane = combine(*lane, value));
    }
    lanes.into_iter().fold(tail, combine)
}

/// `sum(a[i] * b[i])` in [`LANES`] interleaved accumulators.
#[inline(always)]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; LANES];
    let (a_chunks, b_chunks) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = a_chunks.remainder().iter().zip(b_chunks.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in a_chunks.zip(b_chunks) {
        lanes.iter_mut().zip(x).zip(y).for_each(|((lane, x), y)| *lane += x * y);
    }
    lanes.into_iter().fold(tail, |total, lane| total + lane)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponential_is_within_a_few_ulp_of_the_library_one() {
        for step in 0..=20_000 {
            let x = -87.0 + 175.0 * step as f32 / 20_000.0;
            let (ours, reference) = (exp(x), x.exp());
            assert!((ours - reference).abs() <= 4.0 * f32::EPSILON * reference, "exp({x}) = {ours}, expected {reference}");
        }
        assert!(exp(-1e4) >= 0.0 && exp(-1e4) < 1e-37, "large negative inputs give ~0");
    }

    #[test]
    fn erf_is_within_its_bound_of_the_reference() {
        // libm's erff, the function Burn's and PyTorch's exact GELU use.
        for step in 0..=20_000 {
            let x = -6.0 + 12.0 * step as f32 / 20_000.0;
            let (ours, reference) = (erf(x), libm::erff(x));
            assert!((ours - reference).abs() <= 4.0 * f32::EPSILON * reference.abs(), "erf({x}) = {ours}, expected {reference}");
        }
        assert_eq!(erf(-0.5), -erf(0.5));
    }

    #[test]
    fn dot_equals_the_sequential_sum_of_products() {
        for length in [0, 3, 8, 21] {
            let a: Vec<f32> = (0..length).map(|i| i as f32 * 0.5 - 2.0).collect();
            let b: Vec<f32> = (0..length).map(|i| 1.0 + (i % 4) as f32).collect();
            let expected: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            assert!((dot(&a, &b) - expected).abs() <= 1e-5 * expected.abs().max(1.0), "length {length}");
        }
    }
}

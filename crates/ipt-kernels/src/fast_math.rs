//! Elementary functions written so that loops over them vectorise (no branches, no library
//! calls), for the kernels' element-wise passes; each within a few ulp or 1e-6 of the library's.
//! Sums and dot products are [`crate::simd`]'s.

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

/// Independent accumulators of [`maximum`] (what lets the reduction vectorise).
const LANES: usize = 8;

/// The largest of `values` (`-inf` when empty), in [`LANES`] interleaved accumulators.
#[inline(always)]
pub(crate) fn maximum(values: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let chunks = values.chunks_exact(LANES);
    let tail = chunks.remainder().iter().fold(f32::NEG_INFINITY, |total, &value| total.max(value));
    for chunk in chunks {
        lanes.iter_mut().zip(chunk).for_each(|(lane, &value)| *lane = lane.max(value));
    }
    lanes.into_iter().fold(tail, f32::max)
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
    fn maximum_finds_the_largest_value_at_any_position() {
        for length in [1, 3, 8, 21] {
            for position in 0..length {
                let mut values: Vec<f32> = (0..length).map(|i| -(i as f32)).collect();
                values[position] = 5.0;
                assert_eq!(maximum(&values), 5.0, "length {length}, position {position}");
            }
        }
        assert_eq!(maximum(&[]), f32::NEG_INFINITY);
    }
}

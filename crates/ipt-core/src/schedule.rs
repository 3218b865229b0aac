//! The learning-rate schedule the trainers share.

/// The learning rate at `step` (0-based) of `total`: a linear warm-up to `lr` over `warmup`
/// steps, then a cosine decay to `min_lr` at `total` (`min_lr == lr` keeps it constant). A pure
/// function of the step, so a resumed run needs no scheduler state.
pub fn warmup_cosine(lr: f64, min_lr: f64, warmup: usize, step: usize, total: usize) -> f64 {
    if step < warmup {
        return lr * (step + 1) as f64 / warmup as f64;
    }
    let span = total.saturating_sub(warmup).max(1) as f64;
    let progress = ((step - warmup) as f64 / span).min(1.0);
    min_lr + 0.5 * (lr - min_lr) * (1.0 + (std::f64::consts::PI * progress).cos())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warms_up_linearly_then_follows_the_half_cosine_to_the_floor() {
        assert_eq!([0, 4].map(|step| warmup_cosine(1.0, 0.0, 5, step, 105)), [0.2, 1.0]);
        assert_eq!(warmup_cosine(1.0, 0.0, 5, 5, 105), 1.0);
        assert!((warmup_cosine(1.0, 0.0, 5, 55, 105) - 0.5).abs() < 1e-12);
        assert!(warmup_cosine(1.0, 0.1, 5, 105, 105) - 0.1 < 1e-12 && warmup_cosine(1.0, 0.1, 5, 500, 105) - 0.1 < 1e-12);
        assert_eq!(warmup_cosine(0.3, 0.3, 0, 77, 100), 0.3);
    }
}

//! Peak resident memory of this process (Linux `VmHWM`), resettable between benchmarks.

/// Peak resident set size in MiB since the process started or the last [`reset_peak`];
/// `None` where `/proc/self/status` does not exist (not Linux).
pub fn peak_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Resets the peak to the current resident size (writes `5` to `/proc/self/clear_refs`,
/// Linux 4.0 and later), so the next [`peak_mib`] covers only what ran in between; returns
/// whether the kernel accepted it.
pub fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peak_grows_with_a_large_allocation_and_resets() {
        let Some(before) = peak_mib() else { return };
        assert!(reset_peak());
        let buffer = vec![1u8; 64 << 20];
        let touched: u64 = buffer.iter().step_by(4096).map(|&byte| u64::from(byte)).sum();
        assert_eq!(touched, (64 << 20) / 4096);
        let peak = peak_mib().unwrap();
        drop(buffer);
        assert!(peak >= 64.0, "peak {peak} MiB after touching 64 MiB (was {before})");
    }
}

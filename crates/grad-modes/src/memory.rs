//! The process's resident memory, as the kernel counts it.

/// Resident set size in bytes (`VmRSS` of `/proc/self/status`); `None` where there is no
/// such file (not Linux).
pub fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Tests that read resident memory hold this, so that another test's allocations do not
/// land in their measurement.
#[cfg(test)]
pub(crate) static RESIDENT_MEMORY_TESTS: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resident_memory_grows_when_pages_are_touched() {
        let _exclusive = RESIDENT_MEMORY_TESTS.lock().unwrap();
        let before = resident_bytes().expect("Linux has /proc/self/status");
        let block = std::hint::black_box(vec![1u8; 64 << 20]);
        let after = resident_bytes().unwrap();
        assert!(after >= before + (32 << 20), "{before} -> {after}");
        drop(block);
    }
}

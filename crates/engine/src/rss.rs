//! Peak resident memory per pass and per in-memory stage, for run.json.
//!
//! The kernel keeps one high-water mark per process (VmHWM); it only grows, so it cannot say
//! what a later pass used once an earlier one went higher. Resetting it (`clear_refs`) would
//! also reset what the parent sees in `wait4`'s `ru_maxrss`, which the benchmark reads. So a
//! background thread samples the current resident size every [`PERIOD`] and keeps the
//! largest value seen since the last [`PeakSampler::take`]. A peak shorter than the period
//! can be missed; the process-wide high-water mark still bounds it from above.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// How often the resident size is sampled.
pub const PERIOD: Duration = Duration::from_millis(10);

/// Resident memory of this process now (Linux `VmRSS`), in bytes; 0 where unknown.
pub fn current_rss_bytes() -> u64 {
    status_kib("VmRSS:") * 1024
}

/// Peak resident memory of this process so far (Linux `VmHWM`), in bytes; 0 where unknown.
pub fn peak_rss_bytes() -> u64 {
    status_kib("VmHWM:") * 1024
}

/// A field of /proc/self/status in KiB.
fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .unwrap_or(0)
}

/// A thread sampling the resident size; stops when dropped.
pub struct PeakSampler {
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl PeakSampler {
    /// Start sampling now.
    pub fn start() -> PeakSampler {
        let peak = Arc::new(AtomicU64::new(current_rss_bytes()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (peak, stop) = (Arc::clone(&peak), Arc::clone(&stop));
            std::thread::Builder::new()
                .name("atlasflow-rss".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        peak.fetch_max(current_rss_bytes(), Ordering::Relaxed);
                        std::thread::park_timeout(PERIOD);
                    }
                })
                .ok()
        };
        PeakSampler { peak, stop, thread }
    }

    /// The largest resident size seen since the start or the previous call; the next
    /// interval starts from the size now.
    pub fn take(&self) -> u64 {
        let now = current_rss_bytes();
        self.peak.swap(now, Ordering::Relaxed).max(now)
    }
}

impl Drop for PeakSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sees_a_transient_allocation() {
        if current_rss_bytes() == 0 {
            return; // not Linux
        }
        let s = PeakSampler::start();
        let before = s.take();
        let mut big = vec![1u8; 256 << 20];
        big[12345] = 2;
        // Long enough for the sampler to run even on a loaded machine.
        std::thread::sleep(PERIOD * 30);
        std::hint::black_box(&big);
        drop(big);
        std::thread::sleep(PERIOD * 2);
        let during = s.take();
        assert!(during >= before + (200 << 20), "{before} -> {during}");
        std::thread::sleep(PERIOD * 3);
        assert!(s.take() < during - (200 << 20));
    }
}

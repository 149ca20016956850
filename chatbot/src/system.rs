//! Samples the process's resident memory, its memory limit and its CPU usage into `memory_usage_bytes`,
//! `memory_limit_bytes` and `cpu_usage_percent`.

use std::time::{Duration, Instant};

use crate::metrics::Metrics;

/// CPU time (user + system) and resident set of this process, read from `/proc/self`.
#[derive(Debug, Clone, Copy)]
struct Sample {
    cpu: Duration,
    rss_bytes: i64,
    at: Instant,
}

#[cfg(target_os = "linux")]
fn read_sample() -> Option<Sample> {
    // Field 14 and 15 of /proc/self/stat are utime and stime in clock ticks; the command name (field 2) may
    // contain spaces, so count fields after its closing parenthesis.
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf only reads a configuration value.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let resident_pages: i64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1);
    Some(Sample {
        cpu: Duration::from_nanos(ticks * 1_000_000_000 / hz),
        rss_bytes: resident_pages * page,
        at: Instant::now(),
    })
}

#[cfg(not(target_os = "linux"))]
fn read_sample() -> Option<Sample> {
    None
}

/// Percent of one core used between two samples.
fn cpu_percent(before: &Sample, after: &Sample) -> f64 {
    let wall = after.at.duration_since(before.at).as_secs_f64();
    if wall <= 0.0 {
        return 0.0;
    }
    after.cpu.saturating_sub(before.cpu).as_secs_f64() / wall * 100.0
}

/// Samples once now, then every `interval`, until the task is dropped.
pub async fn sample_forever(metrics: Metrics, interval: Duration) {
    let Some(mut previous) = read_sample() else {
        tracing::warn!("no /proc/self: memory_usage_bytes and cpu_usage_percent stay at 0");
        return;
    };
    metrics.memory_usage_bytes.set(previous.rss_bytes);
    record_limit(&metrics);
    let mut ticker = tokio::time::interval(interval);
    // After a stall, Burst would fire ticks back to back and divide a CPU tick by a microsecond window.
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        if let Some(now) = read_sample() {
            metrics.memory_usage_bytes.set(now.rss_bytes);
            metrics.cpu_usage_percent.set(cpu_percent(&previous, &now));
            previous = now;
        }
        record_limit(&metrics);
    }
}

/// The memory limit as the cgroup says it now (a pod may be resized in place); no series without a limit.
fn record_limit(metrics: &Metrics) {
    match crate::cgroup::own_memory_limit() {
        Some(bytes) => metrics
            .memory_limit_bytes
            .with_label_values(&[] as &[&str])
            .set(i64::try_from(bytes).unwrap_or(i64::MAX)),
        None => {
            let _ = metrics.memory_limit_bytes.remove_label_values(&[] as &[&str]);
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn reads_a_plausible_sample() {
        let s = read_sample().unwrap();
        assert!(s.rss_bytes > 1 << 20, "rss {}", s.rss_bytes);
        // Burn some CPU and check the percentage sees it.
        let start = Instant::now();
        let mut x = 0u64;
        while start.elapsed() < Duration::from_millis(200) {
            x = x.wrapping_mul(31).wrapping_add(7);
        }
        std::hint::black_box(x);
        let t = read_sample().unwrap();
        let p = cpu_percent(&s, &t);
        assert!(p > 20.0 && p <= 200.0 * 1.5, "cpu {p}%");
    }
}

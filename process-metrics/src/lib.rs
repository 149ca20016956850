//! The standard `process_*` metrics that the chatbot and the operator both expose. `prometheus`' own process
//! collector counts CPU time in whole seconds (it keeps it in an integer counter), so a process that has used 0.9 s
//! reads 0 and `rate(process_cpu_seconds_total[5m])` of a mostly idle process is 0 or a step: this collector reports
//! the same families, with the CPU time to the microsecond, as Go's and Python's clients do.

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;

const CPU: &str = "process_cpu_seconds_total";

/// `process_*` for this process (Linux only, like the collector it wraps).
pub struct ProcessMetrics {
    inner: prometheus::process_collector::ProcessCollector,
}

impl ProcessMetrics {
    pub fn for_self() -> Self {
        ProcessMetrics {
            inner: prometheus::process_collector::ProcessCollector::for_self(),
        }
    }
}

impl Collector for ProcessMetrics {
    fn desc(&self) -> Vec<&Desc> {
        self.inner.desc()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let mut families = self.inner.collect();
        if let Some(seconds) = cpu_seconds() {
            for family in families.iter_mut().filter(|f| f.name() == CPU) {
                for metric in family.mut_metric() {
                    let mut counter = prometheus::proto::Counter::default();
                    counter.set_value(seconds);
                    metric.set_counter(counter);
                }
            }
        }
        families
    }
}

/// User and system CPU time of the whole process (every thread), from `getrusage`.
pub fn cpu_seconds() -> Option<f64> {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a `rusage` into the pointer it is given, which points to one.
    let usage = unsafe {
        if libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) != 0 {
            return None;
        }
        usage.assume_init()
    };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Some(seconds(usage.ru_utime) + seconds(usage.ru_stime))
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::{Encoder, Registry, TextEncoder};

    /// The defect seen on a real node: the operator read 0 while it had used 0.22 s.
    #[test]
    fn a_fraction_of_a_second_of_cpu_is_not_zero() {
        let registry = Registry::new();
        registry.register(Box::new(ProcessMetrics::for_self())).unwrap();
        // Burn a little CPU, well under a second.
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while start.elapsed().as_millis() < 150 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
        let mut text = Vec::new();
        TextEncoder::new().encode(&registry.gather(), &mut text).unwrap();
        let text = String::from_utf8(text).unwrap();
        let value: f64 = text
            .lines()
            .find_map(|l| l.strip_prefix("process_cpu_seconds_total "))
            .expect("the family is exposed")
            .parse()
            .unwrap();
        assert!(value > 0.1 && value < 60.0, "{value} in\n{text}");
        assert!(text.contains("process_resident_memory_bytes "), "{text}");
        assert!(text.contains("# TYPE process_cpu_seconds_total counter"), "{text}");
    }
}

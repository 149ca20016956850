//! How the controller's watches wait after an error. kube-runtime's default doubles from 0.8 s to 30 s and, during
//! an API server outage, never sees a success to reset it: the restarted server then answers the first re-watches
//! with `410 Expired`, each another doubling, and changes wait minutes. Here a watch retries quickly and at most every
//! few seconds, starts again from its floor after any event, and the controller pauses all of its watches only
//! briefly for the error of one.

use std::time::Duration;

use kube::runtime::utils::Backoff;

/// Per watch: 250 ms doubling to 5 s, back to 250 ms after any event.
#[derive(Debug, Clone)]
pub struct WatchBackoff {
    next: Duration,
}

const FLOOR: Duration = Duration::from_millis(250);
const CEILING: Duration = Duration::from_secs(5);

impl Default for WatchBackoff {
    fn default() -> Self {
        WatchBackoff { next: FLOOR }
    }
}

impl Iterator for WatchBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let now = self.next;
        self.next = (self.next * 2).min(CEILING);
        Some(now)
    }
}

impl Backoff for WatchBackoff {
    fn reset(&mut self) {
        self.next = FLOOR;
    }
}

/// For the controller: the pause of every watch after one's error, which only keeps a failing watch from spinning
/// (each watch already backs off on its own).
#[derive(Debug, Clone, Copy, Default)]
pub struct TriggerPause;

impl Iterator for TriggerPause {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        Some(Duration::from_millis(200))
    }
}

impl Backoff for TriggerPause {
    fn reset(&mut self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_to_a_ceiling_of_seconds_and_resets() {
        let mut b = WatchBackoff::default();
        let first: Vec<u128> = b.by_ref().take(7).map(|d| d.as_millis()).collect();
        assert_eq!(first, [250, 500, 1000, 2000, 4000, 5000, 5000]);
        b.reset();
        assert_eq!(b.next(), Some(FLOOR));
    }
}

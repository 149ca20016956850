//! Whether the controller's watches are established, for `/readyz`. A watch that failed is retried at most every
//! few seconds (see `backoff`) and fails again at once while the API server is away; once it has gone a while
//! without an error, or delivered an event since, it is established again. A re-established watch that resumes from
//! its resource version delivers nothing until something changes, so silence after a failure is what "up" looks like.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Quiet this long after its last error, a watch counts as re-established: twice the longest retry pause.
pub const RECOVERED_AFTER: Duration = Duration::from_secs(10);

#[derive(Default)]
pub struct WatchHealth {
    /// The last error of each watch not heard from since.
    failing: Mutex<HashMap<&'static str, (Instant, String)>>,
}

impl WatchHealth {
    /// The watch `name` delivered an event.
    pub fn ok(&self, name: &'static str) {
        self.failing.lock().unwrap().remove(name);
    }

    /// The watch `name` failed with `error`.
    pub fn failed(&self, name: &'static str, error: &dyn std::fmt::Display) {
        self.failing
            .lock()
            .unwrap()
            .insert(name, (Instant::now(), error.to_string()));
    }

    /// `Err` naming the watches that cannot be established at `now`.
    pub fn check_at(&self, now: Instant) -> Result<(), String> {
        let failing = self.failing.lock().unwrap();
        let mut down: Vec<String> = failing
            .iter()
            .filter(|(_, (at, _))| now.saturating_duration_since(*at) < RECOVERED_AFTER)
            .map(|(name, (_, error))| format!("{name}: {error}"))
            .collect();
        down.sort();
        if down.is_empty() {
            Ok(())
        } else {
            Err(format!("watches failing: {}", down.join("; ")))
        }
    }

    pub fn check(&self) -> Result<(), String> {
        self.check_at(Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_watch_is_unready_until_it_delivers_or_goes_quiet() {
        let health = WatchHealth::default();
        let start = Instant::now();
        assert!(health.check_at(start).is_ok());
        health.failed("deployments", &"connection refused");
        let e = health.check_at(Instant::now()).unwrap_err();
        assert!(e.contains("deployments: connection refused"), "{e}");
        // Quiet for long enough: re-established.
        assert!(health.check_at(Instant::now() + RECOVERED_AFTER).is_ok());
        // Or an event came.
        health.failed("services", &"410 Expired");
        health.ok("services");
        assert!(health.check_at(Instant::now()).unwrap_err().contains("deployments"));
        health.ok("deployments");
        assert!(health.check_at(Instant::now()).is_ok());
    }
}

//! Abuse and cost control for `/chat`: every answer may cost a paid model call, so one client must not be able to
//! spend without bound. Token buckets per session and per client address (429 with `Retry-After`), and a bound on
//! the model calls in progress (a burst waits a little, then is shed with 503, instead of piling up in memory).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use axum::http::HeaderMap;
use tokio::sync::{Semaphore, SemaphorePermit};

/// Most keys a bucket table holds. Beyond (an attack from very many addresses), idle buckets are dropped; if none
/// is idle, a new client goes unlimited until some are: the table never grows without bound.
pub const MAX_TRACKED: usize = 100_000;

/// Why a chat was refused before its answer: the `reason` label of `chat_requests_limited_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limited {
    /// Too many chats in one session: 429.
    SessionRate { retry_after: Duration },
    /// Too many chats from one client address: 429.
    ClientRate { retry_after: Duration },
    /// Every model call slot stayed busy for the queue timeout: 503.
    ModelBusy,
}

impl Limited {
    pub const REASONS: [&'static str; 3] = ["session_rate", "client_rate", "model_busy"];

    pub fn reason(&self) -> &'static str {
        match self {
            Limited::SessionRate { .. } => "session_rate",
            Limited::ClientRate { .. } => "client_rate",
            Limited::ModelBusy => "model_busy",
        }
    }
}

/// Token buckets by key: `per_minute` chats a minute, in bursts of up to ten seconds' worth.
pub struct Buckets {
    per_minute: u32,
    capacity: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Buckets {
    pub fn new(per_minute: u32) -> Buckets {
        Buckets {
            per_minute,
            capacity: (f64::from(per_minute) / 6.0).max(5.0).min(f64::from(per_minute)),
            buckets: Mutex::default(),
        }
    }

    fn rate_per_second(&self) -> f64 {
        f64::from(self.per_minute) / 60.0
    }

    /// Takes one token for `key` at `now`, or says how long until one is there.
    pub fn take(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let mut buckets = self.buckets.lock().unwrap();
        if !buckets.contains_key(key) && buckets.len() >= MAX_TRACKED {
            // A full bucket is as good as none: drop those.
            let refill = Duration::from_secs_f64(self.capacity / self.rate_per_second());
            buckets.retain(|_, b| now.saturating_duration_since(b.last) < refill);
            if buckets.len() >= MAX_TRACKED {
                return Ok(());
            }
        }
        let bucket = buckets.entry(key.to_owned()).or_insert(Bucket {
            tokens: self.capacity,
            last: now,
        });
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.rate_per_second()).min(self.capacity);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - bucket.tokens) / self.rate_per_second();
            Err(Duration::from_secs_f64(wait))
        }
    }

    pub fn tracked(&self) -> usize {
        self.buckets.lock().unwrap().len()
    }
}

/// An address range, such as `10.0.0.0/8` or `fd00::/8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl std::str::FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Cidr, String> {
        let (address, prefix) = match s.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s.trim(), None),
        };
        let network: IpAddr = address
            .parse()
            .map_err(|_| format!("{s:?} is not an address or a range"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?}: the prefix length must be 0 to {max}"))?,
            None => max,
        };
        Ok(Cidr { network, prefix })
    }
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                masked(u32::from(n).into(), 32, self.prefix) == masked(u32::from(a).into(), 32, self.prefix)
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                masked(u128::from(n), 128, self.prefix) == masked(u128::from(a), 128, self.prefix)
            }
            _ => false,
        }
    }
}

fn masked(bits: u128, width: u32, prefix: u8) -> u128 {
    if prefix == 0 {
        return 0;
    }
    bits >> (width - u32::from(prefix))
}

/// The client's address: the peer's, or, when the peer is a trusted proxy, the nearest address of
/// `X-Forwarded-For` that is not (read from the right: the left part is whatever the client claims).
pub fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[Cidr]) -> IpAddr {
    // A dual-stack listener sees IPv4 peers as ::ffff:a.b.c.d: compare them as the IPv4 they are.
    let peer = peer.to_canonical();
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip.to_canonical()));
    if !is_trusted(peer) {
        return peer;
    }
    let forwarded = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect::<Vec<_>>();
    let mut client = peer;
    for hop in forwarded.iter().rev() {
        match hop.parse::<IpAddr>() {
            Ok(ip) if is_trusted(ip) => client = ip,
            Ok(ip) => return ip,
            // Garbage in the header: trust nothing further left.
            Err(_) => return client,
        }
    }
    client
}

/// The key of a client's bucket: its address, or for IPv6 its /64 (one host holds a whole /64).
pub fn client_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// The connection's peer address, when the server was started with it (`app::serve` is).
pub struct Peer(pub Option<ConnectInfo<SocketAddr>>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Peer(parts.extensions.get::<ConnectInfo<SocketAddr>>().cloned()))
    }
}

/// Everything `/chat` checks before it answers.
pub struct ChatLimits {
    pub per_session: Option<Buckets>,
    pub per_client: Option<Buckets>,
    pub trusted_proxies: Vec<Cidr>,
    pub model_calls: Semaphore,
    pub queue_timeout: Duration,
}

impl ChatLimits {
    /// `0` turns a rate off.
    pub fn new(
        per_session: u32,
        per_client: u32,
        trusted_proxies: Vec<Cidr>,
        max_model_calls: usize,
        queue_timeout: Duration,
    ) -> ChatLimits {
        ChatLimits {
            per_session: (per_session > 0).then(|| Buckets::new(per_session)),
            per_client: (per_client > 0).then(|| Buckets::new(per_client)),
            trusted_proxies,
            model_calls: Semaphore::new(max_model_calls.max(1)),
            queue_timeout,
        }
    }

    /// No limit at all: for benchmarks and tests of something else.
    pub fn unlimited() -> ChatLimits {
        ChatLimits::new(0, 0, Vec::new(), Semaphore::MAX_PERMITS, Duration::ZERO)
    }

    /// The client's own rate, by address (before anything is parsed).
    pub fn check_client(&self, peer: Option<&ConnectInfo<SocketAddr>>, headers: &HeaderMap) -> Result<(), Limited> {
        let (Some(buckets), Some(ConnectInfo(peer))) = (&self.per_client, peer) else {
            return Ok(());
        };
        let client = client_address(peer.ip(), headers, &self.trusted_proxies);
        buckets
            .take(&client_key(client), Instant::now())
            .map_err(|retry_after| Limited::ClientRate { retry_after })
    }

    /// The session's rate.
    pub fn check_session(&self, session_id: &str) -> Result<(), Limited> {
        let Some(buckets) = &self.per_session else {
            return Ok(());
        };
        buckets
            .take(session_id, Instant::now())
            .map_err(|retry_after| Limited::SessionRate { retry_after })
    }

    /// A model call slot, waiting at most the queue timeout for one.
    pub async fn model_slot(&self) -> Result<SemaphorePermit<'_>, Limited> {
        match tokio::time::timeout(self.queue_timeout, self.model_calls.acquire()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(Limited::ModelBusy),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let b = Buckets::new(60); // 1 a second, bursts of 10
        let t0 = Instant::now();
        for _ in 0..10 {
            assert!(b.take("s", t0).is_ok());
        }
        let wait = b.take("s", t0).unwrap_err();
        assert!(
            wait > Duration::from_millis(900) && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        assert!(b.take("s", t0 + Duration::from_millis(1001)).is_ok());
        assert!(b.take("other", t0).is_ok(), "each key has its own bucket");
    }

    #[test]
    fn small_rates_still_burst_a_little_but_never_above_the_rate() {
        assert_eq!(Buckets::new(30).capacity, 5.0);
        assert_eq!(Buckets::new(3).capacity, 3.0);
        assert_eq!(Buckets::new(600).capacity, 100.0);
    }

    #[test]
    fn the_table_stays_bounded() {
        let b = Buckets::new(60);
        let t0 = Instant::now();
        for i in 0..MAX_TRACKED + 10 {
            let _ = b.take(&i.to_string(), t0);
        }
        assert_eq!(b.tracked(), MAX_TRACKED);
        // Later, idle buckets make room.
        assert!(b.take("new", t0 + Duration::from_secs(60)).is_ok());
        assert!(b.tracked() <= 1);
    }

    fn headers(xff: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", xff.parse().unwrap());
        h
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let trusted: Vec<Cidr> = vec!["10.0.0.0/8".parse().unwrap(), "fd00::/8".parse().unwrap()];
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        // From an untrusted peer the header is ignored.
        assert_eq!(
            client_address(ip("203.0.113.9"), &headers("1.2.3.4"), &trusted),
            ip("203.0.113.9")
        );
        // Through the ingress: the last untrusted hop, not what the client wrote on the left.
        let h = headers("6.6.6.6, 198.51.100.7, 10.1.2.3");
        assert_eq!(client_address(ip("10.0.0.5"), &h, &trusted), ip("198.51.100.7"));
        // Garbage stops the walk at the last trusted address.
        assert_eq!(
            client_address(ip("10.0.0.5"), &headers("nonsense, 10.1.2.3"), &trusted),
            ip("10.1.2.3")
        );
        assert_eq!(
            client_address(ip("10.0.0.5"), &HeaderMap::new(), &trusted),
            ip("10.0.0.5")
        );
        // An IPv4 proxy seen through a dual-stack listener is still trusted.
        assert_eq!(
            client_address(ip("::ffff:10.0.0.5"), &headers("198.51.100.7"), &trusted),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn ranges_parse_and_match() {
        let c: Cidr = "192.168.0.0/16".parse().unwrap();
        assert!(c.contains("192.168.44.1".parse().unwrap()));
        assert!(!c.contains("192.169.0.1".parse().unwrap()));
        assert!(!c.contains("::1".parse().unwrap()));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()));
        let one: Cidr = "2001:db8::1".parse().unwrap();
        assert!(one.contains("2001:db8::1".parse().unwrap()) && !one.contains("2001:db8::2".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<Cidr>().unwrap_err().contains("0 to 32"));
        assert!("ten".parse::<Cidr>().is_err());
    }

    #[test]
    fn an_ipv6_client_is_its_64() {
        let a = client_key("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = client_key("2001:db8:1:2:bbbb::9".parse().unwrap());
        assert_eq!(a, b);
        assert_eq!(a, "2001:db8:1:2::/64");
        assert_eq!(client_key("::ffff:192.0.2.1".parse().unwrap()), "192.0.2.1");
    }
}

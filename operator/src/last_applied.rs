//! What our field manager last applied to a child, kept as a hash in an annotation of the child. An apply can be
//! skipped only when the live object holds every field we set *and* we would apply the same object as last time:
//! a field dropped from what we apply (an env var, a pod label, the SLO rule group) leaves the live object a superset
//! of the desired one, and only a new apply lets server-side apply remove it.

use serde::Serialize;

/// The annotation holding [`hash`] of what was applied.
pub const ANNOTATION: &str = "monitoring.chatbot-sav.io/applied-hash";

/// A stable hash of `object` (FNV-1a 64 over its JSON, whose maps are ordered), as 16 hex digits.
pub fn hash<K: Serialize>(object: &K) -> String {
    let bytes = serde_json::to_vec(object).expect("children serialize");
    let h = bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_hash_is_stable_and_sees_removals() {
        let with = json!({"env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]});
        let without = json!({"env": [{"name": "A", "value": "1"}]});
        assert_eq!(hash(&with), hash(&with.clone()));
        assert_ne!(hash(&with), hash(&without));
        // Pinned: a change of the function re-applies every child once, which is worth knowing about.
        assert_eq!(hash(&json!({})), "08f44b07b5901a25");
    }
}

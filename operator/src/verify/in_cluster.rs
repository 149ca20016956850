//! Where the operator reaches a Prometheus or an Alertmanager that the Prometheus Operator runs, from the object
//! itself: its first pod through the governing Service (`prometheus-operated`, `alertmanager-operated`, shared by
//! every server of the namespace, so the pod's own name picks the selected one), HTTPS when `spec.web.tlsConfig` is
//! set, and under `spec.routePrefix`. The container port is 9090 (9093) whatever `spec.portName` calls it.

use kube::ResourceExt;

use crate::prometheus_operator::{Alertmanager, Prometheus, Served};

/// The API's base URL of `prometheus`, or why nothing outside its pods can reach it, or why one of its servers does
/// not answer for it.
pub fn prometheus_url(prometheus: &Prometheus) -> Result<String, String> {
    // Shard 0 scrapes only its share of the targets: asked alone, it would call the chatbot unscraped, or scraped
    // when only some of its pods are.
    if let Some(shards) = prometheus.spec.shards.filter(|n| *n > 1) {
        return Err(format!(
            "Prometheus {}/{} runs {shards} shards, each scraping a share of the targets, and one of them cannot \
             answer for all: name a URL that queries every shard (Thanos Query or another query frontend) in the \
             resource or the operator's flags",
            prometheus.namespace().unwrap_or_default(),
            prometheus.name_any()
        ));
    }
    base_url(
        &Server {
            kind: "Prometheus",
            pod_prefix: "prometheus",
            service: "prometheus-operated",
            port: 9090,
        },
        &prometheus.namespace().unwrap_or_default(),
        &prometheus.name_any(),
        &prometheus.spec.served,
    )
}

/// The API's base URL of `alertmanager`, or why nothing outside its pods can reach it.
pub fn alertmanager_url(alertmanager: &Alertmanager) -> Result<String, String> {
    base_url(
        &Server {
            kind: "Alertmanager",
            pod_prefix: "alertmanager",
            service: "alertmanager-operated",
            port: 9093,
        },
        &alertmanager.namespace().unwrap_or_default(),
        &alertmanager.name_any(),
        &alertmanager.spec.served,
    )
}

struct Server {
    kind: &'static str,
    pod_prefix: &'static str,
    service: &'static str,
    port: u16,
}

fn base_url(server: &Server, namespace: &str, name: &str, web: &Served) -> Result<String, String> {
    if web.listen_local == Some(true) {
        return Err(format!(
            "{} {namespace}/{name} has listenLocal: true: its API answers only inside its pods; name a URL that \
             reaches it (a sidecar or proxy) in the resource or the operator's flags",
            server.kind
        ));
    }
    let scheme = match web.web.as_ref().and_then(|w| w.tls_config.as_ref()) {
        Some(tls) if !tls.is_null() => "https",
        _ => "http",
    };
    // The Prometheus Operator runs the server with `--web.route-prefix=<routePrefix or />`.
    let prefix = web.route_prefix.as_deref().unwrap_or("").trim_matches('/');
    let prefix = if prefix.is_empty() {
        String::new()
    } else {
        format!("/{prefix}")
    };
    // The StatefulSet is `<kind>-<name>` and its pods get DNS names under the governing Service.
    Ok(format!(
        "{scheme}://{}-{name}-0.{}.{namespace}.svc:{}{prefix}",
        server.pod_prefix, server.service, server.port
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn prometheus(spec: serde_json::Value) -> Prometheus {
        serde_json::from_value(json!({
            "apiVersion": "monitoring.coreos.com/v1", "kind": "Prometheus",
            "metadata": {"name": "kps", "namespace": "monitoring"}, "spec": spec,
        }))
        .unwrap()
    }

    #[test]
    fn the_default_is_the_first_pod_over_http_at_the_root() {
        assert_eq!(
            prometheus_url(&prometheus(json!({}))).unwrap(),
            "http://prometheus-kps-0.prometheus-operated.monitoring.svc:9090"
        );
    }

    /// The defect seen on a real node: with `routePrefix: /prom` every call answered 404 at the root.
    #[test]
    fn the_route_prefix_and_web_tls_are_the_objects() {
        let p = prometheus(json!({"routePrefix": "/prom/", "portName": "http-web",
                                  "web": {"tlsConfig": {"cert": {"secret": {"name": "tls", "key": "tls.crt"}}}}}));
        assert_eq!(
            prometheus_url(&p).unwrap(),
            "https://prometheus-kps-0.prometheus-operated.monitoring.svc:9090/prom"
        );
        // A web section without TLS (a page title, say) is still HTTP; a prefix of "/" is the root.
        let p = prometheus(json!({"routePrefix": "/", "web": {"pageTitle": "Shop"}}));
        assert_eq!(
            prometheus_url(&p).unwrap(),
            "http://prometheus-kps-0.prometheus-operated.monitoring.svc:9090"
        );
    }

    #[test]
    fn listen_local_is_unreachable_and_says_so() {
        let e = prometheus_url(&prometheus(json!({"listenLocal": true}))).unwrap_err();
        assert!(e.starts_with("Prometheus monitoring/kps has listenLocal: true"), "{e}");
    }

    /// Found reading the Prometheus Operator's sharding: shard 0 scrapes a share of the targets, so asking it alone
    /// reported a chatbot on another shard as not scraped.
    #[test]
    fn a_sharded_prometheus_needs_a_url_that_queries_every_shard() {
        let e = prometheus_url(&prometheus(json!({"shards": 3}))).unwrap_err();
        assert!(e.starts_with("Prometheus monitoring/kps runs 3 shards"), "{e}");
        assert!(prometheus_url(&prometheus(json!({"shards": 1}))).is_ok());
    }

    #[test]
    fn an_alertmanager_likewise() {
        let a: Alertmanager = serde_json::from_value(json!({
            "apiVersion": "monitoring.coreos.com/v1", "kind": "Alertmanager",
            "metadata": {"name": "main", "namespace": "monitoring"},
            "spec": {"routePrefix": "/am", "web": {"tlsConfig": {"keySecret": {"name": "k", "key": "tls.key"}}}},
        }))
        .unwrap();
        assert_eq!(
            alertmanager_url(&a).unwrap(),
            "https://alertmanager-main-0.alertmanager-operated.monitoring.svc:9093/am"
        );
    }
}

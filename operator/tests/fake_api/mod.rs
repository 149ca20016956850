//! A scripted Kubernetes API server behind a real `kube::Client` (tower-test's mock service, as controller-rs'
//! fixtures do), with just enough semantics for the reconciler: objects by path, 404s, server-side apply that keeps
//! `resourceVersion` when nothing changes, status patches, deletes, events, discovery of monitoring.coreos.com,
//! and injected failures. Every request is logged in order so tests assert exactly what the operator did.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use http::{Method, Request, Response, StatusCode};
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};

/// One request as the operator sent it.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub method: Method,
    pub path: String,
    pub query: String,
}

impl Call {
    /// `"PATCH /apis/apps/v1/namespaces/default/deployments/chatbot"`.
    pub fn line(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

/// Changes an object on its way into storage, as a mutating admission webhook does.
pub type Webhook = fn(&mut Value);

#[derive(Default)]
pub struct State {
    pub objects: BTreeMap<String, Value>,
    pub calls: Vec<Call>,
    pub events: Vec<Value>,
    /// Serve monitoring.coreos.com/v1 (the Prometheus Operator CRDs are installed).
    pub prometheus_operator: bool,
    /// Deployments report all their pods ready once applied.
    pub pods_ready: bool,
    /// Failures to inject: (method, path suffix, HTTP status), each used once.
    pub failures: Vec<(Method, String, u16)>,
    /// What a mutating admission webhook would do to an applied object, by path suffix.
    pub webhooks: Vec<(String, Webhook)>,
    next_version: u64,
}

#[derive(Clone)]
pub struct FakeApi(pub Arc<Mutex<State>>);

impl FakeApi {
    /// A client talking to a fresh fake server; the server runs until the client and its clones are dropped.
    pub fn start() -> (Client, FakeApi) {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let fake = FakeApi(Arc::new(Mutex::new(State {
            prometheus_operator: true,
            pods_ready: true,
            next_version: 100,
            ..State::default()
        })));
        // kube-prometheus-stack's Prometheus, as installed in most clusters: selects `release: kps` everywhere.
        fake.put(PROMETHEUS, default_prometheus());
        let server = fake.clone();
        tokio::spawn(async move {
            while let Some((request, send)) = handle.next_request().await {
                let response = server.handle(request).await;
                send.send_response(response);
            }
        });
        (Client::new(service, "default"), fake)
    }

    pub fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap()
    }

    /// The request lines since the last call, and forgets them.
    pub fn take_calls(&self) -> Vec<String> {
        std::mem::take(&mut self.state().calls).iter().map(Call::line).collect()
    }

    pub fn get(&self, path: &str) -> Option<Value> {
        self.state().objects.get(path).cloned()
    }

    pub fn put(&self, path: &str, object: Value) {
        self.state().objects.insert(path.to_owned(), object);
    }

    pub fn remove(&self, path: &str) -> Option<Value> {
        self.state().objects.remove(path)
    }

    async fn handle(&self, request: Request<Body>) -> Response<Body> {
        let method = request.method().clone();
        let uri = request.uri().clone();
        let path = uri.path().to_owned();
        let query = uri.query().unwrap_or("").to_owned();
        let content_type = request
            .headers()
            .get(http::header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let body = request.into_body().collect_bytes().await.unwrap();
        let body: Value = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&body).unwrap_or(Value::Null)
        };
        let mut s = self.0.lock().unwrap();
        s.calls.push(Call {
            method: method.clone(),
            path: path.clone(),
            query: query.clone(),
        });
        if let Some(i) = s
            .failures
            .iter()
            .position(|(m, p, _)| *m == method && path.ends_with(p.as_str()))
        {
            let (_, _, code) = s.failures.remove(i);
            return status(code, "injected failure");
        }

        if path == "/apis/monitoring.coreos.com/v1" {
            return if s.prometheus_operator {
                ok(&json!({
                    "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "monitoring.coreos.com/v1",
                    "resources": [
                        {"name": "servicemonitors", "singularName": "servicemonitor", "namespaced": true,
                         "kind": "ServiceMonitor", "verbs": ["get", "list", "watch", "create", "patch", "delete"]},
                        {"name": "prometheusrules", "singularName": "prometheusrule", "namespaced": true,
                         "kind": "PrometheusRule", "verbs": ["get", "list", "watch", "create", "patch", "delete"]},
                    ],
                }))
            } else {
                status(404, "the server could not find the requested resource")
            };
        }
        if path.contains("/events") {
            s.events.push(body.clone());
            return ok(&body);
        }

        let (object_path, subresource) = match path.strip_suffix("/status") {
            Some(p) => (p.to_owned(), true),
            None => (path.clone(), false),
        };
        // A list of a kind across namespaces, e.g. GET /apis/monitoring.coreos.com/v1/prometheuses.
        if method == Method::GET && path.ends_with("/prometheuses") {
            let items: Vec<Value> = s
                .objects
                .iter()
                .filter(|(p, _)| p.contains("/prometheuses/"))
                .map(|(_, o)| o.clone())
                .collect();
            return ok(
                &json!({"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusList",
                              "metadata": {"resourceVersion": "1"}, "items": items}),
            );
        }
        match method {
            Method::GET => match s.objects.get(&object_path) {
                Some(o) if query.contains("as=PartialObjectMetadata") || content_type.contains("PartialObject") => ok(
                    &json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": o["metadata"]}),
                ),
                Some(o) => ok(o),
                None => status(404, "not found"),
            },
            Method::PATCH if subresource => {
                let Some(mut o) = s.objects.get(&object_path).cloned() else {
                    return status(404, "not found");
                };
                if o["status"] != body["status"] {
                    o["status"] = body["status"].clone();
                    s.next_version += 1;
                    o["metadata"]["resourceVersion"] = json!(s.next_version.to_string());
                }
                s.objects.insert(object_path, o.clone());
                ok(&o)
            }
            Method::PATCH => {
                assert_eq!(
                    content_type, "application/apply-patch+yaml",
                    "only server-side apply is used"
                );
                let existing = s.objects.get(&object_path).cloned();
                let mut o = body.clone();
                // Server side: status and identity are the server's.
                if let Some(e) = &existing {
                    o["status"] = e["status"].clone();
                    o["metadata"]["uid"] = e["metadata"]["uid"].clone();
                    o["metadata"]["resourceVersion"] = e["metadata"]["resourceVersion"].clone();
                }
                let changed = existing
                    .as_ref()
                    .is_none_or(|e| strip_server_fields(e) != strip_server_fields(&o));
                if changed {
                    s.next_version += 1;
                    o["metadata"]["resourceVersion"] = json!(s.next_version.to_string());
                    if existing.is_none() {
                        o["metadata"]["uid"] = json!(format!("uid-{}", s.next_version));
                    }
                }
                for (suffix, webhook) in &s.webhooks {
                    if object_path.ends_with(suffix.as_str()) {
                        webhook(&mut o);
                    }
                }
                if o["kind"] == "Deployment" && s.pods_ready {
                    let replicas = o["spec"]["replicas"].clone();
                    o["status"] =
                        json!({"replicas": replicas, "readyReplicas": replicas, "availableReplicas": replicas});
                }
                if o["status"].is_null() {
                    o.as_object_mut().unwrap().remove("status");
                }
                s.objects.insert(object_path, o.clone());
                ok(&o)
            }
            Method::DELETE => match s.objects.remove(&object_path) {
                Some(_) => ok(&json!({"kind": "Status", "apiVersion": "v1", "status": "Success"})),
                None => status(404, "not found"),
            },
            other => panic!("unexpected {other} {path}"),
        }
    }
}

/// Path of the Prometheus every fake cluster starts with.
pub const PROMETHEUS: &str = "/apis/monitoring.coreos.com/v1/namespaces/monitoring/prometheuses/kps";

pub fn default_prometheus() -> Value {
    let release = json!({"matchLabels": {"release": "kps"}});
    json!({
        "apiVersion": "monitoring.coreos.com/v1", "kind": "Prometheus",
        "metadata": {"name": "kps", "namespace": "monitoring"},
        "spec": {"serviceMonitorSelector": release, "serviceMonitorNamespaceSelector": {},
                 "ruleSelector": release, "ruleNamespaceSelector": {}},
    })
}

fn strip_server_fields(o: &Value) -> Value {
    let mut o = o.clone();
    if let Some(m) = o["metadata"].as_object_mut() {
        m.remove("resourceVersion");
        m.remove("uid");
    }
    if let Some(map) = o.as_object_mut() {
        map.remove("status");
    }
    o
}

fn ok(v: &Value) -> Response<Body> {
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(v).unwrap()))
        .unwrap()
}

fn status(code: u16, message: &str) -> Response<Body> {
    let reason = match code {
        404 => "NotFound",
        409 => "Conflict",
        _ => "InternalError",
    };
    let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                      "message": message, "reason": reason, "code": code});
    Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(&body).unwrap()))
        .unwrap()
}

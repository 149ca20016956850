//! A scripted Kubernetes API server behind a real `kube::Client` (tower-test's mock service, as controller-rs'
//! fixtures do), with just enough semantics for the reconciler: objects by path, 404s, server-side apply that keeps
//! `resourceVersion` when nothing changes, status patches, deletes, events, discovery of monitoring.coreos.com,
//! injected failures, and watches that are cut and then expire (410) as after etcd's compaction. Every request is logged in order so tests assert exactly what the operator did.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use http::{Method, Request, Response};
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};
use tokio::sync::broadcast;

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

    /// The RBAC (group, resource, verb) the request needs; `None` for discovery.
    pub fn rbac(&self) -> Option<(String, String, &'static str)> {
        let call = self;
        let parts: Vec<&str> = call.path.trim_start_matches('/').split('/').collect();
        let (group, rest) = match parts.as_slice() {
            ["api", "v1", rest @ ..] => ("".to_owned(), rest.to_vec()),
            ["apis", group, _version, rest @ ..] => (group.to_string(), rest.to_vec()),
            _ => return None,
        };
        let (resource, named) = match rest.as_slice() {
            [resource] => (resource.to_string(), false),
            ["namespaces", _] => ("namespaces".to_owned(), true),
            ["namespaces", _, resource] => (resource.to_string(), false),
            ["namespaces", _, resource, _name] => (resource.to_string(), true),
            ["namespaces", _, resource, _name, sub] => (format!("{resource}/{sub}"), true),
            [] => return None,
            other => panic!("unexpected path shape {other:?}"),
        };
        let watch = call.query.contains("watch=true") || call.query.contains("watch=1");
        let verb = match (call.method.as_str(), named) {
            ("GET", _) if watch => "watch",
            ("GET", true) => "get",
            ("GET", false) => "list",
            ("POST", _) => "create",
            ("PATCH", _) => "patch",
            ("DELETE", _) => "delete",
            (m, _) => panic!("unexpected method {m}"),
        };
        Some((group, resource, verb))
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
    /// Among them, the Prometheus kind (false: only the ServiceMonitor and PrometheusRule CRDs are installed).
    pub prometheus_kind: bool,
    /// And the Alertmanager kind (AlertmanagerConfig, in v1alpha1, comes with the ServiceMonitor's CRDs).
    pub alertmanager_kind: bool,
    /// Deployments report all their pods ready once applied.
    pub pods_ready: bool,
    /// Failures to inject: (method, path suffix, HTTP status), each used once.
    pub failures: Vec<(Method, String, u16)>,
    /// Every watch event so far, with the resourceVersion it happened at, for watches that start from a version.
    log: Vec<(u64, String, Value)>,
    /// What a mutating admission webhook would do to an applied object, by path suffix.
    pub webhooks: Vec<(String, Webhook)>,
    /// Every request is answered 502, as a load balancer does while the API server behind it is away (not 503, which
    /// kube's client retries by itself).
    pub away: bool,
    /// The resourceVersion etcd was compacted at: a watch resuming from an older one is told 410 Expired.
    pub compacted: u64,
    /// How many watches were told 410 Expired.
    pub expired_watches: u32,
    next_version: u64,
}

#[derive(Clone)]
pub struct FakeApi(
    pub Arc<Mutex<State>>,
    broadcast::Sender<(String, Value)>,
    /// Bumped to end every open watch.
    tokio::sync::watch::Sender<u64>,
);

impl FakeApi {
    /// A client talking to a fresh fake server; the server runs until the client and its clones are dropped.
    pub fn start() -> (Client, FakeApi) {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let fake = FakeApi::new();
        let server = fake.clone();
        tokio::spawn(async move {
            while let Some((request, send)) = handle.next_request().await {
                let response = server.handle(request).await;
                send.send_response(response);
            }
        });
        (Client::new(service, "default"), fake)
    }

    /// The same server on a real port of 127.0.0.1, with watches: for the controller's own wiring.
    pub async fn serve(&self) -> String {
        let app = axum::Router::new().fallback(serve_one).with_state(self.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        url
    }

    fn new() -> FakeApi {
        let fake = FakeApi(
            Arc::new(Mutex::new(State {
                prometheus_operator: true,
                prometheus_kind: true,
                pods_ready: true,
                next_version: 100,
                ..State::default()
            })),
            broadcast::channel(1024).0,
            tokio::sync::watch::channel(0).0,
        );
        // kube-prometheus-stack's Prometheus, as installed in most clusters: selects `release: kps` everywhere.
        fake.put(PROMETHEUS, default_prometheus());
        fake
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

    /// Stores an object as another client would, and tells the watches.
    pub fn put(&self, path: &str, object: Value) {
        let mut object = object;
        let mut s = self.state();
        s.next_version += 1;
        if object["metadata"].is_object() {
            object["metadata"]["resourceVersion"] = json!(s.next_version.to_string());
        }
        let kind = if s.objects.contains_key(path) {
            "MODIFIED"
        } else {
            "ADDED"
        };
        s.objects.insert(path.to_owned(), object.clone());
        drop(s);
        self.tell(path, kind, &object);
    }

    pub fn remove(&self, path: &str) -> Option<Value> {
        let removed = self.state().objects.remove(path);
        if let Some(o) = &removed {
            self.tell(path, "DELETED", o);
        }
        removed
    }

    /// Ends every open watch and refuses every request, as a server that went away: what changes meanwhile reaches
    /// the watches only when it is back.
    pub fn go_away(&self) {
        self.state().away = true;
        self.2.send_modify(|epoch| *epoch += 1);
    }

    /// Serves again, with the history so far compacted away as etcd does: a watch resuming from an older
    /// resourceVersion is told 410 Expired and has to list again.
    pub fn come_back_compacted(&self) {
        let mut s = self.state();
        s.compacted = s.next_version;
        s.away = false;
    }

    /// A watch event for the object at `path`, logged and sent to the watches open now.
    fn tell(&self, path: &str, kind: &str, object: &Value) {
        let event = json!({"type": kind, "object": object});
        let mut s = self.state();
        let version = s.next_version;
        s.log.push((version, path.to_owned(), event.clone()));
        drop(s);
        let _ = self.1.send((path.to_owned(), event));
    }

    /// A watch of the collection at `path` from `since`: the logged events after it, then the new ones.
    fn watch(&self, path: &str, since: u64) -> impl futures::Stream<Item = Value> + Send + 'static {
        let live = self.1.subscribe();
        let backlog: Vec<Value> = self
            .state()
            .log
            .iter()
            .filter(|(v, p, _)| *v > since && in_collection(path, p))
            .map(|(_, _, e)| e.clone())
            .collect();
        let collection = path.to_owned();
        let mut cut = self.2.subscribe();
        let cut = async move {
            let _ = cut.changed().await;
        };
        let live = futures::stream::unfold(live, |mut rx| async move {
            loop {
                match rx.recv().await {
                    Ok(event) => return Some((event, rx)),
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        })
        .filter_map(move |(p, e)| futures::future::ready(in_collection(&collection, &p).then_some(e)));
        futures::stream::iter(backlog).chain(live).take_until(Box::pin(cut))
    }

    async fn handle(&self, request: Request<Body>) -> Response<Body> {
        let method = request.method().clone();
        let uri = request.uri().clone();
        let content_type = request
            .headers()
            .get(http::header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let body = request.into_body().collect_bytes().await.unwrap();
        let (code, value) = self.respond(method, uri.path(), uri.query().unwrap_or(""), &content_type, &body);
        let (content_type, bytes) = encode(&value);
        Response::builder()
            .status(code)
            .header("content-type", content_type)
            .body(Body::from(bytes))
            .unwrap()
    }

    /// The answer to one request: a status code and a JSON body.
    fn respond(&self, method: Method, path: &str, query: &str, content_type: &str, body: &[u8]) -> (u16, Value) {
        let path = path.to_owned();
        let query = query.to_owned();
        let body: Value = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(body).unwrap_or(Value::Null)
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
        if s.away {
            return status(502, "the server is away");
        }

        // What the real API server serves under monitoring.coreos.com/v1; anything else there is a plain-text 404.
        if path.starts_with("/apis/monitoring.coreos.com/") {
            let served = |kind: &str| match kind {
                "prometheuses" => s.prometheus_operator && s.prometheus_kind,
                "alertmanagers" => s.prometheus_operator && s.alertmanager_kind,
                _ => s.prometheus_operator,
            };
            let verbs = json!(["get", "list", "watch", "create", "patch", "delete"]);
            if path == "/apis/monitoring.coreos.com/v1alpha1" && s.prometheus_operator {
                return ok(&json!({
                    "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "monitoring.coreos.com/v1alpha1",
                    "resources": [{"name": "alertmanagerconfigs", "singularName": "alertmanagerconfig",
                                   "namespaced": true, "kind": "AlertmanagerConfig", "verbs": verbs}],
                }));
            }
            if path == "/apis/monitoring.coreos.com/v1" && s.prometheus_operator {
                let mut resources = vec![
                    json!({"name": "servicemonitors", "singularName": "servicemonitor", "namespaced": true,
                           "kind": "ServiceMonitor", "verbs": verbs}),
                    json!({"name": "prometheusrules", "singularName": "prometheusrule", "namespaced": true,
                           "kind": "PrometheusRule", "verbs": verbs}),
                ];
                if served("prometheuses") {
                    resources.push(
                        json!({"name": "prometheuses", "singularName": "prometheus", "namespaced": true,
                                          "kind": "Prometheus", "verbs": verbs}),
                    );
                }
                if served("alertmanagers") {
                    resources.push(
                        json!({"name": "alertmanagers", "singularName": "alertmanager", "namespaced": true,
                                          "kind": "Alertmanager", "verbs": verbs}),
                    );
                }
                return ok(&json!({
                    "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "monitoring.coreos.com/v1",
                    "resources": resources,
                }));
            }
            let kind = split(&path).and_then(|(_, rest)| match rest.as_slice() {
                [kind, ..] if *kind != "namespaces" => Some(kind.to_string()),
                ["namespaces", _, kind, ..] => Some(kind.to_string()),
                _ => None,
            });
            if !kind.is_some_and(|k| served(&k)) {
                return (404, Value::String(PLAIN_404.into()));
            }
        }
        if path.contains("/events") {
            s.events.push(body.clone());
            return ok(&body);
        }

        let (object_path, subresource) = match path.strip_suffix("/status") {
            Some(p) => (p.to_owned(), true),
            None => (path.clone(), false),
        };
        // A list of a kind, in a namespace or across namespaces, e.g. GET /apis/monitoring.coreos.com/v1/prometheuses.
        if method == Method::GET && is_collection(&path) {
            let items: Vec<Value> = s
                .objects
                .iter()
                .filter(|(p, _)| in_collection(&path, p))
                .map(|(_, o)| o.clone())
                .collect();
            return ok(&json!({"apiVersion": "v1", "kind": "List",
                              "metadata": {"resourceVersion": s.next_version.to_string()}, "items": items}));
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
                let changed = o["status"] != body["status"];
                if changed {
                    o["status"] = body["status"].clone();
                    s.next_version += 1;
                    o["metadata"]["resourceVersion"] = json!(s.next_version.to_string());
                }
                s.objects.insert(object_path.clone(), o.clone());
                drop(s);
                if changed {
                    self.tell(&object_path, "MODIFIED", &o);
                }
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
                s.objects.insert(object_path.clone(), o.clone());
                drop(s);
                if changed {
                    self.tell(&object_path, if existing.is_none() { "ADDED" } else { "MODIFIED" }, &o);
                }
                ok(&o)
            }
            Method::DELETE => match s.objects.remove(&object_path) {
                Some(o) => {
                    drop(s);
                    self.tell(&object_path, "DELETED", &o);
                    ok(&json!({"kind": "Status", "apiVersion": "v1", "status": "Success"}))
                }
                None => status(404, "not found"),
            },
            other => panic!("unexpected {other} {path}"),
        }
    }
}

/// One request to the HTTP server: a watch streams events, anything else is answered as the mock answers it.
async fn serve_one(
    axum::extract::State(fake): axum::extract::State<FakeApi>,
    request: axum::extract::Request,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let path = parts.uri.path().to_owned();
    let query = parts.uri.query().unwrap_or("").to_owned();
    let params: std::collections::HashMap<String, String> = query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    if parts.method == Method::GET && matches!(params.get("watch").map(String::as_str), Some("true" | "1")) {
        fake.state().calls.push(Call {
            method: Method::GET,
            path: path.clone(),
            query,
        });
        let since = params.get("resourceVersion").and_then(|v| v.parse().ok()).unwrap_or(0);
        let mut s = fake.state();
        if s.away {
            drop(s);
            let (code, value) = status(502, "the server is away");
            return (http::StatusCode::from_u16(code).unwrap(), axum::Json(value)).into_response();
        }
        if since > 0 && since < s.compacted {
            s.expired_watches += 1;
            let compacted = s.compacted;
            drop(s);
            // As the real server says it: an ERROR event in a 200 stream, not an HTTP error.
            let (_, gone) = status(410, &format!("too old resource version: {since} ({compacted})"));
            let mut line = serde_json::to_vec(&json!({"type": "ERROR", "object": gone})).unwrap();
            line.push(b'\n');
            return ([("content-type", "application/json")], line).into_response();
        }
        drop(s);
        let lines = fake.watch(&path, since).map(|event| {
            let mut line = serde_json::to_vec(&event).unwrap();
            line.push(b'\n');
            Ok::<_, std::convert::Infallible>(axum::body::Bytes::from(line))
        });
        return (
            [("content-type", "application/json")],
            axum::body::Body::from_stream(lines),
        )
            .into_response();
    }
    let content_type = parts
        .headers
        .get(http::header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let (code, value) = fake.respond(parts.method, &path, &query, &content_type, &body);
    let (content_type, bytes) = encode(&value);
    (
        http::StatusCode::from_u16(code).unwrap(),
        [("content-type", content_type)],
        bytes,
    )
        .into_response()
}

/// A JSON answer, or a plain-text one (a bare string, as for unknown paths).
fn encode(value: &Value) -> (&'static str, Vec<u8>) {
    match value {
        Value::String(text) => ("text/plain; charset=utf-8", format!("{text}\n").into_bytes()),
        other => ("application/json", serde_json::to_vec(other).unwrap()),
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

/// The real API server's answer for a path it does not serve: plain text, not a `Status`.
const PLAIN_404: &str = "404 page not found";

fn ok(v: &Value) -> (u16, Value) {
    (200, v.clone())
}

fn status(code: u16, message: &str) -> (u16, Value) {
    let reason = match code {
        404 => "NotFound",
        409 => "Conflict",
        410 => "Expired",
        502 => "BadGateway",
        _ => "InternalError",
    };
    (
        code,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": message, "reason": reason, "code": code}),
    )
}

/// A path split into its API prefix (`/api/v1` or `/apis/<group>/<version>`) and the segments after it.
fn split(path: &str) -> Option<(String, Vec<&str>)> {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match parts.as_slice() {
        ["api", "v1", rest @ ..] => Some(("/api/v1".to_owned(), rest.to_vec())),
        ["apis", group, version, rest @ ..] => Some((format!("/apis/{group}/{version}"), rest.to_vec())),
        _ => None,
    }
}

/// A list (or watch) path: `/api/v1/services`, `/api/v1/namespaces/default/services`, `/api/v1/namespaces`.
fn is_collection(path: &str) -> bool {
    matches!(split(path), Some((_, rest)) if matches!(rest.as_slice(), [_] | ["namespaces", _, _]))
}

/// Whether the object stored at `object` belongs to the collection at `collection`.
fn in_collection(collection: &str, object: &str) -> bool {
    let (Some((cp, c)), Some((op, o))) = (split(collection), split(object)) else {
        return false;
    };
    cp == op
        && match (c.as_slice(), o.as_slice()) {
            ([r], [r2, _]) => r == r2,
            ([r], ["namespaces", _, r2, _]) => r == r2,
            (["namespaces", ns, r], ["namespaces", ns2, r2, _]) => ns == ns2 && r == r2,
            _ => false,
        }
}

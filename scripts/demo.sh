#!/usr/bin/env bash
# The product without a cluster: the chatbot on :8001, a real Prometheus on :9090 loaded with the scrape
# configuration and alerting rules that the operator renders from examples/notifications.yaml, a real Alertmanager on
# :9093 loaded with the routing rendered from its notifications, a webhook receiver on :5001 that prints each
# notification, and a traffic generator (both languages, every user type, escalations, bad input, and 1 chat in 10
# failing with a 503, which fires HighErrorRate within minutes), then `chatbot-operator verify` showing every check
# pass. Ctrl-C stops everything. Installs Prometheus and Alertmanager from Debian when they are missing.
#   RESOURCE=examples/minimal.yaml scripts/demo.sh    (no notifications: no Alertmanager)
set -euo pipefail
cd "$(dirname "$0")/.."

RESOURCE=${RESOURCE:-examples/notifications.yaml}
CHATBOT_PORT=${CHATBOT_PORT:-8001}
CHATBOT_METRICS_PORT=${CHATBOT_METRICS_PORT:-8002}
PROMETHEUS_PORT=${PROMETHEUS_PORT:-9090}
ALERTMANAGER_PORT=${ALERTMANAGER_PORT:-9093}
SINK_PORT=${SINK_PORT:-5001}

scripts/install-deps.sh --demo
echo "demo: building the chatbot and the operator (release)…"
cargo build --release -q -p chatbot -p chatbot-operator

work=$(mktemp -d)
pids=()
cleanup() {
  trap - INT TERM EXIT
  echo
  echo "demo: stopping…"
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
  echo "demo: stopped."
}
trap cleanup INT TERM EXIT

for port in "$CHATBOT_PORT" "$CHATBOT_METRICS_PORT" "$PROMETHEUS_PORT" "$ALERTMANAGER_PORT" "$SINK_PORT"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "demo: port $port is already in use; stop what listens there or set CHATBOT_PORT / CHATBOT_METRICS_PORT /" \
      "PROMETHEUS_PORT / ALERTMANAGER_PORT / SINK_PORT" >&2
    exit 1
  fi
done

target/release/chatbot --listen "127.0.0.1:$CHATBOT_PORT" --internal-listen "127.0.0.1:$CHATBOT_METRICS_PORT" --database-url "sqlite://$work/chatbot.db" \
  --fault-every 10 --log-format text >"$work/chatbot.log" 2>&1 &
pids+=($!)

# The Secret the receivers read their URLs from, as `kubectl create secret` would hold it: here the local receiver.
cat >"$work/secrets.yaml" <<YAML
apiVersion: v1
kind: Secret
metadata: {name: chatbot-alerting}
stringData:
  paging-url: http://127.0.0.1:$SINK_PORT/paging
  chat-url: http://127.0.0.1:$SINK_PORT/chat
YAML
target/release/chatbot-operator render -f "$RESOURCE" \
  --local-prometheus "$work/prometheus" --target "127.0.0.1:$CHATBOT_METRICS_PORT" \
  --alertmanager "127.0.0.1:$ALERTMANAGER_PORT" --secrets "$work/secrets.yaml"
verify_alerting=()
if [[ -f "$work/prometheus/alertmanager.yml" ]]; then
  scripts/webhook-sink.py "$SINK_PORT" &
  pids+=($!)
  # Alone: no cluster port (:9094) to open, no peers to wait for.
  prometheus-alertmanager --config.file="$work/prometheus/alertmanager.yml" --storage.path="$work/alertmanager" \
    --web.listen-address="127.0.0.1:$ALERTMANAGER_PORT" --cluster.listen-address= --log.level=warn \
    >"$work/alertmanager.log" 2>&1 &
  pids+=($!)
  verify_alerting=(--alertmanager-url "http://127.0.0.1:$ALERTMANAGER_PORT")
fi
prometheus --config.file="$work/prometheus/prometheus.yml" --storage.tsdb.path="$work/tsdb" \
  --web.listen-address="127.0.0.1:$PROMETHEUS_PORT" --log.level=warn >"$work/prometheus.log" 2>&1 &
pids+=($!)

for _ in $(seq 100); do
  curl -fs "http://127.0.0.1:$CHATBOT_METRICS_PORT/health" >/dev/null 2>&1 &&
    curl -fs "http://127.0.0.1:$PROMETHEUS_PORT/-/ready" >/dev/null 2>&1 && break
  sleep 0.2
done

# Traffic: about five requests a second until Ctrl-C.
(
  messages=("Où est ma commande ?" "Where is my order?" "Mon colis n'est toujours pas livré" "I want to return an item"
            "Quand vais-je être remboursé ?" "Can I pay with PayPal?" "J'ai oublié mon mot de passe"
            "What are your opening hours?" "Je veux parler à un conseiller" "xyzzy plugh" "Merci beaucoup")
  types=(guest customer premium agent)
  i=0
  while true; do
    m=${messages[$((i % ${#messages[@]}))]}
    t=${types[$((i % ${#types[@]}))]}
    curl -s -o /dev/null -H 'content-type: application/json' \
      -d "{\"message\": \"$m\", \"user_type\": \"$t\"}" "http://127.0.0.1:$CHATBOT_PORT/chat" || true
    if (( i % 10 == 0 )); then   # bad input: a 422 and an unknown route
      curl -s -o /dev/null -H 'content-type: application/json' -d '{"message": ""}' "http://127.0.0.1:$CHATBOT_PORT/chat" || true
      curl -s -o /dev/null "http://127.0.0.1:$CHATBOT_PORT/no-such-page" || true
    fi
    i=$((i + 1))
    sleep 0.2
  done
) &
pids+=($!)

cat <<TXT

  Chatbot:     http://localhost:$CHATBOT_PORT        (POST /chat, GET /conversations/{id})
  Internal:    http://localhost:$CHATBOT_METRICS_PORT        (GET /metrics, /health, /ready: what Prometheus scrapes)
  Prometheus:  http://localhost:$PROMETHEUS_PORT        (Status > Targets: the chatbot; Alerts: the rendered rules)
  Try:         curl -s localhost:$CHATBOT_PORT/chat -H 'content-type: application/json' -d '{"message":"Où est ma commande ?"}'
  Queries:     rate(http_requests_total[1m])   memory_usage_bytes / 1024 / 1024   rate(chat_requests_total[5m])
  Alertmanager: http://localhost:$ALERTMANAGER_PORT/api/v2/alerts   (amtool --alertmanager.url=http://localhost:$ALERTMANAGER_PORT alert)
  Rendered:    $RESOURCE -> $work/prometheus/{prometheus.yml,rules.yml,alertmanager.yml}
  Logs:        $work/chatbot.log  $work/prometheus.log  $work/alertmanager.log

  Traffic is running: 1 chat in 10 answers 503, so HighErrorRate goes pending within two minutes (its 5-minute
  rate fills up), fires two minutes later, and its notification is printed below by the webhook receiver, about
  four minutes from now. Ctrl-C stops everything.

TXT

# The checks a cluster's operator makes, here against this Prometheus and Alertmanager: scraped, rules loaded, every
# panel's metrics present, alerts routed. They pass once the first scrapes and rule evaluations are in (the resource
# scrapes every 10s).
(
  for _ in $(seq 12); do
    sleep 5
    if target/release/chatbot-operator verify -f "$RESOURCE" --prometheus-url "http://127.0.0.1:$PROMETHEUS_PORT" \
        "${verify_alerting[@]}" >"$work/verify.txt" 2>&1; then
      echo "demo: chatbot-operator verify -f $RESOURCE --prometheus-url http://localhost:$PROMETHEUS_PORT ${verify_alerting[*]}"
      sed 's/^/  /' "$work/verify.txt"
      exit 0
    fi
  done
  echo "demo: verify still failing after a minute:"
  sed 's/^/  /' "$work/verify.txt"
) &
pids+=($!)
wait

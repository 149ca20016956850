#!/usr/bin/env bash
# Load benchmark of the chatbot (figures printed, not asserted).
# For /health, POST /chat and /metrics: requests/s and p50/p99 latency with wrk, the process's peak RSS, with the
# HTTP metrics layer and without it, so its overhead reads as a ratio. On two shared cores one run swings by 10 %
# either way: the on and off runs alternate ROUNDS times (default 3) and the best run of each is kept. Then checks
# that every 200 answer of the /chat load left its two messages in the database, and times /metrics rendering.
#   DURATION=10s THREADS=2 CONNECTIONS=64 ROUNDS=3 scripts/bench-chatbot.sh
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-64}
PORT=${PORT:-18080}
INTERNAL_PORT=${INTERNAL_PORT:-18081}
command -v wrk >/dev/null || { echo "wrk is missing: scripts/install-deps.sh --bench" >&2; exit 1; }

cargo build --release -q -p chatbot
BIN=target/release/chatbot
work=$(mktemp -d)
pid=""
cleanup() { [[ -n "$pid" ]] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

# wrk_run URL [SCRIPT] -> "rps p50 p99"
wrk_run() {
  local out
  out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency ${2:+-s "$2"} "$1")
  local rps p50 p99 non2xx
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  non2xx=$(awk '/Non-2xx/ {print $5}' <<<"$out")
  echo "$rps $p50 $p99 ${non2xx:-0}"
}

ROUNDS=${ROUNDS:-3}
declare -A RESULT
# keep MODE ROUTE "rps p50 p99 non2xx": the run with the higher throughput.
keep() {
  local old=${RESULT[$1,$2]:-0}
  awk -v a="${old%% *}" -v b="${3%% *}" 'BEGIN {exit !(b > a)}' && RESULT[$1,$2]=$3 || true
}
for round in $(seq "$ROUNDS"); do
for mode in on off; do
  rm -f "$work"/bench.db*
  "$BIN" --listen "127.0.0.1:$PORT" --internal-listen "127.0.0.1:$INTERNAL_PORT" --database-url "sqlite://$work/bench.db" --http-metrics="$([[ $mode == on ]] && echo true || echo false)" \
    --chat-rate-per-session 0 --chat-rate-per-client 0 \
    --log-format text >"$work/chatbot-$mode.log" 2>&1 &
  pid=$!
  for _ in $(seq 50); do curl -fs "http://127.0.0.1:$INTERNAL_PORT/health" >/dev/null 2>&1 && break; sleep 0.1; done
  keep "$mode" health "$(wrk_run "http://127.0.0.1:$INTERNAL_PORT/health")"
  keep "$mode" chat "$(wrk_run "http://127.0.0.1:$PORT/chat" bench/chat.lua)"
  if [[ $mode == on && $round == 1 ]]; then
    # wrk hangs up on the requests in flight when it stops (counted 499): their exchange may or may not be stored.
    scrape=$(curl -fs "http://127.0.0.1:$INTERNAL_PORT/metrics")
    ok=$(awk '/^http_requests_total\{/ && /endpoint="\/chat"/ && /status="200"/ {print $2}' <<<"$scrape")
    cut=$(awk '/^http_requests_total\{/ && /endpoint="\/chat"/ && /status="499"/ {print $2}' <<<"$scrape")
    cut=${cut:-0}
    stored=$(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('select count(*) from messages').fetchone()[0])" "$work/bench.db")
    verdict=$([[ $stored -ge $((ok * 2)) && $stored -le $(((ok + cut) * 2)) ]] && echo "every answered exchange is stored" || echo "MISMATCH")
    RESULT[stored]="$ok answers (200), $cut cut off by wrk at the end (499), $stored messages stored: $verdict"
  fi
  keep "$mode" metrics "$(wrk_run "http://127.0.0.1:$INTERNAL_PORT/metrics")"
  rss=$(awk '/VmHWM/ {printf "%.1f", $2/1024}' "/proc/$pid/status")
  awk -v a="${RESULT[$mode,rss]:-0}" -v b="$rss" 'BEGIN {exit !(b > a)}' && RESULT[$mode,rss]=$rss
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
done
done

printf '\nchatbot load benchmark: wrk -t%s -c%s -d%s on %s cores, builtin model, SQLite; best of %s alternating runs\n\n' \
  "$THREADS" "$CONNECTIONS" "$DURATION" "$(nproc)" "$ROUNDS"
printf '%-10s %-8s %12s %10s %10s %8s\n' route metrics req/s p50 p99 non-2xx
for route in health chat metrics; do
  for mode in on off; do
    read -r rps p50 p99 non2xx <<<"${RESULT[$mode,$route]}"
    printf '%-10s %-8s %12s %10s %10s %8s\n' "$route" "$mode" "$rps" "$p50" "$p99" "$non2xx"
  done
done
echo
for route in health chat; do
  read -r on _ <<<"${RESULT[on,$route]}"
  read -r off _ <<<"${RESULT[off,$route]}"
  awk -v r="$route" -v on="$on" -v off="$off" 'BEGIN {printf "metrics layer on %-7s throughput with/without = %.3f (overhead %.1f%%)\n", r, on/off, (1-on/off)*100}'
done
echo "peak RSS (highest of the runs): with metrics ${RESULT[on,rss]} MiB, without ${RESULT[off,rss]} MiB"
echo "storage: ${RESULT[stored]}"
echo
cargo bench -q -p chatbot --bench metrics_render 2>/dev/null | grep -v '^$'

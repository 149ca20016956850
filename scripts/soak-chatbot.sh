#!/usr/bin/env bash
# Soak benchmark of the chatbot (figures printed, not asserted): MINUTES of mixed traffic (bench/soak.lua: first
# contacts, follow-ups, customers reading their conversation, agents reading tickets and erasing conversations)
# with the retention job purging all along. Each WINDOW prints throughput, p50/p99 latency, RSS, open file
# descriptors, the database's size and rows, and what retention deleted, so that growth shows; then the first and
# last windows side by side.
#   MINUTES=30 WINDOW=60 CONNECTIONS=16 RETENTION=5m RETENTION_INTERVAL=1m scripts/soak-chatbot.sh
#   DATABASE_URL=postgres://user@127.0.0.1/db scripts/soak-chatbot.sh   # on PostgreSQL instead of SQLite
set -euo pipefail
cd "$(dirname "$0")/.."

MINUTES=${MINUTES:-30}
WINDOW=${WINDOW:-60}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-16}
RETENTION=${RETENTION:-5m}
RETENTION_INTERVAL=${RETENTION_INTERVAL:-1m}
PORT=${PORT:-18090}
INTERNAL_PORT=${INTERNAL_PORT:-18091}
command -v wrk >/dev/null || { echo "wrk is missing: scripts/install-deps.sh --bench" >&2; exit 1; }

cargo build --release -q -p chatbot
work=$(mktemp -d)
pid=""
cleanup() { [[ -n "$pid" ]] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

db_url=${DATABASE_URL:-sqlite://$work/soak.db}
export SOAK_AGENT_TOKEN=soak-agent-token-0123456789
CHATBOT_AGENT_TOKENS=$SOAK_AGENT_TOKEN target/release/chatbot --listen "127.0.0.1:$PORT" \
  --internal-listen "127.0.0.1:$INTERNAL_PORT" --database-url "$db_url" --retention "$RETENTION" \
  --retention-interval "$RETENTION_INTERVAL" --log-format text >"$work/chatbot.log" 2>&1 &
pid=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$INTERNAL_PORT/ready" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fs "http://127.0.0.1:$INTERNAL_PORT/ready" >/dev/null || { echo "the chatbot is not ready:" >&2; cat "$work/chatbot.log" >&2; exit 1; }

# The database's size in MiB and its message rows.
db_size() {
  if [[ $db_url == sqlite://* ]]; then
    du -cb "$work"/soak.db* 2>/dev/null | awk 'END {printf "%.1f", $1/1048576}'
  else
    psql "$db_url" -tAc "select round(pg_database_size(current_database())/1048576.0, 1)"
  fi
}
db_rows() {
  if [[ $db_url == sqlite://* ]]; then
    python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('select count(*) from messages').fetchone()[0])" "$work/soak.db"
  else
    psql "$db_url" -tAc "select count(*) from messages"
  fi
}
metric_sum() { curl -fs "http://127.0.0.1:$INTERNAL_PORT/metrics" | awk -v m="$1" '$1 ~ "^"m"({|$)" {s += $2} END {printf "%d", s}'; }

printf 'chatbot soak: %s min, wrk -t%s -c%s in %ss windows, retention %s every %s, %s, %s cores\n\n' \
  "$MINUTES" "$THREADS" "$CONNECTIONS" "$WINDOW" "$RETENTION" "$RETENTION_INTERVAL" "${db_url%%:*}" "$(nproc)"
header() {
  printf '%6s %9s %9s %9s %9s %5s %9s %10s %10s %8s %8s\n' min req/s p50 p99 RSS_MiB fds db_MiB messages purged \
    non-2xx timeouts
}
header
windows=$(( MINUTES * 60 / WINDOW ))
declare -a lines
for w in $(seq "$windows"); do
  out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"${WINDOW}s" --latency -s bench/soak.lua "http://127.0.0.1:$PORT")
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  non2xx=$(awk '/Non-2xx/ {print $5}' <<<"$out")
  # wrk's latency stops at its 2 s timeout: requests that waited longer are counted here instead.
  timeouts=$(grep -o 'timeout=[0-9]*' <<<"$out" | cut -d= -f2 || true)
  kill -0 "$pid" 2>/dev/null || { echo "the chatbot died:" >&2; tail -20 "$work/chatbot.log" >&2; exit 1; }
  rss=$(awk '/VmRSS/ {printf "%.1f", $2/1024}' "/proc/$pid/status")
  fds=$(ls "/proc/$pid/fd" | wc -l)
  line=$(printf '%6s %9s %9s %9s %9s %5s %9s %10s %10s %8s %8s' "$(( w * WINDOW / 60 ))" "$rps" "$p50" "$p99" "$rss" \
    "$fds" "$(db_size)" "$(db_rows)" "$(metric_sum retention_deleted_rows_total)" "${non2xx:-0}" "${timeouts:-0}")
  lines+=("$line")
  echo "$line"
done
echo
echo "first and last windows:"
header
echo "${lines[0]}"
echo "${lines[-1]}"
echo
echo "answers by status over the run (http_requests_total):"
curl -fs "http://127.0.0.1:$INTERNAL_PORT/metrics" |
  awk '/^http_requests_total\{/ {match($0, /status="[0-9]+"/); s = substr($0, RSTART + 8, RLENGTH - 9); n[s] += $2}
       END {for (s in n) printf "  %s: %d\n", s, n[s]}' | sort
echo "erased conversations: $(metric_sum conversations_erased_total); 429s by reason: $(curl -fs "http://127.0.0.1:$INTERNAL_PORT/metrics" | awk '/^chat_requests_limited_total\{/ {printf "%s ", $0}')"

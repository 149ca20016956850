#!/usr/bin/env bash
# Runs each fuzz target (fuzz/fuzz_targets/) for a bounded time with libFuzzer, from its seeds.
#   scripts/fuzz.sh [SECONDS] [TARGET...]     default: 60 s each, every target
# Needs a nightly toolchain (rustup toolchain install nightly) and cargo-fuzz (cargo install cargo-fuzz).
# New inputs go to fuzz/corpus/<target> (not committed); a crash is saved under fuzz/artifacts/<target>/ and
# replayed with: cargo +nightly fuzz run <target> fuzz/artifacts/<target>/<file>
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(chat_body knowledge_file chatbot_monitoring prometheus_answers)

command -v cargo-fuzz >/dev/null 2>&1 || { echo "fuzz: cargo-fuzz is missing: cargo install cargo-fuzz" >&2; exit 1; }
rustup run nightly rustc --version >/dev/null 2>&1 || { echo "fuzz: no nightly toolchain: rustup toolchain install nightly" >&2; exit 1; }

# Files the project already holds are seeds too: the shipped knowledge base, the example resources.
extra_seeds() {
  case "$1" in
    knowledge_file) echo chatbot/knowledge ;;
    chatbot_monitoring) echo examples ;;
  esac
}

for t in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$t"
  echo "== $t: ${seconds}s"
  # -rss_limit_mb: an input that makes the code hold more than this is a finding too.
  set +e
  cargo +nightly fuzz run -O "$t" "fuzz/corpus/$t" "fuzz/seeds/$t" $(extra_seeds "$t") -- \
    -max_total_time="$seconds" -rss_limit_mb=1024 -timeout=10 -max_len=65536 -print_final_stats=1 2>&1 |
    grep -E "^(#[0-9]+ +DONE|stat::|==[0-9]+==|SUMMARY|Done|error)|panicked|ERROR|Test unit written"
  status=${PIPESTATUS[0]}
  set -e
  # Non-zero: a finding (its input is under fuzz/artifacts/), or a target that did not build or run.
  if (( status != 0 )); then
    echo "fuzz: $t failed (exit $status); findings, if any, are in fuzz/artifacts/$t/" >&2
    exit 1
  fi
done

# Entry points; each is documented in README.md.

# The tests' Python tools (kubernetes-validate, Helm's engine) are in .venv: see scripts/venv.sh.
export PATH := $(CURDIR)/.venv/bin:$(PATH)
.PHONY: demo run test test-controlplane test-node e2e-kind lint bench bench-chatbot bench-operator bench-soak fuzz kind-up kind-down

demo: ## The chatbot, a real Prometheus on the operator's rendered config and rules, and traffic (Ctrl-C stops)
	scripts/demo.sh


run: ## Run the chatbot on the embedded defaults (builtin model, SQLite in ./chatbot.db, port 8000)
	cargo run --release -p chatbot

test: ## Install what the tests need, then run every test of the workspace and the chart tests
	scripts/install-deps.sh
	cargo test --workspace
	scripts/test-charts.sh

test-controlplane: ## Only the tests on a real control plane (etcd + kube-apiserver from KUBEBUILDER_ASSETS; see README)
	@test -n "$$KUBEBUILDER_ASSETS" || { echo "KUBEBUILDER_ASSETS is not set: see README.md, 'Tests on a real control plane'" >&2; exit 1; }
	scripts/install-deps.sh
	cargo build -p chatbot-operator
	cargo test -p controlplane-tests -- --nocapture

test-node: ## The product on a real one-node cluster (KUBEBUILDER_ASSETS and NODE_ASSETS; root; see README)
	@test -n "$$KUBEBUILDER_ASSETS" -a -n "$$NODE_ASSETS" || { echo "KUBEBUILDER_ASSETS and NODE_ASSETS must be set: see README.md, 'Tests on a real node'" >&2; exit 1; }
	scripts/install-deps.sh
	cargo test -p e2e-tests --test product on_a_real_node -- --nocapture

e2e-kind: ## The same e2e suite on a kind cluster it makes and deletes (needs docker, kind, kubectl; see README)
	scripts/kind-e2e.sh

lint: ## Formatting and clippy, as CI checks them
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

bench: bench-chatbot bench-operator

bench-operator: ## Reconcile cost against the scripted API server, memory with many resources cached, verification cost
	cargo bench -p chatbot-operator --bench reconcile
	cargo bench -p chatbot-operator --bench verify

bench-soak: ## 30 minutes of mixed traffic with retention purging: RSS, fds, database size and p99 per minute
	scripts/install-deps.sh --bench
	scripts/soak-chatbot.sh

fuzz: ## Every fuzz target for 60 s (nightly + cargo-fuzz; see fuzz/README.md)
	scripts/fuzz.sh 60

bench-chatbot: ## Load benchmark of the chatbot, with and without the metrics layer (prints figures)
	scripts/install-deps.sh --bench
	scripts/bench-chatbot.sh

kind-up: ## A kind cluster with the full stack (needs docker, kind, helm, kubectl): chatbot :8001, Prometheus :9090, Grafana :3000
	scripts/kind-up.sh

kind-down: ## Delete the kind cluster
	scripts/kind-down.sh

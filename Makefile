# Entry points; each is documented in README.md.
.PHONY: run test lint bench bench-chatbot

run: ## Run the chatbot on the embedded defaults (builtin model, SQLite in ./chatbot.db, port 8000)
	cargo run --release -p chatbot

test: ## Install what the tests need, then run every test of the workspace
	scripts/install-deps.sh
	cargo test --workspace

lint: ## Formatting and clippy, as CI checks them
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

bench: bench-chatbot

bench-chatbot: ## Load benchmark of the chatbot, with and without the metrics layer (prints figures)
	scripts/install-deps.sh --bench
	scripts/bench-chatbot.sh

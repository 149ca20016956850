//! Cross-component tests: see `tests/`.

#!/usr/bin/env bash
# What CI runs, in order: fmt, clippy, unused dependencies (scripts/unused-deps), docs, then
# scripts/test (the README's test command).
set -euo pipefail
cd "$(dirname "$0")/.."
set -x
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
scripts/unused-deps --locked
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --workspace --locked
NEXTEST_PROFILE=ci scripts/test

#!/usr/bin/env bash
# What CI runs, in order: fmt, clippy, unused dependencies (scripts/unused-deps), docs, then
# Chromium for the report.html browser test (scripts/install-peers chromium; with
# RELOADBENCH_REQUIRE_BROWSER=1 that test fails instead of skipping without it), then
# scripts/test (the README's test command).
set -euo pipefail
cd "$(dirname "$0")/.."
set -x
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
scripts/unused-deps --locked
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --workspace --locked
scripts/install-peers chromium
RELOADBENCH_REQUIRE_BROWSER=1 NEXTEST_PROFILE=ci scripts/test

#!/usr/bin/env bash
# Runs every check and test: formatting, clippy, unit, integration (real gVisor and runc
# sandboxes, real images), adversarial and client acceptance tests. Installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup-host.sh docker-registry busybox-static websocketd
./scripts/python-test-env.sh
./scripts/acceptance-env.sh
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
echo "== building the service and agent"
cargo build --workspace --bins
echo "== cargo test"
cargo test --workspace --exclude sandpool-net -- --test-threads=2
# The network tests share one test "internet" (routes in 198.18.0.0/15): one at a time.
cargo test -p sandpool-net -- --test-threads=1

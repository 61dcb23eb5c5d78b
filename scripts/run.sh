#!/usr/bin/env bash
# Builds sandpool and runs the service with its embedded defaults (127.0.0.1:8080, data in
# ./.sandpool, pools `python` and `shell`). Extra arguments go to `sandpool serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup-host.sh
cargo build --release
exec ./target/release/sandpool serve "$@"

#!/usr/bin/env bash
# The test command: installs what the tests need, then runs every test.
# Extra arguments go to `cargo test` (e.g. `scripts/test.sh http_push`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-deps.sh
cargo test --locked "$@"

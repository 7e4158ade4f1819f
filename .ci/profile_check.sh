#!/usr/bin/env bash
# CI step (called by .ci/run): the memory-traffic profile of every kernel, regenerated on the
# emulator (feature `selftest` builds the kernels with TESSERA_SANITIZE=checks) and compared
# with the checked-in kernels/profile-report.txt. Fails when a kernel's coalescing efficiency
# drops, its shared-memory wavefronts per request (bank conflicts) or its bytes moved grow, or
# a kernel is missing from or new to the report. Regenerate after an intended change with
#   cargo run --features selftest -- profile --write kernels/profile-report.txt
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --quiet --features selftest --bin tessera -- profile --check kernels/profile-report.txt

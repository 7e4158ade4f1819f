#!/usr/bin/env bash
# Builds the GPU check kit: every test and benchmark executable of tessera, compiled with
# nvcc so that the fatbins (sm_80, sm_90, compute_90 PTX) are embedded, stripped, into
# one folder with a runner (run.sh) that needs no Rust toolchain and no network.
#
#   scripts/gpu-kit.sh [--nvcc PATH] [--out DIR] [--no-tar]
#
# nvcc: --nvcc, else $TESSERA_NVCC, else the CUDA 13 wheels of the cached virtualenv
# ($TESSERA_CUDA_VENV, default ~/.cache/tessera/cuda-13.5.37-venv, as in .ci/run).
# Output: target/gpu-kit/tessera-gpu-kit/ and target/gpu-kit/tessera-gpu-kit.tar.gz.
# Fails if the folder exceeds 60 MiB. On the GPU machine: `bash run.sh [--out DIR]`.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
export CARGO_TERM_COLOR=never

LIMIT_MIB=60
NVCC="${TESSERA_NVCC:-}"
KIT=""
TAR=1
usage() { sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
    case "$1" in
        --nvcc) NVCC="${2:?--nvcc needs a path}"; shift 2 ;;
        --nvcc=*) NVCC="${1#--nvcc=}"; shift ;;
        --out) KIT="${2:?--out needs a directory}"; shift 2 ;;
        --out=*) KIT="${1#--out=}"; shift ;;
        --no-tar) TAR=0; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "gpu-kit: unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
done

die() { echo "gpu-kit: error: $*" >&2; exit 1; }
step() { printf '\n=== %s (%s)\n' "$1" "$(date +%T)"; }

command -v cargo >/dev/null || die "cargo not found: building the kit needs a Rust toolchain"
command -v python3 >/dev/null || die "python3 not found: it parses cargo's JSON messages"

if [ -z "$NVCC" ]; then
    VENV="${TESSERA_CUDA_VENV:-$HOME/.cache/tessera/cuda-13.5.37-venv}"
    NVCC=$(ls "$VENV"/lib/python3*/site-packages/nvidia/cu13/bin/nvcc 2>/dev/null | head -1 || true)
    [ -n "$NVCC" ] || die "no nvcc: pass --nvcc PATH or set TESSERA_NVCC, or install the CUDA 13 wheels
  into $VENV (see .ci/run for the pinned versions). Without nvcc the executables would
  carry no GPU kernels, and the kit would check nothing on the GPU."
fi
[ -f "$NVCC" ] && [ -x "$NVCC" ] || die "nvcc '$NVCC' is not an executable file"
NVCC="$(cd "$(dirname "$NVCC")" && pwd)/$(basename "$NVCC")"
"$NVCC" --version >/dev/null 2>&1 || die "'$NVCC --version' fails: is the toolkit complete?"
NVCC_VERSION=$("$NVCC" --version | tail -1)

export TESSERA_NVCC="$NVCC"
export CARGO_TARGET_DIR="$ROOT/target/gpu-kit"
unset TESSERA_SANITIZE          # the kit is the plain build; ASan is for CI
ARCHS="${TESSERA_CUDA_ARCHS:-80,90}"
KIT="${KIT:-$CARGO_TARGET_DIR/tessera-gpu-kit}"
mkdir -p "$CARGO_TARGET_DIR"
KIT="$(cd "$(dirname "$KIT")" && pwd)/$(basename "$KIT")"
JSON_DIR="$CARGO_TARGET_DIR/kit-json"
mkdir -p "$JSON_DIR"

echo "nvcc:   $NVCC ($NVCC_VERSION)"
echo "archs:  $ARCHS"
echo "target: $CARGO_TARGET_DIR"
echo "kit:    $KIT"

# Tests read no fixture at run time today (tests/fsq.rs embeds its fixture with
# include_str!). A test that opens a file relative to the package root still works: the
# runner runs tests from the kit folder, which holds a copy of tests/fixtures. An absolute
# path baked in through CARGO_MANIFEST_DIR would not exist on the GPU machine: refuse it.
# (tests/kernel_contract.rs is the exception: it checks the build's own sources against
# each other, needs them and a C++ compiler, and stays out of the kit.)
if grep -ln 'CARGO_MANIFEST_DIR' tests/*.rs tests/*/*.rs benches/*.rs benches/*/*.rs 2>/dev/null \
    | grep -v '^tests/kernel_contract.rs$' | grep -q .; then
    die "a test or bench uses CARGO_MANIFEST_DIR, a path of this machine; locate files relative
  to the working directory instead (the runner runs from a folder with tests/fixtures)"
fi

step "cargo test --release --features selftest --no-run (fatbins embedded; nvcc compiles every kernel, this takes a while)"
cargo test --release --features selftest --no-run --message-format=json-render-diagnostics >"$JSON_DIR/test.json"
step "cargo bench --no-run"
cargo bench --no-run --message-format=json-render-diagnostics >"$JSON_DIR/bench.json"

step "collecting executables"
# One line per executable: <role> <name> <path>. role: test, bench, or bin.
LIST="$JSON_DIR/executables.txt"
python3 - "$JSON_DIR/test.json" "$JSON_DIR/bench.json" >"$LIST" <<'PY'
import json, sys

seen = {}
def add(role, name, path):
    seen.setdefault((role, name), path)

for which, file in (("test", sys.argv[1]), ("bench", sys.argv[2])):
    for line in open(file):
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if msg.get("reason") != "compiler-artifact" or not msg.get("executable"):
            continue
        target, exe = msg["target"], msg["executable"]
        kinds, name = target["kind"], target["name"]
        if which == "test" and msg["profile"]["test"]:
            # Unit tests of the lib and of the binary, and every integration test.
            if "lib" in kinds or "rlib" in kinds:
                add("test", "lib-" + name, exe)
            elif "bin" in kinds:
                add("test", "bin-" + name, exe)
            elif "test" in kinds:
                add("test", name, exe)
        elif which == "test" and kinds == ["bin"]:
            add("bin", name, exe)
        elif which == "bench" and "bench" in kinds:
            add("bench", name, exe)

for (role, name), path in sorted(seen.items()):
    print(role, name, path)
PY
grep -q '^test ' "$LIST" || die "cargo reported no test executable (see $JSON_DIR/test.json)"
grep -q '^bench ' "$LIST" || die "cargo reported no bench executable (see $JSON_DIR/bench.json)"

rm -rf "$KIT"
mkdir -p "$KIT/bin/test" "$KIT/bin/bench" "$KIT/tests"
while read -r role name path; do
    case "$role" in
        test)
            # tests/cli*.rs run the `tessera` binary through env!("CARGO_BIN_EXE_tessera"),
            # an absolute path of this machine baked in at compile time: they cannot find
            # it on the GPU machine. The kit carries the binary itself, and run.sh runs
            # `tessera doctor`, which reports whether the Cuda backend works.
            case "$name" in cli|cli_*) echo "  skipped  test  $name (needs CARGO_BIN_EXE_tessera, a path of this machine)"; continue ;; esac
            case "$name" in kernel_contract) echo "  skipped  test  $name (checks the sources at build time; needs them and a C++ compiler)"; continue ;; esac
            # The emulator's own checks and profile: nothing in them runs on a GPU (and the kit
            # must stay under the device machine's 64 MiB).
            case "$name" in checks|emulator_profile) echo "  skipped  test  $name (emulator only)"; continue ;; esac
            dest="$KIT/bin/test/$name" ;;
        bench) dest="$KIT/bin/bench/$name" ;;
        bin) dest="$KIT/bin/$name" ;;
    esac
    cp "$path" "$dest"
    strip --strip-all "$dest" 2>/dev/null || objcopy --strip-all "$dest" || die "cannot strip $dest"
    printf '  %-6s %-22s %6s KiB\n' "$role" "$name" "$(( $(stat -c %s "$dest") / 1024 ))"
done <"$LIST"
[ -x "$KIT/bin/tessera" ] || die "the tessera binary was not built (feature cli off?)"
cp -r tests/fixtures "$KIT/tests/fixtures"
cp scripts/gpu-kit-run.sh "$KIT/run.sh"
chmod +x "$KIT/run.sh"

# What the kit was built from, for the report.
{
    echo "tessera GPU check kit"
    echo "built:      $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -n)"
    echo "commit:     $(git rev-parse HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo ' (with uncommitted changes)')"
    echo "rustc:      $(rustc --version)"
    echo "nvcc:       $NVCC_VERSION"
    echo "archs:      sm_${ARCHS//,/, sm_} (SASS) + compute_${ARCHS##*,} PTX"
    # The newest glibc symbol version the binaries need: the GPU machine's glibc must be at least this.
    echo "needs glibc: $(objdump -T "$KIT"/bin/tessera "$KIT"/bin/test/* "$KIT"/bin/bench/* 2>/dev/null \
        | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1 || echo unknown)"
    echo "executables:"
    (cd "$KIT" && find bin -type f | sort | sed 's/^/  /')
} >"$KIT/MANIFEST.txt"
# (The whole output first: grep -q would close the pipe early, a failure under pipefail.)
DOCTOR=$("$KIT/bin/tessera" doctor 2>&1 || true)
grep -q "compiled for the GPU: yes" <<<"$DOCTOR" \
    || die "the kit's tessera says the kernels were not compiled for the GPU:
$DOCTOR"

step "size"
SIZE=$(du -sb "$KIT" | cut -f1)
SIZE_MIB=$(python3 -c "print(f'{$SIZE/1048576:.1f}')")
echo "folder:  $KIT  $SIZE_MIB MiB ($SIZE bytes)"
if [ "$TAR" = 1 ]; then
    TARBALL="$KIT.tar.gz"
    tar -C "$(dirname "$KIT")" -czf "$TARBALL" "$(basename "$KIT")"
    TSIZE=$(stat -c %s "$TARBALL")
    echo "tarball: $TARBALL  $(python3 -c "print(f'{$TSIZE/1048576:.1f}')") MiB ($TSIZE bytes)"
fi
if [ "$SIZE" -gt $(( LIMIT_MIB * 1024 * 1024 )) ]; then
    die "the kit is $SIZE_MIB MiB, over the $LIMIT_MIB MiB limit"
fi
echo "ok: under $LIMIT_MIB MiB. On the GPU machine: bash $(basename "$KIT")/run.sh [--out DIR]"

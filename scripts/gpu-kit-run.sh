#!/usr/bin/env bash
# run.sh: the runner of tessera's GPU check kit (built by scripts/gpu-kit.sh, which copies
# this file into the kit as run.sh). Needs bash, coreutils' timeout, and on the GPU
# machine nvidia-smi and a CUDA driver; no Rust toolchain, no network.
#
#   bash run.sh [--out DIR] [--total SECONDS] [--emulator-tests] [--bench-all]
#
# Phases, each under its own timeout, all within --total seconds (default 460, under 8
# minutes with the kill grace periods); a phase gets its budget or what is left:
#   info      nvidia-smi, driver, compute-sanitizer, the kit's manifest      20 s
#   doctor    bin/tessera doctor: fatbins embedded, Cuda backend usable      25 s
#   tests     every test executable (emulator + Cuda runs of each property) 100 s
#   bench     every benchmark on Cuda, short criterion times (--bench-all:  160 s
#             the CPU reference benchmarks too, about a minute more)
#   memcheck  the test executables under compute-sanitizer --tool memcheck, 150 s
#             $KIT_MEMCHECK_JOBS (default 3) at a time
# With no GPU (no nvidia-smi, nvidia-smi fails, or it lists no device) the runner says
# "no GPU found", runs info and doctor only (--emulator-tests adds the tests, which then
# run on the emulator alone), and exits 0 unless a phase it ran failed.
# Everything goes to DIR/report.txt (default: results/<date>-<time> in the kit), with
# each executable's full log under DIR/logs/. Exit status: 1 if any phase failed.
set -uo pipefail

KIT="$(cd "$(dirname "$0")" && pwd)"
OUT=""
TOTAL=460
EMULATOR_TESTS=0
BENCH_ALL=0
MEMCHECK_JOBS="${KIT_MEMCHECK_JOBS:-3}"
while [ $# -gt 0 ]; do
    case "$1" in
        --out) OUT="${2:?--out needs a directory}"; shift 2 ;;
        --out=*) OUT="${1#--out=}"; shift ;;
        --total) TOTAL="${2:?--total needs seconds}"; shift 2 ;;
        --total=*) TOTAL="${1#--total=}"; shift ;;
        --emulator-tests) EMULATOR_TESTS=1; shift ;;
        --bench-all) BENCH_ALL=1; shift ;;
        -h|--help) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "run.sh: unknown argument: $1" >&2; exit 2 ;;
    esac
done
OUT="${OUT:-$KIT/results/$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$OUT/logs" || { echo "run.sh: cannot create $OUT" >&2; exit 2; }
OUT="$(cd "$OUT" && pwd)"
REPORT="$OUT/report.txt"
: >"$REPORT"
# Tests run from the kit folder, which stands in for the package root (cargo runs tests
# from there): a test opening tests/fixtures/... finds the copy beside this script.
cd "$KIT"
export CRITERION_HOME="$OUT/criterion"   # criterion would otherwise ask cargo for a target dir
export RUST_BACKTRACE=1

START=$(date +%s)
now() { date +%s; }
say() { echo "$*"; echo "$*" >>"$REPORT"; }
rep() { cat >>"$REPORT"; }

PHASES=()
FAILED=0
record() {  # record NAME STATUS SECONDS [NOTE]
    PHASES+=("$(printf '%-9s %-5s %4ss  %s' "$1" "$2" "$3" "${4:-}")")
    [ "$2" = FAIL ] && FAILED=$((FAILED + 1))
    say "--- $1: $2 in $3 s${4:+ ($4)}"
}

# Seconds a phase may use: its own budget, cut to what is left of the total.
PHASE_END=0
begin_phase() {  # begin_phase NAME BUDGET
    local left=$((START + TOTAL - $(now)))
    local budget=$2
    [ "$left" -lt "$budget" ] && budget=$left
    PHASE_START=$(now)
    PHASE_END=$((PHASE_START + budget))
    say ""
    say "=== $1 (budget ${budget} s, $(date +%T))"
}
phase_left() { echo $((PHASE_END - $(now))); }

# run_one LOG CMD...: runs CMD under what is left of the phase; sets RC and SECS.
run_one() {
    local log=$1; shift
    local t0 left
    t0=$(now)
    left=$(phase_left)
    if [ "$left" -le 0 ]; then
        echo "not run: the phase's time budget was spent" >"$log"
        RC=125; SECS=0; return
    fi
    timeout -k 5 "$left" "$@" >"$log" 2>&1
    RC=$?
    SECS=$(($(now) - t0))
}
rc_note() {
    case "$RC" in
        0) echo "" ;;
        124|137) echo "timed out" ;;
        125) echo "not run, phase budget spent" ;;
        *) echo "exit $RC" ;;
    esac
}

say "tessera GPU check kit: report"
say "results: $OUT"
say "started: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -n) ($(uname -sr)), total budget $TOTAL s"
sed 's/^/  /' "$KIT/MANIFEST.txt" 2>/dev/null | rep

# --- (a) info -----------------------------------------------------------------------
begin_phase info 20
GPU=0
WHY=""
if ! command -v nvidia-smi >/dev/null 2>&1; then
    WHY="nvidia-smi not found"
elif ! timeout 10 nvidia-smi -L >"$OUT/logs/nvidia-smi-L.log" 2>&1; then
    WHY="nvidia-smi -L failed: $(head -c 300 "$OUT/logs/nvidia-smi-L.log" | tr '\n' ' ')"
elif ! grep -q '^GPU ' "$OUT/logs/nvidia-smi-L.log"; then
    WHY="nvidia-smi lists no device"
else
    GPU=1
fi
if [ "$GPU" = 1 ]; then
    say "GPU found:"
    sed 's/^/  /' "$OUT/logs/nvidia-smi-L.log" | tee -a "$REPORT"
    {
        timeout 4 nvidia-smi --query-gpu=index,name,driver_version,compute_cap,memory.total,clocks.max.sm,clocks.max.mem,power.limit --format=csv 2>&1
        timeout 4 nvidia-smi 2>&1
        [ -r /proc/driver/nvidia/version ] && cat /proc/driver/nvidia/version
    } | sed 's/^/  /' | rep
else
    say "no GPU found ($WHY): the GPU phases ($([ "$EMULATOR_TESTS" = 1 ] || echo 'tests, ')bench, memcheck) are skipped"
    [ -r /proc/driver/nvidia/version ] && sed 's/^/  /' /proc/driver/nvidia/version | rep
fi
# compute-sanitizer: PATH, then the usual toolkit places.
SANITIZER=$(command -v compute-sanitizer 2>/dev/null || true)
if [ -z "$SANITIZER" ]; then
    for c in ${CUDA_HOME:+$CUDA_HOME/bin/compute-sanitizer} /usr/local/cuda/bin/compute-sanitizer \
             /usr/local/cuda-*/bin/compute-sanitizer /usr/local/cuda*/compute-sanitizer/compute-sanitizer \
             /opt/nvidia/*/compute-sanitizer/compute-sanitizer; do
        [ -x "$c" ] && { SANITIZER=$c; break; }
    done
fi
if [ -n "$SANITIZER" ]; then
    say "compute-sanitizer: $SANITIZER ($(timeout 4 "$SANITIZER" --version 2>&1 | grep -i version | head -1))"
else
    say "compute-sanitizer: not found"
fi
command -v nvcc >/dev/null 2>&1 && say "nvcc on this machine: $(nvcc --version | tail -1) (not used: the kernels are embedded)"
say "glibc: $(ldd --version 2>&1 | head -1)"
record info PASS $(($(now) - PHASE_START)) "$([ "$GPU" = 1 ] && echo GPU found || echo no GPU found)"

# --- doctor ---------------------------------------------------------------------------
begin_phase doctor 25
run_one "$OUT/logs/doctor.log" "$KIT/bin/tessera" doctor
sed 's/^/  /' "$OUT/logs/doctor.log" | rep
NOTE=$(rc_note)
STATUS=PASS
[ "$RC" = 0 ] || STATUS=FAIL
if ! grep -q "compiled for the GPU: yes" "$OUT/logs/doctor.log"; then
    STATUS=FAIL; NOTE="${NOTE:+$NOTE; }the kernels are not compiled for the GPU"
fi
if [ "$GPU" = 1 ] && ! grep -q "usable: yes" "$OUT/logs/doctor.log"; then
    STATUS=FAIL; NOTE="${NOTE:+$NOTE; }a GPU is present but the Cuda backend is not usable"
fi
record doctor $STATUS $(($(now) - PHASE_START)) "$NOTE"

TESTS=("$KIT"/bin/test/*)
BENCHES=("$KIT"/bin/bench/*)

# --- (b) tests ------------------------------------------------------------------------
if [ "$GPU" = 1 ] || [ "$EMULATOR_TESTS" = 1 ]; then
    begin_phase tests 100
    STATUS=PASS; BAD=0
    for exe in "${TESTS[@]}"; do
        name=$(basename "$exe")
        log="$OUT/logs/test-$name.log"
        run_one "$log" "$exe"
        NOTE=$(rc_note)
        s=PASS
        [ "$RC" = 0 ] || s=FAIL
        # With a GPU, a property whose Cuda run was skipped checked nothing on it.
        if [ "$GPU" = 1 ] && grep -q "Cuda runs of these properties are skipped" "$log"; then
            s=FAIL; NOTE="${NOTE:+$NOTE; }Cuda runs skipped on a GPU machine"
        fi
        [ "$s" = FAIL ] && { STATUS=FAIL; BAD=$((BAD + 1)); }
        summary=$(grep '^test result:' "$log" | sed 's/; finished in.*//' | tr '\n' ' ')
        say "  $s  $(printf '%-14s %4ss' "$name" "$SECS")  ${summary:-no test result line}${NOTE:+ [$NOTE]}"
        { grep -E 'skipped|^failures:|panicked|^test .* FAILED' "$log" | head -40 | sed 's/^/      /'; } | rep
    done
    record tests $STATUS $(($(now) - PHASE_START)) "${#TESTS[@]} executables, $BAD failed$([ "$GPU" = 1 ] || echo ', emulator only')"
else
    record tests SKIP 0 "no GPU found; --emulator-tests runs them on the emulator"
fi

# --- (c) bench ------------------------------------------------------------------------
# criterion 0.5 flags; the command line overrides each bench's configured times. The
# filter keeps the groups named ..._Cuda... (every GPU group; the CPU reference groups
# are named ..._Cpu...).
BENCH_ARGS=(--bench --noplot --warm-up-time 0.5 --measurement-time 1 --sample-size 10)
[ "$BENCH_ALL" = 1 ] || BENCH_ARGS+=(Cuda)
if [ "$GPU" = 1 ]; then
    begin_phase bench 160
    say "  criterion: ${BENCH_ARGS[*]}"
    STATUS=PASS; BAD=0
    for exe in "${BENCHES[@]}"; do
        name=$(basename "$exe")
        log="$OUT/logs/bench-$name.log"
        run_one "$log" "$exe" "${BENCH_ARGS[@]}"
        NOTE=$(rc_note)
        s=PASS
        [ "$RC" = 0 ] || s=FAIL
        if grep -q "Cuda benchmarks skipped" "$log"; then
            s=FAIL; NOTE="${NOTE:+$NOTE; }Cuda benchmarks skipped on a GPU machine"
        elif ! grep -q 'time: *\[' "$log"; then
            s=FAIL; NOTE="${NOTE:+$NOTE; }no benchmark figure (did the filter match no group?)"
        fi
        [ "$s" = FAIL ] && { STATUS=FAIL; BAD=$((BAD + 1)); }
        say "  $s  $(printf '%-14s %4ss' "$name" "$SECS")${NOTE:+ [$NOTE]}"
        # Every figure: criterion's time/thrpt/change lines and the benches' own lines
        # (fraction of peak), without the progress and outlier chatter.
        grep -vE '^(Benchmarking |Found [0-9]+ outliers|  [0-9]+ \([0-9.]+%\) (low|high) (mild|severe)|Gnuplot not found|$)' "$log" \
            | sed 's/^/      /' | rep
    done
    record bench $STATUS $(($(now) - PHASE_START)) "${#BENCHES[@]} executables, $BAD failed"
else
    record bench SKIP 0 "no GPU found"
fi

# --- (d) memcheck ---------------------------------------------------------------------
if [ "$GPU" = 1 ] && [ -n "$SANITIZER" ]; then
    begin_phase memcheck 150
    say "  compute-sanitizer --tool memcheck --error-exitcode 99, $MEMCHECK_JOBS at a time"
    # Several at a time: memcheck slows the GPU side, not the emulator runs on the CPU.
    memcheck_one() {  # in a background job: log, then rc and seconds in $log.rc
        local exe=$1 log=$2
        run_one "$log" "$SANITIZER" --tool memcheck --error-exitcode 99 --print-limit 20 "$exe"
        echo "$RC $SECS" >"$log.rc"
    }
    running=0
    for exe in "${TESTS[@]}"; do
        if [ "$running" -ge "$MEMCHECK_JOBS" ]; then wait -n; running=$((running - 1)); fi
        memcheck_one "$exe" "$OUT/logs/memcheck-$(basename "$exe").log" &
        running=$((running + 1))
    done
    wait
    STATUS=PASS; BAD=0
    for exe in "${TESTS[@]}"; do
        name=$(basename "$exe")
        log="$OUT/logs/memcheck-$name.log"
        read -r RC SECS <"$log.rc" 2>/dev/null || { RC=1; SECS=0; }
        NOTE=$(rc_note)
        [ "$RC" = 99 ] && NOTE="memcheck found errors"
        s=PASS
        [ "$RC" = 0 ] || { s=FAIL; STATUS=FAIL; BAD=$((BAD + 1)); }
        errors=$(grep -o 'ERROR SUMMARY: .*' "$log" | tail -1)
        say "  $s  $(printf '%-14s %4ss' "$name" "$SECS")  ${errors:-no error summary}${NOTE:+ [$NOTE]}"
        [ "$s" = FAIL ] && { grep -E '^========= (Invalid|Program hit|  +at |Address)|^test result:|panicked' "$log" | head -30 | sed 's/^/      /' | rep; }
    done
    record memcheck $STATUS $(($(now) - PHASE_START)) "${#TESTS[@]} executables, $BAD failed"
elif [ "$GPU" = 1 ]; then
    record memcheck SKIP 0 "compute-sanitizer not found"
else
    record memcheck SKIP 0 "no GPU found"
fi

# --- (e) summary ----------------------------------------------------------------------
say ""
say "=== summary ($(($(now) - START)) s of $TOTAL s)"
for p in "${PHASES[@]}"; do say "  $p"; done
[ "$GPU" = 1 ] || say "no GPU found: only the phases above that ran were checked"
if [ "$FAILED" -gt 0 ]; then
    say "overall: FAIL ($FAILED phase(s) failed)"
else
    say "overall: PASS"
fi
say "report: $REPORT"
[ "$FAILED" -eq 0 ]

#!/usr/bin/env python3
"""Compiles every kernel file for sm_80 and sm_90 with `ptxas -v` and writes the
per-kernel resource table (registers, shared memory, stack frame, spills).

    python3 .ci/ptxas_report.py --nvcc PATH [--write kernels/ptxas-report.txt | --check kernels/ptxas-report.txt]

Fails (exit 1) when any kernel spills or has a stack frame, or, with --check, when the
table differs from the checked-in one (regenerate with --write and commit it).
"""
import argparse, os, pathlib, re, subprocess, sys
from concurrent.futures import ThreadPoolExecutor

ARCHS = ["sm_80", "sm_90"]
ROOT = pathlib.Path(__file__).resolve().parent.parent


def compile_report(nvcc, source, arch):
    cmd = [nvcc, "-cubin", "-O3", "-std=c++17", f"-arch={arch}", "-I", str(ROOT / "kernels"),
           "-Xptxas", "-v", "-o", "/dev/null", str(source)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"nvcc failed on {source} for {arch}:\n{proc.stderr}")
    rows, current = {}, None
    for line in proc.stderr.splitlines():
        m = re.search(r"Compiling entry function '(\w+)' for '(\w+)'", line)
        if m:
            current = m.group(1)
            rows[current] = {"regs": 0, "smem": 0, "stack": 0, "spill_st": 0, "spill_ld": 0}
            continue
        if current is None:
            continue
        m = re.search(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads", line)
        if m:
            rows[current].update(stack=int(m.group(1)), spill_st=int(m.group(2)), spill_ld=int(m.group(3)))
        m = re.search(r"Used (\d+) registers", line)
        if m:
            rows[current]["regs"] = int(m.group(1))
        m = re.search(r"(\d+) bytes smem", line)
        if m:
            rows[current]["smem"] = int(m.group(1))
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nvcc", required=True)
    group = ap.add_mutually_exclusive_group(required=True)
    group.add_argument("--write")
    group.add_argument("--check")
    args = ap.parse_args()

    sources = sorted((ROOT / "kernels").glob("*.cu")) + sorted((ROOT / "kernels" / "selftest").glob("*.cu"))
    lines = ["# ptxas -v per kernel (regenerate: python3 .ci/ptxas_report.py --nvcc NVCC --write kernels/ptxas-report.txt)",
             "# file                     kernel                                 arch   regs  static_smem  stack  spill_st  spill_ld"]
    bad = []
    # One compile per (file, arch), run concurrently, reported in order.
    jobs = [(source, arch) for source in sources for arch in ARCHS]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        reports = list(pool.map(lambda job: compile_report(args.nvcc, *job), jobs))
    for (source, arch), report in zip(jobs, reports):
        rel = source.relative_to(ROOT / "kernels")
        for kernel, r in sorted(report.items()):
            lines.append(f"{str(rel):<26} {kernel:<38} {arch:<6} {r['regs']:>4}  {r['smem']:>11}  {r['stack']:>5}  {r['spill_st']:>8}  {r['spill_ld']:>8}")
            if r["stack"] or r["spill_st"] or r["spill_ld"]:
                bad.append(f"{kernel} ({arch}): stack {r['stack']}, spills {r['spill_st']}/{r['spill_ld']}")
    text = "\n".join(lines) + "\n"
    if args.write:
        pathlib.Path(args.write).write_text(text)
        print(f"wrote {args.write} ({len(lines) - 2} kernel/arch rows)")
    else:
        old = pathlib.Path(args.check).read_text() if pathlib.Path(args.check).exists() else ""
        if old != text:
            import difflib
            sys.stdout.writelines(difflib.unified_diff(old.splitlines(True), text.splitlines(True), args.check, "regenerated"))
            bad.append(f"{args.check} is out of date: regenerate it with --write and commit it")
        else:
            print(f"{args.check}: up to date ({len(lines) - 2} kernel/arch rows)")
    if bad:
        print("ptxas check failed:\n  " + "\n  ".join(bad))
        sys.exit(1)


if __name__ == "__main__":
    main()

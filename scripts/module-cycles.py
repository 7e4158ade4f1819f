#!/usr/bin/env python3
"""Fails when two modules of the library (src/, the command line excluded) import each
other, directly or through others. A module's imports are the `crate::a::b` and
`super::x` paths in its file (comments stripped); a parent's `mod`/re-export lines that
name its own children do not count. Usage: scripts/module-cycles.py [--graph]"""
import glob
import re
import sys

modules = {}
for path in glob.glob("src/**/*.rs", recursive=True):
    if path.startswith("src/bin/"):
        continue
    name = path[4:-3].replace("/mod", "").replace("/", "::")
    text = re.sub(r"//[^\n]*", "", open(path, encoding="utf-8").read())
    refs = set(re.findall(r"crate::([a-z_]+(?:::[a-z_]+)*)", text))
    parent = "::".join(name.split("::")[:-1])
    refs |= {(parent + "::" + r) if parent else r for r in re.findall(r"super::([a-z_]+)", text)}
    modules["crate" if name == "lib" else name] = refs


def resolve(ref):
    parts = ref.split("::")
    while parts and "::".join(parts) not in modules:
        parts.pop()
    return "::".join(parts) or None


def related(a, b):  # a module and its own ancestors/descendants
    return a == b or a.startswith(b + "::") or b.startswith(a + "::")


graph = {m: {r for r in map(resolve, refs) if r and not related(r, m)} for m, refs in modules.items()}
if "--graph" in sys.argv:
    for m in sorted(graph):
        print(f"{m} -> {', '.join(sorted(graph[m]))}")


def reaches(src, dst):
    seen, stack = set(), [src]
    while stack:
        x = stack.pop()
        if x == dst:
            return True
        if x not in seen:
            seen.add(x)
            stack.extend(graph.get(x, ()))
    return False


cycles = sorted({tuple(sorted((a, b))) for a in graph for b in graph[a] if reaches(b, a)})
for a, b in cycles:
    print(f"import cycle: {a} <-> {b}")
print(f"{len(graph)} modules, {len(cycles)} import cycle(s)")
sys.exit(1 if cycles else 0)

#!/usr/bin/env python3
"""Where one kernel's instructions and stalls fall, per source line: ncu's SASS page of the kernel
(`ncu -i R --page source --csv --print-source sass`) joined with nvdisasm's line table of the
binary's cubins (`nvdisasm --print-line-info -c`; a build with -DCMAKE_CUDA_FLAGS=-lineinfo). The
kernel is the function whose instructions are the page's, in order. Source text is read from this
checkout (the part of a path from `src/` on). Usage: tools/ncu_source_lines.py SASS.csv DIS.txt [lines]."""
import collections
import csv
import gzip
import os
import re
import sys


def opener(path):
    return gzip.open(path, "rt") if path.endswith(".gz") else open(path, newline="")


def number(x):
    try:
        return float(x.replace(",", ""))
    except ValueError:
        return 0.0


def norm(ins):
    """The opcode with its predicate (branch targets and labels differ between the two listings)."""
    words = ins.replace(";", " ").split()
    return " ".join(words[:2] if words and words[0].startswith("@") else words[:1])


def functions(path):
    """{name: [(source file, line, instruction)]} from nvdisasm's listing."""
    funcs, cur, where = {}, None, ("?", 0)
    for l in opener(path):
        m = re.match(r"\s*\.section\s+\.text\.(\S+?),", l) or re.match(r"^\.text\.(\S+):", l)
        if m:
            cur = funcs.setdefault(m.group(1), [])
            continue
        m = re.search(r'//## File "([^"]+)", line (\d+)', l)
        if m:
            where = (m.group(1), int(m.group(2)))
            continue
        m = re.match(r"\s*/\*([0-9a-f]{4,})\*/\s*(.*)", l)
        if m and cur is not None:
            cur.append((where[0], where[1], norm(m.group(2))))
    return funcs


def source_line(path, line, cache={}):
    rel = path[path.find("src/") :] if "src/" in path else None
    if rel not in cache:
        cache[rel] = open(rel).read().split("\n") if rel and os.path.exists(rel) else []
    text = cache[rel]
    return text[line - 1].strip() if 0 < line <= len(text) else ""


def main():
    sass_path, dis_path = sys.argv[1], sys.argv[2]
    top = int(sys.argv[3]) if len(sys.argv) > 3 else 50
    rows = list(csv.reader(opener(sass_path)))
    head_at = next(i for i, r in enumerate(rows) if r and r[0] == "Address")
    head = rows[head_at]
    col = {k: i for i, k in enumerate(head)}
    body = [r for r in rows[head_at + 1 :] if len(r) == len(head)]
    page = [norm(r[col["Source"]]) for r in body]
    match = [f for f in functions(dis_path).values() if len(f) == len(page) and all(a[2] == b for a, b in zip(f, page))]
    if not match:
        print("no function of the listing has the page's instructions (a binary without -lineinfo, or another binary)")
        return
    ex, st = collections.Counter(), collections.Counter()
    for (path, line, _), r in zip(match[0], body):
        ex[(path, line)] += number(r[col["Instructions Executed"]])
        st[(path, line)] += number(r[col["Warp Stall Sampling (All Samples)"]])
    te, ts = sum(ex.values()) or 1.0, sum(st.values()) or 1.0
    per_file = collections.Counter()
    for (path, _), e in ex.items():
        per_file[os.path.basename(path)] += e
    print(f"{len(body)} SASS instructions; {te / 1e6:.1f} M warp instructions; by file: " +
          ", ".join(f"{k} {v / te:.1%}" for k, v in per_file.most_common(6)))
    print("file:line  instr%  stall%  source")
    for (path, line), e in ex.most_common(top):
        print(f"{os.path.basename(path)[:18]}:{line:<5d} {e / te:6.2%} {st[(path, line)] / ts:6.2%}  "
              f"{source_line(path, line)[:100]}")


if __name__ == "__main__":
    main()

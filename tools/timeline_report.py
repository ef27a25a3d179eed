#!/usr/bin/env python3
"""A decode step laid out in time from a timeline build's records (src/engine/cuda/timeline.h).

usage: timeline_report.py FILE [--steps N] [--save OUT N]

Each kernel's blocks record when they start (pdl_trigger) and when their PDL wait returns. Here the
records become launches (a block index appears once a launch), the launches are ordered by their
first start, and the decode steps are cut at the argmax's merge. For the last N complete steps the
script prints, per position in the step (medians over the steps):
  start   first block's start, relative to the step's first launch
  resid   last block's start minus the first's (how long until every block was resident)
  wait    first block's wait return minus the step's start: the previous launch had finished
  chain   the next launch's first wait return minus this one's: what this launch cost the chain
  held    this launch's first wait return minus its first start (resident before it could work)
  wspread its last block's wait return minus its first's (blocks that started after the release)
then, for kernels with phase marks (pdl.cuh's TlMarks, records of kind 2), each mark's median time
after its block's wait return, and `chain` summed over the step by kernel. --save OUT N writes the
last N records to OUT in the same format, for a later run of this script.
"""
import argparse
import re
import statistics
import struct
from collections import defaultdict
from pathlib import Path

SMS = 256
EVENT = struct.Struct("<QIIII")
# a kernel's name on its __global__ line, past `void` and __launch_bounds__(...)
GLOBAL = re.compile(r"__global__\s+(?:void\s+)?(?:__launch_bounds__\([^)]*\)\s*)?(\w+)\s*\(")


def read(path):
    data = Path(path).read_bytes()
    nl = data.index(b"\n")
    magic, n_files = data[:nl].decode().split()
    assert magic == "KVTL1", magic
    pos = nl + 1
    files = []
    for _ in range(int(n_files)):
        nl = data.index(b"\n", pos)
        files.append(data[pos:nl].decode())
        pos = nl + 1
    counts = struct.unpack_from(f"<{SMS}Q", data, pos)
    (per_sm,) = struct.unpack_from("<Q", data, pos + 8 * SMS)
    base = pos + 8 * SMS + 8
    events, first_kept = [], []
    for sm in range(SMS):
        c = counts[sm]
        if c == 0:
            continue
        kept = min(c, per_sm)
        ring = base + sm * per_sm * EVENT.size
        evs = [EVENT.unpack_from(data, ring + ((i % per_sm) * EVENT.size)) for i in range(c - kept, c)]
        if c > per_sm:
            first_kept.append(min(e[0] for e in evs))
        events.extend(evs)
    t0 = max(first_kept) if first_kept else 0  # every SM's ring complete from here on
    events = [e for e in events if e[0] >= t0]
    events.sort()
    return files, events


def kernel_names(files):
    """(file index, line) -> the name of the __global__ function the line is in (the repo's source)."""
    names = {}
    for i, f in enumerate(files):
        p = Path(f)
        if not p.exists():
            p = Path("src/engine/cuda") / p.name
        lines = p.read_text().splitlines() if p.exists() else []
        current = "?"
        for n, text in enumerate(lines, 1):
            m = GLOBAL.search(text)
            if m:
                current = m.group(1)
            names[(i, n)] = current
    return names


def launches(events, names):
    """Groups records into launches: per kernel and grid size, a new launch each time a block index
    repeats. Returns dicts with the kernel's name, grid, starts and wait returns."""
    open_ = defaultdict(list)  # per kernel and grid, its launches in order
    out = []
    for ns, site, block, grid, kind in events:
        f, line = site >> 16, site & 0xFFFF
        name = names.get((f, line), f"{f}:{line}")
        key = (name, grid)
        if kind & 0xFF == 0:
            ls = open_[key]
            if not ls or block in ls[-1]["blocks"]:
                ls.append({"name": name, "grid": grid, "blocks": {}, "wait_of": {}, "marks": []})
                out.append(ls[-1])
                del ls[:-4]
            ls[-1]["blocks"][block] = ns
        elif kind & 0xFF == 1:
            # a wait may come after the next launch of the same kernel started (PDL): the oldest
            # launch whose block has started and not yet waited
            for L in open_[key]:
                if block in L["blocks"] and block not in L["wait_of"]:
                    L["wait_of"][block] = ns
                    break
        else:
            # a phase mark (TlMarks), before or after its block's wait: the newest launch in which
            # its block started (the next launch of a kernel starts a layer later)
            for L in reversed(open_[key]):
                if block in L["blocks"]:
                    L["marks"].append((line, block, ns))
                    break
    for L in out:
        starts = sorted(L["blocks"].values())
        L["start"], L["last_start"] = starts[0], starts[-1]
        L["wait"] = min(L["wait_of"].values()) if L["wait_of"] else None
        L["complete"] = len(starts) == L["grid"]
    out.sort(key=lambda L: L["start"])
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file")
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--save", nargs=2, metavar=("OUT", "N"))
    args = ap.parse_args()
    n_steps = args.steps
    files, events = read(args.file)
    if args.save:  # the last N records, in this format (one ring)
        out, n = args.save[0], int(args.save[1])
        keep = events[-n:]
        with open(out, "wb") as f:
            f.write(f"KVTL1 {len(files)}\n".encode() + b"".join(x.encode() + b"\n" for x in files))
            f.write(struct.pack(f"<{SMS}Q", len(keep), *([0] * (SMS - 1))) + struct.pack("<Q", len(keep)))
            f.write(b"".join(EVENT.pack(*e) for e in keep))
    names = kernel_names(files)
    ls = launches(events, names)
    print(f"{len(events)} records, {len(ls)} launches, files: {', '.join(Path(f).name for f in files)}")
    # a decode step ends with the argmax's merge (the embedding is not among the recorded launches)
    cuts = [i + 1 for i, L in enumerate(ls) if L["name"] == "argmax_merge_kernel"]
    steps = [ls[a:b] for a, b in zip(cuts, cuts[1:])]
    steps = [s for s in steps if all(L["complete"] and L["wait"] is not None for L in s)]
    if not steps:
        print("no complete step between two argmax merges; the last 80 launches:")
        for L in ls[-80:]:
            print(f"  {L['name'][:30]:<30} grid {L['grid']:>6} blocks {len(L['blocks']):>6} waits {len(L['wait_of']):>6}"
                  f" start {(L['start'] - ls[-80:][0]['start']) / 1e3:>10.1f}")
        return
    shape = [L["name"] for L in steps[-1]]
    steps = [s for s in steps if [L["name"] for L in s] == shape][-n_steps:]
    print(f"{len(steps)} steps of {len(shape)} launches; step times (us):",
          ", ".join(f"{(s[-1]['wait'] - s[0]['start']) / 1e3:.1f}" for s in steps))
    med = lambda xs: statistics.median(xs) / 1e3
    rows = []
    t0s = [s[0]["start"] for s in steps]
    for i, name in enumerate(shape):
        start = med([s[i]["start"] - t for s, t in zip(steps, t0s)])
        resid = med([s[i]["last_start"] - s[i]["start"] for s in steps])
        wait = med([s[i]["wait"] - t for s, t in zip(steps, t0s)])
        chain = med([s[i + 1]["wait"] - s[i]["wait"] for s in steps]) if i + 1 < len(shape) else 0.0
        held = med([s[i]["wait"] - s[i]["start"] for s in steps])
        spread = med([max(s[i]["wait_of"].values()) - s[i]["wait"] for s in steps])
        rows.append((name, steps[-1][i]["grid"], start, resid, wait, chain, held, spread))
    print(f"{'#':>4} {'kernel':<28} {'grid':>6} {'start':>9} {'resid':>7} {'wait':>9} {'chain':>7} {'held':>7} {'wspread':>7}")
    for i, (name, grid, start, resid, wait, chain, held, spread) in enumerate(rows):
        print(f"{i:>4} {name[:28]:<28} {grid:>6} {start:>9.1f} {resid:>7.1f} {wait:>9.1f} {chain:>7.1f} {held:>7.1f} {spread:>7.1f}")
    marks = defaultdict(lambda: defaultdict(list))  # kernel -> mark line -> times after the block's wait
    for s in steps:
        for L in s:
            for line, block, ns in L["marks"]:
                if block in L["wait_of"]:
                    marks[L["name"]][line].append(ns - L["wait_of"][block])
    if marks:
        print("\nphase marks (TlMarks), median us after the block's own wait return (negative: before it), over the steps' blocks:")
        for name, by_line in marks.items():
            print(f"  {name}: " + "  ".join(f"line {line} {med(v):.2f}" for line, v in
                                          sorted(by_line.items(), key=lambda kv: statistics.median(kv[1]))))
    by = defaultdict(list)
    for name, grid, _, _, _, chain, _, _ in rows:
        by[(name, grid)].append(chain)
    print("\nchain time by kernel and grid (sum over the step, count, mean):")
    for (name, grid), chains in sorted(by.items(), key=lambda kv: -sum(kv[1])):
        print(f"  {name[:28]:<28} {grid:>6} {sum(chains):>9.1f} us {len(chains):>4} {sum(chains) / len(chains):>7.2f}")


if __name__ == "__main__":
    main()

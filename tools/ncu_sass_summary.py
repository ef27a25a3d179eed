#!/usr/bin/env python3
"""Summarise ncu's source page of one kernel (`ncu -i R --page source --csv --print-source sass`):
where the warps stall (the reasons' shares of all samples) and the hottest windows of SASS
instructions (their share of samples and of executed instructions, their most common opcodes).
Usage: tools/ncu_sass_summary.py SASS.csv [window]."""
import collections
import csv
import sys


def number(x):
    try:
        return float(x.replace(",", ""))
    except ValueError:
        return 0.0


def main():
    path = sys.argv[1]
    window = int(sys.argv[2]) if len(sys.argv) > 2 else 32
    rows = list(csv.reader(open(path, newline="")))
    head_at = next(i for i, r in enumerate(rows) if r and r[0] == "Address")
    head, body = rows[head_at], [r for r in rows[head_at + 1 :] if len(r) == len(rows[head_at])]
    col = {k: i for i, k in enumerate(head)}
    samples = [number(r[col["Warp Stall Sampling (All Samples)"]]) for r in body]
    executed = [number(r[col["Instructions Executed"]]) for r in body]
    total_s, total_e = sum(samples) or 1.0, sum(executed) or 1.0
    live = sum(1 for e in executed if e > 0)
    print(f"{len(body)} SASS instructions, {live} executed; {total_e / 1e6:.1f} M warp instructions, {total_s:.0f} samples")
    reasons = [k for k in head if k.startswith("stall_") and "Not Issued" not in k]
    for k in sorted(reasons, key=lambda k: -sum(number(r[col[k]]) for r in body))[:10]:
        share = sum(number(r[col[k]]) for r in body) / total_s
        print(f"  {k:26s} {share:7.2%}")
    windows = []
    for i in range(0, len(body), window):
        windows.append((sum(samples[i : i + window]), sum(executed[i : i + window]), i))
    print(f"hottest windows of {window} instructions:")
    for s, e, i in sorted(windows, reverse=True)[:15]:
        ops = collections.Counter(r[col["Source"]].split()[0] for r in body[i : i + window] if r[col["Source"]].split())
        top = " ".join(f"{k}:{v}" for k, v in ops.most_common(5))
        print(f"  @{i:6d} samples {s / total_s:6.2%} executed {e / total_e:6.2%}  {top}")


if __name__ == "__main__":
    main()

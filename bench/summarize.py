#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Summarises an mdlm_bench JSON file (median aggregates) into the figures of bench/RESULTS.md.

For every stats<T> / choose_sampled<T> benchmark: GB/s and rows/s from the wall-clock median, the
percentage of the probe_read<T> of the same shape and thread count (wall-clock medians), and, for
one thread, the same from CPU-time medians (time on the core; on a shared machine the wall clock
also counts the time other processes held the core). Then the bf16 / fp32 rows/s ratios.
"""
import json
import re
import sys

UNIT = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}
SIZE = {"f32": 4, "bf16": 2, "f16": 2}


def load(path):
    with open(path) as f:
        data = json.load(f)
    have_median = any(b.get("aggregate_name") == "median" for b in data["benchmarks"])
    out = {}
    for b in data["benchmarks"]:
        if have_median and b.get("aggregate_name") != "median":
            continue
        m = re.match(r"(\w+)<(\w+)>/L:(\d+)/V:(\d+)/pool:(\d+)", b["name"])
        if m:
            out[(m.group(1), m.group(2), int(m.group(3)), int(m.group(4)), int(m.group(5)))] = (
                b["real_time"] * UNIT[b["time_unit"]], b["cpu_time"] * UNIT[b["time_unit"]])
    return out


def main():
    res = {}
    for p in sys.argv[1:]:
        res.update(load(p))
    print(f"{'kernel':16} {'type':5} {'L':>5} {'V':>7} {'thr':>3} {'ms':>8} {'GB/s':>7} {'rows/s':>9} {'%probe':>7}"
          f" | {'cpu ms':>8} {'GB/s':>7} {'%probe':>7}")
    for key in sorted(res):
        kind, t, l, v, thr = key
        if kind == "probe_read":
            continue
        wall, cpu = res[key]
        nbytes = l * v * SIZE[t]
        probe = res.get(("probe_read", t, l, v, thr))
        pct = f"{100 * probe[0] / wall:6.1f}%" if probe else "   n/a"
        line = (f"{kind:16} {t:5} {l:5d} {v:7d} {thr:3d} {wall * 1e3:8.2f} {nbytes / wall / 1e9:7.2f} "
                f"{l / wall:9.0f} {pct:>7}")
        if thr == 1:
            pc = f"{100 * probe[1] / cpu:6.1f}%" if probe else "   n/a"
            line += f" | {cpu * 1e3:8.2f} {nbytes / cpu / 1e9:7.2f} {pc:>7}"
        print(line)
    print()
    print("bf16 / fp32 rows/s (stats):   wall       cpu (1 thread)")
    for key in sorted(res):
        kind, t, l, v, thr = key
        if kind != "stats" or t != "bf16" or ("stats", "f32", l, v, thr) not in res:
            continue
        f = res[("stats", "f32", l, v, thr)]
        b = res[key]
        cpu = f"{f[1] / b[1]:5.2f}x" if thr == 1 else "   -"
        print(f"  L={l:5d} V={v:7d} thr={thr}:   {f[0] / b[0]:5.2f}x     {cpu}")


if __name__ == "__main__":
    main()

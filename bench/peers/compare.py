#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Prints mdlm/peer speed ratios from an mdlm_bench JSON file and a peers.py JSON file.

For every shape (L, V), dtype and thread count present in both files, the ratio is
peer median time / mdlm median time of `stats<dtype>/L:../V:../pool:..` (the batched statistics
give the entropy, the log-normalizer and the top-1 probability in one pass, i.e. everything each
peer op computes); a ratio of 20 means mdlm is 20x faster. Uses the `median` aggregates when the
benchmark ran with --benchmark_repetitions, else the single runs.
"""
import argparse
import json
import re

DTYPES = {"float32": "f32", "bfloat16": "bf16"}
UNIT = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}


def mdlm_times(path):
    with open(path) as f:
        data = json.load(f)
    have_median = any(b.get("aggregate_name") == "median" for b in data["benchmarks"])
    out = {}
    for b in data["benchmarks"]:
        if have_median and b.get("aggregate_name") != "median":
            continue
        m = re.match(r"stats<(\w+)>/L:(\d+)/V:(\d+)/pool:(\d+)", b["name"])
        if not m:
            continue
        key = (m.group(1), int(m.group(2)), int(m.group(3)), int(m.group(4)))
        out[key] = (b["real_time"] * UNIT[b["time_unit"]], b["cpu_time"] * UNIT[b["time_unit"]])
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("mdlm_json")
    ap.add_argument("peers_json")
    args = ap.parse_args()
    mdlm = mdlm_times(args.mdlm_json)
    with open(args.peers_json) as f:
        peers = json.load(f)["records"]
    print(f"{'op':18} {'dtype':9} {'L':>5} {'V':>7} {'thr':>3} {'peer ms':>10} {'mdlm ms':>9} {'mdlm/peer':>10}"
          f" {'cpu: peer ms':>13} {'mdlm ms':>9} {'mdlm/peer':>10}")
    for r in peers:
        key = (DTYPES.get(r["dtype"], r["dtype"]), r["L"], r["V"], r["threads"])
        if key not in mdlm:
            continue
        if "error" in r:
            print(f"{r['op']:18} {r['dtype']:9} {r['L']:5d} {r['V']:7d} {r['threads']:3d} {'n/a':>10} "
                  f"{mdlm[key][0] * 1e3:9.2f}   ({r['error'][:40]})")
            continue
        wall, cpu = mdlm[key]
        line = (f"{r['op']:18} {r['dtype']:9} {r['L']:5d} {r['V']:7d} {r['threads']:3d} {r['median_s'] * 1e3:10.2f} "
                f"{wall * 1e3:9.2f} {r['median_s'] / wall:9.1f}x")
        if r["threads"] == 1 and "cpu_median_s" in r:
            # CPU time is comparable only with one thread (Google Benchmark counts the main thread).
            line += f" {r['cpu_median_s'] * 1e3:13.2f} {cpu * 1e3:9.2f} {r['cpu_median_s'] / cpu:9.1f}x"
        print(line)


if __name__ == "__main__":
    main()

#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Smoke test of the harness commands (`mdlm eval`, `mdlm posterior`, `mdlm score`) on the shipped
arithmetic model, with exact checks:

* NFE: the template canvas has 60 masks, so one-token entropy decoding takes exactly 60 calls per
  problem, k = 2 exactly 30, the plain canvas 64; early exit never takes more than 60;
* determinism: per-problem records are identical for batch sizes 1 and 3 (wall time aside);
* the C++ grading of every real model response agrees with the Python checker (arith.grade);
* posterior traces keep the gold answer block, take 54 calls (one per reasoning mask), and `mdlm score`
  returns R + 1 = 55 curve points per trace with phi <= 0;
* bad input exits with code 2 and a message naming the value;
* reference/train/probe_masks.py probes exactly the result and operand digits of the gold steps.

    harness_smoke.py --tool build/tools/mdlm --root . [--n 4]

Exits 77 (ctest: skipped) when the shipped checkpoint is absent.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tool", required=True)
    ap.add_argument("--root", required=True)
    ap.add_argument("--n", type=int, default=4)
    ap.add_argument("--model", help="checkpoint directory (default: the shipped reference/models/arith-llada-3m)")
    args = ap.parse_args()
    root = os.path.abspath(args.root)
    model = os.path.abspath(args.model) if args.model else os.path.join(root, "reference", "models", "arith-llada-3m")
    if not os.path.exists(os.path.join(model, "model.safetensors")):
        print(f"skipped: no checkpoint at {model}")
        return 77
    sys.path.insert(0, os.path.join(root, "reference", "tasks"))
    from mdlm_tasks import arith  # noqa: E402

    problems = {p["id"]: p for p in arith.read_jsonl(os.path.join(root, "reference", "tasks", "data", "arith_test.jsonl"))}
    failures = []

    def check(cond, what):
        if not cond:
            failures.append(what)
            print("FAIL:", what)

    def run(*cmd, expect=0):
        r = subprocess.run([args.tool, *cmd, "--model", model], cwd=root, capture_output=True, text=True)
        check(r.returncode == expect, f"{' '.join(cmd)}: exit {r.returncode} (want {expect}): {r.stderr.strip()}")
        return r

    def records(path):
        with open(path, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]

    n = str(args.n)
    with tempfile.TemporaryDirectory() as tmp:
        runs = {}
        for name, extra in [("b1", ["--batch-size", "1"]), ("b3", ["--batch-size", "3"]),
                            ("k2", ["--k", "2"]), ("plain", ["--no-template"]), ("answer", ["--answer-only"]),
                            ("exit", ["--early-exit", "0.5"]),
                            ("med", ["--policy", "med", "--lambda", "0.2", "--block-length", "8"])]:
            path = os.path.join(tmp, name + ".jsonl")
            r = run("eval", "-n", n, "--threads", "1", "--records", path, *extra)
            if r.returncode != 0:
                continue
            summary = json.loads(r.stdout.strip().splitlines()[-1])
            recs = records(path)
            runs[name] = (summary, recs)
            check(summary["problems"] == args.n and len(recs) == args.n, f"{name}: {args.n} problems")
            acc = sum(x["answer_correct"] for x in recs) / len(recs)
            check(abs(summary["accuracy"] - acc) < 1e-12, f"{name}: summary accuracy matches the records")
            for x in recs:
                g = arith.grade(x["response"], problems[x["id"]]["answer"])
                for key in ("answer", "answer_correct", "n_steps", "n_correct_steps", "all_steps_correct"):
                    check(g[key] == x[key], f"{name}: problem {x['id']}: C++ {key} {x[key]!r} != Python {g[key]!r}")
        if "b1" in runs and "b3" in runs:
            strip = lambda rs: sorted((json.dumps({k: v for k, v in x.items() if k != "wall_s"}, sort_keys=True) for x in rs))
            check(strip(runs["b1"][1]) == strip(runs["b3"][1]), "records identical for batch sizes 1 and 3")
            check(runs["b1"][0]["mean_nfe"] == 60, f"one-token entropy decoding: NFE {runs['b1'][0]['mean_nfe']} != 60")
        if "k2" in runs:
            check(runs["k2"][0]["mean_nfe"] == 30, f"k = 2: NFE {runs['k2'][0]['mean_nfe']} != 30")
        if "plain" in runs:
            check(runs["plain"][0]["mean_nfe"] == 64, f"no template: NFE {runs['plain'][0]['mean_nfe']} != 64")
            check(all("reasoning_ids" not in x for x in runs["plain"][1]), "no template: no reasoning ids")
        if "answer" in runs:
            check(runs["answer"][0]["mean_nfe"] == 6 and runs["answer"][0]["answer_only"],
                  f"answer only: NFE {runs['answer'][0]['mean_nfe']} != 6 (the answer block)")
            check(all(x["n_steps"] == 0 and x["response"].lstrip().startswith("The answer is ")
                      for x in runs["answer"][1]), "answer only: no reasoning line before the delimiter")
        if "exit" in runs:
            for x in runs["exit"][1]:
                check(x["nfe"] <= 60 and len(x["h_ub"]) == x["nfe"], f"early exit: problem {x['id']} NFE {x['nfe']}")
                if x["exited"]:
                    check(x["exit_step"] + 1 == x["nfe"], f"early exit: problem {x['id']} exit step")
        if "med" in runs:
            check(all(1 <= x["nfe"] <= 60 for x in runs["med"][1]), "med: NFE within [1, 60]")

        post = os.path.join(tmp, "post.jsonl")
        r = run("posterior", "-n", "2", "--samples", "2", "--threads", "1", "--out", post)
        if r.returncode == 0:
            traces = records(post)
            check(len(traces) == 4, "posterior: 4 traces")
            for t in traces:
                check(len(t["reasoning_ids"]) == 54 and t["nfe"] == 54, f"posterior: problem {t['id']} length / NFE")
                check(2 not in t["reasoning_ids"], "posterior: no mask left")
                g = arith.grade(t["trace"], problems[t["id"]]["answer"])
                check(g["all_steps_correct"] == t["all_steps_correct"], f"posterior: problem {t['id']} step grading")
            curves = os.path.join(tmp, "score.jsonl")
            r = run("score", "--traces", post, "--out", curves, "--threads", "1")
            if r.returncode == 0:
                s = json.loads(r.stdout.strip().splitlines()[-1])
                check(s["traces"] == 4 and s["positives"] + s["negatives"] == 4, "score: 4 traces")
                for c in records(curves):
                    check(len(c["phi"]) == 55 and len(c["h_ub"]) == 55, "score: 55 curve points")
                    check(all(v <= 1e-9 for v in c["phi"]), "score: phi <= 0")
                    check(all(v >= -1e-9 for v in c["h_ub"]), "score: H_UB >= 0")

        # `mdlm solve` (the README's main command): its totals agree with `mdlm eval` on the same problems.
        r = run("solve", "-n", "2", "--threads", "1")
        if r.returncode == 0:
            total = [line for line in r.stdout.splitlines() if line.startswith("Total:")]
            check(len(total) == 1 and "120 model calls" in total[0], f"solve: one-token NFE total 120: {total}")
            check(r.stdout.count("gold answer:") == 2, "solve: 2 problems shown")
            ev1 = run("eval", "-n", "2", "--threads", "1")
            ev2 = run("eval", "-n", "2", "--threads", "1", "--policy", "med", "--lambda", "0.2", "--early-exit", "0.1")
            if ev1.returncode == 0 and ev2.returncode == 0 and total:
                s1, s2 = (json.loads(e.stdout.strip().splitlines()[-1]) for e in (ev1, ev2))
                want = (f"one-token {round(2 * s1['accuracy'])}/2 correct, 120 model calls; MED+exit "
                        f"{round(2 * s2['accuracy'])}/2 correct, {round(2 * s2['mean_nfe'])} model calls")
                check(want in total[0], f"solve totals {total[0]!r} match eval ({want!r})")

        for cmd, needle in [(["eval", "--policy", "nope"], "nope"), (["eval", "--early-exit", "-1"], "-1"),
                            (["solve", "--gamma", "0"], "--gamma"), (["solve", "--lambda", "nan"], "--lambda"),
                            (["eval", "--policy", "med", "--k", "2"], "--k"),
                            (["eval", "--answer-only", "--no-template"], "--answer-only"),
                            (["eval", "-n", "5000"], "5000"),
                            (["score", "--traces", os.path.join(tmp, "missing.jsonl")], "missing.jsonl")]:
            r = run(*cmd, expect=2)
            check(needle in r.stderr and len(r.stderr.strip().splitlines()) == 1,
                  f"{' '.join(cmd)}: one-line message naming {needle!r}: {r.stderr.strip()!r}")

    # reference/train/probe_masks.py: the digit spans it probes match the gold steps (2 problems).
    def run_probe(*cmd):
        return subprocess.run([sys.executable, os.path.join(root, "reference", "train", "probe_masks.py"),
                               "--model", model, *cmd], cwd=root, capture_output=True, text=True)

    probe = run_probe("-n", "2", "--draws", "3", "--threads", "1")
    check(probe.returncode == 0, f"probe_masks: exit {probe.returncode}: {probe.stderr.strip()[-300:]}")
    if probe.returncode == 0:
        first = [problems[i] for i in sorted(problems)[:2]]
        lines = [re.split(r"[-+*/=]", s) for p in first for s in p["steps"]]
        n_result = sum(len(x[2]) for x in lines)
        n_operand = sum(len(x[0]) + len(x[1]) for x in lines)
        want = {("result", "left-to-right"): n_result, ("result", "iid t=0.5"): 3 * n_result,
                ("result", "iid t=0.5, copies masked"): 3 * n_result,
                ("operand", "left-to-right"): n_operand, ("operand", "iid t=0.5"): 3 * n_operand}
        got = {(o["digits"], o["state"]): o for o in map(json.loads, probe.stdout.strip().splitlines())}
        check(set(got) == set(want), f"probe_masks: states {sorted(got)}")
        for key, o in got.items():
            check(o["targets"] == want.get(key), f"probe_masks {key}: {o['targets']} targets (want {want.get(key)})")
            check(o["mean_nll"] >= 0 and 0 <= o["argmax_accuracy"] <= 1, f"probe_masks {key}: {o}")
    bad = run_probe("--t", "0")
    check(bad.returncode == 2 and "--t 0.0" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1, f"probe_masks --t 0: exit {bad.returncode} {bad.stderr!r}")

    if failures:
        print(f"{len(failures)} check(s) failed")
        return 1
    print("harness smoke: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())

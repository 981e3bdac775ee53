#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""reference/train/train.py --chunk-steps / --resume continue a run exactly (issue 17): a tiny model
trained 2 x N steps in two invocations (the second resumed from the first's resume.pt) logs the same
loss at every step, to 1e-6, and ends with the same weights as 2N steps in one invocation (with the
number tokenizer, one-step drills and the Fourier number init, so all are exercised). Also: a resumed
run refuses a hyper-parameter that differs from the saved one; drills are correct task lines that fit
the response, one-step drills rarely hold a result as another line's operand; the number init sets
exactly the number rows, with similar rows for neighbouring values. Exit 77
(skipped) without torch.

    /usr/bin/python3 tests/harness/test_train_resume.py --root .
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

TINY = ["--d-model", "32", "--n-layers", "1", "--n-heads", "2", "--mlp-hidden", "64", "--batch-size", "4",
        "--max-steps", "12", "--warmup", "3", "--time-budget-min", "100000", "--eval-n", "0", "--log-every", "1",
        "--threads", "1", "--device", "cpu", "--base-at", "0.4", "--drill-fraction", "0.25", "--drill-one-step",
        "--number-init", "fourier"]


def train(root, extra):
    cmd = [sys.executable, os.path.join(root, "reference", "train", "train.py")] + extra
    return subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"))


def losses(directory):
    with open(os.path.join(directory, "train_log.jsonl"), encoding="utf-8") as f:
        return [(r["step"], r["loss"]) for r in map(json.loads, f)]


def read(path):
    with open(path, "rb") as f:
        return f.read()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    args = ap.parse_args()
    try:
        import torch  # noqa: F401
    except ImportError:
        print("SKIPPED: torch is not importable")
        return 77
    failures = []
    TINY.extend(["--tokenizer", os.path.join(args.root, "reference", "tasks", "data", "tokenizer_numbers.json")])

    def check(ok, what):
        print(("ok   " if ok else "FAIL ") + what)
        if not ok:
            failures.append(what)

    # Drills: every line well formed and correct, the whole response within GEN_LENGTH.
    sys.path.insert(0, os.path.join(args.root, "reference", "train"))
    import random
    import train as train_module
    from mdlm_tasks import arith, formats
    from mdlm_tasks.tokenizer import Tokenizer
    tok = Tokenizer.load(os.path.join(args.root, "reference", "tasks", "data", "tokenizer_numbers.json"))
    def drills(one_step):
        """200 drills of a fixed stream: (their steps, every line correct, every drill fits, copy rate)
        where the copy rate is the share of lines whose result is an operand of another line."""
        stream, rng = arith.train_stream(5, []), random.Random(6)
        steps = [p["steps"] for _, p, _ in (train_module.drill(tok, stream, rng, one_step) for _ in range(200))]
        correct = all(g and all(wf and ok for _, wf, ok in g) for g in
                      (arith.grade_steps(arith.reasoning_text(s)) for s in steps))
        fit = all(len(formats.plain_response_ids(tok, s)) == formats.GEN_LENGTH for s in steps)
        copied = sum(line.split("=")[1] in {x for j, o in enumerate(s) if j != i for x in re.split(r"[-+*/]", o.split("=")[0])}
                     for s in steps for i, line in enumerate(s))
        return steps, correct, fit, copied / sum(len(s) for s in steps)

    steps_all, correct, fit, rate_all = drills(False)
    check(correct, "200 drills: every line a correct task line")
    check(fit, "drills fit the response")
    check(sum(len(s) for s in steps_all) / len(steps_all) > 4, "drills hold several lines each")

    # One step per problem (--drill-one-step): still correct lines that fit, and a line's result is far
    # more rarely an operand of another line of the same drill (with all steps, a problem's chain puts
    # most results there; with one step, only coincidences of small values remain).
    _, correct, fit, rate_one = drills(True)
    check(correct and fit, "200 one-step drills: every line a correct task line, each fits the response")
    check(rate_one < 0.5 * rate_all, f"one-step drills: {rate_one:.0%} of lines have their result as an operand "
                                     f"of another line (all steps: {rate_all:.0%})")

    # --number-init fourier: number rows of the embedding and the head carry features of the value
    # (neighbouring values similar, the other rows untouched).
    import torch
    tiny = train_module.llada_config(tok, argparse.Namespace(d_model=32, n_layers=1, n_heads=2, mlp_hidden=64,
                                                             rope_theta=10000.0))
    model = train_module.torch_models.LLaDA(tiny)
    torch.manual_seed(0)
    train_module.init_weights(model, 1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    n = train_module.number_init(model, tok)
    t = model.model.transformer
    digit = torch.tensor([x.isdigit() for x in tok.tokens] + [False] * (tok.embedding_size - len(tok.tokens)))
    ids = {v: tok.tokens.index(str(v)) for v in range(1, 201)}
    for name, key in (("embedding", "wte"), ("head", "ff_out")):
        w = t[key].weight.detach()
        unit = torch.nn.functional.normalize(w, dim=1)
        near = sum(float(unit[ids[v]] @ unit[ids[v + 1]]) for v in range(1, 200)) / 199
        far = sum(abs(float(unit[ids[v]] @ unit[ids[(v + 99) % 200 + 1]])) for v in range(1, 200)) / 199
        check(n == int(digit.sum()) and torch.equal(w[~digit], before[f"model.transformer.{key}.weight"][~digit]),
              f"number init ({name}): {n} number rows set, the others unchanged")
        check(near > 0.5 and near > 2 * far, f"number init ({name}): neighbouring values' rows have cosine "
                                             f"{near:.2f}, values 100 apart {far:.2f}")

    with tempfile.TemporaryDirectory() as tmp:
        straight, chunked = os.path.join(tmp, "straight"), os.path.join(tmp, "chunked")
        r = train(args.root, TINY + ["--out", straight, "--base-out", straight + "-base"])
        check(r.returncode == 0, "12 steps straight: exit 0" + ("" if r.returncode == 0 else "\n" + r.stderr[-2000:]))
        r = train(args.root, TINY + ["--out", chunked, "--base-out", chunked + "-base", "--chunk-steps", "6"])
        check(r.returncode == 0 and os.path.isfile(os.path.join(chunked, "resume.pt")),
              "first chunk of 6 steps: exit 0 and resume.pt written" + ("" if r.returncode == 0 else "\n" + r.stderr[-2000:]))
        check(not os.path.exists(os.path.join(chunked, "eval.json")), "a chunk that stops early is not evaluated")
        bad = train(args.root, ["--out", chunked, "--resume", chunked, "--lr", "0.5"])
        check(bad.returncode == 2 and "--lr 0.5 differs from the resumed run's" in bad.stderr,
              "resume refuses a different --lr: " + bad.stderr.strip().splitlines()[-1] if bad.stderr else "no message")
        missing = train(args.root, ["--out", chunked, "--resume", os.path.join(tmp, "nowhere")])
        check(missing.returncode == 2 and "no resume.pt there" in missing.stderr, "resume from a folder without resume.pt")
        r = train(args.root, ["--out", chunked, "--resume", chunked, "--threads", "1", "--device", "cpu", "--eval-n", "0"])
        check(r.returncode == 0 and "[resume] from" in r.stdout,
              "second chunk resumed: exit 0" + ("" if r.returncode == 0 else "\n" + r.stderr[-2000:]))
        a, b = losses(straight), losses(chunked)
        check([s for s, _ in a] == list(range(1, 13)) and [s for s, _ in b] == list(range(1, 13)),
              f"both logs have steps 1..12 (straight {len(a)}, chunked {len(b)})")
        worst = max((abs(x - y) for (_, x), (_, y) in zip(a, b)), default=float("inf"))
        check(worst <= 1e-6, f"per-step losses agree to 1e-6 (largest difference {worst:.3g})")
        check(a[0][1] != a[-1][1], "the loss changes over the run (the test can tell runs apart)")
        check(read(os.path.join(straight, "model.safetensors")) == read(os.path.join(chunked, "model.safetensors")),
              "final weights are identical")
        check(read(os.path.join(straight + "-base", "model.safetensors")) ==
              read(os.path.join(chunked + "-base", "model.safetensors")), "the weaker base (saved in chunk 1) is identical")
    print("FAILED: " + "; ".join(failures) if failures else "all checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

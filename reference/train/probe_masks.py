#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Probes how well a checkpoint predicts the digits of its gold reasoning under different mask states.

The training objective masks response tokens independently (ratio t); left-to-right decoding instead
asks for a token whose whole right side is masked. In the gold trace every intermediate result c of a
line ``a op b = c`` is written again as an operand of a later line (and the last one as the answer),
so under independent masking a result digit can often be read off its later copy rather than
computed. This script measures, on the gold template responses of the first N test problems, the
negative log-likelihood (nats) and the argmax accuracy of

* result digits (the ``c`` of every line) and operand digits (``a`` and ``b``), each in the states
  - ``left-to-right``: every reasoning position from the target on and the answer block masked, the
    prefix and the delimiter clean (the state left-to-right decoding reaches with a correct prefix);
  - ``iid t``: every response position masked independently with probability t, the target always;
  - ``iid t, copies masked`` (results only): as ``iid t``, and also every later copy of the result
    (the operand of a later line, or the answer, with the same digits) masked.

    /usr/bin/python3 reference/train/probe_masks.py --model reference/models/arith-llada-3m [-n 200]

Prints one JSON object per (digit kind, state) line.
"""

import argparse
import json
import os
import re
import sys

import torch

_HERE = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.abspath(os.path.join(_HERE, "..", ".."))
sys.path.insert(0, os.path.join(_ROOT, "tests", "golden"))
sys.path.insert(0, os.path.join(_ROOT, "reference", "tasks"))
import torch_models  # noqa: E402
from mdlm_tasks import arith, formats  # noqa: E402
from mdlm_tasks.tokenizer import Tokenizer  # noqa: E402

_LINE = re.compile(r"([0-9]+)[-+*/]([0-9]+)=([0-9]+)")


def spans(tok, problem, answer_start):
    """(response ids, [(result span, [copy spans])], [operand spans]) for the gold template response;
    spans are (start, end) response offsets; ``answer_start`` is the answer block's offset."""
    resp = formats.template_response_ids(tok, problem["steps"], problem["answer"])
    text = arith.reasoning_text(problem["steps"])
    # The trace is tokenized one character per token (digits, operators, '=', newline); checked here.
    if len(tok.encode(text)) != len(text):
        raise ValueError("the reasoning trace is not one token per character")
    operands, results = [], []
    for m in _LINE.finditer(text):
        operands += [m.span(1), m.span(2)]
        results.append((m.span(3), m.group(3)))
    out = []
    for span, digits in results:
        copies = [s for s in operands if s[0] > span[0] and text[s[0]:s[1]] == digits]
        if str(problem["answer"]) == digits:
            copies.append((answer_start, answer_start + len(digits)))
        out.append((span, copies))
    return resp, out, operands


@torch.no_grad()
def score(model, rows, positions, golds, batch_size=256):
    """rows: [B, T] id tensor; positions, golds: [B] tensors (one target per row); returns
    (nll list, correct list)."""
    nll, correct = [], []
    for s in range(0, rows.shape[0], batch_size):
        logits = model(rows[s : s + batch_size]).float()
        at = torch.arange(logits.shape[0])
        logp = torch.log_softmax(logits[at, positions[s : s + batch_size]], dim=-1)
        gold = golds[s : s + batch_size]
        nll += (-logp[at, gold]).tolist()
        correct += (logp.argmax(dim=-1) == gold).int().tolist()
    return nll, correct


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("-n", type=int, default=200, help="first N test problems")
    ap.add_argument("--t", type=float, default=0.5, help="mask ratio of the iid states")
    ap.add_argument("--draws", type=int, default=4, help="iid mask draws per target")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    for bad, message in [(args.n < 1, f"-n {args.n} must be >= 1"),
                         (args.draws < 1, f"--draws {args.draws} must be >= 1"),
                         (not 0.0 < args.t <= 1.0, f"--t {args.t} must be in (0, 1]")]:
        if bad:
            print(f"probe_masks: {message}", file=sys.stderr)
            return 2
    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(args.seed)
    tok = Tokenizer.load(os.path.join(args.model, "tokenizer.json"))
    model = torch_models.load_checkpoint(args.model).eval()
    mask = model.config["mask_token_id"]
    problems = arith.read_jsonl(os.path.join(_ROOT, "reference", "tasks", "data", "arith_test.jsonl"))[: args.n]

    canvas, answer_start = formats.template_canvas(tok)
    states = {}  # (kind, state) -> prompt length -> [(ids, target position, gold id)] (no padding needed)

    def add(key, prompt, resp, masked, pos):
        x = prompt + [mask if m else t for t, m in zip(resp, masked)]
        states.setdefault(key, {}).setdefault(len(prompt), []).append((x, len(prompt) + pos, resp[pos]))

    for p in problems:
        prompt = formats.prompt_ids(tok, p["question"])
        resp, results, operands = spans(tok, p, answer_start)
        n = len(resp)
        targets = [("result", s, copies) for s, copies in results] + [("operand", s, []) for s in operands]
        for kind, (a, b), copies in targets:
            for pos in range(a, b):
                add((kind, "left-to-right"), prompt, resp, [i >= pos and c == mask for i, c in enumerate(canvas)], pos)
                for _ in range(args.draws):
                    draw = (torch.rand(n, generator=gen) < args.t).tolist()
                    draw[pos] = True
                    add((kind, f"iid t={args.t}"), prompt, resp, draw, pos)
                    if kind == "result":
                        hidden = list(draw)
                        for c0, c1 in copies:
                            hidden[c0:c1] = [True] * (c1 - c0)
                        add((kind, f"iid t={args.t}, copies masked"), prompt, resp, hidden, pos)

    for (kind, state), groups in states.items():
        nll, correct = [], []
        for items in groups.values():
            rows, positions, golds = (torch.tensor(list(col), dtype=torch.long) for col in zip(*items))
            a, c = score(model, rows, positions, golds)
            nll += a
            correct += c
        print(json.dumps({"digits": kind, "state": state, "targets": len(nll),
                          "mean_nll": round(sum(nll) / len(nll), 4),
                          "argmax_accuracy": round(sum(correct) / len(correct), 4)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Post-training on reasoning traces (arXiv 2510.19990 section 4.1 / table 5): fine-tunes a checkpoint
with the masked-diffusion objective of train.py on (question, trace, gold answer) triples written
with the reasoning template.

Traces come from either
* ``--traces FILE``: JSON lines with ``id`` and ``reasoning_ids`` (the template's reasoning block, as
  written by ``mdlm posterior``) -- the model's own posterior traces p(r | c, a*); or
* ``--gold``: the gold traces of the same problems (``--problems`` split, ``--ids-from FILE`` keeps
  the ids that appear in FILE so both runs see the same problems).

The problems are taken from ``--problems`` (default: a held-out slice of the training stream written by
``--make-problems``; never the test split). Every step draws a batch of triples, masks each response
at a uniform ratio t and minimises the 1/t-weighted cross-entropy (train.diffusion_loss). Output: a
checkpoint directory like train.py's (bf16 safetensors, tokenizer.json, train_state.json).

    /usr/bin/python3 reference/train/finetune.py --init reference/models/arith-llada-3m-base \\
        --problems P.jsonl --traces posterior.jsonl --out /tmp/ft-posterior --steps 200
"""

import argparse
import json
import os
import random
import sys
import time

import torch

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, _HERE)
import train  # noqa: E402  (sets up the import paths of torch_models and mdlm_tasks)
from train import torch_models, arith, formats, Tokenizer  # noqa: E402


def make_problems(path, count, seed):
    """Writes ``count`` training-stream problems (never test questions) as a JSONL split."""
    test = arith.read_jsonl(os.path.join(train.DATA_DIR, "arith_test.jsonl"))
    stream = arith.train_stream(seed, [p["question"] for p in test])
    problems = [{"id": i, **next(stream)} for i in range(count)]
    arith.write_jsonl(path, problems)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--init", help="checkpoint to fine-tune")
    ap.add_argument("--out", help="output checkpoint directory")
    ap.add_argument("--problems", help="problem split (JSONL) the traces refer to")
    ap.add_argument("--make-problems", help="write a held-out training-stream split here and exit")
    ap.add_argument("--count", type=int, default=200, help="problems for --make-problems")
    ap.add_argument("--problem-seed", type=int, default=77, help="stream seed for --make-problems")
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--traces", help="posterior traces JSONL (id, reasoning_ids)")
    src.add_argument("--gold", action="store_true", help="use the gold traces")
    ap.add_argument("--ids-from", help="with --gold: only problems whose id appears in this JSONL")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--t-min", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    train.add_autocast_arg(ap)
    args = ap.parse_args()
    if args.make_problems:
        make_problems(args.make_problems, args.count, args.problem_seed)
        return 0
    if not (args.init and args.out and args.problems and (args.traces or args.gold)):
        ap.error("--init, --out, --problems and one of --traces / --gold are required")

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed + 1)
    rng = random.Random(args.seed + 2)
    tok = Tokenizer.load(os.path.join(args.init, "tokenizer.json"))
    problems = {p["id"]: p for p in arith.read_jsonl(args.problems)}
    r_block = formats.reasoning_block_length(tok)
    delim = tok.encode(arith.ANSWER_DELIMITER)
    examples = []
    if args.traces:
        for line in open(args.traces, encoding="utf-8"):
            if not line.strip():
                continue
            rec = json.loads(line)
            p = problems[rec["id"]]
            reasoning = [t if t != tok.mask else tok.eos for t in rec["reasoning_ids"]]
            if len(reasoning) != r_block:
                raise ValueError(f"trace of problem {rec['id']} has {len(reasoning)} ids, not {r_block}")
            ans = tok.encode(str(p["answer"]))
            resp = reasoning + delim + ans + [tok.eos] * (formats.ANSWER_BLOCK - len(ans))
            examples.append((formats.prompt_ids(tok, p["question"]), resp))
    else:
        keep = None
        if args.ids_from:
            keep = {json.loads(line)["id"] for line in open(args.ids_from, encoding="utf-8") if line.strip()}
        for pid, p in problems.items():
            if keep is None or pid in keep:
                examples.append((formats.prompt_ids(tok, p["question"]),
                                 formats.template_response_ids(tok, p["steps"], p["answer"])))
    if not examples:
        raise ValueError("no training examples")
    model = torch_models.load_checkpoint(args.init)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=0.01)
    t0 = time.time()
    # Batches group examples of one prompt length (no attention mask in the model).
    by_len = {}
    for e in examples:
        by_len.setdefault(len(e[0]), []).append(e)
    lengths = sorted(by_len)
    for step in range(args.steps):
        plen = rng.choice(lengths)
        chunk = [rng.choice(by_len[plen]) for _ in range(args.batch_size)]
        ids = torch.tensor([p + r for p, r in chunk], dtype=torch.long)
        plens = torch.full((len(chunk),), plen, dtype=torch.long)
        loss, _ = train.diffusion_loss(model, ids, plens, tok.mask, args.t_min, gen, args.autocast)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if (step + 1) % 25 == 0:
            print(f"step {step + 1:4d}  loss {loss.item():.4f}  {time.time() - t0:.0f}s", flush=True)
    model.eval()
    state = {"init": args.init, "source": args.traces or "gold", "examples": len(examples), "steps": args.steps,
             "seconds": round(time.time() - t0, 1), "args": vars(args)}
    train.save(model, tok, args.out, state)
    print(f"[finetune] {len(examples)} examples, {args.steps} steps, {state['seconds']} s -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

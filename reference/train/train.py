#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Trains mdlm's reference masked diffusion LM (LLaDA architecture) on the arithmetic task.

Model: ``LLaDA`` from tests/golden/torch_models.py (the golden PyTorch forward), a few million
parameters. Objective (LLaDA's SFT loss): for every example draw t ~ U(t_min, 1] (stratified over
the batch), mask every response token independently with probability t (the prompt is never
masked), and minimise sum_{masked l} -log p(x_l | x_t) / t, divided by the response length.

Data: the training stream of reference/tasks (disjoint from the committed test split), each problem
written with the reasoning template (``[reasoning] EOS.. The answer is [answer] EOS..``) or without it
(``[reasoning] EOS..``), each with probability 1/2; with ``--drill-fraction F`` a share F of the
examples are drills instead (an empty question; as the response, single task lines of several stream
problems in shuffled order, "9*6=54", as many as fit): cheap examples of the sub-skill the model gets
wrong, computing a line's result; with ``--drill-one-step`` each problem gives one random step, so that
a result is not also written as an operand of the next line, where it could be copied from instead of
computed; responses of formats.GEN_LENGTH tokens. Batches
group problems of similar prompt length; a shorter prompt gets a longer run of EOS at the end of the
response (after the answer block with the template), as LLaDA's SFT pads to the batch's length. So
the answer delimiter sits exactly where the C++ template (mdlm/infilling/template.hpp) puts it at
test time: right after the fixed-length reasoning block that follows the prompt. (Until 2026-12-02
the padding went inside the reasoning block, which moved the delimiter later than at test time in
about 31 % of template examples; the shipped model was trained that way.)

Initialisation: Normal(0, 0.02) (``init_weights``); with ``--number-init fourier`` the embedding and
head rows of number tokens start from Fourier features of their value (``number_init``).

Schedule: AdamW, linear warm-up then cosine decay to 10 %, over a progress measure that is the larger
of step / --max-steps and wall time / --time-budget-min, so that training stops within the time
budget on a slow or shared CPU (on a GPU the step count binds). The "weaker base" checkpoint is
written when progress first reaches --base-at.

Outputs (in --out and --base-out): config.json, model.safetensors (bf16), tokenizer.json,
train_log.jsonl and eval.json; the final accuracy is measured with the bf16 weights as saved.

Chunks: a run can be spread over several invocations of under an hour each. ``--chunk-min M`` (or
``--chunk-steps S``) ends this invocation after M minutes (S steps) of training: it writes
``--out/resume.pt`` (fp32 weights, AdamW state, step, tokens, training seconds so far, the number of
batches drawn from the data stream, the states of both random generators, the logging accumulators)
and the current bf16 checkpoint, then exits 0 without the final evaluation. ``--resume DIR`` continues
from ``DIR/resume.pt`` exactly: the schedule goes on from the saved step and training time, and the
data stream is rebuilt from its seeds and advanced past the batches already drawn, so N + N resumed
steps equal 2N steps straight (tests/harness/test_train_resume.py checks the losses to 1e-6). The
hyper-parameters come from the saved state; a flag that differs is an error.

    /usr/bin/python3 reference/train/train.py --out reference/models/arith-llada-3m \\
        --base-out reference/models/arith-llada-3m-base
    # in chunks of 50 minutes:
    /usr/bin/python3 reference/train/train.py --out DIR --chunk-min 50 ...
    /usr/bin/python3 reference/train/train.py --out DIR --resume DIR --chunk-min 50
"""

import argparse
import json
import math
import os
import random
import shutil
import sys
import time

import torch
import torch.nn.functional as F

_HERE = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.abspath(os.path.join(_HERE, "..", ".."))
sys.path.insert(0, os.path.join(_ROOT, "tests", "golden"))
sys.path.insert(0, os.path.join(_ROOT, "reference", "tasks"))
sys.path.insert(0, _HERE)
import torch_models  # noqa: E402
from mdlm_tasks import arith, formats  # noqa: E402
from mdlm_tasks.tokenizer import Tokenizer  # noqa: E402
import decode  # noqa: E402

DATA_DIR = os.path.join(_ROOT, "reference", "tasks", "data")


def llada_config(tok, args):
    """A config.json with the real LLaDA keys (shared/spec/models.md section 2.1)."""
    return {
        "activation_type": "silu", "alibi": False, "alibi_bias_max": 8.0, "architectures": ["LLaDAModelLM"],
        "attention_dropout": 0.0, "attention_layer_norm": False, "attention_layer_norm_with_affine": True,
        "bias_for_layer_norm": False, "block_group_size": 1, "block_type": "llama", "d_model": args.d_model,
        "embedding_dropout": 0.0, "embedding_size": tok.embedding_size, "eos_token_id": tok.eos,
        "flash_attention": False, "include_bias": False, "include_qkv_bias": False, "init_cutoff_factor": None,
        "init_device": "cpu", "init_fn": "normal", "init_std": 0.02, "input_emb_norm": False,
        "layer_norm_type": "rms", "layer_norm_with_affine": True, "mask_token_id": tok.mask,
        "max_sequence_length": 256, "mlp_hidden_size": args.mlp_hidden, "mlp_ratio": 4, "model_type": "llada",
        "multi_query_attention": None, "n_heads": args.n_heads, "n_kv_heads": args.n_heads,
        "n_layers": args.n_layers, "pad_token_id": tok.eos, "precision": "amp_bf16", "residual_dropout": 0.0,
        "rms_norm_eps": 1e-5, "rope": True, "rope_full_precision": True, "rope_theta": args.rope_theta,
        "scale_logits": False, "use_cache": False, "vocab_size": tok.embedding_size, "weight_tying": False,
    }


def init_weights(model, n_layers, std=0.02):
    """Normal(0, std) for embeddings and projections; residual output projections scaled by
    1/sqrt(2 n_layers) (GPT-2 style) so the residual stream starts near unit scale."""
    for name, p in model.named_parameters():
        if p.dim() == 1:
            continue  # RMSNorm weights stay 1
        residual_out = ".blocks." in name and name.endswith(("attn_out.weight", "ff_out.weight"))
        s = std / math.sqrt(2 * n_layers) if residual_out else std
        torch.nn.init.normal_(p, 0.0, s)


def number_init(model, tok, std=0.02):
    """Initialises the input embedding and the LM head rows of every number token (a string of
    digits, value v) with Fourier features of v: cos and sin of 2 pi v / T for d_model / 2 periods T
    spaced geometrically from 2 to 1000, scaled to the random rows' std, plus N(0, std / 2) noise.
    Why: with one token per number the model must otherwise learn the ~40k facts "a op b = c" as a
    table; with features of the value in both embeddings, c = a + b becomes a product of features of
    a and b (cos(x + y) = cos x cos y - sin x sin y), which a gated MLP can form -- the structure that
    small transformers find for modular addition. Only the initial values change: the checkpoint keeps
    the LLaDA layout and the CPU backend runs it unchanged."""
    rows = [i for i, s in enumerate(tok.tokens) if s.isdigit()]
    values = torch.tensor([float(int(tok.tokens[i])) for i in rows])
    half = model.config["d_model"] // 2
    periods = 2.0 * 500.0 ** (torch.arange(half) / max(1, half - 1))
    angle = 2 * math.pi * values[:, None] / periods[None, :]
    feats = torch.cat([torch.cos(angle), torch.sin(angle)], dim=1) * (std * math.sqrt(2.0))
    t = model.model.transformer
    with torch.no_grad():
        for w in [t["wte"].weight] + ([t["ff_out"].weight] if "ff_out" in t else []):
            w[rows, : 2 * half] = feats + torch.randn(feats.shape) * (std / 2)
    return len(rows)


def drill(tok, stream, rng, one_step=False):
    """A drill example: an empty question and, as the response (plain form), single task lines of
    several stream problems ("33-24=9"), shuffled and independent of each other, as many as fit. With
    ``one_step`` each problem gives one of its steps, chosen at random, so that no line's result is an
    operand of another line of the same drill (a result cannot be copied from its later use)."""
    lines = []
    while True:
        steps = next(stream)["steps"]
        lines += [rng.choice(steps)] if one_step else steps
        rng.shuffle(lines)
        if len(tok.encode(arith.reasoning_text(lines))) > formats.GEN_LENGTH:
            break
    while len(tok.encode(arith.reasoning_text(lines))) > formats.GEN_LENGTH:
        lines.pop()
    return formats.prompt_ids(tok, ""), {"steps": lines}, False


def batches(tok, stream, rng, batch_size, group=64, drill_fraction=0.0, drill_one_step=False):
    """Yields (ids [B, T], prompt_lengths [B]) with responses of >= GEN_LENGTH tokens; a share
    ``drill_fraction`` of the examples are drills (``drill``)."""
    while True:
        pool = []
        for _ in range(batch_size * group):
            if drill_fraction > 0.0 and rng.random() < drill_fraction:
                pool.append(drill(tok, stream, rng, drill_one_step))
                continue
            p = next(stream)
            pool.append((formats.prompt_ids(tok, p["question"]), p, rng.random() < 0.5))
        pool.sort(key=lambda e: len(e[0]))
        chunks = [pool[i : i + batch_size] for i in range(0, len(pool), batch_size)]
        rng.shuffle(chunks)
        for chunk in chunks:
            plen_max = max(len(e[0]) for e in chunk)
            rows, plens = [], []
            for prompt, p, template in chunk:
                extra = plen_max - len(prompt)
                if template:
                    resp = formats.template_response_ids(tok, p["steps"], p["answer"]) + [tok.eos] * extra
                else:
                    resp = formats.plain_response_ids(tok, p["steps"]) + [tok.eos] * extra
                rows.append(prompt + resp)
                plens.append(len(prompt))
            yield torch.tensor(rows, dtype=torch.long), torch.tensor(plens, dtype=torch.long)


def add_autocast_arg(ap):
    ap.add_argument("--autocast", choices=["none", "bf16"], default="bf16",
                    help="mixed precision for the forward/backward (master weights stay fp32); bf16 runs "
                         "about 6x faster than fp32 on CPUs with AVX-512 BF16 (measured on the 2-core dev box)")


def diffusion_loss(model, ids, plens, mask_id, t_min, gen, autocast="bf16"):
    """LLaDA's objective for one batch; returns (loss, mean t). ``autocast="bf16"`` runs the model's
    forward (and so its backward) under bf16 autocast; the loss is computed in fp32."""
    b, length = ids.shape
    # Stratified t: one uniform offset, spread over the batch -- each t is still U(0, 1] marginally,
    # but the batch covers the noise levels evenly (lower variance than independent draws).
    u = (torch.rand(1, generator=gen) + torch.arange(b) / b) % 1.0
    t = (t_min + (1.0 - t_min) * (1.0 - u)).to(ids.device)  # in (t_min, 1]
    pos = torch.arange(length, device=ids.device)[None, :]
    response = pos >= plens[:, None].to(ids.device)
    draw = torch.rand(b, length, generator=gen).to(ids.device)
    masked = response & (draw < t[:, None])
    x = torch.where(masked, torch.full_like(ids, mask_id), ids)
    with torch.autocast(ids.device.type, dtype=torch.bfloat16, enabled=autocast == "bf16"):
        logits = model(x)
    logits = logits.float()  # the log-softmax of the loss in fp32
    ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids.reshape(-1), reduction="none").view(b, length)
    resp_len = response.sum(dim=1).clamp(min=1)
    per_example = (ce * masked).sum(dim=1) / t / resp_len
    return per_example.mean(), t.mean().item()


def save(model, tok, directory, extra):
    torch_models.save_checkpoint(model, directory, dtype="BF16")
    tok.save(os.path.join(directory, "tokenizer.json"))
    with open(os.path.join(directory, "train_state.json"), "w", encoding="utf-8") as f:
        json.dump(extra, f, indent=2)
        f.write("\n")


def run_eval(directory, tok, problems, device, label, log):
    """Reloads the saved bf16 checkpoint and measures greedy left-to-right accuracy."""
    model = torch_models.load_checkpoint(directory).to(device)
    results = {}
    for template in (True, False):
        t0 = time.time()
        summary, records = decode.evaluate(model, tok, problems, template, device)
        summary["seconds"] = round(time.time() - t0, 1)
        key = "template" if template else "no_template"
        results[key] = summary
        log(f"[eval {label}] {key}: accuracy {summary['accuracy']:.4f}, all steps correct "
            f"{summary['all_steps_correct']:.4f} on {summary['problems']} problems ({summary['seconds']} s)")
        with open(os.path.join(directory, f"eval_{key}.jsonl"), "w", encoding="utf-8") as f:
            for r in records:
                f.write(json.dumps(r) + "\n")
    with open(os.path.join(directory, "eval.json"), "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2)
        f.write("\n")
    return results


def main():
    ap = argparse.ArgumentParser(description="Train the reference arithmetic LLaDA model.")
    ap.add_argument("--out", required=True, help="final checkpoint directory")
    ap.add_argument("--init", help="continue from this checkpoint (its config wins over the size flags; "
                                   "the optimizer starts afresh with a new warm-up)")
    ap.add_argument("--base-out", help="weaker base checkpoint directory (written at --base-at progress)")
    ap.add_argument("--base-at", type=float, default=0.3)
    ap.add_argument("--d-model", type=int, default=256)
    ap.add_argument("--n-layers", type=int, default=4)
    ap.add_argument("--n-heads", type=int, default=4)
    ap.add_argument("--mlp-hidden", type=int, default=768)
    ap.add_argument("--rope-theta", type=float, default=10000.0)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--min-lr-ratio", type=float, default=0.1)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--max-steps", type=int, default=6000)
    ap.add_argument("--time-budget-min", type=float, default=55.0)
    ap.add_argument("--t-min", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--eval-n", type=int, default=200, help="test problems for the final accuracy check")
    ap.add_argument("--log-every", type=int, default=25)
    ap.add_argument("--tokenizer", default=os.path.join(DATA_DIR, "tokenizer.json"),
                    help="tokenizer.json of the task (data/tokenizer_numbers.json: numbers as tokens of up to 3 digits)")
    ap.add_argument("--drill-fraction", type=float, default=0.0,
                    help="share of examples that are drills: single task lines of stream problems, shuffled "
                         "(an empty question, the plain form)")
    ap.add_argument("--drill-one-step", action="store_true",
                    help="drills take one random step of each stream problem instead of all its steps, so no "
                         "result in a drill is also an operand there")
    ap.add_argument("--number-init", choices=["random", "fourier"], default="random",
                    help="initial embedding and head rows of number tokens: random (as every row) or Fourier "
                         "features of the value (number_init)")
    ap.add_argument("--resume", help="continue exactly from DIR/resume.pt (written by --chunk-min / --chunk-steps)")
    ap.add_argument("--chunk-min", type=float, default=0.0,
                    help="end this invocation after this many minutes of training, writing --out/resume.pt (0 = no limit)")
    ap.add_argument("--chunk-steps", type=int, default=0,
                    help="end this invocation after this many steps, writing --out/resume.pt (0 = no limit)")
    add_autocast_arg(ap)
    args = ap.parse_args()
    if not 0.0 <= args.drill_fraction < 1.0:
        ap.error(f"--drill-fraction {args.drill_fraction} must lie in [0, 1)")
    if args.chunk_min < 0 or args.chunk_steps < 0:
        ap.error(f"--chunk-min {args.chunk_min} / --chunk-steps {args.chunk_steps} must be >= 0")
    resume = None
    if args.resume:
        path = os.path.join(args.resume, "resume.pt")
        if not os.path.isfile(path):
            ap.error(f"--resume {args.resume}: no resume.pt there (written when a run ends by --chunk-min/--chunk-steps)")
        resume = torch.load(path, map_location="cpu")
        saved = resume["args"]
        # The run's hyper-parameters are the saved ones; only where it writes, how it is chunked and
        # how many threads it uses may change between chunks.
        free = {"out", "resume", "chunk_min", "chunk_steps", "threads", "device", "eval_n", "base_out"}
        given = vars(args)
        defaults = vars(ap.parse_args(["--out", args.out]))
        for k, v in given.items():
            if k not in free and v != defaults[k] and v != saved.get(k):
                ap.error(f"--{k.replace('_', '-')} {v} differs from the resumed run's {saved.get(k)}; drop it")
        for k, v in saved.items():
            if k not in free:
                setattr(args, k, v)

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed + 1)
    rng = random.Random(args.seed + 2)
    device = torch.device(args.device)

    os.makedirs(args.out, exist_ok=True)
    log_path = os.path.join(args.out, "train_log.jsonl")
    if resume is not None and os.path.abspath(args.resume) != os.path.abspath(args.out):
        shutil.copy(os.path.join(args.resume, "train_log.jsonl"), log_path)
    log_file = open(log_path, "a" if resume is not None else "w", encoding="utf-8")

    def log(msg):
        print(msg, flush=True)

    tok = Tokenizer.load(args.tokenizer)
    test = arith.read_jsonl(os.path.join(DATA_DIR, "arith_test.jsonl"))
    stream = arith.train_stream(arith.TRAIN_SEED, [p["question"] for p in test])
    if resume is not None:
        config = resume["config"]
        model = torch_models.LLaDA(config)
        model.load_state_dict(resume["model"])
    elif args.init:
        model = torch_models.load_checkpoint(args.init)
        config = model.config
    else:
        config = llada_config(tok, args)
        model = torch_models.LLaDA(config)
        init_weights(model, args.n_layers)
        if args.number_init == "fourier":
            log(f"number init: Fourier features in {number_init(model, tok)} embedding and head rows")
    model.to(device).train()
    n_params = sum(p.numel() for p in model.parameters())
    log(f"model: {n_params} parameters, config {json.dumps({k: config[k] for k in ('d_model', 'n_layers', 'n_heads', 'mlp_hidden_size', 'vocab_size')})}")
    log(f"args: {json.dumps(vars(args))}")

    decay = [p for p in model.parameters() if p.dim() > 1]
    no_decay = [p for p in model.parameters() if p.dim() <= 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=args.lr, betas=(0.9, 0.95))

    budget = args.time_budget_min * 60.0
    base_saved = args.base_out is None
    data = batches(tok, stream, rng, args.batch_size, drill_fraction=args.drill_fraction,
                   drill_one_step=args.drill_one_step)
    step, tokens, loss_acc, n_acc, drawn, prior_seconds = 0, 0, 0.0, 0, 0, 0.0
    if resume is not None:
        opt.load_state_dict(resume["optimizer"])
        step, tokens, loss_acc, n_acc = resume["step"], resume["tokens"], resume["loss_acc"], resume["n_acc"]
        prior_seconds, base_saved = resume["seconds"], resume["base_saved"] or args.base_out is None
        # The data stream has no state to save: rebuild it from its seeds and skip what was drawn.
        for _ in range(resume["drawn"]):
            next(data)
        drawn = resume["drawn"]
        gen.set_state(resume["gen_state"])
        torch.set_rng_state(resume["torch_rng_state"])
        log(f"[resume] from {args.resume}: step {step}, {prior_seconds / 60:.1f} min trained, {drawn} batches drawn")
    # t_start is shifted back by the training time of earlier chunks, so elapsed time (and the
    # schedule's progress) continue across chunks.
    t_start = time.time() - prior_seconds
    chunk_start, chunk_first_step = time.time(), step
    last_t, last_tokens = time.time(), tokens
    chunk_ended = False
    while True:
        elapsed = time.time() - t_start
        progress = max(step / args.max_steps, elapsed / budget)
        if progress >= 1.0:
            break
        if (args.chunk_steps > 0 and step - chunk_first_step >= args.chunk_steps) or \
           (args.chunk_min > 0 and time.time() - chunk_start >= args.chunk_min * 60.0):
            chunk_ended = True
            break
        if not base_saved and progress >= args.base_at:
            state = {"step": step, "progress": round(progress, 4), "seconds": round(elapsed, 1), "tokens": tokens,
                     "parameters": n_params, "args": vars(args)}
            save(model, tok, args.base_out, state)
            log(f"[base] saved weaker base checkpoint at step {step} (progress {progress:.3f}) to {args.base_out}")
            base_saved = True
        warm = min(1.0, (step + 1) / args.warmup)
        cos = args.min_lr_ratio + (1 - args.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
        lr = args.lr * warm * cos
        for g in opt.param_groups:
            g["lr"] = lr
        ids, plens = next(data)
        drawn += 1
        ids = ids.to(device)
        loss, tmean = diffusion_loss(model, ids, plens, config["mask_token_id"], args.t_min, gen, args.autocast)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0).item()
        opt.step()
        step += 1
        tokens += ids.numel()
        loss_acc += loss.item()
        n_acc += 1
        if step % args.log_every == 0:
            now = time.time()
            rec = {"step": step, "seconds": round(now - t_start, 1), "progress": round(progress, 4),
                   "loss": round(loss_acc / n_acc, 8), "lr": lr, "grad_norm": round(gnorm, 3),
                   "tokens": tokens, "tokens_per_s": round((tokens - last_tokens) / (now - last_t), 1)}
            log_file.write(json.dumps(rec) + "\n")
            log_file.flush()
            log(f"step {step:5d}  {rec['seconds']:7.1f}s  loss {rec['loss']:.4f}  lr {lr:.2e}  "
                f"gnorm {gnorm:.2f}  {rec['tokens_per_s']:.0f} tok/s")
            loss_acc, n_acc = 0.0, 0
            last_t, last_tokens = now, tokens
    train_seconds = time.time() - t_start
    if chunk_ended:
        torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "config": config, "step": step,
                    "tokens": tokens, "seconds": train_seconds, "drawn": drawn, "gen_state": gen.get_state(),
                    "torch_rng_state": torch.get_rng_state(), "loss_acc": loss_acc, "n_acc": n_acc,
                    "base_saved": base_saved, "args": vars(args)},
                   os.path.join(args.out, "resume.pt.partial"))
        os.replace(os.path.join(args.out, "resume.pt.partial"), os.path.join(args.out, "resume.pt"))
        save(model, tok, args.out, {"step": step, "seconds": round(train_seconds, 1), "tokens": tokens,
                                    "parameters": n_params, "args": vars(args), "partial": True})
        log_file.close()
        log(f"[chunk] stopped at step {step} ({train_seconds / 60:.1f} min trained); continue with "
            f"--resume {args.out}")
        return 0
    model.eval()
    state = {"step": step, "seconds": round(train_seconds, 1), "tokens": tokens, "parameters": n_params,
             "args": vars(args), "device": str(device), "torch": torch.__version__}
    save(model, tok, args.out, state)
    log(f"[final] {step} steps, {tokens} tokens, {train_seconds / 60:.1f} min of training; saved to {args.out}")
    log_file.close()
    if args.base_out and os.path.exists(args.base_out):
        shutil.copy(log_path, os.path.join(args.base_out, "train_log.jsonl"))

    if args.eval_n > 0:
        problems = test[: args.eval_n]
        run_eval(args.out, tok, problems, device, "final", log)
        if args.base_out and os.path.exists(args.base_out):
            run_eval(args.base_out, tok, problems, device, "base", log)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Reference decoding runs for the parity test of `mdlm generate` (issue 6, item 6).

The two reference loops are re-implemented here in PyTorch from shared/spec/samplers.md (no code copied):

* LLaDA `generate.py` (section 6) with remasking='low_confidence', temperature 0, cfg_scale 0: blocks of
  `block_length`, `get_num_transfer_tokens` per block (section 5.2), x0 = argmax, confidence = softmax(z)[x0],
  -inf beyond the current block and at unmasked positions, torch.topk per step;
* Dream `diffusion_generate` (section 7) with alg='entropy', temperature 0, no top-p / top-k, alg_temp 0:
  explicit logit shift, ts = float32 linspace(1, eps, steps + 1), confidence = sum p log(p + 1e-10),
  k = int(N (1 - s/t)) (N at the last step), torch.topk over the whole canvas.

For every case, `mdlm make-checkpoint` writes a tiny checkpoint, the independent fp32 forward of
torch_models.py computes the logits, and the loop records the final tokens and the step at which each position
was unmasked. The C++ test (tests/cpu/test_generate.cpp, tag [parity]) runs `mdlm generate --json` with the
matching policy (llada-low-confidence / dream-entropy) and requires the same tokens, unmask steps and NFE.

Exact equality is only meaningful when no decision is a near-tie that the ~1e-6 difference between the fp32
C++ and PyTorch forwards could flip. So the script records, over all steps, the smallest gap between the top two
logits of a decided position and the smallest relative gap between the k-th and (k+1)-th confidence of a top-k
selection, and refuses (exit 1) a case whose gaps are below MIN_LOGIT_GAP / MIN_SELECTION_GAP.

Cases where the argmax of a decided position is the mask id itself are included on purpose (issue 13): upstream
writes the mask id back, the position stays masked and may be chosen again later (in LLaDA also from a later
block, since its confidence is -inf only beyond the current block), and the loop still makes exactly `steps`
calls. The expectation is upstream's outcome: tokens (mask ids included), the step that wrote each real token
(-1 for positions still masked) and NFE; `status` is "incomplete" when masks are left, and `mask_chosen` records
that the case exercises the rule. The script fails unless at least one LLaDA and one Dream case choose the mask.

    make_parity.py --tool build/.../mdlm [--out tests/golden/data]        # regenerate the committed file
    make_parity.py --tool .../mdlm --out DIR --then-run .../test_cpu      # live check (ctest parity_live)

Exits with 77 (ctest SKIP_RETURN_CODE) when torch cannot be imported.
"""

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile

SKIP = 77
DREAM_MASK_SEED = 1  # a tiny Dream checkpoint whose argmax is the mask id at some decided position
MIN_LOGIT_GAP = 1e-3  # top-1 minus top-2 logit (the forwards agree to ~1e-5, goldens to <= 1e-4)
MIN_SELECTION_GAP = 1e-4  # (c_(k) - c_(k+1)) / |c_(k)|, relative: LLaDA confidences are ~1/V
EPS = 1e-3  # Dream's default eps (generation_config.json)

# name, arch, layers, d_model, heads, kv_heads, mlp, vocab, checkpoint seed, prompt length (or the prompt ids),
# gen, block, steps[, storage dtype (default bf16)]
CASES = [
    ("llada_semi_ar", "llada", 2, 64, 4, 4, 96, 320, 21, 5, 16, 8, 8),     # 2 blocks, 2 tokens per step
    ("llada_pure", "llada", 2, 64, 4, 2, 96, 320, 22, 6, 16, 16, 6),       # GQA, uneven counts [3,3,3,3,2,2]
    ("llada_blocks4", "llada", 3, 48, 2, 1, 80, 100, 23, 4, 12, 3, 8),     # MQA, 4 blocks of 3 in 2 steps each
    ("dream_entropy", "dream", 2, 64, 4, 2, 96, 320, 24, 5, 16, 16, 16),   # no-op first step (k = 0)
    ("dream_entropy_few", "dream", 2, 64, 4, 2, 96, 320, 25, 7, 16, 16, 5),
    ("dream_mha", "dream", 1, 96, 3, 3, 64, 260, 27, 3, 12, 12, 7),
    # The argmax is the mask id (issue 13's repro: mdlm hung here before the fix).
    ("llada_mask_argmax", "llada", 3, 48, 2, 1, 80, 100, 3, [46], 8, 8, 8, "f32"),
    ("llada_mask_blocks", "llada", 3, 48, 2, 1, 80, 100, 3, [46], 8, 4, 8, "f32"),  # leftovers of block 0
    ("dream_mask_argmax", "dream", 3, 48, 2, 1, 80, 100, DREAM_MASK_SEED, [46], 8, 8, 8, "f32"),
]


def fnv1a64(path):
    h = 0xCBF29CE484222325
    with open(path, "rb") as f:
        data = f.read()
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


class Gaps:
    """Smallest decision margins seen during a run."""

    def __init__(self):
        self.logit = float("inf")
        self.select = float("inf")
        self.mask_chosen = False

    def argmax(self, torch, rows, mask_id, decided):
        """rows: [n, V] logits of the positions whose argmax is used."""
        if rows.shape[0] == 0:
            return
        top2 = torch.topk(rows, 2, dim=-1).values
        self.logit = min(self.logit, float((top2[:, 0] - top2[:, 1]).min()))

    def topk(self, torch, conf, k):
        """conf: 1-D confidences with -inf at non-candidates; k selected."""
        finite = conf[torch.isfinite(conf)]
        if k == 0 or k >= finite.numel():
            return
        s = torch.sort(finite, descending=True).values
        self.select = min(self.select, float((s[k - 1] - s[k]) / s[k - 1].abs().clamp(min=1e-30)))


def llada_generate(torch, model, prompt, steps, gen_length, block_length, mask_id, gaps):
    """LLaDA generate.py, low_confidence, temperature 0, no CFG (samplers.md section 6), batch of one."""
    lp = len(prompt)
    x = torch.full((1, lp + gen_length), mask_id, dtype=torch.long)
    x[0, :lp] = torch.tensor(prompt, dtype=torch.long)
    step_of = [-1] * (lp + gen_length)
    assert gen_length % block_length == 0
    nb = gen_length // block_length
    assert steps % nb == 0
    s_per = steps // nb
    call = 0
    for b in range(nb):
        lo, hi = lp + b * block_length, lp + (b + 1) * block_length
        m = int((x[0, lo:hi] == mask_id).sum())
        n = [m // s_per + (1 if i < m % s_per else 0) for i in range(s_per)]  # get_num_transfer_tokens
        for i in range(s_per):
            mask_index = x == mask_id
            logits = model(x)  # [1, L, V], fp32
            x0 = torch.argmax(logits, dim=-1)
            p = torch.softmax(logits, dim=-1)
            x0_p = torch.gather(p, -1, x0.unsqueeze(-1)).squeeze(-1)
            x0_p[:, hi:] = -float("inf")
            x0 = torch.where(mask_index, x0, x)
            confidence = torch.where(mask_index, x0_p, torch.tensor(-float("inf")))
            decided = mask_index[0].clone()
            decided[hi:] = False
            gaps.argmax(torch, logits[0][decided], mask_id, x0[0][decided])
            gaps.topk(torch, confidence[0], n[i])
            if n[i] > 0:
                _, sel = torch.topk(confidence[0], k=n[i])
                x[0, sel] = x0[0, sel]
                for pos in sel.tolist():  # a written-back mask id leaves the position undecided
                    step_of[pos] = call if int(x[0, pos]) != mask_id else -1
                    gaps.mask_chosen |= int(x[0, pos]) == mask_id
            call += 1
    return x[0].tolist(), step_of, call


def dream_generate(torch, model, prompt, steps, gen_length, mask_id, gaps):
    """Dream diffusion_generate, alg='entropy', temperature 0, alg_temp 0 (samplers.md section 7)."""
    lp = len(prompt)
    x = torch.full((1, lp + gen_length), mask_id, dtype=torch.long)
    x[0, :lp] = torch.tensor(prompt, dtype=torch.long)
    step_of = [-1] * (lp + gen_length)
    ts = torch.linspace(1, EPS, steps + 1)  # float32
    for i in range(steps):
        mask_index = x == mask_id
        logits = model(x, shift=False)
        logits = torch.cat([logits[:, :1], logits[:, :-1]], dim=1)  # row i <- output at i-1
        mask_logits = logits[mask_index]
        t, s = ts[i], ts[i + 1]
        probs = torch.softmax(mask_logits, dim=-1)
        _, x0 = probs.max(dim=-1)
        confidence = torch.sum(probs * torch.log(probs + 1e-10), dim=-1)  # neg_entropy
        gaps.argmax(torch, mask_logits, mask_id, x0)
        num_mask_token = mask_index.sum() / mask_index.shape[0]
        k = int(num_mask_token * (1 - s / t)) if i < steps - 1 else int(num_mask_token)
        full_confidence = torch.full(x.shape, -float("inf"), dtype=torch.float32)
        full_confidence[mask_index] = confidence
        gaps.topk(torch, full_confidence[0], k)
        if k > 0:
            _, sel = torch.topk(full_confidence[0], k)
            x_ = torch.full_like(x, mask_id)
            x_[mask_index] = x0.clone()
            x[0, sel] = x_[0, sel]
            for pos in sel.tolist():  # a written-back mask id leaves the position undecided
                step_of[pos] = i if int(x[0, pos]) != mask_id else -1
                gaps.mask_chosen |= int(x[0, pos]) == mask_id
    return x[0].tolist(), step_of, steps


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tool", required=True, help="path of the mdlm executable")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "data"))
    ap.add_argument("--then-run", help="test_cpu executable to run on the fresh file (tag [parity])")
    args = ap.parse_args()

    try:
        import torch
    except ImportError as e:  # CI without torch: the committed file is used instead
        print(f"make_parity: skipped, cannot import torch ({e})")
        return SKIP
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import torch_models as tm

    torch.set_num_threads(1)
    os.makedirs(args.out, exist_ok=True)
    cases = []
    bad = []
    mask_cases = set()
    with tempfile.TemporaryDirectory(prefix="mdlm-parity-") as scratch:
        for case in CASES:
            name, arch, layers, d, h, kv, mlp, vocab, seed, lp, gen, block, steps = case[:13]
            dtype = case[13] if len(case) > 13 else "bf16"
            ckpt = os.path.join(scratch, name)
            subprocess.run([args.tool, "make-checkpoint", "--arch", arch, "--layers", str(layers), "--d-model", str(d),
                            "--heads", str(h), "--kv-heads", str(kv), "--mlp", str(mlp), "--vocab", str(vocab),
                            "--seed", str(seed), "--dtype", dtype, "--out", ckpt], check=True,
                           stdout=subprocess.DEVNULL)
            with open(os.path.join(ckpt, "config.json"), encoding="utf-8") as f:
                mask_id = json.load(f)["mask_token_id"]
            model = tm.load_checkpoint(ckpt)
            if isinstance(lp, list):
                prompt = lp
            else:
                rng = random.Random(seed)
                prompt = [rng.randrange(0, vocab - 22) for _ in range(lp)]  # ordinary (non-special) ids
            gaps = Gaps()
            with torch.no_grad():
                if arch == "llada":
                    policy = "llada-low-confidence"
                    tokens, step_of, nfe = llada_generate(torch, model, prompt, steps, gen, block, mask_id, gaps)
                else:
                    policy = "dream-entropy"
                    tokens, step_of, nfe = dream_generate(torch, model, prompt, steps, gen, mask_id, gaps)
            if gaps.logit < MIN_LOGIT_GAP or gaps.select < MIN_SELECTION_GAP:
                bad.append(f"{name}: logit gap {gaps.logit:.3g}, selection gap {gaps.select:.3g}")
            if gaps.mask_chosen:
                mask_cases.add(arch)
            cases.append({"name": name, "arch": arch, "layers": layers, "d_model": d, "heads": h, "kv_heads": kv,
                          "mlp": mlp, "vocab": vocab, "seed": seed, "dtype": dtype,
                          "safetensors_fnv1a64": fnv1a64(os.path.join(ckpt, "model.safetensors")),
                          "policy": policy, "prompt": prompt, "gen_length": gen, "block_length": block,
                          "steps": steps, "generated_ids": tokens[len(prompt):],
                          "unmask_step": step_of[len(prompt):], "nfe": nfe,
                          "status": "incomplete" if mask_id in tokens[len(prompt):] else "completed",
                          "mask_chosen": gaps.mask_chosen,
                          "min_logit_gap": round(gaps.logit, 6), "min_relative_selection_gap": round(gaps.select, 6)
                          if gaps.select != float("inf") else None})
            print(f"make_parity: {name}: {policy}, NFE {nfe}, min logit gap {gaps.logit:.3g}, "
                  f"min selection gap {gaps.select:.3g}, mask chosen {gaps.mask_chosen}")
    if bad:
        print("make_parity: near-tie decisions, pick other seeds:\n  " + "\n  ".join(bad))
        return 1
    if mask_cases != {"llada", "dream"}:
        print(f"make_parity: no case chooses the mask id for {sorted({'llada', 'dream'} - mask_cases)}: "
              "pick other seeds")
        return 1
    with open(os.path.join(args.out, "parity.json"), "w", encoding="utf-8") as f:
        head = {"generator": "tests/golden/make_parity.py", "torch": torch.__version__, "eps": EPS}
        f.write(json.dumps(head)[:-1] + ', "cases": [\n')  # one line per case keeps diffs readable
        f.write(",\n".join(json.dumps(c) for c in cases))
        f.write("\n]}\n")
    if args.then_run:
        env = dict(os.environ, MDLM_PARITY_DIR=os.path.abspath(args.out))
        return subprocess.run([args.then_run, "[parity]"], env=env).returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())

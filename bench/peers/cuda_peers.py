#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""PyTorch eager bf16 on the GPU at the shapes of bench/cuda/bench_cuda_model.cpp, and the ratios.

Builds tests/golden/torch_models.py's LLaDA (and Dream) from the real config.json with random bf16
weights made on the GPU, then times with CUDA events (median of --repeats after 2 warm-ups):
  forward/<model>/B:b/L:l      one forward (logits of every row), attention through
                               torch.nn.functional.scaled_dot_product_attention, as the real modeling
                               code does (modeling_llada.py / modeling_dream.py call SDPA);
  generate/llada-low-confidence  LLaDA's generate.py loop (low_confidence remasking, temperature 0,
                               block 32, steps = 256, on the GPU) for 256 tokens after a 64-token prompt:
                               tokens/s and ms per step.
With --mdlm BENCH_JSON (bench_cuda_model's --benchmark_out) it prints mdlm / PyTorch per-step speed
ratios for every shape present in both. Writes JSON to --out.
"""
import argparse
import json
import os
import re
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "golden"))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "cuda"))


def timed(torch, fn, repeats):
    for _ in range(2):
        fn()
    times = []
    for _ in range(repeats):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b) * 1e-3)
    return statistics.median(times)


def llada_generate(torch, model, prompt, gen_length, block_length, steps, mask_id):
    """generate.py (low_confidence, temperature 0, no CFG) on the GPU; returns the number of calls."""
    x = torch.full((1, len(prompt) + gen_length), mask_id, dtype=torch.long, device="cuda")
    x[0, : len(prompt)] = torch.tensor(prompt, device="cuda")
    nb = gen_length // block_length
    s_per = steps // nb
    calls = 0
    for b in range(nb):
        lo, hi = len(prompt) + b * block_length, len(prompt) + (b + 1) * block_length
        m = int((x[0, lo:hi] == mask_id).sum())
        n = [m // s_per + (1 if i < m % s_per else 0) for i in range(s_per)]
        for i in range(s_per):
            mask_index = x == mask_id
            logits = model(x)
            x0 = torch.argmax(logits, dim=-1)
            p = torch.softmax(logits, dim=-1)
            x0_p = torch.gather(p, -1, x0.unsqueeze(-1)).squeeze(-1)
            x0_p[:, hi:] = -float("inf")
            x0 = torch.where(mask_index, x0, x)
            confidence = torch.where(mask_index, x0_p, torch.full_like(x0_p, -float("inf")))
            if n[i] > 0:
                _, sel = torch.topk(confidence[0], k=n[i])
                x[0, sel] = x0[0, sel]
            calls += 1
    torch.cuda.synchronize()
    return calls


def mdlm_results(path):
    """RESULT lines of bench_cuda_model's JSON: TFLOP/s and share of the measured peak per forward,
    tokens/s, steps and overhead share per generate run."""
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    lines = []
    for b in data.get("benchmarks", []):
        name = re.sub(r"(/iterations:\d+)?/manual_time$", "", b["name"])
        if "TFLOP/s" in b and "peak_TFLOP/s" in b:
            lines.append(f"RESULT mdlm {name}: {b['real_time']:.2f} {b.get('time_unit', '')}, {b['TFLOP/s']:.1f} TFLOP/s = "
                         f"{100 * b['TFLOP/s'] / b['peak_TFLOP/s']:.1f} % of the measured bf16 GEMM peak {b['peak_TFLOP/s']:.0f}")
        elif "tokens/s" in b:
            lines.append(f"RESULT mdlm {name}: {b['tokens/s']:.1f} tokens/s, {b['steps']:.0f} steps, {b['ms_per_step']:.2f} ms "
                         f"per step (forward {b['forward_ms']:.2f} ms), overhead share {100 * b['overhead_share']:.1f} %")
    return lines


def mdlm_ms(path):
    """name -> ms per step from bench_cuda_model's JSON (real_time is the manual CUDA-event time)."""
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    unit = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}
    out = {}
    for b in data.get("benchmarks", []):
        if b.get("run_type") == "aggregate" and b.get("aggregate_name") != "median":
            continue
        ms = b["real_time"] * unit[b.get("time_unit", "ns")]
        if b["name"].startswith("generate/"):
            ms = b.get("ms_per_step", ms)
        out[re.sub(r"(/iterations:\d+)?/manual_time$", "", b["name"])] = ms
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--configs", required=True)
    ap.add_argument("--out", required=True, help="JSON file")
    ap.add_argument("--models", default="llada-8b,dream-7b")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--mdlm", default=None, help="bench_cuda_model --benchmark_out JSON, for ratios")
    args = ap.parse_args()
    try:
        import torch
    except ImportError:
        print("SKIPPED: torch is not importable")
        return 77
    if not torch.cuda.is_available():
        print("SKIPPED: torch sees no CUDA device")
        return 77
    import torch_models
    from torch_compare import build_on, sdpa_attention

    folders = {"llada-8b": "llada-8b-instruct", "dream-7b": "dream-v0-instruct-7b"}
    records = []
    for name in args.models.split(","):
        with open(os.path.join(args.configs, folders[name], "config.json"), encoding="utf-8") as f:
            config = json.load(f)
        torch.manual_seed(1)
        torch_models.bidirectional_attention = sdpa_attention(torch, rope_fp32=name == "llada-8b")
        torch.set_default_dtype(torch.bfloat16)  # random bf16 weights initialised on the GPU
        model = build_on(torch, "cuda", lambda: torch_models.model_from_config(config)).eval()
        torch.set_default_dtype(torch.float32)
        vocab, mask = model.dims["vocab"], int(config["mask_token_id"])
        for b, l in ((1, 320), (8, 320), (1, 1024), (8, 1024)):
            ids = torch.randint(0, vocab, (b, l), device="cuda")
            with torch.no_grad():
                sec = timed(torch, lambda: model(ids), args.repeats)
            records.append({"name": f"forward/{name}/B:{b}/L:{l}", "ms": sec * 1e3})
            print(f"PyTorch eager bf16 forward/{name}/B:{b}/L:{l}: {sec * 1e3:.2f} ms", flush=True)
        if name == "llada-8b":
            prompt = torch.randint(0, mask, (64,)).tolist()
            a, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            with torch.no_grad():
                llada_generate(torch, model, prompt, 32, 32, 32, mask)  # warm-up
                a.record()
                calls = llada_generate(torch, model, prompt, 256, 32, 256, mask)
                e.record()
                e.synchronize()
            sec = a.elapsed_time(e) * 1e-3
            records.append({"name": "generate/llada-8b/llada-low-confidence", "ms": sec * 1e3 / calls,
                            "tokens_per_s": 256 / sec, "calls": calls})
            print(f"PyTorch generate.py loop, llada-low-confidence, 256 tokens: {256 / sec:.1f} tokens/s, "
                  f"{sec * 1e3 / calls:.2f} ms per step", flush=True)
        del model
        torch.cuda.empty_cache()
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump({"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "records": records}, f, indent=1)
    if args.mdlm and os.path.exists(args.mdlm):
        for line in mdlm_results(args.mdlm):
            print(line)
        ours = mdlm_ms(args.mdlm)
        print("RESULT ratios (PyTorch ms / mdlm ms per step; > 1 = mdlm faster):")
        for r in records:
            key = r["name"]
            if key in ours and ours[key] > 0:
                print(f"RESULT   {key}: PyTorch {r['ms']:.2f} ms, mdlm {ours[key]:.2f} ms, ratio {r['ms'] / ours[key]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

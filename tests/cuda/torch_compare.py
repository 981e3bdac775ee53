#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The CUDA forward at real shapes against the project's independent PyTorch forward, on one GPU.

Run by scripts/gpu-check.sh on a GPU machine (needs torch with CUDA). For each architecture asked for
(--arch llada,dream): builds tests/golden/torch_models.py's model from the real config.json (from
--configs) with --layers blocks (real d_model, heads, KV heads, MLP width and vocabulary; fewer blocks
to fit the time budget), random weights made on the GPU (embeddings N(0, 1), nn.Linear's default
init, RMSNorm weights 1 + U(-0.2, 0.2), biases N(0, 0.1)), rounded to bf16, saves it as a checkpoint
directory, runs its forward on --batch x --length random tokens in fp32 (the reference) and in bf16
(PyTorch's own bf16 error, the yardstick: every op in bf16, RoPE and SDPA as in the real modeling
code, see sdpa_attention), and then runs `test_cuda "[torch]"`, which loads the same
directory with mdlm::cuda::model and checks its logits against both (test_cuda_model.cpp).
Exit code: that of the test (0 = passed); 77 when torch or CUDA is missing.
"""
import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "golden"))


def sdpa_attention(torch, rope_fp32):
    """A drop-in for torch_models.bidirectional_attention that works in bf16 like the real modeling
    code: RoPE in fp32 cast back to the input dtype (LLaDA's rope_full_precision; with rope_fp32=False
    cos / sin are cast to bf16 first, Dream's order), then F.scaled_dot_product_attention (non-causal)."""
    import torch.nn.functional as F
    import torch_models

    def attention(q, k, v, n_heads, n_kv_heads, head_dim, cos, sin):
        b, length, _ = q.shape
        dt = q.dtype
        q = q.view(b, length, n_heads, head_dim).transpose(1, 2)
        k = k.view(b, length, n_kv_heads, head_dim).transpose(1, 2)
        v = v.view(b, length, n_kv_heads, head_dim).transpose(1, 2)
        if rope_fp32:
            q = torch_models.apply_rope(q.float(), cos, sin).to(dt)
            k = torch_models.apply_rope(k.float(), cos, sin).to(dt)
        else:
            q = torch_models.apply_rope(q, cos.to(dt), sin.to(dt))
            k = torch_models.apply_rope(k, cos.to(dt), sin.to(dt))
        if n_kv_heads != n_heads:
            k = k.repeat_interleave(n_heads // n_kv_heads, dim=1)
            v = v.repeat_interleave(n_heads // n_kv_heads, dim=1)
        if hasattr(F, "scaled_dot_product_attention"):
            o = F.scaled_dot_product_attention(q, k, v, is_causal=False)
        else:  # torch < 2.0 (--cpu checks only): softmax in fp32, as SDPA does internally
            scores = torch.matmul(q, k.transpose(-1, -2)).float() / head_dim ** 0.5
            o = torch.matmul(torch.softmax(scores, dim=-1).to(dt), v)
        return o.transpose(1, 2).reshape(b, length, n_heads * head_dim)

    return attention


def build_on(torch, dev, make):
    if hasattr(torch, "set_default_device"):
        with torch.device(dev):
            return make()
    return make().to(dev)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--test", required=True, help="test_cuda executable")
    ap.add_argument("--configs", required=True, help="folder with llada-8b-instruct/ and dream-v0-instruct-7b/ config.json")
    ap.add_argument("--work", required=True, help="scratch folder (checkpoints of a few GB)")
    ap.add_argument("--out", default=None, help="folder for the JSON summary")
    ap.add_argument("--arch", default="llada,dream")
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--length", type=int, default=320)
    ap.add_argument("--cpu", action="store_true", help="run PyTorch on the CPU (to check this script without a GPU)")
    args = ap.parse_args()
    try:
        import torch
    except ImportError:
        print("SKIPPED: torch is not importable")
        return 77
    if not torch.cuda.is_available() and not args.cpu:
        print("SKIPPED: torch sees no CUDA device")
        return 77
    import torch_models
    dev = "cpu" if args.cpu else "cuda"

    folders = {"llada": "llada-8b-instruct", "dream": "dream-v0-instruct-7b"}
    rc = 0
    summary = []
    for arch in args.arch.split(","):
        t0 = time.time()
        with open(os.path.join(args.configs, folders[arch], "config.json"), encoding="utf-8") as f:
            config = json.load(f)
        config["n_layers" if arch == "llada" else "num_hidden_layers"] = args.layers
        torch.manual_seed(1)
        # torch >= 2.0 builds (and initialises) the parameters directly on the device; older torch (Debian
        # 12's, for --cpu checks of this script) builds on the CPU.
        model = build_on(torch, dev, lambda: torch_models.model_from_config(config))
        with torch.no_grad():
            for name, p in model.named_parameters():
                if name.endswith("norm.weight") or name.endswith("ln_f.weight"):
                    p.uniform_(0.8, 1.2)
                elif name.endswith(".bias"):
                    p.normal_(0.0, 0.1)
                p.copy_(p.to(torch.bfloat16).float())  # the checkpoint stores bf16: both sides read the same values
        model.eval()
        ckpt = os.path.join(args.work, f"{arch}-{args.layers}l")
        os.makedirs(args.work, exist_ok=True)
        torch_models.save_checkpoint(model, ckpt, "BF16")
        t_made = time.time() - t0

        vocab = model.dims["vocab"]
        mask = int(config["mask_token_id"])
        g = torch.Generator(device=dev).manual_seed(2)
        tokens = torch.randint(0, vocab, (args.batch, args.length), generator=g, device=dev)
        masked = torch.rand((args.batch, args.length), generator=g, device=dev) < 0.4
        tokens = torch.where(masked, torch.full_like(tokens, mask), tokens)
        with torch.no_grad():
            ref = model(tokens).float()  # torch_models.py as written: fp32 throughout
            fp32_attention = torch_models.bidirectional_attention
            torch_models.bidirectional_attention = sdpa_attention(torch, rope_fp32=arch == "llada")
            model_bf16 = model.to(torch.bfloat16)
            bf16 = model_bf16(tokens).float()
            torch_models.bidirectional_attention = fp32_attention
        work = os.path.join(args.work, f"{arch}-compare")
        os.makedirs(work, exist_ok=True)
        tokens.to(torch.int32).cpu().numpy().tofile(os.path.join(work, "tokens.bin"))
        ref.cpu().numpy().astype("<f4").tofile(os.path.join(work, "logits_fp32.bin"))
        bf16.cpu().numpy().astype("<f4").tofile(os.path.join(work, "logits_bf16.bin"))
        with open(os.path.join(work, "meta.json"), "w", encoding="utf-8") as f:
            json.dump({"batch": args.batch, "length": args.length, "vocab": vocab, "checkpoint": ckpt}, f)
        del model, model_bf16, ref, bf16
        if not args.cpu:
            torch.cuda.empty_cache()

        env = dict(os.environ, MDLM_TORCH_COMPARE_DIR=work)
        p = subprocess.run([args.test, "[torch]", "--reporter", "compact"], env=env, capture_output=True, text=True)
        result = [line for line in p.stdout.splitlines() if line.startswith("RESULT")]
        print(f"{arch}: {args.layers} blocks at real shapes, checkpoint made in {t_made:.1f} s; test_cuda [torch] exit {p.returncode}")
        for line in result:
            print(line.replace("RESULT torch_compare", f"RESULT torch_compare {arch}"))
        if p.returncode != 0:
            print(p.stdout[-4000:])
            print(p.stderr[-2000:])
            rc = 1
        summary.append({"arch": arch, "layers": args.layers, "batch": args.batch, "length": args.length,
                        "exit": p.returncode, "result": result})
    if args.out:
        with open(os.path.join(args.out, "torch_compare.json"), "w", encoding="utf-8") as f:
            json.dump(summary, f, indent=1)
    return rc


if __name__ == "__main__":
    sys.exit(main())

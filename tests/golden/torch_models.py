# SPDX-License-Identifier: MIT
"""Independent PyTorch implementations of the LLaDA and Dream forwards (shared/spec/models.md).

Written from the specification only (sections 2.6-2.10 for LLaDA, 3.6-3.9 for Dream), as the
reference that mdlm's C++ CPU backend is checked against, and as a trainable module for the shipped
reference model. Computation is fp32 throughout (the real models run in bf16; the golden tests compare
fp32 against fp32). Only PyTorch and numpy are needed: safetensors files are read and written by hand
(the `safetensors` Python package is not used).

Public API:

* ``LLaDA(config)``, ``Dream(config)``: ``torch.nn.Module`` built from a config dict with the keys of the
  real ``config.json``; ``state_dict()`` names are exactly the checkpoint tensor names;
  ``forward(input_ids) -> logits`` for all positions (``input_ids`` ``[L]`` or ``[B, L]``, int64).
  Dream's ``forward`` applies the logit shift (row i predicts token i from hidden state i-1, row 0
  keeps its own); ``forward(input_ids, shift=False)`` returns the raw rows.
* ``model_from_config(config)``: picks the class from ``model_type`` / ``architectures``.
* ``read_safetensors(path)`` / ``write_safetensors(path, tensors, dtype)``: the file format by hand.
* ``load_checkpoint(directory)`` / ``save_checkpoint(model, directory, dtype="BF16")``: config.json plus
  model.safetensors (or a sharded set through model.safetensors.index.json when loading).
"""

import json
import math
import os
import struct

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

# ---------------------------------------------------------------------------------------------------
# safetensors, by hand: 8-byte little-endian header length, a JSON header mapping every tensor name to
# {"dtype", "shape", "data_offsets": [begin, end)} relative to the end of the header, then raw
# little-endian data.

_DTYPE_SIZES = {"BF16": 2, "F16": 2, "F32": 4}


def fp32_to_bf16_bits(a):
    """fp32 array -> uint16 bf16 bit patterns, rounding to nearest, ties to even (NaN stays NaN)."""
    a = np.ascontiguousarray(a, dtype=np.float32)
    bits = a.view(np.uint32).astype(np.uint64)
    rounding = ((bits >> 16) & 1) + 0x7FFF
    out = ((bits + rounding) >> 16).astype(np.uint16)
    nan = np.isnan(a)
    if nan.any():
        out[nan] = ((bits[nan] >> 16) | 0x40).astype(np.uint16)
    return out


def bf16_bits_to_fp32(u16):
    """uint16 bf16 bit patterns -> fp32 (exact: bf16 is the upper half of fp32)."""
    return (np.asarray(u16, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)


def read_safetensors(path):
    """Reads a .safetensors file into {name: fp32 torch.Tensor} (dtypes BF16, F16, F32)."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError(f"{path}: shorter than the 8-byte header length")
    (n,) = struct.unpack("<Q", raw[:8])
    if 8 + n > len(raw):
        raise ValueError(f"{path}: header length {n} goes beyond the file ({len(raw)} bytes)")
    header = json.loads(raw[8 : 8 + n].decode("utf-8"))
    data = raw[8 + n :]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype, shape = info["dtype"], [int(s) for s in info["shape"]]
        begin, end = (int(x) for x in info["data_offsets"])
        count = int(np.prod(shape)) if shape else 1
        if dtype not in _DTYPE_SIZES:
            raise ValueError(f"{path}: tensor {name}: unsupported dtype {dtype}")
        if end - begin != count * _DTYPE_SIZES[dtype] or end > len(data):
            raise ValueError(f"{path}: tensor {name}: bad data_offsets [{begin}, {end})")
        buf = data[begin:end]
        if dtype == "BF16":
            arr = bf16_bits_to_fp32(np.frombuffer(buf, dtype="<u2"))
        elif dtype == "F16":
            arr = np.frombuffer(buf, dtype="<f2").astype(np.float32)
        else:
            arr = np.frombuffer(buf, dtype="<f4").astype(np.float32)
        out[name] = torch.from_numpy(arr.reshape(shape).copy())
    return out


def write_safetensors(path, tensors, dtype="BF16", metadata=None):
    """Writes {name: tensor} to a .safetensors file with every tensor stored as ``dtype``
    (BF16 with round-to-nearest-even, F16 or F32). Tensors are stored in sorted name order."""
    if dtype not in _DTYPE_SIZES:
        raise ValueError(f"unsupported dtype {dtype}")
    header = {"__metadata__": dict(metadata or {"format": "pt"})}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        a = tensors[name].detach().to(torch.float32).cpu().contiguous().numpy()
        if dtype == "BF16":
            b = fp32_to_bf16_bits(a).astype("<u2").tobytes()
        elif dtype == "F16":
            b = a.astype("<f2").tobytes()
        else:
            b = a.astype("<f4").tobytes()
        header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)  # pad so the data starts 8-byte aligned, as the reference writer does
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


# ---------------------------------------------------------------------------------------------------
# Shared building blocks (fp32).


class RMSNorm(nn.Module):
    """y = x / sqrt(mean(x^2) + eps) * weight (normalise first, then multiply by the weight)."""

    def __init__(self, dim, eps):
        super().__init__()
        self.eps = float(eps)
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        var = x.pow(2).mean(dim=-1, keepdim=True)
        return x * torch.rsqrt(var + self.eps) * self.weight


def rope_cos_sin(length, head_dim, theta, device=None):
    """Half-split (NeoX) RoPE tables in fp32: inv_freq = 1 / theta^(arange(0, d, 2) / d),
    angles = outer(positions, inv_freq) duplicated to width d."""
    inv_freq = 1.0 / (float(theta) ** (torch.arange(0, head_dim, 2, dtype=torch.float32, device=device) / head_dim))
    pos = torch.arange(length, dtype=torch.float32, device=device)
    freqs = torch.outer(pos, inv_freq)
    emb = torch.cat([freqs, freqs], dim=-1)
    return emb.cos(), emb.sin()


def rotate_half(t):
    half = t.shape[-1] // 2
    return torch.cat([-t[..., half:], t[..., :half]], dim=-1)


def apply_rope(t, cos, sin):
    """t: [B, H, L, d]; out[i] = t[i] cos - t[i+d/2] sin, out[i+d/2] = t[i+d/2] cos + t[i] sin."""
    return t * cos + rotate_half(t) * sin


def bidirectional_attention(q, k, v, n_heads, n_kv_heads, head_dim, cos, sin):
    """q: [B, L, H*d], k, v: [B, L, Hkv*d] -> [B, L, H*d]. Full (non-causal) attention, scale
    1/sqrt(d); query head h uses KV head h // (H / Hkv) (repeat_interleave)."""
    b, length, _ = q.shape
    q = q.view(b, length, n_heads, head_dim).transpose(1, 2)
    k = k.view(b, length, n_kv_heads, head_dim).transpose(1, 2)
    v = v.view(b, length, n_kv_heads, head_dim).transpose(1, 2)
    q = apply_rope(q, cos, sin)
    k = apply_rope(k, cos, sin)
    if n_kv_heads != n_heads:
        rep = n_heads // n_kv_heads
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
    scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(head_dim)
    o = torch.matmul(torch.softmax(scores, dim=-1), v)
    return o.transpose(1, 2).reshape(b, length, n_heads * head_dim)


def _as_batch(input_ids):
    ids = torch.as_tensor(input_ids, dtype=torch.long)
    return (ids.unsqueeze(0), True) if ids.dim() == 1 else (ids, False)


# ---------------------------------------------------------------------------------------------------
# LLaDA (LLaDAModelLM, models.md section 2).


def llada_dims(config):
    """Resolved LLaDA dimensions from a config dict (real config.json keys)."""
    for key, want in (("block_type", "llama"), ("activation_type", "silu"), ("layer_norm_type", "rms")):
        if config.get(key, want) != want:
            raise ValueError(f"LLaDA: {key} = {config.get(key)!r} is not supported (need {want!r})")
    for key in ("alibi", "include_bias", "include_qkv_bias", "attention_layer_norm", "scale_logits",
                "input_emb_norm", "bias_for_layer_norm"):
        if config.get(key):
            raise ValueError(f"LLaDA: {key} = true is not supported")
    d = int(config["d_model"])
    h = int(config["n_heads"])
    mqa = config.get("multi_query_attention")
    hkv = 1 if mqa else int(config.get("n_kv_heads") or h)
    mlp = config.get("mlp_hidden_size")
    mlp = int(mlp) if mlp is not None else int(config.get("mlp_ratio", 4)) * d
    vocab = int(config.get("embedding_size") or config["vocab_size"])
    if d % h or h % hkv:
        raise ValueError(f"LLaDA: d_model {d}, n_heads {h}, n_kv_heads {hkv} are inconsistent")
    return dict(d_model=d, n_heads=h, n_kv_heads=hkv, head_dim=d // h, n_layers=int(config["n_layers"]),
                mlp=mlp, vocab=vocab, eps=float(config.get("rms_norm_eps", 1e-5)),
                theta=float(config.get("rope_theta", 10000.0)), tied=bool(config.get("weight_tying", False)))


class _LLaDABlock(nn.Module):
    def __init__(self, d, dims):
        super().__init__()
        kv = dims["n_kv_heads"] * dims["head_dim"]
        self.attn_norm = RMSNorm(d, dims["eps"])
        self.q_proj = nn.Linear(d, d, bias=False)
        self.k_proj = nn.Linear(d, kv, bias=False)
        self.v_proj = nn.Linear(d, kv, bias=False)
        self.attn_out = nn.Linear(d, d, bias=False)
        self.ff_norm = RMSNorm(d, dims["eps"])
        self.ff_proj = nn.Linear(d, dims["mlp"], bias=False)  # gate (SiLU applied to it)
        self.up_proj = nn.Linear(d, dims["mlp"], bias=False)  # up
        self.ff_out = nn.Linear(dims["mlp"], d, bias=False)  # down


class LLaDA(nn.Module):
    """LLaDA (LLaDAModelLM) in fp32. Tensor names: model.transformer.{wte, blocks.i.*, ln_f, ff_out}."""

    def __init__(self, config):
        super().__init__()
        self.config = dict(config)
        self.dims = dims = llada_dims(config)
        d = dims["d_model"]
        transformer = nn.ModuleDict()
        transformer["wte"] = nn.Embedding(dims["vocab"], d)
        transformer["blocks"] = nn.ModuleList(_LLaDABlock(d, dims) for _ in range(dims["n_layers"]))
        transformer["ln_f"] = RMSNorm(d, dims["eps"])
        if not dims["tied"]:
            transformer["ff_out"] = nn.Linear(d, dims["vocab"], bias=False)  # LM head
        self.model = nn.Module()
        self.model.transformer = transformer

    def forward(self, input_ids):
        ids, squeeze = _as_batch(input_ids)
        t = self.model.transformer
        dm = self.dims
        h = t["wte"](ids.to(t["wte"].weight.device))
        cos, sin = rope_cos_sin(ids.shape[1], dm["head_dim"], dm["theta"], h.device)
        for blk in t["blocks"]:
            a = blk.attn_norm(h)
            o = bidirectional_attention(blk.q_proj(a), blk.k_proj(a), blk.v_proj(a), dm["n_heads"],
                                        dm["n_kv_heads"], dm["head_dim"], cos, sin)
            h = h + blk.attn_out(o)
            m = blk.ff_norm(h)
            h = h + blk.ff_out(F.silu(blk.ff_proj(m)) * blk.up_proj(m))
        h = t["ln_f"](h)
        logits = F.linear(h, t["wte"].weight) if dm["tied"] else t["ff_out"](h)
        return logits[0] if squeeze else logits


# ---------------------------------------------------------------------------------------------------
# Dream (DreamModel = Qwen2 with bidirectional attention and shifted logits, models.md section 3).


def dream_dims(config):
    """Resolved Dream dimensions from a config dict (real config.json keys)."""
    if config.get("hidden_act", "silu") != "silu":
        raise ValueError(f"Dream: hidden_act = {config.get('hidden_act')!r} is not supported")
    if config.get("rope_scaling"):
        raise ValueError("Dream: rope_scaling is not supported")
    d = int(config["hidden_size"])
    h = int(config["num_attention_heads"])
    hkv = int(config.get("num_key_value_heads") or h)
    if d % h or h % hkv:
        raise ValueError(f"Dream: hidden_size {d}, heads {h}, kv heads {hkv} are inconsistent")
    return dict(d_model=d, n_heads=h, n_kv_heads=hkv, head_dim=d // h, n_layers=int(config["num_hidden_layers"]),
                mlp=int(config["intermediate_size"]), vocab=int(config["vocab_size"]),
                eps=float(config.get("rms_norm_eps", 1e-6)), theta=float(config.get("rope_theta", 1e6)),
                tied=bool(config.get("tie_word_embeddings", False)))


class _DreamAttention(nn.Module):
    def __init__(self, d, dims):
        super().__init__()
        kv = dims["n_kv_heads"] * dims["head_dim"]
        self.q_proj = nn.Linear(d, d, bias=True)
        self.k_proj = nn.Linear(d, kv, bias=True)
        self.v_proj = nn.Linear(d, kv, bias=True)
        self.o_proj = nn.Linear(d, d, bias=False)


class _DreamMLP(nn.Module):
    def __init__(self, d, dims):
        super().__init__()
        self.gate_proj = nn.Linear(d, dims["mlp"], bias=False)
        self.up_proj = nn.Linear(d, dims["mlp"], bias=False)
        self.down_proj = nn.Linear(dims["mlp"], d, bias=False)


class _DreamLayer(nn.Module):
    def __init__(self, d, dims):
        super().__init__()
        self.input_layernorm = RMSNorm(d, dims["eps"])
        self.self_attn = _DreamAttention(d, dims)
        self.post_attention_layernorm = RMSNorm(d, dims["eps"])
        self.mlp = _DreamMLP(d, dims)


class Dream(nn.Module):
    """Dream (DreamModel) in fp32. Tensor names: model.{embed_tokens, layers.i.*, norm}, lm_head."""

    def __init__(self, config):
        super().__init__()
        self.config = dict(config)
        self.dims = dims = dream_dims(config)
        d = dims["d_model"]
        self.model = nn.Module()
        self.model.embed_tokens = nn.Embedding(dims["vocab"], d)
        self.model.layers = nn.ModuleList(_DreamLayer(d, dims) for _ in range(dims["n_layers"]))
        self.model.norm = RMSNorm(d, dims["eps"])
        if not dims["tied"]:
            self.lm_head = nn.Linear(d, dims["vocab"], bias=False)

    def forward(self, input_ids, shift=True):
        ids, squeeze = _as_batch(input_ids)
        dm = self.dims
        emb = self.model.embed_tokens
        h = emb(ids.to(emb.weight.device))
        cos, sin = rope_cos_sin(ids.shape[1], dm["head_dim"], dm["theta"], h.device)
        for layer in self.model.layers:
            a = layer.input_layernorm(h)
            at = layer.self_attn
            o = bidirectional_attention(at.q_proj(a), at.k_proj(a), at.v_proj(a), dm["n_heads"], dm["n_kv_heads"],
                                        dm["head_dim"], cos, sin)
            h = h + at.o_proj(o)
            m = layer.post_attention_layernorm(h)
            h = h + layer.mlp.down_proj(F.silu(layer.mlp.gate_proj(m)) * layer.mlp.up_proj(m))
        h = self.model.norm(h)
        logits = F.linear(h, emb.weight) if dm["tied"] else self.lm_head(h)
        if shift:
            # Row i predicts token i from hidden state i-1; row 0 keeps its own (models.md section 3.9).
            logits = torch.cat([logits[:, :1], logits[:, :-1]], dim=1)
        return logits[0] if squeeze else logits


# ---------------------------------------------------------------------------------------------------
# Architecture selection and checkpoint directories.


def architecture_of(config):
    """'llada' or 'dream' from model_type / architectures (never from a folder name)."""
    mt = str(config.get("model_type", "")).lower()
    archs = [str(a) for a in config.get("architectures") or []]
    if mt == "llada" or "LLaDAModelLM" in archs:
        return "llada"
    if mt == "dream" or "DreamModel" in archs:
        return "dream"
    raise ValueError(f"unknown architecture: model_type {config.get('model_type')!r}, architectures {archs}")


def model_from_config(config):
    return LLaDA(config) if architecture_of(config) == "llada" else Dream(config)


def load_checkpoint(directory):
    """Builds the model described by directory/config.json and loads its safetensors weights."""
    with open(os.path.join(directory, "config.json"), encoding="utf-8") as f:
        config = json.load(f)
    model = model_from_config(config)
    index = os.path.join(directory, "model.safetensors.index.json")
    tensors = {}
    if os.path.exists(index):
        with open(index, encoding="utf-8") as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
        for name in files:
            tensors.update(read_safetensors(os.path.join(directory, name)))
    else:
        tensors = read_safetensors(os.path.join(directory, "model.safetensors"))
    model.load_state_dict(tensors, strict=True)
    model.eval()
    return model


def save_checkpoint(model, directory, dtype="BF16"):
    """Writes directory/config.json and directory/model.safetensors (every tensor as ``dtype``)."""
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "config.json"), "w", encoding="utf-8") as f:
        json.dump(model.config, f, indent=2, sort_keys=True)
        f.write("\n")
    write_safetensors(os.path.join(directory, "model.safetensors"), model.state_dict(), dtype)

// SPDX-License-Identifier: MIT
#pragma once
// The CUDA forward's data flow, written once over an executor: `forward_body` (embedding and the
// transformer blocks over B sequences of length L) and `forward_head` (final RMSNorm of a gathered
// list of rows, then the LM head). The device executor (model.cpp) launches kernels.cu and cuBLASLt;
// the host executor (tests/cuda/host_executor.hpp) runs the same steps with kernel_math.hpp's
// functions and a reference GEMM on the CPU, so buffer layouts, GEMM parameters (cuBLAS column-major
// conventions) and the GQA / logit-shift index maps are tested without a GPU.
//
// Layouts (row-major unless said; bf16 as raw 16-bit patterns):
//   tokens   int32 [B*L]
//   h        fp32 [B*L, d]            residual stream (fp32: see model.hpp "Numerics")
//   a        bf16 [B*L, d]            RMSNorm output; reused for the merged attention output
//   qkv      fp32 [B*L, d + 2 kv]     fused q/k/v projection (weights concatenated at load)
//   q        bf16 [B, H, L, hd]       after bias, rounding, RoPE (head-major for the batched GEMMs)
//   k, v     bf16 [B, Hkv, L, hd]
//   scores   fp32 [B, H, L, Lp]       (q k^T) / sqrt(hd); query heads g*group .. g*group+group-1 share KV head g;
//                                     rows padded to Lp = L rounded up to 8 (aligned leading dimension;
//                                     the padding is never read)
//   probs    bf16 [B, H, L, Lp]       softmax over the first L entries of each row
//   oh       bf16 [B, H, L, hd]       probs v
//   gu       bf16 [B*L, 2 mlp]        fused gate / up projection
//   mlp_out  bf16 [B*L, mlp]          silu(gate) * up
//   head_index int32 [R]              source row of each gathered LM-head row (-1: padding)
//   hidden   bf16 [R, d]              final RMSNorm of the gathered rows
//   logits   fp32 [R, V]              R = rows rounded up to head_chunk
#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernel_math.hpp"
#include "mdlm/checkpoint/checkpoint.hpp"
#include "mdlm/checkpoint/config.hpp"

namespace mdlm::cuda::detail {

using bf16_bits = std::uint16_t;

//! LM-head rows per GEMM batch element. Every head GEMM has exactly this many rows, so a row's logits
//! do not depend on how many other rows are requested or where in the list it is.
inline constexpr std::int64_t head_chunk = 128;
//! Alignment of every buffer inside the weight and activation arenas (cuBLASLt prefers 256 bytes).
inline constexpr std::size_t buffer_alignment = 256;
//! cuBLASLt workspace (split-K and friends); a fixed size so the plan is known before loading.
inline constexpr std::size_t gemm_workspace_bytes = std::size_t{32} << 20;

inline std::size_t align_up(std::size_t n, std::size_t a) { return (n + a - 1) / a * a; }

//! The model's dimensions, resolved from config.json.
struct dims {
  std::int64_t vocab = 0, d = 0, layers = 0, heads = 0, kv_heads = 0, head_dim = 0, mlp = 0;
  float eps = 0.0f;
  bool qkv_bias = false;      //!< Dream
  bool shift_logits = false;  //!< Dream
  bool rope_in_bf16 = false;  //!< Dream (LLaDA's RoPE is fp32)
  bool tied = false;          //!< LM head = embedding
  [[nodiscard]] std::int64_t kv() const { return kv_heads * head_dim; }
  [[nodiscard]] std::int64_t qkv_width() const { return d + 2 * kv(); }
  [[nodiscard]] std::int64_t group() const { return heads / kv_heads; }

  static dims of(const hf::model_config& c) {
    dims m;
    m.vocab = static_cast<std::int64_t>(c.vocab_size);
    m.d = static_cast<std::int64_t>(c.d_model);
    m.layers = static_cast<std::int64_t>(c.n_layers);
    m.heads = static_cast<std::int64_t>(c.n_heads);
    m.kv_heads = static_cast<std::int64_t>(c.n_kv_heads);
    m.head_dim = static_cast<std::int64_t>(c.head_dim);
    m.mlp = static_cast<std::int64_t>(c.mlp_hidden);
    m.eps = static_cast<float>(c.rms_norm_eps);
    m.qkv_bias = c.qkv_bias;
    m.shift_logits = c.shift_logits;
    m.rope_in_bf16 = c.arch == hf::architecture::dream;
    m.tied = c.tied_embeddings;
    return m;
  }
};

//! Byte offsets of the bf16 weights in one device allocation. Per layer the q/k/v weights are
//! concatenated by rows into [d + 2 kv, d] (and their biases into [d + 2 kv]); gate and up into
//! [2 mlp, d] (LLaDA: ff_proj = gate, up_proj = up).
struct weight_layout {
  static constexpr std::size_t none = static_cast<std::size_t>(-1);
  struct layer {
    std::size_t attn_norm = 0, wqkv = 0, bqkv = none, wo = 0, ff_norm = 0, wgu = 0, wdown = 0;
  };
  std::size_t embed = 0, final_norm = 0, head = 0;
  std::vector<layer> layers;
  std::size_t bytes = 0;

  static weight_layout of(const dims& m) {
    weight_layout w;
    std::size_t at = 0;
    auto take = [&](std::int64_t elements) {
      const std::size_t o = at;
      at = align_up(at + static_cast<std::size_t>(elements) * sizeof(bf16_bits), buffer_alignment);
      return o;
    };
    w.embed = take(m.vocab * m.d);
    w.layers.resize(static_cast<std::size_t>(m.layers));
    for (auto& l : w.layers) {
      l.attn_norm = take(m.d);
      l.wqkv = take(m.qkv_width() * m.d);
      if (m.qkv_bias) l.bqkv = take(m.qkv_width());
      l.wo = take(m.d * m.d);
      l.ff_norm = take(m.d);
      l.wgu = take(2 * m.mlp * m.d);
      l.wdown = take(m.d * m.mlp);
    }
    w.final_norm = take(m.d);
    w.head = m.tied ? w.embed : take(m.vocab * m.d);
    w.bytes = at;
    return w;
  }
};

//! Where a checkpoint tensor goes: arena byte offset of its fused buffer + element offset inside it.
struct tensor_destination {
  std::size_t offset = 0, element = 0;
};

//! The destination of every tensor of hf::expected_tensors(c), in that order (embedding; per layer
//! LLaDA attn_norm, q, k, v, attn_out, ff_norm, ff_proj (gate), up_proj, ff_out (down), Dream the same
//! with the q / k / v biases after their weights; final norm; LM head unless tied).
inline std::vector<tensor_destination> weight_destinations(const hf::model_config& c, const weight_layout& wl) {
  const auto d = c.d_model, kv = c.n_kv_heads * c.head_dim, mlp = c.mlp_hidden;
  using td = tensor_destination;
  std::vector<td> out{{wl.embed, 0}};
  for (const auto& l : wl.layers) {
    if (c.arch == hf::architecture::llada) {
      for (td x : {td{l.attn_norm, 0}, td{l.wqkv, 0}, td{l.wqkv, d * d}, td{l.wqkv, d * d + kv * d}, td{l.wo, 0},
                   td{l.ff_norm, 0}, td{l.wgu, 0}, td{l.wgu, mlp * d}, td{l.wdown, 0}})
        out.push_back(x);
    } else {
      for (td x : {td{l.attn_norm, 0}, td{l.wqkv, 0}, td{l.bqkv, 0}, td{l.wqkv, d * d}, td{l.bqkv, d},
                   td{l.wqkv, d * d + kv * d}, td{l.bqkv, d + kv}, td{l.wo, 0}, td{l.ff_norm, 0}, td{l.wgu, 0},
                   td{l.wgu, mlp * d}, td{l.wdown, 0}})
        out.push_back(x);
    }
  }
  out.push_back({wl.final_norm, 0});
  if (!c.tied_embeddings) out.push_back({wl.head, 0});
  return out;
}

//! Reads every tensor of `ckpt` (converted to fp32 by the CPU backend's reader, then rounded to bf16:
//! exact for bf16 files) and hands it to `write(byte_offset, const std::vector<bf16_bits>&, name)`, which
//! copies it into the weight arena (device or host).
template <class Write>
void read_weights(const hf::checkpoint& ckpt, const weight_layout& wl, Write&& write) {
  const auto specs = hf::expected_tensors(ckpt.config());
  const auto where = weight_destinations(ckpt.config(), wl);
  std::vector<float> f32;
  std::vector<bf16_bits> bf16;
  for (std::size_t t = 0; t < specs.size() && t < where.size(); ++t) {
    std::uint64_t n = 1;
    for (auto e : specs[t].shape) n *= e;
    f32.resize(static_cast<std::size_t>(n));
    ckpt.read_f32(specs[t].name, f32);
    bf16.resize(f32.size());
    for (std::size_t i = 0; i < f32.size(); ++i) bf16[i] = math::f32_to_bf16(f32[i]);
    write(where[t].offset + where[t].element * sizeof(bf16_bits), bf16, specs[t].name);
  }
}

//! Byte offsets of the per-(batch, length) buffers in one device allocation (the layouts of the file
//! comment), sized for B sequences of length L and up to B*L LM-head rows.
struct activation_layout {
  std::int64_t batch = 0, length = 0, rows = 0, head_rows = 0;
  std::int64_t attn_ld = 0;  //!< row stride of scores / probs: length rounded up to 8
  std::size_t tokens = 0, h = 0, a = 0, qkv = 0, q = 0, k = 0, v = 0, scores = 0, probs = 0, oh = 0, gu = 0,
              mlp_out = 0, head_index = 0, hidden = 0, cos = 0, sin = 0, workspace = 0, logits = 0;
  std::size_t bytes = 0;         //!< everything, logits and workspace included
  std::size_t logits_bytes = 0;  //!< of which the fp32 logits
  std::size_t workspace_bytes = 0;

  static activation_layout of(const dims& m, std::int64_t batch, std::int64_t length) {
    activation_layout a;
    a.batch = batch;
    a.length = length;
    a.rows = batch * length;
    a.head_rows = (a.rows + head_chunk - 1) / head_chunk * head_chunk;
    a.attn_ld = (length + 7) / 8 * 8;
    std::size_t at = 0;
    auto take = [&](std::int64_t elements, std::size_t size) {
      const std::size_t o = at;
      at = align_up(at + static_cast<std::size_t>(elements) * size, buffer_alignment);
      return o;
    };
    const std::int64_t r = a.rows;
    a.tokens = take(r, 4);
    a.h = take(r * m.d, 4);
    a.a = take(r * m.d, 2);
    a.qkv = take(r * m.qkv_width(), 4);
    a.q = take(r * m.d, 2);
    a.k = take(r * m.kv(), 2);
    a.v = take(r * m.kv(), 2);
    a.scores = take(batch * m.heads * length * a.attn_ld, 4);
    a.probs = take(batch * m.heads * length * a.attn_ld, 2);
    a.oh = take(r * m.d, 2);
    a.gu = take(r * 2 * m.mlp, 2);
    a.mlp_out = take(r * m.mlp, 2);
    a.head_index = take(a.head_rows, 4);
    a.hidden = take(a.head_rows * m.d, 2);
    a.cos = take(length * (m.head_dim / 2), 4);
    a.sin = take(length * (m.head_dim / 2), 4);
    a.workspace = at;
    at = align_up(at + gemm_workspace_bytes, buffer_alignment);
    a.workspace_bytes = gemm_workspace_bytes;
    a.logits = at;
    a.logits_bytes = static_cast<std::size_t>(a.head_rows * m.vocab) * 4;
    a.bytes = align_up(at + a.logits_bytes, buffer_alignment);
    return a;
  }
};

//! Element type of a GEMM's output (inputs are always bf16, accumulation fp32).
enum class element { bf16, f32 };

//! One (strided-batched) GEMM in cuBLAS's column-major convention: for each batch element e,
//! C_e = alpha op(A_e) op(B_e) + beta C_e with op(A_e) m x k, op(B_e) k x n, C_e m x n (leading
//! dimensions lda / ldb / ldc; A_e = A + e * stride_a elements, likewise B and C). A row-major
//! [rows, cols] buffer is the column-major [cols, rows] matrix with ld = cols.
//!
//! The algorithm is chosen for `unit_batch` elements and run on `batch` (a multiple): each element's
//! arithmetic is then the same whatever the batch, so B canvases give the bits of B single calls.
struct gemm_desc {
  const char* step = "";  //!< what it computes, for error messages
  bool trans_a = false, trans_b = false;
  std::int64_t m = 0, n = 0, k = 0, lda = 0, ldb = 0, ldc = 0;
  std::int64_t stride_a = 0, stride_b = 0, stride_c = 0;
  std::int64_t batch = 1, unit_batch = 1;
  element c_type = element::f32;
  float alpha = 1.0f, beta = 0.0f;

  [[nodiscard]] bool same_shape(const gemm_desc& o) const {
    return trans_a == o.trans_a && trans_b == o.trans_b && m == o.m && n == o.n && k == o.k && lda == o.lda &&
           ldb == o.ldb && ldc == o.ldc && stride_a == o.stride_a && stride_b == o.stride_b &&
           stride_c == o.stride_c && batch == o.batch && unit_batch == o.unit_batch && c_type == o.c_type &&
           alpha == o.alpha && beta == o.beta;
  }
};

//! Y[b] = X[b] W^T (+ Y[b] when accumulate) for each of `batch` sequences: X [L, in] bf16 row-major,
//! W [out, in] (nn.Linear layout), Y [L, out]. Column-major: Y^T = W^T^T X^T, i.e. A = W (stored
//! in x out, op T), B = X (stored in x L, op N), C = Y (out x L).
inline gemm_desc linear_desc(const char* step, std::int64_t batch, std::int64_t length, std::int64_t out,
                             std::int64_t in, element c_type, bool accumulate) {
  gemm_desc g;
  g.step = step;
  g.trans_a = true;
  g.trans_b = false;
  g.m = out;
  g.n = length;
  g.k = in;
  g.lda = in;
  g.ldb = in;
  g.ldc = out;
  g.stride_a = 0;  // the weights are shared by every sequence
  g.stride_b = length * in;
  g.stride_c = length * out;
  g.batch = batch;
  g.unit_batch = 1;
  g.c_type = c_type;
  g.beta = accumulate ? 1.0f : 0.0f;
  return g;
}

//! Attention scores for every (sequence, KV head): the `group` query heads of KV head g are one
//! [group*L, hd] matrix Q_e, so S_e [group*L, L] = Q_e K_e^T / sqrt(hd) covers grouped-query and
//! multi-head attention alike. Column-major: S^T = K (op T of stored hd x L) * Q^T (stored hd x group*L).
//! S rows have stride `ld` (>= L).
inline gemm_desc scores_desc(const dims& m, std::int64_t batch, std::int64_t length, std::int64_t ld) {
  gemm_desc g;
  g.step = "attention scores (q k^T)";
  g.trans_a = true;
  g.trans_b = false;
  g.m = length;
  g.n = m.group() * length;
  g.k = m.head_dim;
  g.lda = m.head_dim;
  g.ldb = m.head_dim;
  g.ldc = ld;
  g.stride_a = length * m.head_dim;
  g.stride_b = m.group() * length * m.head_dim;
  g.stride_c = m.group() * length * ld;
  g.batch = batch * m.kv_heads;
  g.unit_batch = m.kv_heads;
  g.c_type = element::f32;
  g.alpha = 1.0f / math::sqrt_rn(static_cast<float>(m.head_dim));
  return g;
}

//! Attention values: O_e [group*L, hd] = P_e [group*L, L] V_e [L, hd]. Column-major: O^T = V^T P^T with
//! V stored hd x L (op N) and P stored L x group*L (op N) with row stride `ld`.
inline gemm_desc values_desc(const dims& m, std::int64_t batch, std::int64_t length, std::int64_t ld) {
  gemm_desc g;
  g.step = "attention values (p v)";
  g.trans_a = false;
  g.trans_b = false;
  g.m = m.head_dim;
  g.n = m.group() * length;
  g.k = length;
  g.lda = m.head_dim;
  g.ldb = ld;
  g.ldc = m.head_dim;
  g.stride_a = length * m.head_dim;
  g.stride_b = m.group() * length * ld;
  g.stride_c = m.group() * length * m.head_dim;
  g.batch = batch * m.kv_heads;
  g.unit_batch = m.kv_heads;
  g.c_type = element::bf16;
  return g;
}

//! LM head over `chunks` chunks of head_chunk gathered rows: logits [chunk rows, V] = hidden W_head^T.
inline gemm_desc head_desc(const dims& m, std::int64_t chunks) {
  gemm_desc g = linear_desc("LM head", chunks, head_chunk, m.vocab, m.d, element::f32, false);
  return g;
}

//! Device or host pointers to the weights of one model (offsets of weight_layout applied).
struct weight_ptrs {
  struct layer {
    const bf16_bits *attn_norm, *wqkv, *bqkv, *wo, *ff_norm, *wgu, *wdown;
  };
  const bf16_bits *embed = nullptr, *final_norm = nullptr, *head = nullptr;
  std::vector<layer> layers;

  static weight_ptrs at(const weight_layout& w, const std::byte* base) {
    auto p = [&](std::size_t off) {
      return off == weight_layout::none ? nullptr : reinterpret_cast<const bf16_bits*>(base + off);
    };
    weight_ptrs r;
    r.embed = p(w.embed);
    r.final_norm = p(w.final_norm);
    r.head = p(w.head);
    for (const auto& l : w.layers)
      r.layers.push_back({p(l.attn_norm), p(l.wqkv), p(l.bqkv), p(l.wo), p(l.ff_norm), p(l.wgu), p(l.wdown)});
    return r;
  }
};

//! Typed pointers into one activation arena.
struct activation_ptrs {
  std::int32_t* tokens;
  float* h;
  bf16_bits* a;
  float* qkv;
  bf16_bits *q, *k, *v;
  float* scores;
  bf16_bits *probs, *oh, *gu, *mlp_out;
  std::int32_t* head_index;
  bf16_bits* hidden;
  float *cos, *sin;
  void* workspace;
  float* logits;

  static activation_ptrs at(const activation_layout& l, std::byte* base) {
    auto p = [&](std::size_t off) { return static_cast<void*>(base + off); };
    return {static_cast<std::int32_t*>(p(l.tokens)), static_cast<float*>(p(l.h)), static_cast<bf16_bits*>(p(l.a)),
            static_cast<float*>(p(l.qkv)), static_cast<bf16_bits*>(p(l.q)), static_cast<bf16_bits*>(p(l.k)),
            static_cast<bf16_bits*>(p(l.v)), static_cast<float*>(p(l.scores)), static_cast<bf16_bits*>(p(l.probs)),
            static_cast<bf16_bits*>(p(l.oh)), static_cast<bf16_bits*>(p(l.gu)), static_cast<bf16_bits*>(p(l.mlp_out)),
            static_cast<std::int32_t*>(p(l.head_index)), static_cast<bf16_bits*>(p(l.hidden)),
            static_cast<float*>(p(l.cos)), static_cast<float*>(p(l.sin)), p(l.workspace),
            static_cast<float*>(p(l.logits))};
  }
};

//! RoPE tables of positions 0..L-1, [L, hd/2] each, computed as the CPU backend does (fp32
//! inv_freq = 1 / theta^(2i / hd), angle = p * inv_freq in fp32, std::cos / std::sin).
inline void rope_tables(double theta, std::int64_t head_dim, std::int64_t length, std::vector<float>& cos,
                        std::vector<float>& sin) {
  const std::int64_t half = head_dim / 2;
  cos.resize(static_cast<std::size_t>(length * half));
  sin.resize(cos.size());
  const auto t = static_cast<float>(theta);
  for (std::int64_t i = 0; i < half; ++i) {
    const float inv_freq = 1.0f / std::pow(t, static_cast<float>(2 * i) / static_cast<float>(head_dim));
    for (std::int64_t p = 0; p < length; ++p) {
      const float angle = static_cast<float>(p) * inv_freq;
      cos[static_cast<std::size_t>(p * half + i)] = std::cos(angle);
      sin[static_cast<std::size_t>(p * half + i)] = std::sin(angle);
    }
  }
}

//! Embedding and every transformer block over `al.batch` sequences (tokens, cos / sin already in
//! place); leaves the residual stream in `act.h`. `Exec` provides embed, rms_norm, gemm, qkv, softmax,
//! merge_heads and silu_mul (see model.cpp's device executor for their contracts).
template <class Exec>
void forward_body(Exec& ex, const dims& m, const weight_ptrs& w, const activation_layout& al,
                  const activation_ptrs& act) {
  const std::int64_t batch = al.batch, length = al.length, rows = al.rows;
  ex.embed(act.tokens, rows, w.embed, m.d, act.h);
  const gemm_desc qkv_g = linear_desc("q/k/v projection", batch, length, m.qkv_width(), m.d, element::f32, false);
  const gemm_desc scores_g = scores_desc(m, batch, length, al.attn_ld);
  const gemm_desc values_g = values_desc(m, batch, length, al.attn_ld);
  const gemm_desc out_g = linear_desc("output projection + residual", batch, length, m.d, m.d, element::f32, true);
  const gemm_desc gu_g = linear_desc("gate/up projection", batch, length, 2 * m.mlp, m.d, element::bf16, false);
  const gemm_desc down_g = linear_desc("down projection + residual", batch, length, m.d, m.mlp, element::f32, true);
  for (std::int64_t li = 0; li < m.layers; ++li) {
    const auto& l = w.layers[static_cast<std::size_t>(li)];
    const int layer = static_cast<int>(li);
    ex.rms_norm(act.h, nullptr, rows, m.d, l.attn_norm, m.eps, act.a, "attention RMSNorm", layer);
    ex.gemm(qkv_g, l.wqkv, act.a, act.qkv, layer);
    math::qkv_params p;
    p.qkv = act.qkv;
    p.bias = l.bqkv;
    p.cos = act.cos;
    p.sin = act.sin;
    p.q = act.q;
    p.k = act.k;
    p.v = act.v;
    p.batch = batch;
    p.length = length;
    p.heads = m.heads;
    p.kv_heads = m.kv_heads;
    p.head_dim = m.head_dim;
    p.rope_in_bf16 = m.rope_in_bf16;
    ex.qkv(p, layer);
    ex.gemm(scores_g, act.k, act.q, act.scores, layer);
    ex.softmax(act.scores, batch * m.heads * length, length, al.attn_ld, act.probs, layer);
    ex.gemm(values_g, act.v, act.probs, act.oh, layer);
    ex.merge_heads(act.oh, batch, length, m.heads, m.head_dim, act.a, layer);
    ex.gemm(out_g, l.wo, act.a, act.h, layer);
    ex.rms_norm(act.h, nullptr, rows, m.d, l.ff_norm, m.eps, act.a, "MLP RMSNorm", layer);
    ex.gemm(gu_g, l.wgu, act.a, act.gu, layer);
    ex.silu_mul(act.gu, rows, m.mlp, act.mlp_out, layer);
    ex.gemm(down_g, l.wdown, act.mlp_out, act.h, layer);
  }
}

//! Final RMSNorm of the rows listed in `act.head_index[0, chunks * head_chunk)` (source rows of h;
//! -1 = padding, written as zeros) and the LM head: logits row r in `act.logits`.
template <class Exec>
void forward_head(Exec& ex, const dims& m, const weight_ptrs& w, const activation_ptrs& act, std::int64_t chunks) {
  ex.rms_norm(act.h, act.head_index, chunks * head_chunk, m.d, w.final_norm, m.eps, act.hidden, "final RMSNorm", -1);
  ex.gemm(head_desc(m, chunks), w.head, act.hidden, act.logits, -1);
}

}  // namespace mdlm::cuda::detail

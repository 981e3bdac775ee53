// SPDX-License-Identifier: MIT
#pragma once
// The CUDA forward run on the CPU: forward.hpp's data flow (the same buffers, GEMM descriptors and
// index maps as the device), with every kernel replaced by a loop over kernel_math.hpp's work units
// and block reductions emulated thread by thread, and every cuBLASLt GEMM by a reference GEMM with
// the BLAS column-major definition (double accumulation). Used by test_kernel_math.cpp (no GPU) and
// by the GPU tests as a second reference.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "forward.hpp"
#include "kernel_math.hpp"
#include "mdlm/checkpoint/checkpoint.hpp"
#include "mdlm/types.hpp"

namespace mdlm::test {

namespace cm = mdlm::cuda::math;
namespace cd = mdlm::cuda::detail;

//! BLAS GEMM for one batch element, column-major: C(i, j) = alpha sum_k op(A)(i, k) op(B)(k, j) +
//! beta C(i, j), element (r, c) of a stored matrix at r + c * ld; A and B bf16, C fp32 or bf16.
inline void reference_gemm(const cd::gemm_desc& g, const std::uint16_t* a, const std::uint16_t* b, void* c) {
  for (std::int64_t j = 0; j < g.n; ++j) {
    for (std::int64_t i = 0; i < g.m; ++i) {
      double acc = 0.0;
      for (std::int64_t k = 0; k < g.k; ++k) {
        const std::uint16_t av = g.trans_a ? a[k + i * g.lda] : a[i + k * g.lda];
        const std::uint16_t bv = g.trans_b ? b[j + k * g.ldb] : b[k + j * g.ldb];
        acc += static_cast<double>(cm::bf16_to_f32(av)) * cm::bf16_to_f32(bv);
      }
      const std::int64_t at = i + j * g.ldc;
      if (g.c_type == cd::element::f32) {
        float* cf = static_cast<float*>(c);
        const double prev = g.beta != 0.0f ? static_cast<double>(cf[at]) * g.beta : 0.0;
        cf[at] = static_cast<float>(g.alpha * acc + prev);
      } else {
        auto* cb = static_cast<std::uint16_t*>(c);
        const double prev = g.beta != 0.0f ? static_cast<double>(cm::bf16_to_f32(cb[at])) * g.beta : 0.0;
        cb[at] = cm::f32_to_bf16(static_cast<float>(g.alpha * acc + prev));
      }
    }
  }
}

//! The executor of forward.hpp on the host.
struct host_executor {
  std::size_t gemm_calls = 0;

  void embed(const std::int32_t* tokens, std::int64_t rows, const std::uint16_t* table, std::int64_t d, float* h) const {
    for (std::int64_t u = 0; u < rows * d; ++u) cm::embed_unit(tokens, table, d, h, u);
  }
  void rms_norm(const float* x, const std::int32_t* index, std::int64_t rows, std::int64_t d, const std::uint16_t* w,
                float eps, std::uint16_t* out, const char*, int) const {
    float partial[cm::block_threads];
    for (std::int64_t r = 0; r < rows; ++r) {
      const std::int64_t src = index != nullptr ? index[r] : r;
      std::uint16_t* y = out + r * d;
      if (src < 0) {
        std::memset(y, 0, static_cast<std::size_t>(d) * 2);
        continue;
      }
      const float* xr = x + src * d;
      for (int t = 0; t < cm::block_threads; ++t) partial[t] = cm::sum_squares_partial(xr, d, t, cm::block_threads);
      const float inv = cm::rms_inverse(cm::tree_sum(partial, cm::block_threads), d, eps);
      for (std::int64_t i = 0; i < d; ++i) y[i] = cm::rms_apply(xr[i], inv, w[i]);
    }
  }
  void gemm(const cd::gemm_desc& g, const void* a, const void* b, void* c, int) {
    ++gemm_calls;
    const std::size_t csize = g.c_type == cd::element::f32 ? 4 : 2;
    for (std::int64_t e = 0; e < g.batch; ++e)
      reference_gemm(g, static_cast<const std::uint16_t*>(a) + e * g.stride_a,
                     static_cast<const std::uint16_t*>(b) + e * g.stride_b,
                     static_cast<unsigned char*>(c) + static_cast<std::size_t>(e * g.stride_c) * csize);
  }
  void qkv(const cm::qkv_params& p, int) const {
    for (std::int64_t u = 0; u < p.units(); ++u) cm::qkv_unit(p, u);
  }
  void softmax(const float* s, std::int64_t rows, std::int64_t cols, std::int64_t ld, std::uint16_t* p, int) const {
    cm::softmax_state partial[cm::block_threads];
    for (std::int64_t r = 0; r < rows; ++r) {
      const float* row = s + r * ld;
      for (int t = 0; t < cm::block_threads; ++t) partial[t] = cm::softmax_partial(row, cols, t, cm::block_threads);
      const cm::softmax_state total = cm::softmax_tree(partial, cm::block_threads);
      for (std::int64_t i = 0; i < cols; ++i) p[r * ld + i] = cm::softmax_prob(row[i], total);
    }
  }
  void merge_heads(const std::uint16_t* oh, std::int64_t batch, std::int64_t length, std::int64_t heads,
                   std::int64_t head_dim, std::uint16_t* out, int) const {
    for (std::int64_t u = 0; u < batch * length * heads * head_dim; ++u)
      cm::merge_heads_unit(oh, length, heads, head_dim, out, u);
  }
  void silu_mul(const std::uint16_t* gu, std::int64_t rows, std::int64_t mlp, std::uint16_t* out, int) const {
    for (std::int64_t u = 0; u < rows * mlp; ++u) cm::silu_mul_unit(gu, mlp, out, u);
  }
};

//! A 256-byte aligned host arena.
class host_arena {
 public:
  explicit host_arena(std::size_t bytes) : raw_(bytes + cd::buffer_alignment) {
    const auto addr = reinterpret_cast<std::uintptr_t>(raw_.data());
    base_ = raw_.data() + (cd::buffer_alignment - addr % cd::buffer_alignment) % cd::buffer_alignment;
  }
  [[nodiscard]] std::byte* data() noexcept { return base_; }

 private:
  std::vector<std::byte> raw_;
  std::byte* base_ = nullptr;
};

//! The CUDA model's forward emulated on the host for one checkpoint.
class emulated_model {
 public:
  explicit emulated_model(const hf::checkpoint& ckpt)
      : cfg_(ckpt.config()), m_(cd::dims::of(cfg_)), wl_(cd::weight_layout::of(m_)), weights_(wl_.bytes) {
    cd::read_weights(ckpt, wl_, [&](std::size_t offset, const std::vector<std::uint16_t>& v, const std::string&) {
      std::memcpy(weights_.data() + offset, v.data(), v.size() * 2);
    });
    w_ = cd::weight_ptrs::at(wl_, weights_.data());
  }

  [[nodiscard]] const hf::model_config& config() const noexcept { return cfg_; }

  //! Logits of `rows` (flat b * L + i) of `batch` sequences, rows.size() x V, the way
  //! model::logits_rows computes them.
  std::vector<float> logits_rows(std::span<const token_id> tokens, std::size_t batch, std::span<const std::size_t> rows) {
    const auto length = static_cast<std::int64_t>(tokens.size() / batch);
    const auto al = cd::activation_layout::of(m_, static_cast<std::int64_t>(batch), length);
    host_arena act_mem(al.bytes);
    const auto act = cd::activation_ptrs::at(al, act_mem.data());
    for (std::size_t i = 0; i < tokens.size(); ++i) act.tokens[i] = tokens[i];
    std::vector<float> cos, sin;
    cd::rope_tables(cfg_.rope_theta, m_.head_dim, length, cos, sin);
    std::memcpy(act.cos, cos.data(), cos.size() * 4);
    std::memcpy(act.sin, sin.data(), sin.size() * 4);
    cd::forward_body(ex_, m_, w_, al, act);
    const auto chunks = static_cast<std::int64_t>((rows.size() + cd::head_chunk - 1) / cd::head_chunk);
    for (std::int64_t j = 0; j < chunks * cd::head_chunk; ++j) {
      if (j < static_cast<std::int64_t>(rows.size())) {
        const auto r = static_cast<std::int64_t>(rows[static_cast<std::size_t>(j)]);
        act.head_index[j] = static_cast<std::int32_t>(cm::lm_source_row(r / length, r % length, length, m_.shift_logits));
      } else {
        act.head_index[j] = -1;
      }
    }
    cd::forward_head(ex_, m_, w_, act, chunks);
    return {act.logits, act.logits + rows.size() * static_cast<std::size_t>(m_.vocab)};
  }

  //! Every logit row of `batch` sequences (as model::batch_logits).
  std::vector<float> batch_logits(std::span<const token_id> tokens, std::size_t batch) {
    std::vector<std::size_t> rows(tokens.size());
    for (std::size_t i = 0; i < rows.size(); ++i) rows[i] = i;
    return logits_rows(tokens, batch, rows);
  }

  [[nodiscard]] std::size_t gemm_calls() const noexcept { return ex_.gemm_calls; }

 private:
  hf::model_config cfg_;
  cd::dims m_;
  cd::weight_layout wl_;
  host_arena weights_;
  cd::weight_ptrs w_;
  host_executor ex_;
};

}  // namespace mdlm::test

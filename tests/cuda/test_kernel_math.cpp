// SPDX-License-Identifier: MIT
// The CUDA backend's arithmetic without a GPU: the __host__ __device__ functions of
// backends/cuda/src/kernel_math.hpp against double-precision formulas and the CPU backend, the GEMM
// descriptors of forward.hpp against plain row-major products, and the whole CUDA data flow
// (forward.hpp run by the host executor) against the CPU backend's fp32 forward on tiny checkpoints.
// What this cannot test: the CUDA kernels' thread mapping as compiled by nvcc, cuBLASLt, and the
// device memory handling -- those are the label-cuda tests (test_cuda_model.cpp) on a GPU.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include "cuda/host_executor.hpp"
#include "cuda/support.hpp"
#include "mdlm/cpu/make_checkpoint.hpp"
#include "mdlm/cpu/model.hpp"
#include "mdlm/checkpoint/safetensors.hpp"
#if MDLM_TEST_HAVE_CUDA
#include "mdlm/cuda/model.hpp"
#endif

namespace cm = mdlm::cuda::math;
namespace cd = mdlm::cuda::detail;
using mdlm::token_id;

namespace {

// Distance in bf16 units in the last place at the magnitude of `ref` (at least the smallest normal).
double bf16_ulps(double got, double ref) {
  const double mag = std::max(std::abs(ref), 1e-30);
  const double ulp = std::ldexp(1.0, std::ilogb(mag) - 7);  // 8 significant bits
  return std::abs(got - ref) / ulp;
}

std::vector<std::uint16_t> random_bf16(std::size_t n, std::mt19937& rng, float scale) {
  std::normal_distribution<float> nd(0.0f, scale);
  std::vector<std::uint16_t> v(n);
  for (auto& x : v) x = cm::f32_to_bf16(nd(rng));
  return v;
}

}  // namespace

TEST_CASE("bf16 conversions are bit-identical to the CPU backend's", "[cuda_math]") {
  std::mt19937 rng(7);
  std::vector<std::uint32_t> patterns{0x00000000u, 0x80000000u, 0x7F800000u, 0xFF800000u, 0x7FC00000u, 0x7F800001u,
                                      0x3F808000u, 0x3F818000u, 0x3F80FFFFu, 0x00000001u, 0x7F7FFFFFu};
  for (int i = 0; i < 200000; ++i) patterns.push_back(static_cast<std::uint32_t>(rng()));
  for (std::uint32_t u : patterns) {
    const float x = cm::as_float(u);
    INFO("bits " << u);
    REQUIRE(cm::f32_to_bf16(x) == mdlm::hf::f32_to_bf16(x));
    const auto b = static_cast<std::uint16_t>(u >> 16);
    const float back = cm::bf16_to_f32(b), cpu_back = mdlm::hf::bf16_to_f32(b);
    REQUIRE(cm::as_bits(back) == cm::as_bits(cpu_back));
  }
}

TEST_CASE("tree_sum adds in the order of the device's shared-memory tree", "[cuda_math]") {
  float p[4] = {1e8f, 1.0f, -1e8f, 1.0f};
  // stride 2: p0 + p2 = 0, p1 + p3 = 2; stride 1: 0 + 2. A left-to-right sum would give 1 (1e8 + 1 rounds).
  CHECK(cm::tree_sum(p, 4) == 2.0f);
  std::vector<float> q(cm::block_threads);
  std::iota(q.begin(), q.end(), 1.0f);
  CHECK(cm::tree_sum(q.data(), cm::block_threads) == 256.0f * 257.0f / 2.0f);
}

TEST_CASE("RMSNorm arithmetic: normalise in fp32, round to bf16, multiply by the weight", "[cuda_math]") {
  std::mt19937 rng(11);
  for (std::int64_t d : {64, 3584, 4096}) {
    std::normal_distribution<float> nd(0.0f, 3.0f);
    std::vector<float> x(static_cast<std::size_t>(d));
    for (auto& v : x) v = nd(rng);
    const auto w = random_bf16(static_cast<std::size_t>(d), rng, 1.0f);
    float partial[cm::block_threads];
    for (int t = 0; t < cm::block_threads; ++t) partial[t] = cm::sum_squares_partial(x.data(), d, t, cm::block_threads);
    const float eps = 1e-5f;
    const float inv = cm::rms_inverse(cm::tree_sum(partial, cm::block_threads), d, eps);
    double ss = 0.0;
    for (float v : x) ss += static_cast<double>(v) * v;
    const double inv_ref = 1.0 / std::sqrt(ss / static_cast<double>(d) + eps);
    CHECK(std::abs(inv - inv_ref) <= 1e-5 * inv_ref);  // fp32 sum of d squares: relative error ~ d * 2^-24
    for (std::int64_t i = 0; i < d; ++i) {
      const double ref = x[static_cast<std::size_t>(i)] * inv_ref * cm::bf16_to_f32(w[static_cast<std::size_t>(i)]);
      // two bf16 roundings (after normalising, after the exact weight product): 0.5 ulp each, the first
      // one measured in a binade up to twice as wide: <= 1.5 ulps of the result, plus the fp32 inv.
      REQUIRE(bf16_ulps(cm::bf16_to_f32(cm::rms_apply(x[static_cast<std::size_t>(i)], inv, w[static_cast<std::size_t>(i)])),
                        ref) <= 1.55);
    }
  }
}

TEST_CASE("online softmax matches a two-pass double softmax, with -inf scores and large values", "[cuda_math]") {
  std::mt19937 rng(5);
  for (std::int64_t n : {1, 7, 255, 256, 257, 1024, 4000}) {
    for (float scale : {0.1f, 5.0f, 80.0f}) {
      std::normal_distribution<float> nd(0.0f, scale);
      std::vector<float> s(static_cast<std::size_t>(n));
      for (auto& v : s) v = nd(rng);
      if (n > 3) s[1] = s[2] = cm::neg_inf();
      cm::softmax_state partial[cm::block_threads];
      for (int t = 0; t < cm::block_threads; ++t) partial[t] = cm::softmax_partial(s.data(), n, t, cm::block_threads);
      const auto total = cm::softmax_tree(partial, cm::block_threads);
      double mx = -std::numeric_limits<double>::infinity(), sum = 0.0;
      for (float v : s) mx = std::max(mx, static_cast<double>(v));
      for (float v : s) sum += std::exp(static_cast<double>(v) - mx);
      CHECK(total.max == static_cast<float>(mx));
      CHECK(std::abs(total.sum - sum) <= 1e-5 * sum);
      for (std::int64_t i = 0; i < n; ++i) {
        const double ref = std::exp(static_cast<double>(s[static_cast<std::size_t>(i)]) - mx) / sum;
        const float got = cm::bf16_to_f32(cm::softmax_prob(s[static_cast<std::size_t>(i)], total));
        if (ref == 0.0) REQUIRE(got == 0.0f);
        else if (ref > 1e-30) REQUIRE(bf16_ulps(got, ref) <= 0.6);  // one rounding + fp32 exp / sum
      }
    }
  }
  // A row of -inf only (cannot happen without a mask) gives zeros, not NaN.
  std::vector<float> all_inf(5, cm::neg_inf());
  const auto st = cm::softmax_partial(all_inf.data(), 5, 0, 1);
  CHECK(cm::softmax_prob(all_inf[0], st) == 0);
}

TEST_CASE("SwiGLU and RoPE arithmetic round where PyTorch's bf16 ops do", "[cuda_math]") {
  std::mt19937 rng(3);
  const auto g = random_bf16(5000, rng, 3.0f), u = random_bf16(5000, rng, 2.0f);
  for (std::size_t i = 0; i < g.size(); ++i) {
    const double gv = cm::bf16_to_f32(g[i]), uv = cm::bf16_to_f32(u[i]);
    const double ref = gv / (1.0 + std::exp(-gv)) * uv;
    // two roundings as in RMSNorm (silu, then the exact product with up): <= 1.5 ulps plus fp32 exp / div
    if (std::abs(ref) > 1e-30) REQUIRE(bf16_ulps(cm::bf16_to_f32(cm::silu_mul(g[i], u[i])), ref) <= 1.55);
  }
  std::uniform_real_distribution<float> angle(-30.0f, 30.0f);
  for (int i = 0; i < 5000; ++i) {
    const float x1 = cm::round_bf16(angle(rng) / 7.0f), x2 = cm::round_bf16(angle(rng) / 7.0f), a = angle(rng);
    const float c = std::cos(a), s = std::sin(a);
    std::uint16_t o1, o2;
    cm::rope_fp32(x1, x2, c, s, o1, o2);  // LLaDA: one rounding of the fp32 result: 0.5 ulp (+ fp32 error)
    const double r1 = static_cast<double>(x1) * c - static_cast<double>(x2) * s;
    const double r2 = static_cast<double>(x2) * c + static_cast<double>(x1) * s;
    const double m = std::max(std::abs(x1), std::abs(x2));
    CHECK(std::abs(cm::bf16_to_f32(o1) - r1) <= 0.5 * std::ldexp(1.0, std::ilogb(std::abs(r1) + 1e-30) - 7) + m * 0x1p-22);
    CHECK(std::abs(cm::bf16_to_f32(o2) - r2) <= 0.5 * std::ldexp(1.0, std::ilogb(std::abs(r2) + 1e-30) - 7) + m * 0x1p-22);
    // Dream: cos, sin, both products and the sum rounded to bf16 (relative 2^-8 each):
    // |error| <= 2^-8 (2 |x1 c| + 2 |x2 s| + |r|) <= 2^-8 m (2 sqrt 2 + sqrt 2) = 4.25 m 2^-8.
    cm::rope_bf16(x1, x2, c, s, o1, o2);
    CHECK(std::abs(cm::bf16_to_f32(o1) - r1) <= 4.25 * m * 0x1p-8);
    CHECK(std::abs(cm::bf16_to_f32(o2) - r2) <= 4.25 * m * 0x1p-8);
  }
}

TEST_CASE("q/k/v epilogue: head-major layouts, biases, GQA slots, and the RoPE of the CPU backend", "[cuda_math]") {
  const std::int64_t batch = 2, length = 3, heads = 4, kv_heads = 2, hd = 4, half = hd / 2;
  const std::int64_t d = heads * hd, kv = kv_heads * hd, width = d + 2 * kv;
  std::vector<float> qkv(static_cast<std::size_t>(batch * length * width));
  for (std::size_t i = 0; i < qkv.size(); ++i) qkv[i] = static_cast<float>(i % 97) * 0.25f - 12.0f;  // bf16-exact
  std::vector<std::uint16_t> bias(static_cast<std::size_t>(width));
  for (std::size_t i = 0; i < bias.size(); ++i) bias[i] = cm::f32_to_bf16(static_cast<float>(i) * 0.5f);
  std::vector<float> cos, sin;
  cd::rope_tables(10000.0, hd, length, cos, sin);
  for (bool with_bias : {false, true}) {
    std::vector<std::uint16_t> q(static_cast<std::size_t>(batch * length * d)), k(static_cast<std::size_t>(batch * length * kv)),
        v(k.size());
    cm::qkv_params p;
    p.qkv = qkv.data();
    p.bias = with_bias ? bias.data() : nullptr;
    p.cos = cos.data();
    p.sin = sin.data();
    p.q = q.data();
    p.k = k.data();
    p.v = v.data();
    p.batch = batch;
    p.length = length;
    p.heads = heads;
    p.kv_heads = kv_heads;
    p.head_dim = hd;
    for (std::int64_t u = 0; u < p.units(); ++u) cm::qkv_unit(p, u);
    auto in = [&](std::int64_t b, std::int64_t l, std::int64_t col) {
      const float x = qkv[static_cast<std::size_t>((b * length + l) * width + col)];
      return with_bias ? x + cm::bf16_to_f32(bias[static_cast<std::size_t>(col)]) : x;  // exact: quarter steps
    };
    for (std::int64_t b = 0; b < batch; ++b) {
      for (std::int64_t l = 0; l < length; ++l) {
        for (std::int64_t i = 0; i < half; ++i) {
          const float c = cos[static_cast<std::size_t>(l * half + i)], s = sin[static_cast<std::size_t>(l * half + i)];
          for (std::int64_t h = 0; h < heads; ++h) {  // the CPU backend's rotation of q head h
            const float x1 = in(b, l, h * hd + i), x2 = in(b, l, h * hd + i + half);
            const std::size_t at = static_cast<std::size_t>(((b * heads + h) * length + l) * hd + i);
            REQUIRE(q[at] == cm::f32_to_bf16(x1 * c - x2 * s));
            REQUIRE(q[at + half] == cm::f32_to_bf16(x2 * c + x1 * s));
          }
          for (std::int64_t g = 0; g < kv_heads; ++g) {
            const float x1 = in(b, l, d + g * hd + i), x2 = in(b, l, d + g * hd + i + half);
            const std::size_t at = static_cast<std::size_t>(((b * kv_heads + g) * length + l) * hd + i);
            REQUIRE(k[at] == cm::f32_to_bf16(x1 * c - x2 * s));
            REQUIRE(k[at + half] == cm::f32_to_bf16(x2 * c + x1 * s));
            REQUIRE(v[at] == cm::f32_to_bf16(in(b, l, d + kv + g * hd + i)));
            REQUIRE(v[at + half] == cm::f32_to_bf16(in(b, l, d + kv + g * hd + i + half)));
          }
        }
      }
    }
  }
}

TEST_CASE("merge_heads and the Dream logit shift map indices as documented", "[cuda_math]") {
  const std::int64_t batch = 2, length = 3, heads = 2, hd = 2;
  std::vector<std::uint16_t> oh(static_cast<std::size_t>(batch * heads * length * hd)), rows(oh.size());
  std::iota(oh.begin(), oh.end(), std::uint16_t{0});
  for (std::int64_t u = 0; u < static_cast<std::int64_t>(oh.size()); ++u) cm::merge_heads_unit(oh.data(), length, heads, hd, rows.data(), u);
  for (std::int64_t b = 0; b < batch; ++b)
    for (std::int64_t l = 0; l < length; ++l)
      for (std::int64_t h = 0; h < heads; ++h)
        for (std::int64_t c = 0; c < hd; ++c)
          REQUIRE(rows[static_cast<std::size_t>((b * length + l) * heads * hd + h * hd + c)] ==
                  oh[static_cast<std::size_t>(((b * heads + h) * length + l) * hd + c)]);
  CHECK(cm::lm_source_row(1, 0, 5, true) == 5);  // row 0 keeps its own
  CHECK(cm::lm_source_row(1, 3, 5, true) == 7);  // row i reads hidden state i-1
  CHECK(cm::lm_source_row(1, 3, 5, false) == 8);
}

TEST_CASE("GEMM descriptors compute the intended row-major products (BLAS column-major semantics)", "[cuda_math]") {
  std::mt19937 rng(9);
  cd::dims m;
  m.heads = 6;
  m.kv_heads = 2;  // group 3
  m.head_dim = 4;
  m.d = m.heads * m.head_dim;
  const std::int64_t batch = 2, length = 5, g = m.group(), hd = m.head_dim;
  auto to_f = [](std::uint16_t b) { return static_cast<double>(cm::bf16_to_f32(b)); };
  SECTION("linear: Y[b] = X[b] W^T + Y[b]") {
    const std::int64_t in = 7, out = 3;
    const auto x = random_bf16(static_cast<std::size_t>(batch * length * in), rng, 1.0f);
    const auto w = random_bf16(static_cast<std::size_t>(out * in), rng, 1.0f);
    std::vector<float> y(static_cast<std::size_t>(batch * length * out), 0.5f);
    const auto desc = cd::linear_desc("test", batch, length, out, in, cd::element::f32, true);
    mdlm::test::host_executor ex;
    ex.gemm(desc, w.data(), x.data(), y.data(), -1);
    for (std::int64_t r = 0; r < batch * length; ++r)
      for (std::int64_t o = 0; o < out; ++o) {
        double ref = 0.5;
        for (std::int64_t i = 0; i < in; ++i)
          ref += to_f(x[static_cast<std::size_t>(r * in + i)]) * to_f(w[static_cast<std::size_t>(o * in + i)]);
        REQUIRE(std::abs(y[static_cast<std::size_t>(r * out + o)] - ref) <= 1e-5);
      }
  }
  SECTION("scores and values with grouped-query heads") {
    const auto q = random_bf16(static_cast<std::size_t>(batch * m.heads * length * hd), rng, 1.0f);
    const auto k = random_bf16(static_cast<std::size_t>(batch * m.kv_heads * length * hd), rng, 1.0f);
    const auto v = random_bf16(k.size(), rng, 1.0f);
    const std::int64_t ld = 8;  // rows of 5 scores padded to 8, as activation_layout does
    const auto p = random_bf16(static_cast<std::size_t>(batch * m.heads * length * ld), rng, 1.0f);
    std::vector<float> s(p.size());
    std::vector<std::uint16_t> o(q.size());
    mdlm::test::host_executor ex;
    ex.gemm(cd::scores_desc(m, batch, length, ld), k.data(), q.data(), s.data(), -1);
    ex.gemm(cd::values_desc(m, batch, length, ld), v.data(), p.data(), o.data(), -1);
    const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
    for (std::int64_t b = 0; b < batch; ++b)
      for (std::int64_t h = 0; h < m.heads; ++h) {
        const std::int64_t kvh = h / g;  // repeat_interleave: query head h reads KV head h / group
        for (std::int64_t i = 0; i < length; ++i) {
          for (std::int64_t j = 0; j < length; ++j) {
            double ref = 0.0;
            for (std::int64_t c = 0; c < hd; ++c)
              ref += to_f(q[static_cast<std::size_t>(((b * m.heads + h) * length + i) * hd + c)]) *
                     to_f(k[static_cast<std::size_t>(((b * m.kv_heads + kvh) * length + j) * hd + c)]);
            REQUIRE(std::abs(s[static_cast<std::size_t>(((b * m.heads + h) * length + i) * ld + j)] - ref * scale) <= 1e-5);
          }
          for (std::int64_t c = 0; c < hd; ++c) {
            double ref = 0.0;
            for (std::int64_t j = 0; j < length; ++j)
              ref += to_f(p[static_cast<std::size_t>(((b * m.heads + h) * length + i) * ld + j)]) *
                     to_f(v[static_cast<std::size_t>(((b * m.kv_heads + kvh) * length + j) * hd + c)]);
            const float got = cm::bf16_to_f32(o[static_cast<std::size_t>(((b * m.heads + h) * length + i) * hd + c)]);
            REQUIRE(std::abs(got - ref) <= std::abs(ref) * 0x1p-8 + 1e-6);
          }
        }
      }
  }
}

TEST_CASE("uniform_pm1 (random benchmark weights) is uniform on [-1, 1)", "[cuda_math]") {
  double sum = 0.0, sq = 0.0;
  const int n = 200000;
  for (int i = 0; i < n; ++i) {
    const float u = cm::uniform_pm1(42, static_cast<std::uint64_t>(i));
    REQUIRE(u >= -1.0f);
    REQUIRE(u < 1.0f);
    sum += u;
    sq += static_cast<double>(u) * u;
  }
  // mean 0 and variance 1/3; 5-sigma bounds (sd of the mean 0.0013, of the variance 0.0007).
  CHECK(std::abs(sum / n) < 0.0065);
  CHECK(std::abs(sq / n - 1.0 / 3.0) < 0.0035);
}

#if MDLM_TEST_HAVE_CUDA
TEST_CASE("memory plan: 2 bytes per parameter of weights, activations of the stated layouts", "[cuda_math]") {
  for (auto arch : {mdlm::hf::architecture::llada, mdlm::hf::architecture::dream}) {
    mdlm::cpu::tiny_checkpoint_spec spec;
    spec.arch = arch;
    spec.kv_heads = 2;
    const auto cfg = mdlm::cpu::parse_model_config(mdlm::cpu::tiny_config_json(spec), "tiny");
    const auto p = mdlm::cuda::plan_memory(cfg, 2, 17);
    const std::size_t tensors = mdlm::hf::expected_tensors(cfg).size();
    CHECK(p.weights >= 2 * cfg.parameter_count());
    CHECK(p.weights <= 2 * cfg.parameter_count() + 256 * tensors);
    CHECK(p.logits == 128 * cfg.vocab_size * 4);  // 34 rows round up to one chunk of 128
    // the fp32 scores and bf16 probabilities of batch x heads x L x L are part of the activations
    CHECK(p.activations >= 2 * cfg.n_heads * 17 * 24 * 6);  // rows of 17 scores padded to 24
    CHECK(p.total() == p.weights + p.activations + p.logits + p.workspace + p.reserve);
    CHECK_THROWS_AS(mdlm::cuda::plan_memory(cfg, 0, 17), std::invalid_argument);
  }
}
#endif

// --- the whole data flow -----------------------------------------------------------------------------

TEST_CASE("the CUDA data flow on the host matches the CPU backend within bf16 tolerance", "[cuda_math][forward]") {
  // Tolerance (justified in docs/architecture.md, "The CUDA model", Numerics): every logit within
  // 0.03 * (1 + |logit|) of the CPU backend's fp32 forward, and the RMS error below 1 % of the logits'
  // RMS. bf16 keeps 8 significant bits (unit roundoff 2^-8 = 0.4 %, about 0.2 % RMS for one rounding
  // of a random value); a 2-layer forward rounds each activation about 12 times on its way to a logit,
  // and independent rounding errors add like a random walk (sqrt(12) * 0.2 % = 0.7 % RMS). A layout or
  // index bug gives errors of the order of the logits themselves.
  const std::vector<mdlm::test::tiny_shape> cases{
      {mdlm::hf::architecture::llada, 4, 4, 64, 96, 2},  // LLaDA-tiny (models.md section 6)
      {mdlm::hf::architecture::llada, 4, 2, 64, 96, 2},  // LLaDA with GQA
      {mdlm::hf::architecture::dream, 4, 2, 64, 96, 2},  // Dream-tiny: GQA + q/k/v biases + logit shift
      {mdlm::hf::architecture::dream, 8, 1, 64, 80, 1},  // Dream, one KV head (MQA), head_dim 8
      {mdlm::hf::architecture::dream, 4, 4, 32, 48, 3},  // Dream without GQA, 3 layers
  };
  const std::size_t lengths[] = {13, 9, 11, 7, 5};
  std::mt19937 rng(2026);
  std::size_t idx = 0;
  for (const auto& fc : cases) {
    const std::size_t length = lengths[idx];
    const auto spec = fc.spec(100 + idx);
    const auto dir = mdlm::test::scratch_dir("cuda-forward-" + std::to_string(idx++));
    mdlm::cpu::write_tiny_checkpoint(spec, dir);
    const auto ckpt = mdlm::hf::checkpoint::open(dir);
    mdlm::cpu::model cpu_model(ckpt, {.threads = 1});
    mdlm::test::emulated_model emu(ckpt);
    const std::size_t vocab = cpu_model.vocab_size(), batch = 2;
    INFO("arch " << mdlm::hf::architecture_name(fc.arch) << ", heads " << fc.heads << "/" << fc.kv_heads << ", d "
                 << fc.d_model << ", layers " << fc.layers << ", length " << length);
    const auto tokens = mdlm::test::random_canvas(batch * length, vocab, cpu_model.mask_token(), rng);
    std::vector<float> ref(tokens.size() * vocab);
    cpu_model.batch_logits(tokens, batch, ref);
    const auto got = emu.batch_logits(tokens, batch);
    REQUIRE(got.size() == ref.size());
    for (float x : got) REQUIRE(std::isfinite(x));
    const auto [rel_rms, worst] = mdlm::test::compare_logits(got, ref);
    INFO("relative RMS error " << rel_rms << ", worst |error| / (1 + |logit|) " << worst);
    CHECK(rel_rms < 0.01);
    CHECK(worst < 0.03);

    // One sequence alone gives the bits of its rows in the batch (the emulation runs the same
    // per-sequence descriptors), and a gathered, permuted subset of rows the bits of the full rows.
    const auto second = emu.batch_logits(std::span<const token_id>(tokens).subspan(length, length), 1);
    for (std::size_t i = 0; i < second.size(); ++i) REQUIRE(second[i] == got[length * vocab + i]);
    std::vector<std::size_t> rows{2 * length - 1, 0, length, 1, length};
    const auto sub = emu.logits_rows(tokens, batch, rows);
    for (std::size_t j = 0; j < rows.size(); ++j)
      for (std::size_t v = 0; v < vocab; ++v) REQUIRE(sub[j * vocab + v] == got[rows[j] * vocab + v]);
    std::filesystem::remove_all(dir);
  }
}

// SPDX-License-Identifier: MIT
#pragma once
// Shared pieces of mdlm_bench: synthetic logit matrices (cached per shape, filled once) and the
// memory-bandwidth probe every statistics kernel is compared against.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <tuple>
#include <vector>

#include "mdlm/kernels/half.hpp"
#include "mdlm/kernels/simd.hpp"
#include "mdlm/kernels/thread_pool.hpp"

namespace mdlm::bench {

//! Fills `out` with logit-like values: approximately normal (sum of three uniforms) with standard
//! deviation ~3, from a 64-bit LCG (fast: the matrices reach 600 MB).
inline void fill_logits(float* out, std::size_t n, std::uint64_t seed) {
  std::uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
  const auto next = [&] {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<float>(s >> 40) * (1.0f / 16777216.0f);
  };
  for (std::size_t i = 0; i < n; ++i) out[i] = (next() + next() + next() - 1.5f) * 6.0f;
}

//! An L x V logit matrix of element type T, kept while the benchmarks of one shape and type run
//! (one matrix per type at a time, so memory stays below ~1 GB).
template <class T>
const std::vector<T>& logits(std::size_t rows, std::size_t vocab) {
  static std::vector<T> data;
  static std::pair<std::size_t, std::size_t> shape{0, 0};
  if (shape != std::make_pair(rows, vocab)) {
    data.clear();
    data.shrink_to_fit();
    std::vector<float> row(vocab);
    data.resize(rows * vocab);
    for (std::size_t r = 0; r < rows; ++r) {
      fill_logits(row.data(), vocab, r + 1);
      for (std::size_t v = 0; v < vocab; ++v) {
        if constexpr (std::is_same_v<T, float>) data[r * vocab + v] = row[v];
        else data[r * vocab + v] = T::from_float(row[v]);
      }
    }
    shape = {rows, vocab};
  }
  return data;
}

//! The thread pool of a benchmark with `threads` threads (one pool per size, kept for the run).
inline thread_pool& pool(std::size_t threads) {
  static std::map<std::size_t, std::unique_ptr<thread_pool>> pools;
  auto& p = pools[threads];
  if (!p) p = std::make_unique<thread_pool>(threads);
  return *p;
}

namespace detail {
typedef float probe_v16 __attribute__((vector_size(64)));
typedef float probe_v4 __attribute__((vector_size(16)));

// The probe: a max-reduction over the bytes as floats with four independent accumulators, the
// cheapest computation that must read every byte (a plain streaming read that the compiler cannot
// remove). AVX-512 loads where the CPU has them, 16-byte loads otherwise.
#if MDLM_KERNELS_X86
__attribute__((target("avx512f"))) inline float probe_read_avx512(const float* p, std::size_t n) noexcept {
  probe_v16 a[4];
  for (auto& x : a) x = probe_v16{} - std::numeric_limits<float>::infinity();
  std::size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    for (int j = 0; j < 4; ++j) {
      probe_v16 x;
      std::memcpy(&x, p + i + 16 * static_cast<std::size_t>(j), sizeof x);
      a[j] = a[j] > x ? a[j] : x;
    }
  }
  float m = -std::numeric_limits<float>::infinity();
  for (int j = 0; j < 4; ++j)
    for (int k = 0; k < 16; ++k) m = std::max(m, a[j][k]);
  for (; i < n; ++i) m = std::max(m, p[i]);
  return m;
}
#endif
inline float probe_read_baseline(const float* p, std::size_t n) noexcept {
  probe_v4 a[4];
  for (auto& x : a) x = probe_v4{} - std::numeric_limits<float>::infinity();
  std::size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    for (int j = 0; j < 4; ++j) {
      probe_v4 x;
      std::memcpy(&x, p + i + 4 * static_cast<std::size_t>(j), sizeof x);
      a[j] = a[j] > x ? a[j] : x;
    }
  }
  float m = -std::numeric_limits<float>::infinity();
  for (int j = 0; j < 4; ++j)
    for (int k = 0; k < 4; ++k) m = std::max(m, a[j][k]);
  for (; i < n; ++i) m = std::max(m, p[i]);
  return m;
}
}  // namespace detail

//! Reads `bytes` bytes at `data` once, split into `pool.size()` equal contiguous parts, one per
//! thread; returns a value depending on every byte.
inline float probe_read(const void* data, std::size_t bytes, thread_pool& tp) noexcept {
  const auto* f = static_cast<const float*>(data);
  const std::size_t n = bytes / sizeof(float);
  const std::size_t parts = tp.size();
  float result[64] = {};
  struct ctx_t {
    const float* f;
    std::size_t n, parts;
    float* result;
  } ctx{f, n, parts, result};
  tp.run(
      parts,
      [](void* c, std::size_t t) noexcept {
        const auto* x = static_cast<const ctx_t*>(c);
        const std::size_t b = x->n * t / x->parts, e = x->n * (t + 1) / x->parts;
#if MDLM_KERNELS_X86
        if (mdlm::detected_isa() == mdlm::simd_isa::avx512) {
          x->result[t] = detail::probe_read_avx512(x->f + b, e - b);
          return;
        }
#endif
        x->result[t] = detail::probe_read_baseline(x->f + b, e - b);
      },
      &ctx);
  float m = result[0];
  for (std::size_t t = 1; t < parts; ++t) m = std::max(m, result[t]);
  return m;
}

//! Bytes per second of `probe_read` over `bytes` bytes at `data` with `threads` threads: the best
//! of 7 reads (the first one also warms the pages), measured once per (data, bytes, threads) and
//! cached, so every kernel of the same shape is compared with the same figure.
inline double probe_bandwidth(const void* data, std::size_t bytes, std::size_t threads) {
  static std::map<std::tuple<const void*, std::size_t, std::size_t>, double> cache;
  const auto key = std::make_tuple(data, bytes, threads);
  if (auto it = cache.find(key); it != cache.end()) return it->second;
  double best = 0.0;
  volatile float sink = 0.0f;
  for (int rep = 0; rep < 7; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    sink = sink + probe_read(data, bytes, pool(threads));
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, static_cast<double>(bytes) / s);
  }
  cache[key] = best;
  return best;
}

}  // namespace mdlm::bench

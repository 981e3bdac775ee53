// SPDX-License-Identifier: MIT
// The CPU backend's matrix product (mdlm/cpu/gemm.hpp), whichever library is behind it: both operand
// layouts, accumulation, row strides wider than the rows, against a double-precision product.
#include "mdlm/cpu/gemm.hpp"

#include <catch2/catch.hpp>
#include <cmath>
#include <random>
#include <vector>

using mdlm::cpu::b_layout;

TEST_CASE("cpu gemm: C = A op(B) (+ C) for both layouts and padded strides", "[cpu][gemm]") {
  // Odd sizes (no multiple of any kernel's unroll) and one size beyond the small-matrix paths.
  const auto [m, n, k] = GENERATE(std::tuple<std::size_t, std::size_t, std::size_t>{1, 1, 1},
                                  std::tuple<std::size_t, std::size_t, std::size_t>{7, 13, 5},
                                  std::tuple<std::size_t, std::size_t, std::size_t>{37, 70, 129},
                                  std::tuple<std::size_t, std::size_t, std::size_t>{200, 150, 300});
  const auto layout = GENERATE(b_layout::n_by_k, b_layout::k_by_n);
  const bool accumulate = GENERATE(false, true);
  CAPTURE(m, n, k, layout == b_layout::n_by_k, accumulate);
  const std::size_t lda = k + 3, ldc = n + 5;
  const std::size_t b_rows = layout == b_layout::n_by_k ? n : k, b_cols = layout == b_layout::n_by_k ? k : n;
  const std::size_t ldb = b_cols + 2;
  std::mt19937 gen(static_cast<unsigned>(m * 1000 + n * 10 + k));
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> a(m * lda), b(b_rows * ldb), c(m * ldc);
  for (auto& v : a) v = u(gen);
  for (auto& v : b) v = u(gen);
  for (auto& v : c) v = u(gen);
  const std::vector<float> c0 = c;
  mdlm::cpu::gemm(m, n, k, a.data(), lda, b.data(), ldb, layout, c.data(), ldc, accumulate);
  double worst = 0.0;
  for (std::size_t i = 0; i < m; ++i) {
    for (std::size_t j = 0; j < n; ++j) {
      double want = accumulate ? c0[i * ldc + j] : 0.0;
      for (std::size_t p = 0; p < k; ++p)
        want += static_cast<double>(a[i * lda + p]) * (layout == b_layout::n_by_k ? b[j * ldb + p] : b[p * ldb + j]);
      worst = std::max(worst, std::abs(want - c[i * ldc + j]));
    }
    // The padding between rows is never written.
    for (std::size_t j = n; j < ldc; ++j) REQUIRE(c[i * ldc + j] == c0[i * ldc + j]);
  }
  // fp32 accumulation of k products of magnitude <= 1: error well below k * 2^-23 * sqrt(k).
  CHECK(worst <= 1e-6 * static_cast<double>(k) + 1e-6);
}

TEST_CASE("cpu gemm: names its library; thread scopes nest", "[cpu][gemm]") {
  const std::string name = mdlm::cpu::gemm_library();
  INFO(name);
  CHECK((name.starts_with("OpenBLAS") || name.starts_with("Eigen")));
  {
    const mdlm::cpu::blas_thread_scope outer;
    const mdlm::cpu::blas_thread_scope inner;
    std::vector<float> a(4, 1.0f), b(4, 2.0f), c(4, 0.0f);
    mdlm::cpu::gemm(2, 2, 2, a.data(), 2, b.data(), 2, b_layout::k_by_n, c.data(), 2, false);
    CHECK(c == std::vector<float>(4, 4.0f));
  }
}

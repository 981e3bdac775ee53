// SPDX-License-Identifier: MIT
#include "mdlm/cpu/gemm.hpp"

#include <string>

#if MDLM_CPU_OPENBLAS
#include <cblas.h>

#include <mutex>
#else
#include <Eigen/Core>
#endif

namespace mdlm::cpu {

#if MDLM_CPU_OPENBLAS

void gemm(std::size_t m, std::size_t n, std::size_t k, const float* a, std::size_t lda, const float* b,
          std::size_t ldb, b_layout layout, float* c, std::size_t ldc, bool accumulate) noexcept {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, layout == b_layout::n_by_k ? CblasTrans : CblasNoTrans, static_cast<blasint>(m), static_cast<blasint>(n),
              static_cast<blasint>(k), 1.0f, a, static_cast<blasint>(lda), b, static_cast<blasint>(ldb),
              accumulate ? 1.0f : 0.0f, c, static_cast<blasint>(ldc));
}

std::string gemm_library() {
  // openblas_get_parallel: 0 serial, 1 pthreads, 2 OpenMP build.
  static constexpr const char* threading[] = {"serial", "pthreads", "OpenMP"};
  const int p = openblas_get_parallel();
  return std::string(openblas_get_config()) + ", " + openblas_get_corename() + " kernels, " +
         (p >= 0 && p <= 2 ? threading[p] : "unknown") + " build";
}

namespace {

// Scopes alive in the process, and OpenBLAS's thread count before the first of them.
std::mutex scope_mutex;
int scopes_alive = 0;
int saved_threads = 1;

// Only the pthreads build splits a call over its own threads from inside an OpenMP region; the
// OpenMP build's openblas_set_num_threads would change omp_set_num_threads, so it is left alone.
bool pthreads_build() { return openblas_get_parallel() == 1; }

}  // namespace

blas_thread_scope::blas_thread_scope() {
  if (!pthreads_build()) return;
  const std::lock_guard lock(scope_mutex);
  if (scopes_alive++ == 0) {
    saved_threads = openblas_get_num_threads();
    if (saved_threads != 1) openblas_set_num_threads(1);
  }
}

blas_thread_scope::~blas_thread_scope() {
  if (!pthreads_build()) return;
  const std::lock_guard lock(scope_mutex);
  if (--scopes_alive == 0 && saved_threads != 1) openblas_set_num_threads(saved_threads);
}

#else

void gemm(std::size_t m, std::size_t n, std::size_t k, const float* a, std::size_t lda, const float* b,
          std::size_t ldb, b_layout layout, float* c, std::size_t ldc, bool accumulate) noexcept {
  using row_matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using stride = Eigen::OuterStride<>;
  using index = Eigen::Index;
  using const_map = Eigen::Map<const row_matrix, Eigen::Unaligned, stride>;
  const const_map am(a, static_cast<index>(m), static_cast<index>(k), stride(static_cast<index>(lda)));
  Eigen::Map<row_matrix, Eigen::Unaligned, stride> cm(c, static_cast<index>(m), static_cast<index>(n),
                                                       stride(static_cast<index>(ldc)));
  auto apply = [&](const auto& product) {
    if (accumulate) {
      cm.noalias() += product;
    } else {
      cm.noalias() = product;
    }
  };
  if (layout == b_layout::n_by_k) {
    apply(am * const_map(b, static_cast<index>(n), static_cast<index>(k), stride(static_cast<index>(ldb))).transpose());
  } else {
    apply(am * const_map(b, static_cast<index>(k), static_cast<index>(n), stride(static_cast<index>(ldb))));
  }
}

std::string gemm_library() {
  return "Eigen " + std::to_string(EIGEN_WORLD_VERSION) + "." + std::to_string(EIGEN_MAJOR_VERSION) + "." +
         std::to_string(EIGEN_MINOR_VERSION) + " (" + Eigen::SimdInstructionSetsInUse() + ")";
}

blas_thread_scope::blas_thread_scope() = default;
blas_thread_scope::~blas_thread_scope() = default;

#endif

}  // namespace mdlm::cpu

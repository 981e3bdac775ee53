// SPDX-License-Identifier: MIT
#pragma once
//! @file
//! The single-precision matrix product behind every matrix multiplication of the CPU forward
//! (mdlm::cpu::model): OpenBLAS's `cblas_sgemm` where the backend was built with it (CMake option
//! MDLM_CPU_BLAS, default `auto`: OpenBLAS when found), else Eigen's product.
//!
//! OpenBLAS picks its kernels for the running processor at load (Debian builds it with
//! DYNAMIC_ARCH), so a build without any `-march` flag runs AVX-512 / AVX2 kernels where the machine
//! has them. The forward splits its products over OpenMP threads itself, in fixed chunks of output
//! features, and calls `gemm` single-threaded on each: every output element is computed by the
//! same call with the same shapes whatever the thread count, hence bitwise identical logits.

#include <cstddef>
#include <string>

namespace mdlm::cpu {

//! How the second operand B of `gemm` is stored (row-major, row stride ldb).
enum class b_layout {
  n_by_k,  //!< B is n x k and the product uses B^T (PyTorch's nn.Linear weight layout: C = A W^T)
  k_by_n,  //!< B is k x n and the product uses B as it is (C = A B)
};

//! C (m x n, row stride ldc) = A (m x k, row stride lda) * op(B), op(B) = B^T for b_layout::n_by_k
//! and B for b_layout::k_by_n; with `accumulate`, C += A * op(B) instead.
//!
//! Runs on the calling thread only (inside a `blas_thread_scope` under the pthreads build of
//! OpenBLAS; the OpenMP build of OpenBLAS runs single-threaded inside OpenMP parallel regions by
//! itself, and Eigen's thread count is set to 1 by the model). The result depends only on the
//! operands and the shapes, never on the thread count or on other calls.
//! Preconditions (not checked: a hot path): lda >= k, ldb >= k (n_by_k) or n (k_by_n), ldc >= n,
//! C not overlapping A or B.
void gemm(std::size_t m, std::size_t n, std::size_t k, const float* a, std::size_t lda, const float* b,
          std::size_t ldb, b_layout layout, float* c, std::size_t ldc, bool accumulate) noexcept;

//! The library behind `gemm`, for benchmark reports: OpenBLAS's configuration string, the kernels
//! it chose for this processor and its threading build, or "Eigen <version> (<instruction sets
//! compiled in>)".
[[nodiscard]] std::string gemm_library();

//! While alive, OpenBLAS runs every call on the calling thread (`openblas_set_num_threads(1)` under
//! the pthreads build, restored when the last scope of the process ends; nothing to do under the
//! OpenMP or serial builds, nor with Eigen). The model holds one for each forward, so its own OpenMP
//! threads are the only parallelism (no oversubscription, and no thread-count-dependent splitting
//! inside the library). Scopes nest and may live on several threads at once. Note: under the
//! pthreads build the setting is process-wide, so other OpenBLAS users of the process run
//! single-threaded while a forward runs.
class blas_thread_scope {
 public:
  blas_thread_scope();
  ~blas_thread_scope();
  blas_thread_scope(const blas_thread_scope&) = delete;
  blas_thread_scope& operator=(const blas_thread_scope&) = delete;
};

}  // namespace mdlm::cpu

// SPDX-License-Identifier: MIT
#pragma once
// cuBLASLt execution of forward.hpp's gemm_desc: one cached plan (operation, layouts, algorithm) per
// distinct shape and operand alignment, made on first use, so a decode step after the first only
// runs cublasLtMatmul. The algorithm is chosen by cuBLASLt's heuristic for `unit_batch` batch
// elements; when cuBLASLt accepts the same algorithm for the whole batch (cublasLtMatmulAlgoCheck),
// one call runs it, otherwise batch / unit_batch calls do. Either way every batch element is computed
// by the same algorithm, hence with the same rounding, whatever the batch size.
#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "forward.hpp"

namespace mdlm::cuda::detail {

class lt_gemm {
 public:
  lt_gemm();
  ~lt_gemm();
  lt_gemm(const lt_gemm&) = delete;
  lt_gemm& operator=(const lt_gemm&) = delete;

  //! Enqueues `g` on `stream` (A, B bf16; C fp32 or bf16 as g.c_type). Errors name `context`, the
  //! layer (-1: none), the step and the shape. Allocates nothing once the shape's plan exists.
  void run(const gemm_desc& g, const void* a, const void* b, void* c, void* workspace, std::size_t workspace_bytes,
           cudaStream_t stream, const char* context, int layer);
  //! Forgets every cached plan (the activation buffers moved).
  void clear() noexcept;
  //! Plans made so far, and how many of them run the whole batch in one call.
  [[nodiscard]] std::size_t plans() const noexcept { return plans_.size(); }
  [[nodiscard]] std::size_t batched_plans() const noexcept;

 private:
  struct plan {
    gemm_desc g;
    std::uint32_t align_a = 0, align_b = 0, align_c = 0;
    cublasLtMatmulDesc_t op = nullptr;
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;     // whole batch
    cublasLtMatrixLayout_t a1 = nullptr, b1 = nullptr, c1 = nullptr;  // unit_batch elements
    cublasLtMatmulAlgo_t algo{};
    bool whole_batch = false;
  };
  plan& find_or_make(const gemm_desc& g, std::uint32_t aa, std::uint32_t ab, std::uint32_t ac, std::size_t workspace_bytes,
                     const std::string& what);
  static void destroy(plan& p) noexcept;

  cublasLtHandle_t handle_ = nullptr;
  std::vector<plan> plans_;
};

//! "<context>, layer <l>: <step> (m .. x n .. x k .., batch b of unit u)" for messages.
std::string describe(const gemm_desc& g, const char* context, int layer);

}  // namespace mdlm::cuda::detail

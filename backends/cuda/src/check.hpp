// SPDX-License-Identifier: MIT
#pragma once
// Status checks of CUDA runtime and cuBLASLt calls: every failure becomes mdlm::cuda::cuda_error
// whose message names the call, the step of the forward and the shape it was working on.
#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <string>
#include <type_traits>

#include "mdlm/cuda/device.hpp"

namespace mdlm::cuda::detail {

//! `what` as a string: itself, or what a callable returns.
template <class What>
std::string what_text(What&& what) {
  if constexpr (std::is_invocable_v<What>) return std::string(what());
  else return std::string(what);
}

//! Throws cuda_error "<what>: <CUDA error name>: <error string>" when `e` is not cudaSuccess. `what`
//! is a string or a callable returning one; a callable is only called on failure, so checks on the
//! hot path allocate nothing.
template <class What>
void check_cuda(cudaError_t e, What&& what) {
  if (e == cudaSuccess) [[likely]]
    return;
  throw cuda_error(what_text(what) + ": " + cudaGetErrorName(e) + ": " + cudaGetErrorString(e));
}

//! Throws cuda_error "<what>: <cuBLAS status name>: <status string>" when `s` is not success (`what`
//! as for check_cuda).
template <class What>
void check_cublas(cublasStatus_t s, What&& what) {
  if (s == CUBLAS_STATUS_SUCCESS) [[likely]]
    return;
  throw cuda_error(what_text(what) + ": " + cublasLtGetStatusName(s) + ": " + cublasLtGetStatusString(s));
}

}  // namespace mdlm::cuda::detail

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

//! Throws cuda_error "<what>: <CUDA error name>: <error string>" when `e` is not cudaSuccess. `what`
//! is a string or a callable returning one; a callable is only called on failure, so checks on the
//! hot path allocate nothing.
template <class What>
void check_cuda(cudaError_t e, What&& what) {
  if (e == cudaSuccess) [[likely]]
    return;
  std::string m;
  if constexpr (std::is_invocable_v<What>) m = what();
  else m = std::string(what);
  throw cuda_error(m + ": " + cudaGetErrorName(e) + ": " + cudaGetErrorString(e));
}

//! Throws cuda_error "<what>: <cuBLAS status name>: <status string>" when `s` is not success (`what`
//! as for check_cuda).
template <class What>
void check_cublas(cublasStatus_t s, What&& what) {
  if (s == CUBLAS_STATUS_SUCCESS) [[likely]]
    return;
  std::string m;
  if constexpr (std::is_invocable_v<What>) m = what();
  else m = std::string(what);
  throw cuda_error(m + ": " + cublasLtGetStatusName(s) + ": " + cublasLtGetStatusString(s));
}

}  // namespace mdlm::cuda::detail

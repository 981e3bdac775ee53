// SPDX-License-Identifier: MIT
// A one-block kernel that proves this build's device code runs on the current device (right
// architecture, working driver): each thread writes 3 * i + 1, the host checks every value.
#include <cuda_runtime.h>

#include "self_test.hpp"

namespace mdlm::cuda::detail {

namespace {
__global__ void self_test_kernel(int* out, int n) {
  const int i = static_cast<int>(threadIdx.x);
  if (i < n) out[i] = 3 * i + 1;
}
}  // namespace

const char* launch_self_test(int* device_out, int n) {
  self_test_kernel<<<1, 128>>>(device_out, n);
  const cudaError_t e = cudaGetLastError();
  return e == cudaSuccess ? nullptr : cudaGetErrorName(e);
}

}  // namespace mdlm::cuda::detail

// SPDX-License-Identifier: MIT
// The device row-statistics kernels: one block of rows::threads threads per requested row runs
// rows::process_row (row_stats_kernels.hpp, the same code the host emulation runs), and a small
// kernel that bans token ids in place.
#include <cuda_runtime.h>

#include "row_stats_launch.hpp"

namespace mdlm::cuda::detail {

namespace {

//! The device executor of rows::process_row: every thread runs the step, then the block syncs.
struct device_exec {
  template <class F>
  __device__ void for_threads(F&& f) {
    f(static_cast<int>(threadIdx.x));
    __syncthreads();
  }
};

__global__ void __launch_bounds__(rows::threads)
    row_stats_kernel(rows::launch_params p, const rows::row_job* jobs, rows::row_out* out) {
  __shared__ rows::block_scratch b;
  device_exec ex;
  rows::process_row(ex, b, p, jobs[blockIdx.x]);
  if (threadIdx.x == 0) out[blockIdx.x] = b.out;
}

//! logits[src[r] * ld + banned[j]] = -inf for every row r and banned id j.
__global__ void ban_kernel(void* logits, rows::dtype type, std::int64_t ld, const rows::row_job* jobs,
                           std::int64_t n_rows, const std::int32_t* banned, std::int64_t n_banned) {
  const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n_rows * n_banned) return;
  const std::int64_t at = jobs[i / n_banned].src * ld + banned[i % n_banned];
  switch (type) {
    case rows::dtype::bf16: static_cast<std::uint16_t*>(logits)[at] = 0xFF80u; break;  // -inf
    case rows::dtype::f16: static_cast<std::uint16_t*>(logits)[at] = 0xFC00u; break;   // -inf
    default: static_cast<float*>(logits)[at] = math::neg_inf(); break;
  }
}

}  // namespace

cudaError_t launch_row_stats(const rows::launch_params& p, const rows::row_job* jobs, std::int64_t n_rows,
                             rows::row_out* out, cudaStream_t stream) {
  if (n_rows <= 0) return cudaSuccess;
  row_stats_kernel<<<static_cast<unsigned int>(n_rows), rows::threads, 0, stream>>>(p, jobs, out);
  return cudaGetLastError();
}

cudaError_t launch_ban(void* logits, rows::dtype type, std::int64_t ld, const rows::row_job* jobs, std::int64_t n_rows,
                       const std::int32_t* banned, std::int64_t n_banned, cudaStream_t stream) {
  const std::int64_t n = n_rows * n_banned;
  if (n <= 0) return cudaSuccess;
  ban_kernel<<<static_cast<unsigned int>((n + 255) / 256), 256, 0, stream>>>(logits, type, ld, jobs, n_rows, banned,
                                                                            n_banned);
  return cudaGetLastError();
}

}  // namespace mdlm::cuda::detail

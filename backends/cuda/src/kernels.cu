// SPDX-License-Identifier: MIT
// The CUDA forward's kernels: thin wrappers that map CUDA threads onto the work units and block
// reductions of kernel_math.hpp (which the CPU tests run too). Element-wise kernels use a grid-stride
// loop over their units; row kernels use one block of math::block_threads threads per row and the
// shared-memory tree of math::tree_sum / math::softmax_tree.
#include <cuda_runtime.h>

#include "kernels.hpp"

namespace mdlm::cuda::detail {

namespace {

constexpr int threads = math::block_threads;

// Blocks for a grid-stride loop over n units (at most 65536 blocks; the loop covers the rest).
unsigned int grid_for(std::int64_t n) {
  const std::int64_t blocks = (n + threads - 1) / threads;
  return static_cast<unsigned int>(blocks < 65536 ? (blocks < 1 ? 1 : blocks) : 65536);
}

template <class Op>
__global__ void __launch_bounds__(threads) elementwise_kernel(Op op, std::int64_t n) {
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t u = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; u < n; u += stride) op(u);
}

template <class Op>
cudaError_t launch_elementwise(const Op& op, std::int64_t n, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  elementwise_kernel<<<grid_for(n), threads, 0, stream>>>(op, n);
  return cudaGetLastError();
}

struct embed_op {
  const std::int32_t* tokens;
  const std::uint16_t* table;
  std::int64_t d;
  float* h;
  __device__ void operator()(std::int64_t u) const { math::embed_unit(tokens, table, d, h, u); }
};

struct qkv_op {
  math::qkv_params p;
  __device__ void operator()(std::int64_t u) const { math::qkv_unit(p, u); }
};

struct merge_heads_op {
  const std::uint16_t* heads_major;
  std::int64_t length, heads, head_dim;
  std::uint16_t* rows;
  __device__ void operator()(std::int64_t u) const {
    math::merge_heads_unit(heads_major, length, heads, head_dim, rows, u);
  }
};

struct silu_mul_op {
  const std::uint16_t* gu;
  std::int64_t m;
  std::uint16_t* out;
  __device__ void operator()(std::int64_t u) const { math::silu_mul_unit(gu, m, out, u); }
};

struct fill_op {
  std::uint16_t* dst;
  std::uint64_t seed;
  float offset, scale;
  __device__ void operator()(std::int64_t u) const {
    dst[u] = math::f32_to_bf16(math::fma_rn(scale, math::uniform_pm1(seed, static_cast<std::uint64_t>(u)), offset));
  }
};

__global__ void __launch_bounds__(threads) rms_norm_kernel(const float* x, const std::int32_t* index, std::int64_t d,
                                                           const std::uint16_t* w, float eps, std::uint16_t* out) {
  __shared__ float partial[threads];
  const std::int64_t r = blockIdx.x;
  const int t = static_cast<int>(threadIdx.x);
  const std::int64_t src = index != nullptr ? index[r] : r;
  std::uint16_t* y = out + r * d;
  if (src < 0) {  // padding row of the LM head: the same branch for the whole block
    for (std::int64_t i = t; i < d; i += threads) y[i] = 0;
    return;
  }
  const float* xr = x + src * d;
  partial[t] = math::sum_squares_partial(xr, d, t, threads);
  __syncthreads();
  for (int s = threads / 2; s > 0; s /= 2) {  // the order of math::tree_sum
    if (t < s) partial[t] = math::add_rn(partial[t], partial[t + s]);
    __syncthreads();
  }
  const float inv = math::rms_inverse(partial[0], d, eps);
  for (std::int64_t i = t; i < d; i += threads) y[i] = math::rms_apply(xr[i], inv, w[i]);
}

__global__ void __launch_bounds__(threads) softmax_kernel(const float* s, std::int64_t cols, std::int64_t ld,
                                                          std::uint16_t* p) {
  __shared__ float part_max[threads];
  __shared__ float part_sum[threads];
  const std::int64_t r = blockIdx.x;
  const int t = static_cast<int>(threadIdx.x);
  const float* row = s + r * ld;
  const math::softmax_state mine = math::softmax_partial(row, cols, t, threads);
  part_max[t] = mine.max;
  part_sum[t] = mine.sum;
  __syncthreads();
  for (int k = threads / 2; k > 0; k /= 2) {  // the order of math::softmax_tree
    if (t < k) {
      const math::softmax_state m = math::softmax_merge({part_max[t], part_sum[t]}, {part_max[t + k], part_sum[t + k]});
      part_max[t] = m.max;
      part_sum[t] = m.sum;
    }
    __syncthreads();
  }
  const math::softmax_state total{part_max[0], part_sum[0]};
  std::uint16_t* out = p + r * ld;
  for (std::int64_t i = t; i < cols; i += threads) out[i] = math::softmax_prob(row[i], total);
}

}  // namespace

cudaError_t launch_embed(const std::int32_t* tokens, std::int64_t rows, const std::uint16_t* table, std::int64_t d,
                         float* h, cudaStream_t stream) {
  return launch_elementwise(embed_op{tokens, table, d, h}, rows * d, stream);
}

cudaError_t launch_rms_norm(const float* x, const std::int32_t* index, std::int64_t rows, std::int64_t d,
                            const std::uint16_t* w, float eps, std::uint16_t* out, cudaStream_t stream) {
  if (rows <= 0) return cudaSuccess;
  rms_norm_kernel<<<static_cast<unsigned int>(rows), threads, 0, stream>>>(x, index, d, w, eps, out);
  return cudaGetLastError();
}

cudaError_t launch_qkv(const math::qkv_params& p, cudaStream_t stream) {
  return launch_elementwise(qkv_op{p}, p.units(), stream);
}

cudaError_t launch_softmax(const float* s, std::int64_t rows, std::int64_t cols, std::int64_t ld, std::uint16_t* p,
                           cudaStream_t stream) {
  if (rows <= 0) return cudaSuccess;
  softmax_kernel<<<static_cast<unsigned int>(rows), threads, 0, stream>>>(s, cols, ld, p);
  return cudaGetLastError();
}

cudaError_t launch_merge_heads(const std::uint16_t* heads_major, std::int64_t batch, std::int64_t length,
                               std::int64_t heads, std::int64_t head_dim, std::uint16_t* rows, cudaStream_t stream) {
  return launch_elementwise(merge_heads_op{heads_major, length, heads, head_dim, rows},
                            batch * length * heads * head_dim, stream);
}

cudaError_t launch_silu_mul(const std::uint16_t* gu, std::int64_t rows, std::int64_t m, std::uint16_t* out,
                            cudaStream_t stream) {
  return launch_elementwise(silu_mul_op{gu, m, out}, rows * m, stream);
}

cudaError_t launch_fill_uniform(std::uint16_t* dst, std::int64_t n, std::uint64_t seed, float offset, float scale,
                                cudaStream_t stream) {
  return launch_elementwise(fill_op{dst, seed, offset, scale}, n, stream);
}

}  // namespace mdlm::cuda::detail

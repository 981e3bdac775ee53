// SPDX-License-Identifier: MIT
#pragma once
// Launchers of the CUDA forward's kernels (kernels.cu). Each enqueues one kernel on `stream` and
// returns cudaGetLastError() (launch errors only; faults inside a kernel surface at the next
// synchronisation). The arithmetic of every kernel is in kernel_math.hpp.
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernel_math.hpp"

namespace mdlm::cuda::detail {

//! h[r, :] = embedding row tokens[r] (fp32), for r < rows.
cudaError_t launch_embed(const std::int32_t* tokens, std::int64_t rows, const std::uint16_t* table, std::int64_t d,
                         float* h, cudaStream_t stream);

//! out[r, :] = RMSNorm(x[src, :]) * w in bf16 for r < rows, src = index ? index[r] : r; src < 0 writes
//! zeros. One block of math::block_threads threads per row.
cudaError_t launch_rms_norm(const float* x, const std::int32_t* index, std::int64_t rows, std::int64_t d,
                            const std::uint16_t* w, float eps, std::uint16_t* out, cudaStream_t stream);

//! The q/k/v epilogue (math::qkv_unit over p.units()).
cudaError_t launch_qkv(const math::qkv_params& p, cudaStream_t stream);

//! p[r, 0:cols] = softmax(s[r, 0:cols]) in bf16 for r < rows (rows of stride `ld` in s and p); one
//! block per row.
cudaError_t launch_softmax(const float* s, std::int64_t rows, std::int64_t cols, std::int64_t ld, std::uint16_t* p,
                           cudaStream_t stream);

//! [B, H, L, hd] -> [B*L, H*hd] (math::merge_heads_unit).
cudaError_t launch_merge_heads(const std::uint16_t* heads_major, std::int64_t batch, std::int64_t length,
                               std::int64_t heads, std::int64_t head_dim, std::uint16_t* rows, cudaStream_t stream);

//! out[r, j] = silu(gu[r, j]) * gu[r, m + j] in bf16 (math::silu_mul_unit).
cudaError_t launch_silu_mul(const std::uint16_t* gu, std::int64_t rows, std::int64_t m, std::uint16_t* out,
                            cudaStream_t stream);

//! dst[i] = bf16(offset + scale * u_i) with u_i uniform in [-1, 1) from (seed, i) (math::uniform_pm1):
//! random weights made on the device for benchmarks (no checkpoint file).
cudaError_t launch_fill_uniform(std::uint16_t* dst, std::int64_t n, std::uint64_t seed, float offset, float scale,
                                cudaStream_t stream);

}  // namespace mdlm::cuda::detail

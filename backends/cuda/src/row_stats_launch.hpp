// SPDX-License-Identifier: MIT
#pragma once
// Launchers of the device row-statistics kernels (row_stats.cu). Each enqueues on `stream` and
// returns cudaGetLastError() (launch errors only).
#include <cuda_runtime_api.h>

#include <cstdint>

#include "row_stats_kernels.hpp"

namespace mdlm::cuda::detail {

//! out[i] = the statistics and chosen token of row jobs[i].src of p.logits (rows::process_row), for
//! i < n_rows: one block of rows::threads threads per row. Precondition: p.vocab <= rows::max_vocab.
cudaError_t launch_row_stats(const rows::launch_params& p, const rows::row_job* jobs, std::int64_t n_rows,
                             rows::row_out* out, cudaStream_t stream);

//! Sets the logits of the n_banned ids `banned` to -inf in every row jobs[i].src (i < n_rows).
cudaError_t launch_ban(void* logits, rows::dtype type, std::int64_t ld, const rows::row_job* jobs, std::int64_t n_rows,
                       const std::int32_t* banned, std::int64_t n_banned, cudaStream_t stream);

}  // namespace mdlm::cuda::detail

// SPDX-License-Identifier: MIT
#pragma once
//! @file
//! LLaDA and Dream forwards on one NVIDIA GPU in bf16 (shared/spec/models.md sections 2.7-2.10 and
//! 3.7-3.9), as an mdlm `BatchedConditionalModel`, with the logits also available in device memory
//! and an LM head that can be evaluated for a gathered subset of rows only.
//!
//! The checkpoint is read and validated by the CPU backend's reader (mdlm::hf::checkpoint: same
//! directory layouts, dtypes and error messages); the weights are rounded to bf16 (exact for bf16
//! checkpoints) and live on the device in one allocation.
//!
//! Data flow of a forward over B sequences of length L (backends/cuda/src/forward.hpp has the buffer
//! layouts; docs/architecture.md the picture):
//!   embedding (fp32 residual h) -> per block: RMSNorm -> one fused q/k/v GEMM -> epilogue kernel (bias,
//!   bf16 rounding, RoPE, head-major layout) -> scores GEMM (batched over sequence x KV head; the query
//!   heads of one KV head form one matrix, so GQA needs no copies) -> softmax kernel -> values GEMM ->
//!   merge heads -> output GEMM accumulating into h -> RMSNorm -> fused gate/up GEMM -> SwiGLU kernel ->
//!   down GEMM accumulating into h; then the final RMSNorm of the requested rows only (Dream: row i reads
//!   hidden state i-1) and the LM-head GEMM over chunks of 128 rows into fp32 logits.
//! GEMMs are cuBLASLt bf16 x bf16 with fp32 accumulation.
//!
//! Numerics: weights, GEMM inputs and attention probabilities are bf16 as in the reference PyTorch bf16
//! runs; RMSNorm, RoPE and SwiGLU round where PyTorch's bf16 ops do (models.md section 7). One deliberate
//! difference: the residual stream h is fp32 (PyTorch rounds it to bf16 after every addition), which
//! keeps this forward closer to an fp32 forward than PyTorch bf16 is. Logits are fp32.
//!
//! Determinism: the same tokens give the same bits on the same GPU and build. Every GEMM's algorithm
//! is chosen for a fixed per-element shape (one sequence, one chunk of 128 LM-head rows) and run over
//! the batch, so `batch_logits` rows are meant to equal `logits` of each sequence alone, and
//! `logits_rows` rows to equal the same rows of the full logits, bit for bit (tests/cuda checks both on
//! a GPU).
//!
//! Memory: one allocation plan per (batch, length) (`plan_memory`): weights (2 bytes per parameter),
//! activations (fp32 attention scores of B x heads x L x L dominate at long L), fp32 logits of B x L
//! rows and a 32 MiB cuBLASLt workspace. A new (batch, length) re-plans (and re-allocates only when it
//! needs more memory); every later call with that shape allocates nothing, on the device or the host.
//!
//! Errors: bad arguments throw std::invalid_argument naming the value; CUDA / cuBLAS failures throw
//! mdlm::cuda::cuda_error naming the call, the step (layer, GEMM or kernel) and the shape. Faults inside
//! a kernel surface at the next synchronisation; `model_options::sync_each_step` (or the environment
//! variable MDLM_CUDA_SYNC=1) synchronises after every step so the message names the failing one.
//! A model is not safe to call from several threads at once.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <vector>

#include "mdlm/concepts.hpp"
#include "mdlm/checkpoint/checkpoint.hpp"
#include "mdlm/checkpoint/config.hpp"
#include "mdlm/cuda/device.hpp"
#include "mdlm/cuda/row_stats.hpp"
#include "mdlm/row_model.hpp"
#include "mdlm/types.hpp"

namespace mdlm::cuda {

//! Options of `model`.
struct model_options {
  int device = 0;                         //!< CUDA device ordinal
  bool allow_unexpected_tensors = false;  //!< see hf::checkpoint_options
  bool sync_each_step = false;            //!< synchronise after every kernel / GEMM (debugging; slow)
};

//! Device memory of a model for one (batch, length): what `model` allocates, computed without a GPU.
struct memory_plan {
  std::size_t batch = 0, length = 0;
  std::size_t weights = 0;      //!< bf16 weights (2 bytes per parameter, buffers 256-byte aligned)
  std::size_t activations = 0;  //!< per-forward buffers (residual, q/k/v, scores, probabilities, MLP, head rows)
  std::size_t logits = 0;       //!< fp32 logits of batch * length rows (rounded up to 128 rows)
  std::size_t workspace = 0;    //!< cuBLASLt workspace
  std::size_t reserve = 0;      //!< cuBLASLt handle, kernel modules, stream (an allowance, not measured here)
  //! Everything above.
  [[nodiscard]] std::size_t total() const noexcept { return weights + activations + logits + workspace + reserve; }
};

//! The memory plan of `config` for `batch` sequences of `length` positions (both >= 1).
[[nodiscard]] memory_plan plan_memory(const hf::model_config& config, std::size_t batch, std::size_t length);

//! Logits in device memory: row r at `data + r * vocab` (fp32), valid until the model's next call.
struct device_logits {
  const float* data = nullptr;
  std::size_t rows = 0;
  std::size_t vocab = 0;
};

//! A LLaDA or Dream checkpoint on a CUDA device. Satisfies mdlm::BatchedConditionalModel (host
//! logits); `batch_logits_device` and `logits_rows` keep the logits on the device.
class model {
 public:
  //! Loads and validates the checkpoint directory `dir` (hf::checkpoint::open) onto the device.
  [[nodiscard]] static model load(const std::filesystem::path& dir, const model_options& options = {});
  //! Copies the weights of an opened checkpoint to the device (rounded to bf16).
  explicit model(const hf::checkpoint& ckpt, const model_options& options = {});
  //! A model of `config`'s shapes with random bf16 weights made on the device (no file): uniform with
  //! the standard deviations of cpu::write_tiny_checkpoint. For benchmarks at real shapes.
  [[nodiscard]] static model random(const hf::model_config& config, std::uint64_t seed,
                                    const model_options& options = {});
  ~model();
  model(model&&) noexcept;
  model& operator=(model&&) noexcept;
  model(const model&) = delete;
  model& operator=(const model&) = delete;

  //! Logit row width: the padded vocabulary (embedding rows).
  [[nodiscard]] std::size_t vocab_size() const noexcept { return config_.vocab_size; }
  //! `mask_token_id` of config.json.
  [[nodiscard]] token_id mask_token() const noexcept { return config_.mask_token; }
  [[nodiscard]] const hf::model_config& config() const noexcept { return config_; }
  //! The device this model runs on.
  [[nodiscard]] const device_info& device() const noexcept;
  //! Bytes of device memory held by the weights.
  [[nodiscard]] std::size_t weight_bytes() const noexcept;
  //! The CUDA stream every call enqueues on (a cudaStream_t).
  [[nodiscard]] void* stream() const noexcept;

  //! Logits of one sequence into host memory: `out[i * V + v]`. Preconditions (std::invalid_argument
  //! naming the value otherwise): `tokens` non-empty, every id in [0, V), `out.size() == tokens.size() * V`.
  void logits(std::span<const token_id> tokens, std::span<float> out);
  //! Logits of `batch` sequences of equal length `tokens.size() / batch` into host memory (sequence b's
  //! rows at `out[(b*L + i) * V]`), one forward for all of them.
  void batch_logits(std::span<const token_id> tokens, std::size_t batch, std::span<float> out);
  //! The same logits left in device memory (rows b*L + i); enqueued on `stream()`, not synchronised.
  [[nodiscard]] device_logits batch_logits_device(std::span<const token_id> tokens, std::size_t batch);

  //! Runs the embedding and every block for `batch` sequences (no LM head): the hidden states stay on
  //! the device for `head_rows`. Enqueued on `stream()`.
  void run_body(std::span<const token_id> tokens, std::size_t batch);
  //! LM-head logits of the listed rows only, from the last `run_body`: row j of the result is logit row
  //! `rows[j]` = b*L + i (position i of sequence b; Dream's shift applied), computed with the final
  //! RMSNorm and LM head of those rows alone. Each row's values equal the same row of the full logits.
  //! Preconditions: a `run_body` before, every row < batch * L, rows.size() <= batch * L (duplicates
  //! allowed).
  [[nodiscard]] device_logits head_rows(std::span<const std::size_t> rows);
  //! `run_body` then `head_rows`.
  [[nodiscard]] device_logits logits_rows(std::span<const token_id> tokens, std::size_t batch,
                                          std::span<const std::size_t> rows);
  //! `logits_rows`, then copies the rows.size() x V logits into `device_out` (device memory of the
  //! caller, enqueued on `stream()`).
  void logits_rows(std::span<const token_id> tokens, std::size_t batch, std::span<const std::size_t> rows,
                   float* device_out);

  //! Row statistics (mdlm::RowStatisticsModel, row_model.hpp): the body, the LM head of the
  //! requested rows only, and the device statistics kernels on them (row_stats.hpp); one row_choice
  //! per row comes back to the host, never the logits. Preconditions as `logits` plus rows strictly
  //! ascending below tokens.size() (std::invalid_argument naming the value).
  void row_choices(std::span<const token_id> tokens, const row_request& request, std::span<row_choice> out);
  //! `row_choices` of `batch` sequences in one forward (`requests[b]` for sequence b; `out` the
  //! concatenation of the requests' rows).
  void batch_row_choices(std::span<const token_id> tokens, std::size_t batch, std::span<const row_request> requests,
                         std::span<row_choice> out);

  //! Waits for everything enqueued; throws cuda_error if a kernel failed.
  void synchronize();
  //! The memory plan of this model for (batch, length).
  [[nodiscard]] memory_plan memory(std::size_t batch, std::size_t length) const { return plan_memory(config_, batch, length); }
  //! GEMM plans made so far and how many run a whole batch in one cuBLASLt call (diagnostics).
  [[nodiscard]] std::size_t gemm_plans() const noexcept;
  [[nodiscard]] std::size_t gemm_plans_batched() const noexcept;

 private:
  struct impl;
  model(const hf::model_config& config, const model_options& options);
  hf::model_config config_;
  std::unique_ptr<impl> impl_;
  std::unique_ptr<row_engine> rows_;
  std::unique_ptr<kl_store> kl_;       // row_request::kl: KLASS's previous distributions on the device
  std::vector<device_row> gathered_;
  std::vector<std::size_t> head_index_;
};

static_assert(check_conditional_model<model>());
static_assert(BatchedConditionalModel<model>);
static_assert(check_row_statistics_model<model>());
static_assert(BatchedRowStatisticsModel<model>);

}  // namespace mdlm::cuda

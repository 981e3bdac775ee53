// SPDX-License-Identifier: MIT
#pragma once
//! @file
//! Decisions from logits in device memory: the statistics and chosen token of gathered rows of a
//! device logit matrix (bf16, fp16 or fp32), computed on the GPU (issue 14, backends/cuda), and an
//! adapter that turns an engine's own device forward into an mdlm row-statistics model.
//!
//! `row_engine::choose` fills one `mdlm::row_choice` per requested row: the log-normaliser, entropy,
//! top-1 / top-2 and their log-probabilities, and the chosen token with its plain and tempered
//! probabilities, the tempered entropy and margin (row_common.hpp). One thread block per row reads
//! the row once, sampled rows once more for the block masses of the draw (top-k / top-p add one
//! pass per probe of a binary search for the filter threshold); the reductions have a fixed order,
//! so a row's result depends neither on the batch nor on the other rows of the launch. Algorithm and numerics: backends/cuda/src/row_stats_kernels.hpp.
//!
//! Guarantees against the CPU path (`mdlm::compute_row_choices` on the same logits):
//!   * statistics agree to ~1e-6 relative (float accumulation per lane, double across lanes;
//!     tests/cuda checks 1e-5); entropies below ~1e-30 (where float exponentials underflow) are 0;
//!   * greedy tokens (temperature 0, with or without top-k / top-p) are the same: the argmax with
//!     ties to the lower id;
//!   * sampled tokens use the same counter-based keys and the same two-level Gumbel-max draw
//!     (include/mdlm/detail/block_gumbel.hpp: a key per block of 1024 kept entries from its double
//!     log-mass, per-entry keys only in the winning block): the same token unless two double keys
//!     agree to within the few ulp by which the device's exp / log differ from the host's and its
//!     32-way block sums from the CPU's sequential ones (~1e-15 relative), or, with top-p, a logit
//!     ties with another exactly at the nucleus boundary (the device keeps every tied entry).
//!
//! Errors: bad arguments throw std::invalid_argument naming the value; CUDA failures throw
//! mdlm::cuda::cuda_error naming the call. A NaN / +inf / all -inf row is data: `stats.valid` is
//! false and decode reports the step and position. Stream-ordered; device and pinned buffers grow
//! on the first calls and are reused, so steady-state calls allocate nothing.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "mdlm/cuda/device.hpp"
#include "mdlm/kernels/detail/row_common.hpp"
#include "mdlm/rng.hpp"
#include "mdlm/row_model.hpp"
#include "mdlm/token_choice.hpp"
#include "mdlm/types.hpp"

namespace mdlm::cuda {

//! Element type of a device logit matrix.
enum class logit_type { f32, bf16, f16 };

//! A row-major matrix of logits in device memory: row r at `data + r * ld` elements.
struct device_matrix {
  void* data = nullptr;         //!< device pointer (writable when banned ids are used)
  logit_type type = logit_type::f32;
  std::size_t rows = 0;         //!< rows in the matrix
  std::size_t vocab = 0;        //!< entries per row (V)
  std::size_t ld = 0;           //!< row stride in elements (>= vocab; 0 = vocab)
};

//! One row to evaluate: where it is and the key of its random numbers.
struct device_row {
  std::size_t src = 0;          //!< row index in the matrix
  std::uint32_t position = 0;   //!< canvas position
  std::uint32_t sequence = 0;   //!< canvas key
  std::uint32_t step = 0;       //!< step key
  //! KLASS's KL (row_request::kl): a device buffer of V floats holding the row's previous
  //! distribution p_{t-1}; the kernel fills row_choice::kl (mdlm/kl_history.hpp) and overwrites
  //! the buffer with p_t. nullptr (default): no KL, row_choice::kl stays NaN.
  float* previous = nullptr;
};

//! Device copies of KLASS's previous distributions, one canvas (L x V floats) per sequence key:
//! what a device model keeps to serve `row_request::kl`. Zeroed at a request's step 0 (a decode's
//! first call) or when L or V change; grows, never shrinks.
class kl_store {
 public:
  kl_store();
  ~kl_store();
  kl_store(kl_store&&) noexcept;
  kl_store& operator=(kl_store&&) noexcept;
  //! Points `rows[j].previous` at the buffer of its (sequence, position) for every request with
  //! `kl` set (rows as detail::gather_rows lays them out: request by request, in order), enqueueing
  //! the resets on `stream`. @throws cuda_error when a buffer cannot be allocated.
  void attach(std::span<const row_request> requests, std::size_t length, std::size_t vocab,
              std::span<device_row> rows, void* stream);

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

//! The largest row width the device kernels accept.
[[nodiscard]] std::size_t max_row_vocab() noexcept;

//! Runs the device statistics kernels (see the file comment).
class row_engine {
 public:
  //! An engine enqueuing on `stream` (a cudaStream_t; nullptr = the default stream) of the current
  //! device.
  explicit row_engine(void* stream = nullptr);
  ~row_engine();
  row_engine(row_engine&&) noexcept;
  row_engine& operator=(row_engine&&) noexcept;
  row_engine(const row_engine&) = delete;
  row_engine& operator=(const row_engine&) = delete;

  //! Statistics and chosen tokens of `rows` of `m` into host `out` (out.size() == rows.size());
  //! waits for the result. `banned` ids are set to -inf in those rows of `m` first (in place).
  //! @throws std::invalid_argument for a bad matrix, row, choice or banned id; cuda_error on a
  //!         CUDA failure.
  void choose(const device_matrix& m, std::span<const device_row> rows, const token_choice& choice, counter_rng rng,
              std::span<const token_id> banned, std::span<row_choice> out);

  //! The stream (a cudaStream_t).
  [[nodiscard]] void* stream() const noexcept;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

//! The device algorithm run on the host (the same code, tests/cuda): `m.data` is host memory here.
//! No GPU needed; for tests and as an executable description.
void emulate_rows(const device_matrix& m, std::span<const device_row> rows, const token_choice& choice,
                  counter_rng rng, std::span<row_choice> out);

//! An engine's own forward as an mdlm row-statistics model (row_model.hpp): `forward(tokens, batch,
//! device_out, stream)` writes the batch * L x V logits of `batch` sequences of equal length L into
//! the device buffer `device_out` (row-major, `type` elements, enqueued on `stream`, a cudaStream_t);
//! each step then computes only the rows it needs, on the device, and copies back one row_choice
//! per row, not the logits. Satisfies mdlm::BatchedRowStatisticsModel; mdlm::decode with MED, EB,
//! Fast-dLLM, the LLaDA / Dream schedules, KLASS (its KL computed on the device, `kl_store`) and
//! early exit runs on it unchanged. (Observers that read raw rows need logits on the host and are
//! refused with a message.)
class device_logits_model {
 public:
  using forward_fn = std::function<void(std::span<const token_id> tokens, std::size_t batch, void* device_out, void* stream)>;

  //! @param vocab   row width V of the logits the forward writes
  //! @param mask    the model's mask token id (in [0, V))
  //! @param forward the engine's forward (see the class comment)
  //! @param type    element type the forward writes (default fp32)
  //! @param stream  the stream the forward and the statistics use (nullptr = default stream)
  //! @throws std::invalid_argument for V = 0 or above max_row_vocab(), a mask outside [0, V), an empty forward.
  device_logits_model(std::size_t vocab, token_id mask, forward_fn forward, logit_type type = logit_type::f32,
                      void* stream = nullptr);
  ~device_logits_model();
  device_logits_model(device_logits_model&&) noexcept;
  device_logits_model& operator=(device_logits_model&&) noexcept;

  [[nodiscard]] std::size_t vocab_size() const noexcept { return vocab_; }
  [[nodiscard]] token_id mask_token() const noexcept { return mask_; }

  void row_choices(std::span<const token_id> tokens, const row_request& request, std::span<row_choice> out);
  void batch_row_choices(std::span<const token_id> tokens, std::size_t batch, std::span<const row_request> requests,
                         std::span<row_choice> out);

 private:
  std::size_t vocab_;
  token_id mask_;
  forward_fn forward_;
  logit_type type_;
  struct buffers;
  std::unique_ptr<buffers> buf_;
};


static_assert(check_row_statistics_model<device_logits_model>());
static_assert(BatchedRowStatisticsModel<device_logits_model>);

namespace detail {
//! The device rows of a batch of requests (row b * L + position of sequence b), and whether every
//! request shares its token choice, generator and banned ids (decode's requests always do).
[[nodiscard]] bool gather_rows(std::span<const row_request> requests, std::size_t length, std::vector<device_row>& rows);
}  // namespace detail

}  // namespace mdlm::cuda

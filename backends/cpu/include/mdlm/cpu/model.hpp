// SPDX-License-Identifier: MIT
#pragma once
//! @file
//! LLaDA and Dream forwards on the CPU in fp32 (shared/spec/models.md sections 2.7-2.10 and
//! 3.7-3.9), as an mdlm `BatchedConditionalModel`.
//!
//! One class serves both architectures; which one is read from config.json (`model_type` /
//! `architectures`). Per block: RMSNorm (normalise, then multiply by the weight), q/k/v projections
//! (Dream: with bias), half-split RoPE in fp32 at positions 0..L-1, fully bidirectional attention
//! with scale 1/sqrt(head_dim) where query head h reads KV head h / (n_heads / n_kv_heads), output
//! projection and residual, RMSNorm, SwiGLU `down(silu(gate(x)) * up(x))` (LLaDA: gate = ff_proj,
//! up = up_proj, down = blocks.i.ff_out) and residual; then the final RMSNorm and the untied head over
//! the full padded vocabulary. Dream's logit shift is applied here: row i of the output is the raw
//! row i-1 (row 0 keeps its own), so every algorithm sees row i = p(x_i | .).
//!
//! Numerics: the matrices (projections, embedding, head) stay in the file's dtype in memory by default
//! (`weight_storage::file_dtype`: bf16 / fp16 at 2 bytes per parameter), and each product converts
//! its fixed chunk of weight rows to fp32 right before it (exact: every bf16 / fp16 value is an fp32
//! value), so logits are bitwise those of `weight_storage::fp32`, which converts everything at load;
//! norm weights and biases are fp32. All arithmetic is fp32, the matrix products by OpenBLAS (or Eigen; mdlm/cpu/gemm.hpp). The real models run in bf16, so logits differ from a bf16
//! PyTorch run by bf16 rounding; against an fp32 PyTorch forward they agree to ~1e-5.
//!
//! Determinism: the backend parallelises with OpenMP over fixed chunks of output features and over
//! attention heads, each chunk computed by a single-threaded product (mdlm::cpu::gemm) whose
//! blocking depends only on the shapes, so logits are bitwise identical for any thread count. Every
//! sequence of a batch goes through exactly the code path of a single call, so `batch_logits` rows
//! are bitwise equal to `logits` of each sequence alone. The model sets Eigen's own thread count to
//! 1 (`Eigen::setNbThreads(1)`) and, under the pthreads build of OpenBLAS, OpenBLAS's to 1 while it
//! computes (`blas_thread_scope`), both process-wide settings. Logits depend on the GEMM library and
//! on the kernels it picks for the processor (different summation orders), within the golden
//! tolerance of the PyTorch forward.
//!
//! Row statistics (row_model.hpp): `row_choices` / `batch_row_choices` run the same body, then the
//! untied head for the requested rows only, and `compute_row_choices` on them, so decode takes the
//! same decisions as from `logits` while the head (V x d_model: 126464 x 4096 for LLaDA-8B, the
//! largest single product of a step) costs rows / L of a full call. The head is evaluated in tiles of
//! `head_tile_rows` gathered rows (zero-padded), for full and partial calls alike, and row p always
//! sits in slot p % head_tile_rows of its tile, where a full call puts it: BLAS kernels may sum a
//! tile's rows in different orders by slot (OpenBLAS on a Zen 5 does), never by the other rows'
//! values, so a row's logits are bitwise the same whichever other rows are requested.
//!
//! Memory: 2 bytes per parameter for a bf16 / fp16 checkpoint (LLaDA-8B: 16 GB, Dream-7B: 15.2 GB;
//! 4 with `weight_storage::fp32` or an fp32 checkpoint) plus activations of O(L * (d_model +
//! mlp_hidden) + threads * L^2) floats and, for 16-bit weights, one converted chunk per thread
//! (at most 256 x mlp_hidden floats: 12 MB at LLaDA-8B). A model is not safe to call from several
//! threads at once (it owns its work buffers).

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <new>
#include <span>
#include <vector>

#include "mdlm/concepts.hpp"
#include "mdlm/cpu/checkpoint_names.hpp"
#include "mdlm/kl_history.hpp"
#include "mdlm/row_choices.hpp"
#include "mdlm/row_model.hpp"
#include "mdlm/types.hpp"

namespace mdlm::cpu {

namespace detail {
//! Allocator with 64-byte alignment. The work buffers use it so that the alignment of every row,
//! which decides where Eigen's vectorised loops peel scalar iterations (scalar and vector exp differ
//! in the last bits), is the same in every run, for every thread and every batch element.
template <class T>
struct aligned64_allocator {
  using value_type = T;
  static constexpr std::align_val_t alignment{64};
  aligned64_allocator() noexcept = default;
  template <class U>
  aligned64_allocator(const aligned64_allocator<U>&) noexcept {}  // NOLINT(google-explicit-constructor)
  [[nodiscard]] T* allocate(std::size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), alignment)); }
  void deallocate(T* p, std::size_t) noexcept { ::operator delete(p, alignment); }
  template <class U>
  bool operator==(const aligned64_allocator<U>&) const noexcept {
    return true;
  }
};
//! A float buffer whose first element is 64-byte aligned.
using aligned_floats = std::vector<float, aligned64_allocator<float>>;

//! A weight matrix [rows, cols] (row-major, PyTorch's nn.Linear layout) held as fp32 or as the
//! checkpoint's 16-bit bits (bf16 / fp16).
struct weight_matrix {
  aligned_floats f32;                                           //!< fp32 storage (empty when 16-bit)
  std::vector<std::uint16_t, aligned64_allocator<std::uint16_t>> bits;  //!< 16-bit storage (empty when fp32)
  hf::dtype type = hf::dtype::f32;  //!< f32, or the dtype of `bits`
  std::size_t rows = 0, cols = 0;

  //! Rows [r0, r0 + n) as fp32: a pointer into `f32`, or `scratch` (n * cols floats) filled with
  //! their exact conversion.
  [[nodiscard]] const float* rows_f32(std::size_t r0, std::size_t n, float* scratch) const noexcept;
  //! Bytes held.
  [[nodiscard]] std::size_t bytes() const noexcept { return f32.size() * sizeof(float) + bits.size() * 2; }
};
}  // namespace detail

//! How the weight matrices are held in memory (model_options::weights).
enum class weight_storage {
  file_dtype,  //!< as in the checkpoint: bf16 / fp16 stay 16-bit and are converted per chunk (default)
  fp32,        //!< converted to fp32 at load: twice the memory of a 16-bit checkpoint, same logits
};

//! Options of `model`.
struct model_options {
  int threads = 0;  //!< OpenMP threads for the forward, at most model::max_threads; 0 = omp_get_max_threads() (OMP_NUM_THREADS) capped at the hardware threads
  bool allow_unexpected_tensors = false;  //!< see checkpoint_options
  weight_storage weights = weight_storage::file_dtype;  //!< see weight_storage; logits do not depend on it
};

//! A LLaDA or Dream checkpoint evaluated on the CPU. Satisfies mdlm::BatchedConditionalModel.
class model {
 public:
  //! Loads and validates the checkpoint directory `dir` (see checkpoint::open).
  [[nodiscard]] static model load(const std::filesystem::path& dir, const model_options& options = {});
  //! Reads the weights of an opened checkpoint (kept 16-bit or converted to fp32, `options.weights`).
  explicit model(const checkpoint& ckpt, const model_options& options = {});

  //! Logit row width: the padded vocabulary (embedding rows).
  [[nodiscard]] std::size_t vocab_size() const noexcept { return config_.vocab_size; }
  //! `mask_token_id` of config.json.
  [[nodiscard]] token_id mask_token() const noexcept { return config_.mask_token; }
  [[nodiscard]] const model_config& config() const noexcept { return config_; }
  //! Bytes of weights held in memory (matrices, norms and biases).
  [[nodiscard]] std::size_t weight_bytes() const noexcept;
  //! Threads used by a forward (resolved; >= 1).
  [[nodiscard]] int threads() const noexcept { return threads_; }
  //! Changes the number of threads (0 = omp_get_max_threads()); results do not depend on it.
  void set_threads(int threads);

  //! Logits of one sequence: `out[i * V + v]` for every position i (all rows are computed).
  //! Preconditions (std::invalid_argument naming the value otherwise): `tokens` non-empty, every
  //! id in [0, V), `out.size() == tokens.size() * V`.
  void logits(std::span<const token_id> tokens, std::span<float> out);

  //! Logits of `batch` sequences of equal length `tokens.size() / batch` (sequence b at
  //! `tokens[b*L, (b+1)*L)`, rows at `out[(b*L + i) * V]`), bitwise equal to `logits` of each.
  void batch_logits(std::span<const token_id> tokens, std::size_t batch, std::span<float> out);

  //! Statistics and chosen tokens of the rows `request.rows` (row_model.hpp): the head is evaluated
  //! for those rows only; `out[i]` equals what `compute_row_choices` gives on `logits`' rows.
  //! Preconditions as `logits`, plus rows strictly ascending and < tokens.size(), `out.size() ==
  //! request.rows.size()`, banned ids in [0, V) (std::invalid_argument naming the value).
  //! With `request.kl`, `out[i].kl` is `kl_to_previous` of the row against this model's previous
  //! distribution of (request.sequence, position), forgotten at request.step == 0 (kl_history.hpp).
  void row_choices(std::span<const token_id> tokens, const row_request& request, std::span<row_choice> out);

  //! `row_choices` of `batch` sequences of equal length (`requests[b]` for sequence b, `out` the
  //! concatenation of every request's rows).
  void batch_row_choices(std::span<const token_id> tokens, std::size_t batch, std::span<const row_request> requests,
                         std::span<row_choice> out);

  //! Rows per tile of the head (see the file comment).
  static constexpr std::size_t head_tile_rows = 16;
  //! Most forward threads accepted (model_options::threads); more is an error, not a slow run.
  static constexpr int max_threads = 256;

 private:
  using buffer = detail::aligned_floats;
  using matrix = detail::weight_matrix;
  struct layer_weights {
    buffer attn_norm, bq, bk, bv, ff_norm;
    matrix wq, wk, wv, wo, w_gate, w_up, w_down;
  };
  //! The transformer body of one sequence: leaves the final-normed (Dream: shifted) hidden states
  //! in the returned buffer (L x d_model).
  const float* body(std::span<const token_id> tokens);
  //! The head for canvas rows `rows` of `hidden` into `out` (L x V, only those rows written).
  void head_rows(const float* hidden, std::span<const std::size_t> rows, std::span<float> out);
  void forward(std::span<const token_id> tokens, std::span<float> out);
  void reserve(std::size_t length);
  void check_request(std::span<const token_id> tokens, const row_request& request, std::size_t out_size) const;

  model_config config_;
  int threads_ = 1;
  matrix embed_, head_;  // head_ empty (rows 0) when tied to embed_
  buffer final_norm_;
  std::size_t weight_scratch_stride_ = 0;  // floats per thread for converted weight chunks (0: fp32 weights)
  std::vector<layer_weights> layers_;
  // Work buffers, grown to the longest sequence seen.
  std::size_t capacity_ = 0;
  std::size_t scores_stride_ = 0;  // floats per thread's score buffer, a multiple of 16 (64 bytes)
  buffer x_, a_, q_, k_, v_, o_, gate_, up_, scores_, rope_cos_, rope_sin_, weight_scratch_;
  buffer tile_in_, tile_out_;         // head tiles: gathered hidden rows, their logits
  std::vector<std::size_t> all_rows_; // 0..L-1 (full calls)
  std::vector<std::size_t> slot_of_;  // head_rows: each requested row's row in tile_in_ / tile_out_
  std::vector<float> row_logits_;     // row_choices: L x V, only the requested rows written
  mdlm::detail::choice_scratch scratch_;
  std::vector<float> inv_freq_;
  kl_histories kl_;  // row_request::kl: previous distributions per sequence
};

static_assert(check_conditional_model<model>());
static_assert(BatchedConditionalModel<model>);
static_assert(check_row_statistics_model<model>());
static_assert(BatchedRowStatisticsModel<model>);

}  // namespace mdlm::cpu

// SPDX-License-Identifier: MIT
#pragma once
//! @file
//! The row-statistics model interface: decisions without logits on the host.
//!
//! A `ConditionalModel` returns the full L x V logit matrix of a call; every policy then reads a
//! handful of numbers per masked position of the current block. A model that computes its logits
//! elsewhere (a GPU, another process) can instead be told which rows a step needs and how tokens are
//! chosen, and return one `row_choice` per requested row (kernels/detail/row_common.hpp: the
//! log-normaliser, entropy, top-1 / top-2 and their log-probabilities, the chosen token, its plain
//! and tempered probabilities, the tempered entropy and margin):
//!
//!     m.row_choices(std::span<const token_id> tokens, const row_request& request, std::span<row_choice> out);
//!
//! `out[i]` describes canvas position `request.rows[i]`. Rows must be computed from the same logits
//! `logits(tokens, ...)` would return (if the model has it), with the token chosen exactly as
//! `mdlm::compute_row_choices` (decode_rows.hpp) chooses it from those logits: temperature 0 =
//! argmax (ties to the lower id); T > 0 = the sampler of kernels/batched_stats.hpp keyed by
//! (request.rng, rng_stream::token, request.sequence, request.step, position); top-k / top-p as
//! token_choice.hpp. A row whose logits are invalid (NaN, +inf, all -inf) gets `stats.valid ==
//! false`; decode reports it. The CPU backend (backends/cpu) implements it by evaluating the LM head
//! for the requested rows only and calling `compute_row_choices` on them, the CUDA backend by fused
//! device kernels; `mdlm::decode` uses it whenever the model provides it (decode.hpp,
//! `model_interface`).
//!
//! Batched form, for `decode_batch`: `m.batch_row_choices(tokens, batch, requests, out)` with
//! `batch` sequences of equal length (as `batch_logits`), `requests[b]` for sequence b and `out` the
//! concatenation of the requests' rows in order.

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>

#include "mdlm/concepts.hpp"
#include "mdlm/kernels/detail/row_common.hpp"
#include "mdlm/rng.hpp"
#include "mdlm/token_choice.hpp"
#include "mdlm/types.hpp"

namespace mdlm {

//! How statistics and token choice are computed from host logit rows (`compute_row_choices`,
//! row_choices.hpp).
enum class stats_path {
  //! The one-pass SIMD kernels of kernels/batched_stats.hpp (the default): statistics, greedy or
  //! sampled token and the tempered quantities in one read of each row, rows spread over a thread
  //! pool. Top-k / top-p filters take the kernels' statistics and then the slower sorting path of
  //! token_choice.hpp. Tokens equal the reference path's exactly; the statistics agree with it to
  //! ~1e-6 relative (tests/kernels). Rows narrower than `detail::kernels_min_vocab` entries (exact
  //! reference models, toy models) take the reference path: a vector pass has nothing to gain
  //! there, and such decodes then equal the reference bit for bit, ties included.
  kernels,
  //! `compute_logit_stats` + `choose_token` per row in double precision, one row after another: the
  //! reference the kernels are tested against.
  scalar_reference,
};

//! What one canvas's step asks of a row-statistics model.
struct row_request {
  //! Canvas positions whose statistics the step needs, strictly ascending (the masked candidates of
  //! the step, plus the rows policies and observers declare: see decode.hpp).
  std::span<const std::size_t> rows{};
  token_choice choice{};        //!< temperature, top-p, top-k of the token choice (default greedy)
  counter_rng rng{};            //!< the run's generator (its seed)
  std::uint32_t sequence = 0;   //!< random-number key of the canvas (`canvas::sequence`)
  std::uint32_t step = 0;       //!< random-number key of the step (0-based model call index)
  //! Token ids whose logits are -inf before anything else, at every requested row (the
  //! `banned_tokens_model` adapter forwards its list here); empty = none.
  std::span<const token_id> banned{};
  //! For models that compute from host rows with `compute_row_choices` (the CPU backend): which
  //! method (`decode_options::path`). Device models may ignore it (their kernels are documented).
  stats_path path = stats_path::kernels;
  //! Also fill `row_choice::kl` at every requested row: the KL of the row's distribution to the
  //! one the model returned for the same (sequence, position) at its previous call with `kl` set
  //! (definition and zero start: kl_history.hpp; KLASS asks for it). The model keeps those previous
  //! distributions (one canvas's worth per sequence) and forgets them at `step == 0`, the first call
  //! of a decode. false (the default): `kl` stays NaN and nothing is kept.
  bool kl = false;
};

//! Requirement of RowStatisticsModel: `m.row_choices(tokens, request, out)` fills
//! `out[i]` (out.size() == request.rows.size()) for canvas position `request.rows[i]`.
template <class M>
concept produces_row_choices =
    requires(M& m, std::span<const token_id> tokens, const row_request& request, std::span<row_choice> out) {
      m.row_choices(tokens, request, out);
    };

//! Requirement of BatchedRowStatisticsModel: `m.batch_row_choices(tokens, batch, requests, out)`
//! for `batch` sequences of equal length, `requests.size() == batch`, `out` the concatenation of
//! every request's rows.
template <class M>
concept produces_batch_row_choices =
    requires(M& m, std::span<const token_id> tokens, std::size_t batch, std::span<const row_request> requests,
             std::span<row_choice> out) {
      m.batch_row_choices(tokens, batch, requests, out);
    };

//! A model that answers a step's rows with their statistics and chosen tokens (see the file comment).
//! It may also be a ConditionalModel (the CPU backend is both); decode then picks the interface.
template <class M>
concept RowStatisticsModel = has_vocabulary<M> && has_mask_token<M> && produces_row_choices<M>;

//! A RowStatisticsModel that evaluates several canvases in one call.
template <class M>
concept BatchedRowStatisticsModel = RowStatisticsModel<M> && produces_batch_row_choices<M>;

//! Anything `decode` accepts as a model: a ConditionalModel, a RowStatisticsModel, or both.
template <class M>
concept decodable_model = ConditionalModel<M> || RowStatisticsModel<M>;

//! Checks `M` against RowStatisticsModel one requirement at a time, with a readable message:
//! `static_assert(mdlm::check_row_statistics_model<my_device_model>());`.
template <class M>
consteval bool check_row_statistics_model() {
  static_assert(has_vocabulary<M>, "mdlm: a RowStatisticsModel needs `std::size_t vocab_size() const`");
  static_assert(has_mask_token<M>, "mdlm: a RowStatisticsModel needs `token_id mask_token() const`");
  static_assert(produces_row_choices<M>,
                "mdlm: a RowStatisticsModel needs `row_choices(std::span<const token_id>, const mdlm::row_request&, "
                "std::span<mdlm::row_choice>)`");
  return RowStatisticsModel<M>;
}

}  // namespace mdlm

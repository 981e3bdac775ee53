// SPDX-License-Identifier: MIT
#pragma once
//! @file
//! Type traits shared by policies and observers.

namespace mdlm::detail {

//! Whether a policy or observer type may read raw logit rows (`step_context::logits`,
//! `step_event::logits`): true unless the type declares `static constexpr bool reads_logit_rows =
//! false`. Types that read raw rows need a model that returns logits (decode.hpp, model_interface).
template <class T>
[[nodiscard]] consteval bool reads_logit_rows() {
  if constexpr (requires { T::reads_logit_rows; }) return static_cast<bool>(T::reads_logit_rows);
  else return true;
}

//! Whether a policy asks row-statistics models for `row_choice::kl` (row_model.hpp,
//! `row_request::kl`): true when the type declares `static constexpr bool requests_kl = true`.
template <class T>
[[nodiscard]] consteval bool requests_kl() {
  if constexpr (requires { T::requests_kl; }) return static_cast<bool>(T::requests_kl);
  else return false;
}

}  // namespace mdlm::detail

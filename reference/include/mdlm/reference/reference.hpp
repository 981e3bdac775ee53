// SPDX-License-Identifier: MIT
#pragma once
//! @file
//! Umbrella header of the exact reference side (target `mdlm::reference`, which needs xtensor): the
//! toy models whose joint distribution is known (`joint_table`, `hmm`), random instances of them,
//! and `exact_output_distribution` / `model_output_distribution` / `kl_divergence` to compare what
//! a sampler outputs with the model's joint. An outside program links `mdlm::reference` (from
//! `add_subdirectory(mdlm)` with MDLM_BUILD_REFERENCE=ON) and includes this header.

#include "mdlm/reference/exact_decode.hpp"
#include "mdlm/reference/hmm.hpp"
#include "mdlm/reference/joint_table.hpp"
#include "mdlm/reference/random.hpp"

namespace mdlm::reference {
static_assert(check_joint_model<joint_table>());
static_assert(check_joint_model<hmm>());
}  // namespace mdlm::reference

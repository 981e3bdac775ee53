// SPDX-License-Identifier: MIT
#pragma once
//! @file
//! Basic vocabulary types shared by every mdlm header.

#include <cstddef>
#include <cstdint>

namespace mdlm {

//! A token id: an index into the model's (padded) vocabulary, 32-bit signed as the reference
//! implementations (LLaDA, Dream) and llama.cpp use. Negative values never denote tokens; `-1` is
//! used in results to mean "no such token" (for example `logit_stats::top2` of a one-entry row).
using token_id = std::int32_t;

//! "No token" marker used in result aggregates (never a valid vocabulary entry).
inline constexpr token_id no_token = -1;

}  // namespace mdlm

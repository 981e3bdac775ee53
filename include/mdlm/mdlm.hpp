// SPDX-License-Identifier: MIT
#pragma once
//! @file
//! Umbrella header: everything in the header-only mdlm library (standard library only).

#include "mdlm/version.hpp"
#include "mdlm/types.hpp"
#include "mdlm/concepts.hpp"
#include "mdlm/logit_stats.hpp"
#include "mdlm/bounds.hpp"
#include "mdlm/rng.hpp"

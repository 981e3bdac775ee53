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
#include "mdlm/canvas.hpp"
#include "mdlm/token_choice.hpp"
#include "mdlm/schedules/llada.hpp"
#include "mdlm/schedules/dream.hpp"
#include "mdlm/policy.hpp"
#include "mdlm/policies/fixed_count.hpp"
#include "mdlm/policies/med.hpp"
#include "mdlm/policies/eb_sampler.hpp"
#include "mdlm/policies/fast_dllm.hpp"
#include "mdlm/policies/klass.hpp"
#include "mdlm/observer.hpp"
#include "mdlm/decode.hpp"

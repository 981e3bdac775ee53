// SPDX-License-Identifier: MIT
#pragma once
// Sub-command registration for the `mdlm` tool. Each cmd_<name>.cpp defines one register function.
#include <CLI/CLI.hpp>

#include <ostream>
#include <string>
#include <vector>

#include "mdlm/types.hpp"

namespace mdlm::tool {
//! Usage errors exit with this code and a one-line message on stderr.
inline constexpr int usage_error = 2;

void register_demo(CLI::App& app);
//! The reasoning-as-infilling part of `mdlm demo` (demo_infilling.cpp): early exit with MED and
//! posterior sampling on an exact HMM.
void print_infilling_demo(std::ostream& out);
#if MDLM_TOOL_HAVE_CPU
void register_make_checkpoint(CLI::App& app);  // cmd_make_checkpoint.cpp (needs mdlm::cpu)
void register_info(CLI::App& app);             // cmd_info.cpp (needs mdlm::cpu)
void register_generate(CLI::App& app);         // cmd_generate.cpp (needs mdlm::cpu)
void register_tokenize(CLI::App& app);         // cmd_tokenize.cpp: tokenize + detokenize (mdlm::tokenizer)
//! Parses "1,2,3" (commas and/or whitespace) into token ids; `what` names the source in errors.
std::vector<token_id> parse_token_ids(const std::string& text, const std::string& what);  // cmd_generate.cpp
#endif
// Harness commands on the arithmetic task (need mdlm::cpu and the task library mdlm::tasks).
#if MDLM_TOOL_HAVE_CPU && __has_include("mdlm/reference/tasks/tokenizer.hpp")
#define MDLM_TOOL_HAVE_TASKS 1
void register_eval(CLI::App& app);       // cmd_eval.cpp
void register_posterior(CLI::App& app);  // cmd_posterior.cpp
void register_score(CLI::App& app);      // cmd_score.cpp
void register_solve(CLI::App& app);      // cmd_solve.cpp
#else
#define MDLM_TOOL_HAVE_TASKS 0
#endif
}  // namespace mdlm::tool

// SPDX-License-Identifier: MIT
#pragma once
// Sub-command registration for the `mdlm` tool. Each cmd_<name>.cpp defines one register function.
#include <CLI/CLI.hpp>

#include <cstdint>
#include <fstream>
#include <memory>
#include <new>
#include <ostream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "mdlm/types.hpp"

namespace mdlm::tool {
//! Usage errors exit with this code and a one-line message on stderr.
inline constexpr int usage_error = 2;

//! Most bytes read from a user's input file (--prompt-file, --prompt-ids-file, --ids-file).
inline constexpr std::uintmax_t max_input_bytes = std::uintmax_t{64} << 20;

//! The contents of the regular file `path` (at most max_input_bytes), for option `option`.
//! @throws std::invalid_argument naming the option and the file when it is missing, not a regular
//!         file (a directory, a FIFO or a device such as /dev/zero), too large, or unreadable.
std::string read_input_file(const std::string& option, const std::string& path);  // main.cpp

//! An output file written beside its destination (`<path>.partial-<pid>`) and renamed over it by
//! `commit()`, so a command that fails (bad input, a model that does not load, an interrupted run)
//! leaves the user's existing file untouched; without commit the partial file is removed.
class staged_output {
 public:
  //! @throws std::invalid_argument naming `option` when the file cannot be created, or when `path`
  //!         is one of `inputs` (e.g. --out naming the --problems file).
  staged_output(const std::string& option, const std::string& path, const std::vector<std::string>& inputs = {});
  ~staged_output();
  staged_output(const staged_output&) = delete;
  staged_output& operator=(const staged_output&) = delete;
  [[nodiscard]] std::ostream& stream() noexcept { return *out_; }
  //! Flushes and renames the partial file over the destination.
  void commit();

 private:
  std::string option_, path_, partial_;
  std::unique_ptr<std::ofstream> out_;
  bool committed_ = false;
};

//! `bytes` as "1.5 GiB" / "12.0 MiB" / "512 bytes".
std::string format_bytes(std::uint64_t bytes);  // main.cpp
//! "MemAvailable here is 21.3 GiB" from /proc/meminfo ("" where it cannot be read).
std::string memory_available();  // main.cpp

//! Runs `f()`; a std::bad_alloc thrown by it becomes a std::runtime_error "out of memory <what>:
//! <need>; MemAvailable here is ...", so the user learns which step ran out and about how much it
//! needed instead of a bare "std::bad_alloc". `need` is the caller's estimate, in words.
template <class F>
decltype(auto) with_memory_context(const std::string& what, const std::string& need, F&& f) {
  try {
    return std::forward<F>(f)();
  } catch (const std::bad_alloc&) {
    const std::string avail = memory_available();
    throw std::runtime_error("out of memory " + what + ": " + need + (avail.empty() ? "" : "; " + avail));
  }
}

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

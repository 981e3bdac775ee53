// SPDX-License-Identifier: MIT
#pragma once
//! @file
//! Problems of the arithmetic task (reference/tasks/data/arith_test.jsonl) and how they are written
//! for the model, the C++ twin of reference/tasks/mdlm_tasks/formats.py:
//!
//! * prompt: `[BOS] encode(question + "\n")`, never masked;
//! * with the reasoning template, the canvas is `[MASK] * r + encode("The answer is ") + [MASK] *
//!   answer_block`, r = gen_length - |delimiter| - answer_block (the reasoning block); the response
//!   is the reasoning padded with EOS to r tokens, the delimiter, the answer's digits padded with EOS;
//! * without it, the canvas is `[MASK] * gen_length`; the response is the reasoning padded with EOS.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "mdlm/reference/tasks/tokenizer.hpp"
#include "mdlm/types.hpp"

namespace mdlm::reference::tasks {

//! One problem with its gold reasoning ("a op b = c" per step) and integer answer.
struct problem {
  std::int64_t id = 0;
  std::string question;
  std::vector<std::string> steps;
  std::int64_t answer = 0;
};

//! Reads a JSONL split ({"id", "question", "steps", "answer"} per line, blank lines skipped); throws
//! `std::invalid_argument` naming the file and line of a bad record.
[[nodiscard]] std::vector<problem> read_problems(const std::filesystem::path& path);

//! The gold reasoning as text: one step per line, every line ending with '\n'.
[[nodiscard]] std::string reasoning_text(const std::vector<std::string>& steps);

//! `[BOS] encode(question + question_suffix)`.
[[nodiscard]] std::vector<token_id> prompt_ids(const tokenizer& tok, std::string_view question);

//! Reasoning block length r = gen_length - |encode(delimiter)| - answer_block; throws
//! `std::invalid_argument` when it is < 1.
[[nodiscard]] std::size_t reasoning_block_length(const tokenizer& tok);

//! A response canvas and where its answer block starts (== canvas size without the template).
struct response_canvas {
  std::vector<token_id> tokens;
  std::size_t answer_start = 0;
};

//! The inference canvas with the template (masks, delimiter, masks) or without it (all masks).
[[nodiscard]] response_canvas make_canvas(const tokenizer& tok, bool with_template);

//! The template canvas with the answer block filled by `answer`'s digits padded with EOS (the
//! posterior's conditioning, paper section 5). Throws when the answer does not fit the block.
[[nodiscard]] response_canvas answer_conditioned_canvas(const tokenizer& tok, std::int64_t answer);

//! The gold response of `p` in either form (gen_length tokens); throws when it does not fit.
[[nodiscard]] std::vector<token_id> gold_response(const tokenizer& tok, const problem& p, bool with_template);

}  // namespace mdlm::reference::tasks

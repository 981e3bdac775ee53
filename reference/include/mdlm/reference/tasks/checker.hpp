// SPDX-License-Identifier: MIT
#pragma once
//! @file
//! Exact checker of the arithmetic task: grades a response's answer and, separately, every
//! reasoning step's arithmetic. The C++ twin of `arith.extract_answer` / `grade_step` /
//! `grade_steps` / `grade` in reference/tasks/mdlm_tasks/arith.py (same rules, same results;
//! tests/reference/test_tasks_checker.cpp checks them on Python-graded texts).
//!
//! Numbers are canonical: an optional '-', then "0" or a digit run without a leading zero, at most
//! `max_number_digits` digits ("-0", "007" and 10-digit runs are not numbers), so every value and
//! every product of two of them fits in `std::int64_t`.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mdlm::reference::tasks {

//! The reasoning template's answer delimiter (`arith.ANSWER_DELIMITER`).
inline constexpr std::string_view answer_delimiter = "The answer is ";
//! Longer digit runs are not numbers (keeps every product in int64).
inline constexpr std::size_t max_number_digits = 9;

//! `text` as a canonical integer (see the file comment), or nullopt.
[[nodiscard]] std::optional<std::int64_t> parse_number(std::string_view text) noexcept;

//! The answer a response gives: with the delimiter ("The answer is", trailing space not required),
//! the number right after its last occurrence (spaces skipped; the maximal run `-?[0-9]+` starting
//! there); without it, the last maximal digit run of the text, with a '-' in front counted as a sign
//! only when not preceded by a digit ("24-5=19" gives 19). Nullopt when that run is not canonical.
[[nodiscard]] std::optional<std::int64_t> extract_answer(std::string_view text);

//! Verdict on one reasoning line.
struct step_grade {
  bool well_formed = false;  //!< the line is `a op b = c` (spaces ignored, op in + - * /, canonical numbers)
  bool correct = false;      //!< well formed and the arithmetic is exact (division: b != 0 and b * c == a)
};

//! Grades one reasoning line (spaces anywhere are ignored).
[[nodiscard]] step_grade grade_step(std::string_view line);

//! The text before the last answer delimiter (all of it without one).
[[nodiscard]] std::string_view reasoning_part(std::string_view text) noexcept;

//! One graded line of a response's reasoning.
struct graded_line {
  std::string line;
  step_grade grade;
};

//! Every line of the reasoning part that is not blank (only spaces), graded, in order.
[[nodiscard]] std::vector<graded_line> grade_steps(std::string_view text);

//! Full verdict on a response text; the answer and the steps are graded separately.
struct verdict {
  std::optional<std::int64_t> answer;  //!< extract_answer(text)
  bool answer_correct = false;         //!< answer == gold
  std::size_t n_steps = 0;             //!< non-blank reasoning lines
  std::size_t n_well_formed = 0;
  std::size_t n_correct_steps = 0;
  bool all_steps_correct = false;  //!< n_steps > 0 and every step correct
};

[[nodiscard]] verdict grade(std::string_view text, std::int64_t gold_answer);

}  // namespace mdlm::reference::tasks

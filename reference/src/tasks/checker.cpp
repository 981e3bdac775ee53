// SPDX-License-Identifier: MIT
// The arithmetic task's checker (see checker.hpp); mirrors reference/tasks/mdlm_tasks/arith.py.
#include "mdlm/reference/tasks/checker.hpp"

namespace mdlm::reference::tasks {

namespace {

constexpr bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

// The delimiter without its trailing space: the checker accepts "The answer is42" as Python does.
constexpr std::string_view delimiter_core = answer_delimiter.substr(0, answer_delimiter.size() - 1);
static_assert(answer_delimiter.back() == ' ');

}  // namespace

std::optional<std::int64_t> parse_number(std::string_view text) noexcept {
  const bool negative = !text.empty() && text.front() == '-';
  const std::string_view digits = negative ? text.substr(1) : text;
  if (digits.empty() || digits.size() > max_number_digits) return std::nullopt;
  for (const char c : digits) {
    if (!is_digit(c)) return std::nullopt;
  }
  if (digits.size() > 1 && digits.front() == '0') return std::nullopt;
  if (negative && digits == "0") return std::nullopt;
  std::int64_t v = 0;
  for (const char c : digits) v = v * 10 + (c - '0');
  return negative ? -v : v;
}

std::optional<std::int64_t> extract_answer(std::string_view text) {
  if (const auto pos = text.rfind(delimiter_core); pos != std::string_view::npos) {
    std::size_t i = pos + delimiter_core.size();
    while (i < text.size() && text[i] == ' ') ++i;
    std::size_t j = (i < text.size() && text[i] == '-') ? i + 1 : i;
    while (j < text.size() && is_digit(text[j])) ++j;
    return parse_number(text.substr(i, j - i));
  }
  std::optional<std::string_view> last;
  std::size_t i = 0;
  while (i < text.size()) {
    if (!is_digit(text[i])) {
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j < text.size() && is_digit(text[j])) ++j;
    const bool sign = i > 0 && text[i - 1] == '-' && (i < 2 || !is_digit(text[i - 2]));
    const std::size_t start = sign ? i - 1 : i;
    last = text.substr(start, j - start);
    i = j;
  }
  if (!last) return std::nullopt;
  return parse_number(*last);
}

step_grade grade_step(std::string_view line) {
  std::string s;
  s.reserve(line.size());
  for (const char c : line) {
    if (c != ' ') s.push_back(c);
  }
  // ^([0-9]+)([-+*/])([0-9]+)=(-?[0-9]+)$ by hand.
  std::size_t i = 0;
  const auto digit_run = [&](std::size_t from) {
    std::size_t k = from;
    while (k < s.size() && is_digit(s[k])) ++k;
    return k;
  };
  const std::size_t a_end = digit_run(0);
  if (a_end == 0 || a_end >= s.size()) return {};
  const char op = s[a_end];
  if (op != '+' && op != '-' && op != '*' && op != '/') return {};
  i = a_end + 1;
  const std::size_t b_end = digit_run(i);
  if (b_end == i || b_end >= s.size() || s[b_end] != '=') return {};
  std::size_t c_begin = b_end + 1;
  std::size_t c_digits = c_begin < s.size() && s[c_begin] == '-' ? c_begin + 1 : c_begin;
  const std::size_t c_end = digit_run(c_digits);
  if (c_end == c_digits || c_end != s.size()) return {};
  const std::string_view sv = s;
  const auto a = parse_number(sv.substr(0, a_end));
  const auto b = parse_number(sv.substr(i, b_end - i));
  const auto c = parse_number(sv.substr(c_begin, c_end - c_begin));
  if (!a || !b || !c) return {};
  bool ok = false;
  switch (op) {
    case '+': ok = *a + *b == *c; break;
    case '-': ok = *a - *b == *c; break;
    case '*': ok = *a * *b == *c; break;
    default: ok = *b != 0 && *b * *c == *a; break;
  }
  return {true, ok};
}

std::string_view reasoning_part(std::string_view text) noexcept {
  const auto pos = text.rfind(delimiter_core);
  return pos == std::string_view::npos ? text : text.substr(0, pos);
}

std::vector<graded_line> grade_steps(std::string_view text) {
  std::vector<graded_line> out;
  std::string_view rest = reasoning_part(text);
  while (true) {
    const auto nl = rest.find('\n');
    const std::string_view line = rest.substr(0, nl);
    if (line.find_first_not_of(' ') != std::string_view::npos) {
      out.push_back({std::string(line), grade_step(line)});
    }
    if (nl == std::string_view::npos) break;
    rest.remove_prefix(nl + 1);
  }
  return out;
}

verdict grade(std::string_view text, std::int64_t gold_answer) {
  verdict v;
  v.answer = extract_answer(text);
  v.answer_correct = v.answer.has_value() && *v.answer == gold_answer;
  const auto steps = grade_steps(text);
  v.n_steps = steps.size();
  bool all = !steps.empty();
  for (const auto& s : steps) {
    v.n_well_formed += s.grade.well_formed ? 1U : 0U;
    v.n_correct_steps += s.grade.correct ? 1U : 0U;
    all = all && s.grade.correct;
  }
  v.all_steps_correct = all;
  return v;
}

}  // namespace mdlm::reference::tasks

// SPDX-License-Identifier: MIT
// Problem files and the prompt / canvas layout (see problems.hpp); mirrors formats.py.
#include "mdlm/reference/tasks/problems.hpp"

#include <algorithm>
#include <cstddef>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "mdlm/detail/errors.hpp"

namespace mdlm::reference::tasks {

std::vector<problem> read_problems(const std::filesystem::path& path) {
  std::error_code ec;
  mdlm::detail::require(std::filesystem::is_regular_file(path, ec), "problem file ", path.string(),
                        " is not a regular file");
  std::ifstream in(path);
  mdlm::detail::require(static_cast<bool>(in), "problem file ", path.string(), " cannot be opened");
  std::vector<problem> out;
  std::string line;
  std::size_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    try {
      const auto j = nlohmann::json::parse(line);
      problem p;
      p.id = j.at("id").get<std::int64_t>();
      p.question = j.at("question").get<std::string>();
      p.steps = j.at("steps").get<std::vector<std::string>>();
      const auto& answer = j.at("answer");
      // Integers only: get<int64_t> would truncate 63.9 to 63 and 1e30 is undefined behaviour.
      if (!answer.is_number_integer())
        mdlm::detail::throw_invalid("problem file ", path.string(), " line ", line_no, ": answer ", answer.dump(),
                                    " is not an integer");
      p.answer = answer.get<std::int64_t>();
      out.push_back(std::move(p));
    } catch (const nlohmann::json::exception& e) {
      mdlm::detail::throw_invalid("problem file ", path.string(), " line ", line_no, ": ", e.what());
    }
  }
  return out;
}

std::string reasoning_text(const std::vector<std::string>& steps) {
  std::string out;
  for (const auto& s : steps) {
    out += s;
    out += '\n';
  }
  return out;
}

std::vector<token_id> prompt_ids(const tokenizer& tok, std::string_view question) {
  std::string text(question);
  text += tok.spec().question_suffix;
  auto body = tok.encode(text);
  std::vector<token_id> out;
  out.reserve(body.size() + 1);
  out.push_back(tok.bos());
  out.insert(out.end(), body.begin(), body.end());
  return out;
}

std::size_t reasoning_block_length(const tokenizer& tok) {
  const auto& spec = tok.spec();
  const std::size_t delim = tok.encode(spec.answer_delimiter).size();
  mdlm::detail::require(spec.gen_length > delim + spec.answer_block, "gen_length = ", spec.gen_length,
                        " leaves no room for reasoning (delimiter ", delim, " + answer block ", spec.answer_block,
                        " tokens)");
  return spec.gen_length - delim - spec.answer_block;
}

response_canvas make_canvas(const tokenizer& tok, bool with_template) {
  const auto& spec = tok.spec();
  response_canvas c;
  if (!with_template) {
    c.tokens.assign(spec.gen_length, tok.mask());
    c.answer_start = spec.gen_length;
    return c;
  }
  const std::size_t r = reasoning_block_length(tok);
  const auto delim = tok.encode(spec.answer_delimiter);
  c.tokens.assign(r, tok.mask());
  c.tokens.insert(c.tokens.end(), delim.begin(), delim.end());
  c.answer_start = c.tokens.size();
  c.tokens.insert(c.tokens.end(), spec.answer_block, tok.mask());
  return c;
}

namespace {
std::vector<token_id> answer_block_ids(const tokenizer& tok, std::int64_t answer) {
  auto ids = tok.encode(std::to_string(answer));
  const std::size_t block = tok.spec().answer_block;
  mdlm::detail::require(ids.size() <= block, "answer = ", answer, " does not fit the answer block of ", block,
                        " tokens");
  ids.resize(block, tok.eos());
  return ids;
}
}  // namespace

response_canvas answer_conditioned_canvas(const tokenizer& tok, std::int64_t answer) {
  auto c = make_canvas(tok, true);
  const auto ans = answer_block_ids(tok, answer);
  std::copy(ans.begin(), ans.end(), c.tokens.begin() + static_cast<std::ptrdiff_t>(c.answer_start));
  return c;
}

std::vector<token_id> gold_response(const tokenizer& tok, const problem& p, bool with_template) {
  const auto& spec = tok.spec();
  auto reasoning = tok.encode(reasoning_text(p.steps));
  const std::size_t room = with_template ? reasoning_block_length(tok) : spec.gen_length;
  mdlm::detail::require(reasoning.size() <= room, "problem ", p.id, ": reasoning of ", reasoning.size(),
                        " tokens does not fit the block of ", room);
  reasoning.resize(room, tok.eos());
  if (!with_template) return reasoning;
  const auto delim = tok.encode(spec.answer_delimiter);
  reasoning.insert(reasoning.end(), delim.begin(), delim.end());
  const auto ans = answer_block_ids(tok, p.answer);
  reasoning.insert(reasoning.end(), ans.begin(), ans.end());
  return reasoning;
}

}  // namespace mdlm::reference::tasks

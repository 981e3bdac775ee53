// SPDX-License-Identifier: MIT
// tokenizer.json reading and greedy longest-match encoding (see tokenizer.hpp).
#include "mdlm/reference/tasks/tokenizer.hpp"

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <utility>

#include "mdlm/detail/errors.hpp"

namespace mdlm::reference::tasks {

namespace {
constexpr std::string_view file_format = "mdlm-greedy-vocab-1";
}  // namespace

tokenizer::tokenizer(std::vector<std::string> tokens, token_id bos, token_id eos, token_id mask,
                     std::size_t embedding_size, format_spec spec)
    : tokens_(std::move(tokens)), bos_(bos), eos_(eos), mask_(mask), embedding_size_(embedding_size),
      spec_(std::move(spec)) {
  const auto n = static_cast<std::int64_t>(tokens_.size());
  for (const auto& [name, id] : {std::pair{"bos", bos_}, std::pair{"eos", eos_}, std::pair{"mask", mask_}}) {
    mdlm::detail::require(id >= 0 && id < n, "special token ", name, " = ", id, " must be in [0, ", n, ")");
  }
  mdlm::detail::require(embedding_size_ >= tokens_.size(), "embedding_size = ", embedding_size_,
                        " must be >= the ", tokens_.size(), " table entries");
  for (std::size_t i = 0; i < tokens_.size(); ++i) {
    const auto id = static_cast<token_id>(i);
    if (is_special(id)) continue;
    mdlm::detail::require(!tokens_[i].empty(), "token ", i, " is empty");
    const auto [it, inserted] = by_string_.emplace(tokens_[i], id);
    mdlm::detail::require(inserted, "token string \"", tokens_[i], "\" appears twice (ids ", it->second, " and ", i,
                          ")");
    max_len_ = std::max(max_len_, tokens_[i].size());
  }
}

tokenizer tokenizer::load(const std::filesystem::path& path) {
  std::ifstream in(path);
  mdlm::detail::require(static_cast<bool>(in), "tokenizer file ", path.string(), " cannot be opened");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
    const auto fmt = j.value("format", std::string{});
    mdlm::detail::require(fmt == file_format, path.string(), ": format \"", fmt, "\" is not \"", file_format, "\"");
    auto tokens = j.at("tokens").get<std::vector<std::string>>();
    const auto& sp = j.at("special_tokens");
    format_spec spec;
    if (j.contains("format_spec")) {
      const auto& f = j.at("format_spec");
      spec.gen_length = f.value("gen_length", spec.gen_length);
      spec.answer_block = f.value("answer_block", spec.answer_block);
      spec.answer_delimiter = f.value("answer_delimiter", spec.answer_delimiter);
      spec.question_suffix = f.value("question_suffix", spec.question_suffix);
    }
    return tokenizer(std::move(tokens), sp.at("bos").get<token_id>(), sp.at("eos").get<token_id>(),
                     sp.at("mask").get<token_id>(), j.at("embedding_size").get<std::size_t>(), std::move(spec));
  } catch (const nlohmann::json::exception& e) {
    mdlm::detail::throw_invalid("tokenizer file ", path.string(), ": ", e.what());
  } catch (const std::invalid_argument& e) {
    mdlm::detail::throw_invalid("tokenizer file ", path.string(), ": ", e.what());
  }
}

std::vector<token_id> tokenizer::encode(std::string_view text) const {
  std::vector<token_id> ids;
  ids.reserve(text.size());
  std::size_t i = 0;
  std::string key;
  while (i < text.size()) {
    bool found = false;
    for (std::size_t len = std::min(max_len_, text.size() - i); len > 0; --len) {
      key.assign(text.substr(i, len));
      if (const auto it = by_string_.find(key); it != by_string_.end()) {
        ids.push_back(it->second);
        i += len;
        found = true;
        break;
      }
    }
    if (!found) {
      const auto byte = static_cast<unsigned>(static_cast<unsigned char>(text[i]));
      mdlm::detail::throw_invalid("character with byte value ", byte, " at position ", i,
                                  " is not in the vocabulary");
    }
  }
  return ids;
}

std::string tokenizer::decode(std::span<const token_id> ids, bool skip_special, std::string_view unknown) const {
  std::string out;
  for (const token_id t : ids) {
    mdlm::detail::require(t >= 0 && static_cast<std::size_t>(t) < embedding_size_, "token id ", t,
                          " is outside the embedding of ", embedding_size_, " rows");
    if (static_cast<std::size_t>(t) >= tokens_.size()) {
      out += unknown;
      continue;
    }
    if (skip_special && is_special(t)) continue;
    out += tokens_[static_cast<std::size_t>(t)];
  }
  return out;
}

const std::string& tokenizer::token_string(token_id id) const {
  mdlm::detail::require(id >= 0 && static_cast<std::size_t>(id) < tokens_.size(), "token id ", id,
                        " is outside the table of ", tokens_.size(), " tokens");
  return tokens_[static_cast<std::size_t>(id)];
}

}  // namespace mdlm::reference::tasks

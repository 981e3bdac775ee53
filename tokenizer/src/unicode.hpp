// SPDX-License-Identifier: MIT
#pragma once
// Internal: UTF-8 helpers, Unicode properties (utf8proc) and a PCRE2 regex wrapper.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace mdlm::text::detail {

//! Length of the valid UTF-8 sequence at s[i] (1..4) and its code point, or 0 when the bytes at i
//! do not start a valid sequence (overlong forms, surrogates and code points > U+10FFFF are invalid).
std::size_t utf8_decode(std::string_view s, std::size_t i, char32_t& cp) noexcept;
//! Offset of the first byte that is not part of valid UTF-8, or npos when `s` is valid.
std::size_t first_invalid_utf8(std::string_view s) noexcept;
//! How many bytes of the sequence starting at s[i] are a valid prefix of some UTF-8 sequence
//! (at least 1 when s[i] is a lead byte; 0 for a stray continuation or an invalid lead), and in
//! `needed` the full length that lead byte calls for.
std::size_t utf8_valid_prefix(std::string_view s, std::size_t i, std::size_t& needed) noexcept;
//! Length of the trailing bytes of `s` that form an incomplete but still completable UTF-8
//! sequence (0..3).
std::size_t utf8_incomplete_tail(std::string_view s) noexcept;
void append_utf8(std::string& out, char32_t cp);

bool is_whitespace(char32_t c) noexcept;    //!< Unicode White_Space (Rust char::is_whitespace)
bool is_numeric(char32_t c) noexcept;       //!< categories Nd, Nl, No (Rust char::is_numeric)
bool is_alphanumeric(char32_t c) noexcept;  //!< categories L* and N* (Rust char::is_alphanumeric)
char32_t to_lower(char32_t c) noexcept;     //!< simple lowercase mapping (utf8proc)

enum class normal_form { nfc, nfd, nfkc, nfkd };
//! Unicode normalization of valid UTF-8 (utf8proc). ASCII text is returned unchanged without a call.
std::string normalize(std::string_view s, normal_form form);

//! A compiled PCRE2 pattern (UTF, Unicode properties for \s \d \w, JIT when available), or a
//! literal string when `literal`. Throws std::invalid_argument with PCRE2's message and offset.
class regex {
 public:
  regex(std::string_view pattern, bool literal);
  regex(const regex&) = delete;
  regex& operator=(const regex&) = delete;
  ~regex();
  //! Finds the leftmost match in subject at or after `start`; false when none. `scratch` holds the
  //! match data of the calling thread (one per thread). Throws std::runtime_error when PCRE2's
  //! match or backtracking limit is hit.
  bool find(std::string_view subject, std::size_t start, std::size_t& begin, std::size_t& end, struct match_scratch& scratch) const;

 private:
  void* code_ = nullptr;
  bool jit_ = false;
};

//! Per-thread PCRE2 state: match data, a JIT stack and a match context with limits.
struct match_scratch {
  match_scratch();
  match_scratch(const match_scratch&) = delete;
  match_scratch& operator=(const match_scratch&) = delete;
  ~match_scratch();
  void* data = nullptr;
  void* context = nullptr;
  void* jit_stack = nullptr;
};

}  // namespace mdlm::text::detail

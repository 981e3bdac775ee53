// SPDX-License-Identifier: MIT
#include "unicode.hpp"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <utf8proc.h>

#include <cstdlib>
#include <stdexcept>

#include "mdlm/detail/errors.hpp"

namespace mdlm::text::detail {

namespace {
// The valid range of the second byte of a sequence, by lead byte (Unicode table 3-7).
bool second_byte_ok(unsigned char lead, unsigned char b) noexcept {
  if (lead == 0xE0) return b >= 0xA0 && b <= 0xBF;
  if (lead == 0xED) return b >= 0x80 && b <= 0x9F;
  if (lead == 0xF0) return b >= 0x90 && b <= 0xBF;
  if (lead == 0xF4) return b >= 0x80 && b <= 0x8F;
  return b >= 0x80 && b <= 0xBF;
}
std::size_t sequence_length(unsigned char lead) noexcept {
  if (lead < 0x80) return 1;
  if (lead >= 0xC2 && lead <= 0xDF) return 2;
  if (lead >= 0xE0 && lead <= 0xEF) return 3;
  if (lead >= 0xF0 && lead <= 0xF4) return 4;
  return 0;
}
}  // namespace

std::size_t utf8_valid_prefix(std::string_view s, std::size_t i, std::size_t& needed) noexcept {
  const auto lead = static_cast<unsigned char>(s[i]);
  needed = sequence_length(lead);
  if (needed <= 1) return needed;
  std::size_t k = 1;
  while (k < needed && i + k < s.size()) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if (k == 1 ? !second_byte_ok(lead, b) : (b < 0x80 || b > 0xBF)) break;
    ++k;
  }
  return k;
}

std::size_t utf8_decode(std::string_view s, std::size_t i, char32_t& cp) noexcept {
  std::size_t needed = 0;
  const std::size_t k = utf8_valid_prefix(s, i, needed);
  if (k == 0 || k != needed) return 0;
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (needed == 1) {
    cp = b0;
  } else {
    cp = b0 & (0xFF >> (needed + 1));
    for (std::size_t j = 1; j < needed; ++j) cp = (cp << 6) | (static_cast<unsigned char>(s[i + j]) & 0x3F);
  }
  return needed;
}

std::size_t first_invalid_utf8(std::string_view s) noexcept {
  std::size_t i = 0;
  while (i < s.size()) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    char32_t cp = 0;
    const std::size_t n = utf8_decode(s, i, cp);
    if (n == 0) return i;
    i += n;
  }
  return std::string_view::npos;
}

std::size_t utf8_incomplete_tail(std::string_view s) noexcept {
  // A completable sequence is at most 3 bytes long; look for its lead byte among the last 3.
  for (std::size_t back = 1; back <= 3 && back <= s.size(); ++back) {
    const std::size_t i = s.size() - back;
    const auto b = static_cast<unsigned char>(s[i]);
    if (b >= 0x80 && b <= 0xBF) continue;  // continuation: the lead is further left
    std::size_t needed = 0;
    const std::size_t k = utf8_valid_prefix(s, i, needed);
    return k == back && needed > back ? back : 0;
  }
  return 0;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

bool is_whitespace(char32_t c) noexcept {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

bool is_numeric(char32_t c) noexcept {
  if (c < 0x80) return c >= '0' && c <= '9';
  const auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(c));
  return cat == UTF8PROC_CATEGORY_ND || cat == UTF8PROC_CATEGORY_NL || cat == UTF8PROC_CATEGORY_NO;
}

bool is_alphanumeric(char32_t c) noexcept {
  if (c < 0x80) return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
  const auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(c));
  return (cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO) ||
         (cat >= UTF8PROC_CATEGORY_ND && cat <= UTF8PROC_CATEGORY_NO);
}

char32_t to_lower(char32_t c) noexcept { return static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(c))); }

std::string normalize(std::string_view s, normal_form form) {
  bool ascii = true;
  for (char ch : s) ascii = ascii && static_cast<unsigned char>(ch) < 0x80;
  if (ascii) return std::string(s);
  int options = UTF8PROC_STABLE;
  switch (form) {
    case normal_form::nfc: options |= UTF8PROC_COMPOSE; break;
    case normal_form::nfd: options |= UTF8PROC_DECOMPOSE; break;
    case normal_form::nfkc: options |= UTF8PROC_COMPOSE | UTF8PROC_COMPAT; break;
    case normal_form::nfkd: options |= UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT; break;
  }
  utf8proc_uint8_t* out = nullptr;
  const utf8proc_ssize_t n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(s.data()),
                                          static_cast<utf8proc_ssize_t>(s.size()), &out,
                                          static_cast<utf8proc_option_t>(options));
  if (n < 0) throw std::invalid_argument(mdlm::detail::concat("Unicode normalization failed: ", utf8proc_errmsg(n)));
  std::string r(reinterpret_cast<const char*>(out), static_cast<std::size_t>(n));
  std::free(out);
  return r;
}

regex::regex(std::string_view pattern, bool literal) {
  int error = 0;
  PCRE2_SIZE offset = 0;
  // PCRE2_LITERAL admits PCRE2_UTF but not PCRE2_UCP (which only matters for \s \d \w anyway).
  const uint32_t options = literal ? PCRE2_UTF | PCRE2_LITERAL : PCRE2_UTF | PCRE2_UCP;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), options, &error,
                                   &offset, nullptr);
  if (code == nullptr) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error, message, sizeof message);
    throw std::invalid_argument(mdlm::detail::concat("regex '", pattern, "' does not compile (PCRE2 at offset ", offset,
                                                     ": ", reinterpret_cast<const char*>(message), ")"));
  }
  code_ = code;
  jit_ = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
}

regex::~regex() { pcre2_code_free(static_cast<pcre2_code*>(code_)); }

match_scratch::match_scratch() {
  data = pcre2_match_data_create(1, nullptr);
  auto* ctx = pcre2_match_context_create(nullptr);
  // Bounds on backtracking, so that a pathological pattern or input fails instead of hanging.
  pcre2_set_match_limit(ctx, 50'000'000);
  pcre2_set_depth_limit(ctx, 1'000'000);
  auto* stack = pcre2_jit_stack_create(64 * 1024, 16 * 1024 * 1024, nullptr);
  pcre2_jit_stack_assign(ctx, nullptr, stack);
  context = ctx;
  jit_stack = stack;
  if (data == nullptr || ctx == nullptr || stack == nullptr) throw std::bad_alloc();
}

match_scratch::~match_scratch() {
  pcre2_match_data_free(static_cast<pcre2_match_data*>(data));
  pcre2_match_context_free(static_cast<pcre2_match_context*>(context));
  pcre2_jit_stack_free(static_cast<pcre2_jit_stack*>(jit_stack));
}

bool regex::find(std::string_view subject, std::size_t start, std::size_t& begin, std::size_t& end,
                 match_scratch& scratch) const {
  auto* code = static_cast<pcre2_code*>(code_);
  auto* md = static_cast<pcre2_match_data*>(scratch.data);
  auto* ctx = static_cast<pcre2_match_context*>(scratch.context);
  const auto* p = reinterpret_cast<PCRE2_SPTR>(subject.data());
  // The subject is valid UTF-8 (checked once at encode) and starts at a character boundary.
  const int rc = jit_ ? pcre2_jit_match(code, p, subject.size(), start, 0, md, ctx)
                      : pcre2_match(code, p, subject.size(), start, PCRE2_NO_UTF_CHECK, md, ctx);
  if (rc == PCRE2_ERROR_NOMATCH) return false;
  if (rc < 0) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(rc, message, sizeof message);
    throw std::runtime_error(mdlm::detail::concat("regex match failed: ", reinterpret_cast<const char*>(message)));
  }
  const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
  begin = ov[0];
  end = ov[1];
  return true;
}

}  // namespace mdlm::text::detail

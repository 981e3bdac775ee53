// SPDX-License-Identifier: MIT
#pragma once
//! @file
//! Internal helpers for validating arguments at API boundaries.

#include <charconv>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace mdlm::detail {

//! Writes `x` to `os` in its shortest round-trip form (`std::to_chars` without a precision:
//! -0.1 prints as "-0.1", not "-0.10000000000000001"; 1e300 as "1e+300"; inf and nan by name).
template <class Real>
void write_shortest(std::ostream& os, Real x) {
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, x);
  os << std::string_view(buf, static_cast<std::size_t>(r.ptr - buf));
}

//! Streams one part of a message; floating-point values in their shortest round-trip form.
template <class Part>
void write_part(std::ostream& os, Part&& part) {
  using T = std::remove_cvref_t<Part>;
  if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double> || std::is_same_v<T, long double>) {
    write_shortest(os, part);
  } else {
    os << std::forward<Part>(part);
  }
}

//! Builds a message from streamable parts: `concat("lambda = ", -1.0, " must be >= 0")`.
template <class... Parts>
[[nodiscard]] std::string concat(Parts&&... parts) {
  std::ostringstream os;
  (write_part(os, std::forward<Parts>(parts)), ...);
  return os.str();
}

//! Throws `std::invalid_argument` with a message built from `parts`. Used only at API boundaries;
//! hot paths never throw.
template <class... Parts>
[[noreturn]] void throw_invalid(Parts&&... parts) {
  throw std::invalid_argument(concat(std::forward<Parts>(parts)...));
}

//! `require(cond, parts...)`: throws `std::invalid_argument(concat(parts...))` when `cond` is false.
template <class... Parts>
void require(bool cond, Parts&&... parts) {
  if (!cond) throw_invalid(std::forward<Parts>(parts)...);
}

}  // namespace mdlm::detail

// SPDX-License-Identifier: MIT
#pragma once
//! @file
//! Internal helpers for validating arguments at API boundaries.

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace mdlm::detail {

//! Builds a message from streamable parts: `concat("lambda = ", -1.0, " must be >= 0")`.
template <class... Parts>
[[nodiscard]] std::string concat(Parts&&... parts) {
  std::ostringstream os;
  os.precision(17);
  (os << ... << std::forward<Parts>(parts));
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

// SPDX-License-Identifier: MIT
// The single Catch2 main translation unit shared by every test executable.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>

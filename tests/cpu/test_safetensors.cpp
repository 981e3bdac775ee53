// SPDX-License-Identifier: MIT
// The safetensors reader and writer: dtype conversions, header validation (every error names the
// file and tensor), memory-mapped reads, round trips.
#include "mdlm/cpu/checkpoint_names.hpp"

#include <bit>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "support.hpp"

using Catch::Matchers::Contains;
using namespace mdlm::cpu;

namespace {

std::span<const std::byte> as_bytes(const std::string& s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

safetensors_header parse(const std::string& image) { return parse_safetensors(as_bytes(image), "x.safetensors"); }

}  // namespace

TEST_CASE("bf16 conversion rounds to nearest even and keeps specials", "[safetensors]") {
  CHECK(f32_to_bf16(1.0f) == 0x3F80);
  CHECK(f32_to_bf16(1.00390625f) == 0x3F80);  // 1 + 2^-8: a tie, rounds to the even 0x3F80
  CHECK(f32_to_bf16(1.01171875f) == 0x3F82);  // 1 + 3*2^-8: a tie, rounds up to the even 0x3F82
  CHECK(f32_to_bf16(1.0f + 0x1p-8f + 0x1p-20f) == 0x3F81);  // just above the tie
  CHECK(f32_to_bf16(-2.5f) == 0xC020);
  CHECK(f32_to_bf16(std::numeric_limits<float>::infinity()) == 0x7F80);
  CHECK(f32_to_bf16(std::numeric_limits<float>::max()) == 0x7F80);  // rounds up to inf
  CHECK(std::isnan(bf16_to_f32(f32_to_bf16(std::numeric_limits<float>::quiet_NaN()))));
  // Every bf16 value survives the round trip exactly.
  for (std::uint32_t b = 0; b < 0x10000u; ++b) {
    const auto bits = static_cast<std::uint16_t>(b);
    const float x = bf16_to_f32(bits);
    if (!std::isnan(x)) REQUIRE(f32_to_bf16(x) == bits);
  }
}

TEST_CASE("fp16 conversion is exact both ways for every binary16 value", "[safetensors]") {
  CHECK(f16_to_f32(0x3C00) == 1.0f);
  CHECK(f16_to_f32(0xC000) == -2.0f);
  CHECK(f16_to_f32(0x0001) == 0x1p-24f);          // smallest subnormal
  CHECK(f16_to_f32(0x03FF) == 1023 * 0x1p-24f);   // largest subnormal
  CHECK(f16_to_f32(0x7BFF) == 65504.0f);          // largest finite
  CHECK(std::isinf(f16_to_f32(0x7C00)));
  CHECK(std::isnan(f16_to_f32(0x7E00)));
  CHECK(f32_to_f16(65520.0f) == 0x7C00);          // rounds to inf
  CHECK(f32_to_f16(65519.0f) == 0x7BFF);
  CHECK(f32_to_f16(0x1p-25f) == 0x0000);          // half the smallest subnormal: tie to even 0
  CHECK(f32_to_f16(0x1p-25f + 0x1p-30f) == 0x0001);
  CHECK(f32_to_f16(1.0f + 0x1p-11f) == 0x3C00);   // tie between 1 and 1 + 2^-10 -> even
  for (std::uint32_t b = 0; b < 0x10000u; ++b) {
    const auto bits = static_cast<std::uint16_t>(b);
    const float x = f16_to_f32(bits);
    if (!std::isnan(x)) REQUIRE(f32_to_f16(x) == bits);
  }
}

TEST_CASE("a valid header parses, sorted by name, with metadata", "[safetensors]") {
  const std::string data(4 * 2 + 2 * 3, '\0');
  const auto h = parse(mdlm::test::safetensors_image(
      R"({"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"BF16","shape":[3,1],"data_offsets":[8,14]},)"
      R"("e":{"dtype":"F16","shape":[0],"data_offsets":[14,14]},"__metadata__":{"format":"pt"}})",
      data));
  REQUIRE(h.tensors.size() == 3);
  CHECK(h.tensors[0].name == "a");
  CHECK(h.tensors[0].type == dtype::bf16);
  CHECK(h.tensors[0].shape == std::vector<std::uint64_t>{3, 1});
  CHECK(h.tensors[1].name == "b");
  CHECK(h.tensors[1].numel() == 2);
  CHECK(h.tensors[2].numel() == 0);
  CHECK(h.metadata.at("format") == "pt");
  CHECK(h.find("b") == &h.tensors[1]);
  CHECK(h.find("c") == nullptr);
  CHECK(h.data_size == data.size());
}

TEST_CASE("header errors name the file and the tensor", "[safetensors]") {
  using mdlm::test::safetensors_image;
  const std::string ok_entry = R"("w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
  const std::string eight(8, '\0');

  SECTION("file shorter than the length field") {
    CHECK_THROWS_WITH(parse(std::string(5, '\0')), Contains("x.safetensors") && Contains("truncated"));
  }
  SECTION("header length beyond the file") {
    CHECK_THROWS_WITH(parse(safetensors_image("{}", "", 4000)),
                      Contains("x.safetensors") && Contains("header length 4000 goes beyond the file"));
  }
  SECTION("absurd header length") {
    CHECK_THROWS_WITH(parse(safetensors_image("{}", "", 1ull << 62)), Contains("exceeds the limit"));
  }
  SECTION("malformed JSON") {
    CHECK_THROWS_WITH(parse(safetensors_image(R"({"w":{"dtype":)", "")),
                      Contains("x.safetensors") && Contains("malformed JSON"));
    CHECK_THROWS_WITH(parse(safetensors_image("[1,2]", "")), Contains("not an object"));
    CHECK_THROWS_WITH(parse(safetensors_image(R"({"w":{"a":{"b":{"c":1}}}})", "")), Contains("nesting"));
  }
  SECTION("unsupported dtype") {
    CHECK_THROWS_WITH(parse(safetensors_image(R"({"ids":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}})", eight)),
                      Contains("x.safetensors") && Contains("tensor ids") && Contains("unsupported dtype I64"));
  }
  SECTION("bad field types") {
    CHECK_THROWS_WITH(parse(safetensors_image(R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", eight)),
                      Contains("tensor w") && Contains("shape"));
    CHECK_THROWS_WITH(parse(safetensors_image(R"({"w":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}})", eight)),
                      Contains("tensor w"));
    CHECK_THROWS_WITH(parse(safetensors_image(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", eight)),
                      Contains("tensor w") && Contains("data_offsets"));
    CHECK_THROWS_WITH(parse(safetensors_image(R"({"w":{"shape":[2],"data_offsets":[0,8]}})", eight)),
                      Contains("tensor w") && Contains("dtype"));
    CHECK_THROWS_WITH(parse(safetensors_image(R"({"w":3})", eight)), Contains("tensor w"));
    CHECK_THROWS_WITH(parse(safetensors_image(R"({"__metadata__":{"k":1}})", "")), Contains("__metadata__"));
  }
  SECTION("size does not match the shape") {
    CHECK_THROWS_WITH(parse(safetensors_image(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", eight)),
                      Contains("tensor w") && Contains("needs 12"));
  }
  SECTION("shape product overflows") {
    CHECK_THROWS_WITH(
        parse(safetensors_image(
            R"({"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", eight)),
        Contains("tensor w") && Contains("too large"));
  }
  SECTION("out-of-bounds offsets (truncated data)") {
    CHECK_THROWS_WITH(parse(safetensors_image("{" + ok_entry + "}", std::string(6, '\0'))),
                      Contains("x.safetensors") && Contains("tensor w") && Contains("beyond the end of the data"));
  }
  SECTION("reversed offsets") {
    CHECK_THROWS_WITH(parse(safetensors_image(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", eight)),
                      Contains("tensor w") && Contains("reversed"));
  }
  SECTION("overlapping offsets") {
    CHECK_THROWS_WITH(parse(safetensors_image(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                              R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                                              std::string(12, '\0'))),
                      Contains("x.safetensors") && Contains("a [0, 8)") && Contains("b [4, 12)") && Contains("overlap"));
  }
  SECTION("duplicate names") {
    CHECK_THROWS_WITH(parse(safetensors_image("{" + ok_entry + "," + ok_entry + "}", eight)),
                      Contains("tensor w appears twice"));
  }
}

TEST_CASE("write_safetensors and safetensors_file round-trip every dtype", "[safetensors]") {
  const auto dir = mdlm::test::scratch_dir("roundtrip");
  std::vector<float> a = {1.0f, -2.5f, 0.1f, 3.14159f, 1e-6f, 65504.0f};
  std::vector<float> b = {7.0f};
  const std::vector<tensor_view> views = {{"z.w", {2, 3}, a}, {"a.scalar", {}, b}};
  for (dtype t : {dtype::bf16, dtype::f16, dtype::f32}) {
    const auto path = dir / (std::string(dtype_name(t)) + ".safetensors");
    write_safetensors(path, views, t);
    const safetensors_file f(path);
    CHECK(f.header().header_size % 8 == 0);
    REQUIRE(f.header().tensors.size() == 2);
    CHECK(f.header().tensors[0].name == "a.scalar");
    CHECK(f.header().tensors[0].shape.empty());
    CHECK(f.header().metadata.at("format") == "pt");
    std::vector<float> out(6);
    f.read_f32("z.w", out);
    for (std::size_t i = 0; i < a.size(); ++i) {
      const float want = t == dtype::bf16 ? bf16_to_f32(f32_to_bf16(a[i]))
                         : t == dtype::f16 ? f16_to_f32(f32_to_f16(a[i]))
                                           : a[i];
      CHECK(std::bit_cast<std::uint32_t>(out[i]) == std::bit_cast<std::uint32_t>(want));
    }
    std::vector<float> wrong(5);
    CHECK_THROWS_WITH(f.read_f32("z.w", wrong), Contains("tensor z.w has 6 elements"));
    CHECK_THROWS_WITH(f.read_f32("nope", out), Contains("no tensor nope"));
  }
  CHECK_THROWS_AS(write_safetensors(dir / "bad.safetensors", std::vector<tensor_view>{{"w", {4}, b}}), std::invalid_argument);
}

TEST_CASE("safetensors_file reports missing, empty, directory and truncated files", "[safetensors]") {
  const auto dir = mdlm::test::scratch_dir("files");
  CHECK_THROWS_WITH(safetensors_file(dir / "missing.safetensors"), Contains("missing.safetensors") && Contains("cannot open"));
  CHECK_THROWS_WITH(safetensors_file(dir), Contains("not a regular file"));
  mdlm::test::write_file(dir / "empty.safetensors", "");
  CHECK_THROWS_WITH(safetensors_file(dir / "empty.safetensors"), Contains("empty.safetensors") && Contains("truncated"));
  // A valid file cut in the middle of its data.
  std::vector<float> v(100, 1.0f);
  write_safetensors(dir / "full.safetensors", std::vector<tensor_view>{{"w", {100}, v}}, dtype::f32);
  auto bytes = mdlm::test::read_file(dir / "full.safetensors");
  mdlm::test::write_file(dir / "cut.safetensors", std::string_view(bytes).substr(0, bytes.size() - 10));
  CHECK_THROWS_WITH(safetensors_file(dir / "cut.safetensors"),
                    Contains("cut.safetensors") && Contains("tensor w") && Contains("truncated"));
  // Cut inside the header.
  mdlm::test::write_file(dir / "cut2.safetensors", std::string_view(bytes).substr(0, 20));
  CHECK_THROWS_WITH(safetensors_file(dir / "cut2.safetensors"), Contains("cut2.safetensors") && Contains("goes beyond the file"));
  std::filesystem::remove_all(dir);
}

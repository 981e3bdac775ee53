// SPDX-License-Identifier: MIT
#pragma once
//! @file
//! The checkpoint names of mdlm::hf (backends/checkpoint, target mdlm::checkpoint) that the CPU
//! backend's API takes and returns, declared in mdlm::cpu as well, so that code written against the
//! CPU backend (`mdlm::cpu::architecture::llada`, `mdlm::cpu::model_config`, ...) names them there.
//! They are the same entities: the reader and validation exist once, in mdlm::checkpoint.

#include "mdlm/checkpoint/checkpoint.hpp"
#include "mdlm/checkpoint/config.hpp"
#include "mdlm/checkpoint/safetensors.hpp"

namespace mdlm::cpu {

using hf::architecture;
using hf::architecture_name;
using hf::bf16_to_f32;
using hf::check_index_metadata;
using hf::checkpoint;
using hf::checkpoint_error;
using hf::checkpoint_options;
using hf::dtype;
using hf::dtype_name;
using hf::dtype_size;
using hf::expected_tensors;
using hf::f16_to_f32;
using hf::f32_to_bf16;
using hf::f32_to_f16;
using hf::index_report;
using hf::model_config;
using hf::parse_model_config;
using hf::parse_safetensors;
using hf::parse_weight_index;
using hf::read_model_config;
using hf::safetensors_file;
using hf::safetensors_header;
using hf::tensor_info;
using hf::tensor_spec;
using hf::tensor_view;
using hf::weight_index;
using hf::write_safetensors;

}  // namespace mdlm::cpu

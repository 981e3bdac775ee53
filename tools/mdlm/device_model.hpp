// SPDX-License-Identifier: MIT
#pragma once
// `--device cpu|cuda` for the commands that run a checkpoint (generate, eval, posterior, score,
// solve): one model type over both backends (a BatchedConditionalModel that forwards to cpu::model or
// cuda::model), and the checks that run before any weight is loaded: the device name, a usable CUDA
// device, and enough free device memory for the weights plus the activations of the run's (batch,
// length) -- each a one-line std::invalid_argument, so the tool exits with code 2.
#include <cstddef>
#include <filesystem>
#include <span>
#include <string>
#include <utility>
#include <variant>

#include "commands.hpp"
#include "mdlm/concepts.hpp"
#include "mdlm/cpu/checkpoint_names.hpp"
#include "mdlm/cpu/model.hpp"
#include "mdlm/detail/errors.hpp"
#if MDLM_TOOL_HAVE_CUDA
#include "mdlm/cuda/model.hpp"
#endif

namespace mdlm::tool {

//! Registers `--device` (default "cpu") on `cmd`.
template <class App>
void add_device_option(App* cmd, std::string& device) {
  cmd->add_option("--device", device,
                  "Where the model runs: cpu, or cuda (GPU 0, bf16; needs a build with MDLM_BUILD_CUDA)")
      ->capture_default_str();
}

//! Registers `--weights` (default "file") on `cmd`: how the CPU backend holds the weight matrices.
template <class App>
void add_weights_option(App* cmd, std::string& weights) {
  cmd->add_option("--weights", weights,
                  "CPU weight matrices in memory: file (bf16 / fp16 checkpoints stay 16-bit, 2 bytes per "
                  "parameter) or fp32 (4 bytes); the logits are the same")
      ->check(CLI::IsMember({"file", "fp32"}))
      ->capture_default_str();
}

//! cpu::weight_storage of a `--weights` value.
inline cpu::weight_storage weight_storage_of(const std::string& weights) {
  return weights == "fp32" ? cpu::weight_storage::fp32 : cpu::weight_storage::file_dtype;
}

//! A checkpoint on the CPU or on a CUDA device, as one BatchedConditionalModel.
class device_model {
 public:
  explicit device_model(cpu::model m) : m_(std::move(m)) {}
#if MDLM_TOOL_HAVE_CUDA
  explicit device_model(cuda::model m) : m_(std::move(m)) {}
#endif

  [[nodiscard]] std::size_t vocab_size() const {
    return std::visit([](const auto& x) { return x.vocab_size(); }, m_);
  }
  [[nodiscard]] token_id mask_token() const {
    return std::visit([](const auto& x) { return x.mask_token(); }, m_);
  }
  void logits(std::span<const token_id> tokens, std::span<float> out) {
    std::visit([&](auto& x) { x.logits(tokens, out); }, m_);
  }
  void batch_logits(std::span<const token_id> tokens, std::size_t batch, std::span<float> out) {
    std::visit([&](auto& x) { x.batch_logits(tokens, batch, out); }, m_);
  }
  //! "cpu" or "cuda".
  [[nodiscard]] const char* device() const noexcept { return m_.index() == 0 ? "cpu" : "cuda"; }
  //! CPU threads of the forward (0 on a CUDA device).
  [[nodiscard]] int threads() const noexcept {
    const auto* c = std::get_if<cpu::model>(&m_);
    return c != nullptr ? c->threads() : 0;
  }

 private:
#if MDLM_TOOL_HAVE_CUDA
  std::variant<cpu::model, cuda::model> m_;
#else
  std::variant<cpu::model> m_;
#endif
};

static_assert(BatchedConditionalModel<device_model>);

//! Loads checkpoint `dir` on `device` ("cpu" or "cuda"). For cuda, before any weight is read: a
//! usable device must exist and its free memory must hold cuda::plan_memory(config, batch, length)
//! (weights, activations and logits of batches of `batch` sequences of up to `length` positions).
//! Every failed check is a std::invalid_argument naming the flag.
inline device_model load_on_device(const std::filesystem::path& dir, const std::string& device, std::size_t batch,
                                   std::size_t length, const cpu::model_options& cpu_options = {}) {
  detail::require(device == "cpu" || device == "cuda", "--device ", device, ": expected cpu or cuda");
  if (device == "cpu") {
    const cpu::model_config cfg = cpu::read_model_config(dir);
    const std::uint64_t params = cfg.parameter_count();
    // The declared dtype decides the bytes per parameter when the matrices stay as stored.
    const bool wide = cpu_options.weights == cpu::weight_storage::fp32 || cfg.dtype == "float32" || cfg.dtype.empty();
    const std::uint64_t per = wide ? 4 : 2;
    return with_memory_context("loading " + dir.string(),
                               "its weights need " + format_bytes(params * per) + (wide ? " as fp32 (" : " as stored (") +
                                   std::to_string(params) + " parameters x " + std::to_string(per) + " bytes)",
                               [&] { return device_model(cpu::model::load(dir, cpu_options)); });
  }
#if MDLM_TOOL_HAVE_CUDA
  const cpu::model_config cfg = cpu::read_model_config(dir);
  const cuda::device_info dev = cuda::query_device(0);
  detail::require(dev.present, "--device cuda: no CUDA device: ", dev.reason);
  const cuda::memory_plan plan = cuda::plan_memory(cfg, batch, length);
  detail::require(plan.total() <= dev.free_bytes, "--device cuda: the model needs ", cuda::format_gib(plan.total()),
                  " of device memory (weights ", cuda::format_gib(plan.weights), ", activations and logits ",
                  cuda::format_gib(plan.total() - plan.weights), " for batch ", batch, " x length ", length, ") but ",
                  dev.name, " has ", cuda::format_gib(dev.free_bytes), " free");
  return device_model(cuda::model::load(dir, {.device = 0, .allow_unexpected_tensors = cpu_options.allow_unexpected_tensors}));
#else
  (void)batch;
  (void)length;
  detail::throw_invalid("--device cuda: this mdlm was built without the CUDA backend (configure with nvcc on the PATH, "
                        "-DMDLM_BUILD_CUDA=ON)");
#endif
}

}  // namespace mdlm::tool

// SPDX-License-Identifier: MIT
#pragma once
//! @file
//! Shared pieces of the Python extension `mdlm._mdlm`: zero-copy views of logit arrays (DLPack or
//! the buffer protocol), the adapter that turns a Python callable into an mdlm model, the observer
//! set that forwards decode events to early-exit objects and Python callbacks, and the dispatch
//! from a Python policy object to the C++ policy type.

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "mdlm/mdlm.hpp"
#include "mdlm/kl_history.hpp"
#include "mdlm/row_choices.hpp"

namespace mdlm::python {

namespace py = pybind11;

//! Element type of a logit array the kernels read.
enum class logit_format { f32, bf16, f16 };

//! The DLPack ABI (dlpack.h, version 0.x: DLManagedTensor), as producers (PyTorch, NumPy) export it.
namespace dl {
struct device {
  std::int32_t device_type;  // 1 = CPU
  std::int32_t device_id;
};
struct data_type {
  std::uint8_t code;  // 0 int, 1 uint, 2 float, 4 bfloat
  std::uint8_t bits;
  std::uint16_t lanes;
};
struct tensor {
  void* data;
  device dev;
  std::int32_t ndim;
  data_type dtype;
  std::int64_t* shape;
  std::int64_t* strides;
  std::uint64_t byte_offset;
};
struct managed_tensor {
  tensor dl_tensor;
  void* manager_ctx;
  void (*deleter)(managed_tensor*);
};
}  // namespace dl

//! A read-only, C-contiguous view of a logit array owned by a Python object, without a copy.
//! Construct and destroy with the GIL held; `data` may be read without it while the view lives.
class logits_view {
 public:
  //! Views `obj` (anything with `__dlpack__` on the CPU, or the buffer protocol): fp32, bf16 or fp16,
  //! C-contiguous. `what` names the object in error messages.
  //! @throws std::invalid_argument naming the dtype, the device or the layout.
  logits_view(py::handle obj, const char* what);
  ~logits_view();
  logits_view(const logits_view&) = delete;
  logits_view& operator=(const logits_view&) = delete;

  const void* data = nullptr;        //!< first element
  logit_format format = logit_format::f32;
  std::vector<std::size_t> shape;    //!< extents
  [[nodiscard]] std::size_t size() const noexcept;

  //! The view as a span of `T` (T matching `format`).
  template <class T>
  [[nodiscard]] std::span<const T> as() const noexcept {
    return {static_cast<const T*>(data), size()};
  }

 private:
  py::object owner_;                   // keeps the exporter alive
  dl::managed_tensor* managed_ = nullptr;  // consumed DLPack tensor (deleter called at the end)
  std::unique_ptr<py::buffer_info> buffer_;
};

//! Calls `f` with the view's data as a span of its element type (float, bf16 or fp16).
template <class F>
decltype(auto) with_logits(const logits_view& v, F&& f) {
  switch (v.format) {
    case logit_format::bf16: return f(v.as<mdlm::bf16>());
    case logit_format::f16: return f(v.as<mdlm::fp16>());
    case logit_format::f32: break;
  }
  return f(v.as<float>());
}

//! A Python callable `tokens -> logits` as an mdlm model (both interfaces of row_model.hpp). The
//! callable receives a fresh int64 NumPy array of shape [L] (or [B, L] for batches) and returns
//! [L, V] (or [1, L, V]; [B, L, V] for batches) fp32 / bf16 / fp16 logits, C-contiguous. The
//! row-statistics interface reads them in place (no copy; KLASS's KL included, kl_histories); the logits interface converts
//! them into decode's float buffer. Each call takes the GIL and drops it around the statistics.
class py_model {
 public:
  py_model(py::object fn, std::size_t vocab, token_id mask) : fn_(std::move(fn)), vocab_(vocab), mask_(mask) {}
  [[nodiscard]] std::size_t vocab_size() const noexcept { return vocab_; }
  [[nodiscard]] token_id mask_token() const noexcept { return mask_; }

  void row_choices(std::span<const token_id> tokens, const row_request& request, std::span<row_choice> out);
  void batch_row_choices(std::span<const token_id> tokens, std::size_t batch, std::span<const row_request> requests,
                         std::span<row_choice> out);
  void logits(std::span<const token_id> tokens, std::span<float> out);
  void batch_logits(std::span<const token_id> tokens, std::size_t batch, std::span<float> out);

 private:
  //! Calls the function (GIL held) and views its result, checked against [batch, L, V].
  std::unique_ptr<logits_view> call(std::span<const token_id> tokens, std::size_t batch, bool batched);

  py::object fn_;
  std::size_t vocab_;
  token_id mask_;
  detail::choice_scratch scratch_;
  kl_histories kl_;  // row_request::kl (KLASS)
};

//! The observers of one decode run: early-exit objects and Python callbacks (called after each step
//! with a `StepEvent`; returning True stops the loop). Reads row statistics only.
struct observer_set {
  std::vector<mdlm::early_exit*> exits;
  std::vector<py::object> callbacks;
  std::vector<py::object> keep;  // the Python objects owning `exits`

  static constexpr bool reads_logit_rows = false;
  void add_rows(const row_query& q, std::vector<std::size_t>& rows) const {
    for (const auto* e : exits) e->add_rows(q, rows);
  }
  observer_action on_logits(step_event& e);
  observer_action on_step(step_event& e);
};

//! Splits `observers` (a Python sequence) into early-exit objects and callables.
//! @throws std::invalid_argument for an element that is neither.
observer_set make_observers(py::handle observers);

//! Calls `f(policy)` with the C++ policy behind the Python object `p` (a copy).
//! @throws std::invalid_argument when `p` is not an mdlm policy.
template <class F>
decltype(auto) with_policy(py::handle p, F&& f) {
  if (py::isinstance<mdlm::med>(p)) return f(p.cast<mdlm::med>());
  if (py::isinstance<mdlm::eb_sampler>(p)) return f(p.cast<mdlm::eb_sampler>());
  if (py::isinstance<mdlm::fast_dllm_threshold>(p)) return f(p.cast<mdlm::fast_dllm_threshold>());
  if (py::isinstance<mdlm::fast_dllm_factor>(p)) return f(p.cast<mdlm::fast_dllm_factor>());
  if (py::isinstance<mdlm::fixed_count>(p)) return f(p.cast<mdlm::fixed_count>());
  if (py::isinstance<mdlm::dream_origin>(p)) return f(p.cast<mdlm::dream_origin>());
  if (py::isinstance<mdlm::klass>(p)) return f(p.cast<mdlm::klass>());
  throw std::invalid_argument(detail::concat("policy = ", std::string(py::str(py::repr(p))),
                                             " is not an mdlm policy (MED, EBSampler, FastDLLMThreshold, "
                                             "FastDLLMFactor, FixedCount, DreamOrigin, KLASS)"));
}

//! Tokens of a Python sequence / array as token ids (each checked to fit int32).
std::vector<token_id> to_tokens(py::handle seq, const char* what);

//! The options of a decode run from the Python keyword arguments.
template <class Policy>
decode_options<Policy> make_options(const Policy& policy, const token_choice& choice, std::size_t block_length,
                                    std::size_t steps, std::size_t max_nfe, const std::string& interface) {
  decode_options<Policy> o;
  o.policy = policy;
  o.choice = choice;
  o.block_length = block_length;
  o.steps = steps;
  o.max_nfe = max_nfe;
  if (interface == "automatic") o.interface = model_interface::automatic;
  else if (interface == "logits") o.interface = model_interface::logits;
  else if (interface == "row_choices") o.interface = model_interface::row_choices;
  else
    throw std::invalid_argument(detail::concat("interface = '", interface,
                                               "' must be 'automatic', 'logits' or 'row_choices'"));
  return o;
}

//! Registers the reference-model bindings (reference.cpp) into `m`.
void bind_reference(py::module_& m);

}  // namespace mdlm::python

// SPDX-License-Identifier: MIT
#include "mdlm/cuda/model.hpp"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "check.hpp"
#include "forward.hpp"
#include "kernels.hpp"
#include "lt_gemm.hpp"
#include "mdlm/detail/errors.hpp"

namespace mdlm::cuda {

namespace {
// Allowance for what the model allocates outside the plan's buffers: cuBLASLt's handle and its
// kernels, this library's kernel module, the stream. An estimate (not measured on a GPU yet).
constexpr std::size_t device_reserve_bytes = std::size_t{256} << 20;

bool sync_from_environment() {
  const char* v = std::getenv("MDLM_CUDA_SYNC");
  return v != nullptr && v[0] == '1';
}
}  // namespace

memory_plan plan_memory(const hf::model_config& config, std::size_t batch, std::size_t length) {
  mdlm::detail::require(batch >= 1, "batch = ", batch, " must be >= 1");
  mdlm::detail::require(length >= 1, "length = ", length, " must be >= 1");
  const auto m = detail::dims::of(config);
  const auto a = detail::activation_layout::of(m, static_cast<std::int64_t>(batch), static_cast<std::int64_t>(length));
  memory_plan p;
  p.batch = batch;
  p.length = length;
  p.weights = detail::weight_layout::of(m).bytes;
  p.logits = a.logits_bytes;
  p.workspace = a.workspace_bytes;
  p.activations = a.bytes - a.logits_bytes - a.workspace_bytes;
  p.reserve = device_reserve_bytes;
  return p;
}

struct model::impl {
  hf::model_config cfg;
  detail::dims m;
  detail::weight_layout wl;
  model_options opt;
  device_info dev;
  cudaStream_t stream = nullptr;
  cudaEvent_t uploaded = nullptr;  // the last host -> device copy of the pinned staging buffers
  std::byte* weights = nullptr;
  detail::weight_ptrs w;
  std::unique_ptr<detail::lt_gemm> lt;
  // The current (batch, length) plan.
  detail::activation_layout al{};
  std::byte* act_mem = nullptr;
  std::size_t act_capacity = 0;
  detail::activation_ptrs act{};
  std::int32_t* host_tokens = nullptr;  // pinned, al.rows
  std::int32_t* host_index = nullptr;   // pinned, al.head_rows
  std::size_t host_rows = 0;
  bool body_ready = false;
  std::vector<float> rope_cos, rope_sin;

  impl(const hf::model_config& c, const model_options& o)
      : cfg(c), m(detail::dims::of(c)), wl(detail::weight_layout::of(m)), opt(o) {
    opt.sync_each_step = opt.sync_each_step || sync_from_environment();
    dev = query_device(opt.device);
    if (!dev.present) throw cuda_error("no CUDA device: " + dev.reason);
    try {
      detail::check_cuda(cudaSetDevice(opt.device), "cudaSetDevice");
      detail::check_cuda(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate");
      detail::check_cuda(cudaEventCreateWithFlags(&uploaded, cudaEventDisableTiming), "cudaEventCreate");
      lt = std::make_unique<detail::lt_gemm>();
      void* p = nullptr;
      detail::check_cuda(cudaMalloc(&p, wl.bytes), [&] {
        return "cudaMalloc of " + format_gib(wl.bytes) + " for the weights (" + format_gib(dev.free_bytes) + " free on " +
               dev.name + ")";
      });
      weights = static_cast<std::byte*>(p);
      w = detail::weight_ptrs::at(wl, weights);
    } catch (...) {
      release();
      throw;
    }
  }
  ~impl() { release(); }
  impl(const impl&) = delete;
  impl& operator=(const impl&) = delete;

  void release() noexcept {
    if (stream != nullptr) (void)cudaStreamSynchronize(stream);
    lt.reset();
    if (host_tokens != nullptr) (void)cudaFreeHost(host_tokens);
    if (host_index != nullptr) (void)cudaFreeHost(host_index);
    if (act_mem != nullptr) (void)cudaFree(act_mem);
    if (weights != nullptr) (void)cudaFree(weights);
    if (uploaded != nullptr) (void)cudaEventDestroy(uploaded);
    if (stream != nullptr) (void)cudaStreamDestroy(stream);
    host_tokens = host_index = nullptr;
    act_mem = weights = nullptr;
    uploaded = nullptr;
    stream = nullptr;
  }

  [[nodiscard]] std::string shape() const {
    return "batch " + std::to_string(al.batch) + " x length " + std::to_string(al.length);
  }

  //! Every public call first selects the model's device (the runtime's current device is per thread).
  void select_device() const { detail::check_cuda(cudaSetDevice(opt.device), "cudaSetDevice"); }

  void load(const hf::checkpoint& ckpt) {
    // On the model's stream, synchronised per tensor (the host buffer is reused for the next one): a
    // plain cudaMemcpy from pageable memory may return before its DMA ends, and the non-blocking
    // stream would not wait for it.
    detail::read_weights(ckpt, wl, [&](std::size_t offset, const std::vector<std::uint16_t>& host, const std::string& name) {
      detail::check_cuda(cudaMemcpyAsync(weights + offset, host.data(), host.size() * 2, cudaMemcpyHostToDevice, stream),
                         [&] { return "copying " + name + " to the device"; });
      detail::check_cuda(cudaStreamSynchronize(stream), [&] { return "copying " + name + " to the device"; });
    });
  }

  void fill_random(std::uint64_t seed) {
    // Standard deviations of cpu::write_tiny_checkpoint: uniform on [-1, 1) has std 1/sqrt(3).
    const float unit = std::sqrt(3.0f);
    std::uint64_t tensor = 0;
    auto fill = [&](std::size_t offset, std::int64_t n, float offset_value, float scale) {
      ++tensor;
      detail::check_cuda(detail::launch_fill_uniform(reinterpret_cast<std::uint16_t*>(weights + offset), n,
                                                     seed * 0x100000001B3ull + tensor * 0x9E3779B97F4A7C15ull,
                                                     offset_value, scale, stream),
                         "random weights");
    };
    const float s_d = unit / std::sqrt(static_cast<float>(m.d)), s_mlp = unit / std::sqrt(static_cast<float>(m.mlp));
    fill(wl.embed, m.vocab * m.d, 0.0f, unit);
    for (const auto& l : wl.layers) {
      fill(l.attn_norm, m.d, 1.0f, 0.2f);
      fill(l.wqkv, m.qkv_width() * m.d, 0.0f, s_d);
      if (m.qkv_bias) fill(l.bqkv, m.qkv_width(), 0.0f, 0.1f * unit);
      fill(l.wo, m.d * m.d, 0.0f, s_d);
      fill(l.ff_norm, m.d, 1.0f, 0.2f);
      fill(l.wgu, 2 * m.mlp * m.d, 0.0f, s_d);
      fill(l.wdown, m.d * m.mlp, 0.0f, s_mlp);
    }
    fill(wl.final_norm, m.d, 1.0f, 0.2f);
    if (!m.tied) fill(wl.head, m.vocab * m.d, 0.0f, s_d);
    detail::check_cuda(cudaStreamSynchronize(stream), "random weights");
  }

  //! Makes (batch, length) the current plan: activation buffers, RoPE tables, pinned staging.
  void ensure_plan(std::int64_t batch, std::int64_t length) {
    if (act_mem != nullptr && al.batch == batch && al.length == length) return;
    detail::check_cuda(cudaStreamSynchronize(stream), "synchronising before a new (batch, length) plan");
    body_ready = false;
    lt->clear();  // GEMM plans hold shapes of the old buffers
    const auto next = detail::activation_layout::of(m, batch, length);
    if (next.bytes > act_capacity) {
      if (act_mem != nullptr) detail::check_cuda(cudaFree(act_mem), "cudaFree");
      act_mem = nullptr;
      act_capacity = 0;
      void* p = nullptr;
      detail::check_cuda(cudaMalloc(&p, next.bytes), [&] {
        std::size_t free_b = 0, total_b = 0;
        (void)cudaMemGetInfo(&free_b, &total_b);
        return "cudaMalloc of " + format_gib(next.bytes) + " of activations for batch " + std::to_string(batch) +
               " x length " + std::to_string(length) + " (" + format_gib(free_b) + " free)";
      });
      act_mem = static_cast<std::byte*>(p);
      act_capacity = next.bytes;
    }
    al = next;
    act = detail::activation_ptrs::at(al, act_mem);
    detail::rope_tables(cfg.rope_theta, m.head_dim, length, rope_cos, rope_sin);
    detail::check_cuda(cudaMemcpyAsync(act.cos, rope_cos.data(), rope_cos.size() * 4, cudaMemcpyHostToDevice, stream),
                       "RoPE table");
    detail::check_cuda(cudaMemcpyAsync(act.sin, rope_sin.data(), rope_sin.size() * 4, cudaMemcpyHostToDevice, stream),
                       "RoPE table");
    detail::check_cuda(cudaStreamSynchronize(stream), "RoPE table");
    if (static_cast<std::size_t>(al.head_rows) > host_rows) {
      if (host_tokens != nullptr) (void)cudaFreeHost(host_tokens);
      if (host_index != nullptr) (void)cudaFreeHost(host_index);
      host_tokens = host_index = nullptr;
      host_rows = 0;
      void* t = nullptr;
      void* i = nullptr;
      detail::check_cuda(cudaMallocHost(&t, static_cast<std::size_t>(al.head_rows) * 4), "cudaMallocHost (tokens)");
      host_tokens = static_cast<std::int32_t*>(t);
      detail::check_cuda(cudaMallocHost(&i, static_cast<std::size_t>(al.head_rows) * 4), "cudaMallocHost (head rows)");
      host_index = static_cast<std::int32_t*>(i);
      host_rows = static_cast<std::size_t>(al.head_rows);
    }
  }

  //! Waits until the pinned staging buffers may be overwritten (their last copy has run).
  void wait_staging() { detail::check_cuda(cudaEventSynchronize(uploaded), "waiting for the previous upload"); }

  // The device executor of forward.hpp: launches kernels.cu and cuBLASLt on the model's stream and
  // checks every status with the step, layer and shape.
  struct exec {
    impl& s;

    std::string where(const char* step, int layer) const {
      std::string w = "CUDA forward (" + s.shape() + ")";
      if (layer >= 0) w += ", layer " + std::to_string(layer);
      return w + ": " + step;
    }
    void after(cudaError_t e, const char* step, int layer) const {
      detail::check_cuda(e, [&] { return where(step, layer); });
      if (s.opt.sync_each_step)
        detail::check_cuda(cudaStreamSynchronize(s.stream), [&] { return where(step, layer) + " (synchronised after it)"; });
    }
    void embed(const std::int32_t* tokens, std::int64_t rows, const std::uint16_t* table, std::int64_t d, float* h) const {
      after(detail::launch_embed(tokens, rows, table, d, h, s.stream), "embedding", -1);
    }
    void rms_norm(const float* x, const std::int32_t* index, std::int64_t rows, std::int64_t d, const std::uint16_t* w,
                  float eps, std::uint16_t* out, const char* step, int layer) const {
      after(detail::launch_rms_norm(x, index, rows, d, w, eps, out, s.stream), step, layer);
    }
    void gemm(const detail::gemm_desc& g, const void* a, const void* b, void* c, int layer) const {
      s.lt->run(g, a, b, c, s.act.workspace, s.al.workspace_bytes, s.stream, "CUDA forward", layer);
      if (s.opt.sync_each_step) after(cudaStreamSynchronize(s.stream), g.step, layer);
    }
    void qkv(const math::qkv_params& p, int layer) const {
      after(detail::launch_qkv(p, s.stream), "q/k/v bias + RoPE epilogue", layer);
    }
    void softmax(const float* scores, std::int64_t rows, std::int64_t cols, std::int64_t ld, std::uint16_t* p,
                 int layer) const {
      after(detail::launch_softmax(scores, rows, cols, ld, p, s.stream), "attention softmax", layer);
    }
    void merge_heads(const std::uint16_t* oh, std::int64_t batch, std::int64_t length, std::int64_t heads,
                     std::int64_t head_dim, std::uint16_t* out, int layer) const {
      after(detail::launch_merge_heads(oh, batch, length, heads, head_dim, out, s.stream), "merge heads", layer);
    }
    void silu_mul(const std::uint16_t* gu, std::int64_t rows, std::int64_t mlp, std::uint16_t* out, int layer) const {
      after(detail::launch_silu_mul(gu, rows, mlp, out, s.stream), "SwiGLU", layer);
    }
  };

  void run_body(std::span<const token_id> tokens, std::size_t batch);
  template <class RowOf>
  device_logits enqueue_head(std::size_t count, RowOf row_of);
};

namespace {

void validate_tokens(std::span<const token_id> tokens, std::size_t batch, std::size_t vocab) {
  mdlm::detail::require(batch > 0, "batch = 0 must be positive");
  mdlm::detail::require(!tokens.empty() && tokens.size() % batch == 0, "tokens.size() = ", tokens.size(),
                        " must be a positive multiple of batch = ", batch);
  for (std::size_t i = 0; i < tokens.size(); ++i)
    mdlm::detail::require(tokens[i] >= 0 && static_cast<std::size_t>(tokens[i]) < vocab, "token id ", tokens[i],
                          " at position ", i % (tokens.size() / batch), " of sequence ", i / (tokens.size() / batch),
                          " is outside the vocabulary [0, ", vocab, ")");
}

}  // namespace

void model::impl::run_body(std::span<const token_id> tokens, std::size_t batch) {
  validate_tokens(tokens, batch, cfg.vocab_size);
  select_device();
  const auto length = static_cast<std::int64_t>(tokens.size() / batch);
  ensure_plan(static_cast<std::int64_t>(batch), length);
  wait_staging();
  for (std::size_t i = 0; i < tokens.size(); ++i) host_tokens[i] = static_cast<std::int32_t>(tokens[i]);
  detail::check_cuda(cudaMemcpyAsync(act.tokens, host_tokens, tokens.size() * 4, cudaMemcpyHostToDevice, stream),
                     "copying the tokens to the device");
  detail::check_cuda(cudaEventRecord(uploaded, stream), "cudaEventRecord");
  exec ex{*this};
  detail::forward_body(ex, m, w, al, act);
  body_ready = true;
}

template <class RowOf>
device_logits model::impl::enqueue_head(std::size_t count, RowOf row_of) {
  mdlm::detail::require(body_ready, "head_rows: no hidden states: call run_body (or a logits function) first");
  mdlm::detail::require(count <= static_cast<std::size_t>(al.rows), "head_rows: ", count, " rows requested, more than the ",
                        al.rows, " of batch ", al.batch, " x length ", al.length);
  select_device();
  device_logits out{act.logits, count, cfg.vocab_size};
  if (count == 0) return out;
  const std::int64_t chunks = (static_cast<std::int64_t>(count) + detail::head_chunk - 1) / detail::head_chunk;
  wait_staging();
  for (std::size_t j = 0; j < count; ++j) {
    const std::size_t r = row_of(j);
    mdlm::detail::require(r < static_cast<std::size_t>(al.rows), "head_rows: row ", r, " (entry ", j,
                          ") is outside batch ", al.batch, " x length ", al.length);
    const auto b = static_cast<std::int64_t>(r) / al.length, i = static_cast<std::int64_t>(r) % al.length;
    host_index[j] = static_cast<std::int32_t>(math::lm_source_row(b, i, al.length, m.shift_logits));
  }
  for (auto j = static_cast<std::int64_t>(count); j < chunks * detail::head_chunk; ++j) host_index[j] = -1;
  detail::check_cuda(cudaMemcpyAsync(act.head_index, host_index,
                                     static_cast<std::size_t>(chunks * detail::head_chunk) * 4, cudaMemcpyHostToDevice,
                                     stream),
                     "copying the LM-head rows to the device");
  detail::check_cuda(cudaEventRecord(uploaded, stream), "cudaEventRecord");
  exec ex{*this};
  detail::forward_head(ex, m, w, act, chunks);
  return out;
}

model::model(const hf::model_config& config, const model_options& options)
    : config_(config), impl_(std::make_unique<impl>(config, options)) {}

model::model(const hf::checkpoint& ckpt, const model_options& options) : model(ckpt.config(), options) {
  impl_->load(ckpt);
}

model model::load(const std::filesystem::path& dir, const model_options& options) {
  return model(hf::checkpoint::open(dir, hf::checkpoint_options{.allow_unexpected_tensors = options.allow_unexpected_tensors}),
               options);
}

model model::random(const hf::model_config& config, std::uint64_t seed, const model_options& options) {
  model m(config, options);
  m.impl_->fill_random(seed);
  return m;
}

model::~model() = default;
model::model(model&&) noexcept = default;
model& model::operator=(model&&) noexcept = default;

const device_info& model::device() const noexcept { return impl_->dev; }
std::size_t model::weight_bytes() const noexcept { return impl_->wl.bytes; }
void* model::stream() const noexcept { return impl_->stream; }
std::size_t model::gemm_plans() const noexcept { return impl_->lt->plans(); }
std::size_t model::gemm_plans_batched() const noexcept { return impl_->lt->batched_plans(); }

void model::synchronize() {
  impl_->select_device();
  detail::check_cuda(cudaStreamSynchronize(impl_->stream), [&] {
    return "CUDA forward (" + impl_->shape() +
           "): a kernel or GEMM enqueued earlier failed (set MDLM_CUDA_SYNC=1 to name the step)";
  });
}

void model::run_body(std::span<const token_id> tokens, std::size_t batch) { impl_->run_body(tokens, batch); }

void model::row_choices(std::span<const token_id> tokens, const row_request& request, std::span<row_choice> out) {
  batch_row_choices(tokens, 1, std::span<const row_request>(&request, 1), out);
}

void model::batch_row_choices(std::span<const token_id> tokens, std::size_t batch, std::span<const row_request> requests,
                              std::span<row_choice> out) {
  mdlm::detail::require(batch >= 1 && !tokens.empty() && tokens.size() % batch == 0, "tokens.size() = ", tokens.size(),
                        " must be a positive multiple of batch = ", batch);
  mdlm::detail::require(requests.size() == batch, "requests.size() = ", requests.size(), " differs from batch = ", batch);
  const std::size_t length = tokens.size() / batch;
  for (std::size_t b = 0; b < batch; ++b)
    for (std::size_t i = 0; i < requests[b].rows.size(); ++i)
      mdlm::detail::require(i == 0 || requests[b].rows[i] > requests[b].rows[i - 1], "request ", b, ": rows[", i,
                            "] = ", requests[b].rows[i], " is not strictly ascending");
  const bool shared = detail::gather_rows(requests, length, gathered_);
  mdlm::detail::require(out.size() == gathered_.size(), "out.size() = ", out.size(), " differs from the ",
                        gathered_.size(), " requested rows");
  if (!rows_) rows_ = std::make_unique<row_engine>(impl_->stream);
  if (!kl_) kl_ = std::make_unique<kl_store>();
  kl_->attach(requests, length, vocab_size(), gathered_, impl_->stream);
  impl_->run_body(tokens, batch);
  // The LM head of the gathered rows only; row j of its output is gathered_[j].
  head_index_.resize(gathered_.size());
  for (std::size_t j = 0; j < gathered_.size(); ++j) head_index_[j] = gathered_[j].src;
  const device_logits l = head_rows(head_index_);
  for (std::size_t j = 0; j < gathered_.size(); ++j) gathered_[j].src = j;
  // The head's output buffer is the model's own: the ban kernel may write it.
  const device_matrix m{const_cast<float*>(l.data), logit_type::f32, l.rows, l.vocab, l.vocab};
  if (shared) {
    rows_->choose(m, gathered_, requests[0].choice, requests[0].rng, requests[0].banned, out);
    return;
  }
  std::size_t offset = 0;
  for (std::size_t b = 0; b < batch; ++b) {
    const std::size_t n = requests[b].rows.size();
    rows_->choose(m, std::span<const device_row>(gathered_.data() + offset, n), requests[b].choice, requests[b].rng,
                  requests[b].banned, out.subspan(offset, n));
    offset += n;
  }
}

device_logits model::head_rows(std::span<const std::size_t> rows) {
  return impl_->enqueue_head(rows.size(), [&](std::size_t j) { return rows[j]; });
}

device_logits model::logits_rows(std::span<const token_id> tokens, std::size_t batch, std::span<const std::size_t> rows) {
  impl_->run_body(tokens, batch);
  return head_rows(rows);
}

void model::logits_rows(std::span<const token_id> tokens, std::size_t batch, std::span<const std::size_t> rows,
                        float* device_out) {
  const device_logits l = logits_rows(tokens, batch, rows);
  if (l.rows == 0) return;
  mdlm::detail::require(device_out != nullptr, "logits_rows: device_out is null");
  detail::check_cuda(cudaMemcpyAsync(device_out, l.data, l.rows * l.vocab * sizeof(float), cudaMemcpyDeviceToDevice,
                                     impl_->stream),
                     "copying the logits rows to device_out");
}

device_logits model::batch_logits_device(std::span<const token_id> tokens, std::size_t batch) {
  impl_->run_body(tokens, batch);
  return impl_->enqueue_head(tokens.size(), [](std::size_t j) { return j; });
}

void model::batch_logits(std::span<const token_id> tokens, std::size_t batch, std::span<float> out) {
  mdlm::detail::require(out.size() == tokens.size() * config_.vocab_size, "out.size() = ", out.size(),
                        " must equal tokens.size() * vocab_size = ", tokens.size(), " * ", config_.vocab_size);
  const device_logits l = batch_logits_device(tokens, batch);
  detail::check_cuda(cudaMemcpyAsync(out.data(), l.data, out.size() * sizeof(float), cudaMemcpyDeviceToHost, impl_->stream),
                     "copying the logits to the host");
  synchronize();
}

void model::logits(std::span<const token_id> tokens, std::span<float> out) {
  mdlm::detail::require(!tokens.empty(), "tokens.size() = 0: a sequence needs at least one token");
  batch_logits(tokens, 1, out);
}

}  // namespace mdlm::cuda

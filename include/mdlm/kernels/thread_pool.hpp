// SPDX-License-Identifier: MIT
#pragma once
//! @file
//! A small fixed-size thread pool for row-parallel kernels: created once, reused for every call,
//! no allocation per call.

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#include "mdlm/detail/errors.hpp"

namespace mdlm {

//! A pool of `size()` threads: the calling thread plus `size() - 1` workers started by the
//! constructor and joined by the destructor.
//!
//! `run(n, fn, ctx)` calls `fn(ctx, i)` exactly once for every task i in [0, n) and returns when all
//! calls have returned. Tasks are handed out one at a time from a shared counter, so which thread
//! runs a task is not fixed; callers that need determinism make each task's result depend on the
//! task alone (the row kernels do: one row per task, fixed lane and combine order), which makes the
//! results identical for every thread count. `run` never allocates. Concurrent `run` calls on the
//! same pool are serialised. `fn` must not throw.
class thread_pool {
 public:
  //! The task function: `fn(ctx, task_index)`.
  using task_fn = void (*)(void* ctx, std::size_t task) noexcept;

  //! Starts `threads - 1` workers (the caller of `run` is the remaining thread).
  //! @throws std::invalid_argument when `threads` is 0.
  explicit thread_pool(std::size_t threads) : size_(threads) {
    detail::require(threads >= 1, "threads = ", threads, " must be >= 1");
    workers_.reserve(threads - 1);
    for (std::size_t i = 1; i < threads; ++i) workers_.emplace_back([this] { worker_loop(); });
  }

  thread_pool(const thread_pool&) = delete;
  thread_pool& operator=(const thread_pool&) = delete;

  ~thread_pool() {
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    for (auto& w : workers_) w.join();
  }

  //! Number of threads that execute tasks (workers + the calling thread).
  [[nodiscard]] std::size_t size() const noexcept { return size_; }

  //! Runs `fn(ctx, i)` for i in [0, n) on all threads; returns when every task has finished.
  void run(std::size_t n, task_fn fn, void* ctx) noexcept {
    if (n == 0) return;
    const std::lock_guard<std::mutex> serial(run_mutex_);
    if (workers_.empty() || n == 1) {
      for (std::size_t i = 0; i < n; ++i) fn(ctx, i);
      return;
    }
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      fn_ = fn;
      ctx_ = ctx;
      tasks_ = n;
      next_.store(0, std::memory_order_relaxed);
      busy_ = workers_.size();
      ++generation_;
    }
    wake_.notify_all();
    drain();
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [this] { return busy_ == 0; });
  }

  //! Runs `f(i)` for i in [0, n) on all threads (`f` is called concurrently and must not throw).
  template <class F>
  void for_each(std::size_t n, F& f) noexcept {
    run(n, [](void* c, std::size_t i) noexcept { (*static_cast<F*>(c))(i); }, &f);
  }

 private:
  void drain() noexcept {
    for (;;) {
      const std::size_t i = next_.fetch_add(1, std::memory_order_relaxed);
      if (i >= tasks_) return;
      fn_(ctx_, i);
    }
  }

  void worker_loop() noexcept {
    std::uint64_t seen = 0;
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return stopping_ || generation_ != seen; });
        if (stopping_) return;
        seen = generation_;
      }
      drain();
      bool last = false;
      {
        const std::lock_guard<std::mutex> lock(mutex_);
        last = --busy_ == 0;
      }
      if (last) done_.notify_one();
    }
  }

  std::size_t size_;
  std::vector<std::thread> workers_;
  std::mutex run_mutex_;  // serialises run()
  std::mutex mutex_;      // guards the fields below (except next_)
  std::condition_variable wake_, done_;
  task_fn fn_ = nullptr;
  void* ctx_ = nullptr;
  std::size_t tasks_ = 0;
  std::atomic<std::size_t> next_{0};
  std::size_t busy_ = 0;
  std::uint64_t generation_ = 0;
  bool stopping_ = false;
};

}  // namespace mdlm

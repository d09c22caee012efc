#pragma once
/// Usage records leave the request path as queued events and are written to the store in
/// batches (one transaction each) by a background thread. `stop()` drains the queue, so a
/// clean shutdown loses none.

#include "store/store.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace llmgw::events {

struct UsageWriterOptions {
  std::size_t batch_size = 1000;
  std::chrono::milliseconds flush_interval{200};
  std::size_t queue_limit = 1'000'000;
};

class UsageWriter {
 public:
  UsageWriter(store::Store& store, UsageWriterOptions opts);
  ~UsageWriter();
  UsageWriter(const UsageWriter&) = delete;
  UsageWriter& operator=(const UsageWriter&) = delete;

  void start();
  /// Never blocks on I/O; false (and counted) if the queue is full.
  bool submit(store::UsageRecord&& r);
  /// Writes everything queued, then stops the thread.
  void stop();

  [[nodiscard]] std::uint64_t written() const noexcept { return written_.load(); }
  [[nodiscard]] std::uint64_t dropped() const noexcept { return dropped_.load(); }
  [[nodiscard]] std::uint64_t failed_batches() const noexcept { return failed_batches_.load(); }

 private:
  void run();
  bool write_batch(std::vector<store::UsageRecord>& batch);

  store::Store& store_;
  UsageWriterOptions opts_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<store::UsageRecord> queue_;
  bool stopping_ = false;
  std::thread thread_;
  std::atomic<std::uint64_t> written_{0};
  std::atomic<std::uint64_t> dropped_{0};
  std::atomic<std::uint64_t> failed_batches_{0};
};

}  // namespace llmgw::events

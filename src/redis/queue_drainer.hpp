#pragma once
/// The drain loop shared by the workers of the leased queues (the usage queue's and the audit
/// queue's): a background thread that now and then takes lapsed workers' batches away from
/// them (LeasedQueue::reclaim) and does one batch after another (step()), resting when there is
/// nothing to do or after a failure. On stop it goes on while there is work, until a deadline,
/// then ends its lease if it holds no batch: what is left stays in Redis for the other
/// replicas, or for this one's next start.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "core/log.hpp"
#include "redis/leased_queue.hpp"

namespace llmgw::redis {

struct DrainTiming {
  std::chrono::milliseconds idle_poll{100};  ///< nothing to do: look again after this
  std::chrono::milliseconds reclaim_every{5'000};
  std::chrono::milliseconds stop_deadline{5'000};  ///< stop(): keep draining until then
  /// stop(): a step the destination failed is tried again (after retry_delay()) until the
  /// deadline, instead of ending the drain (Redis failing always ends it: what it holds waits
  /// there).
  bool retry_while_stopping = false;
};

/// What one step of a drainer came to.
enum class Step : std::uint8_t {
  Idle,         ///< nothing to do
  Done,         ///< a batch done
  Failed,       ///< the destination failed (the store, the archive sink)
  Unreachable,  ///< Redis failed: nothing can be done until it answers
};

class QueueDrainer {
 public:
  QueueDrainer(const QueueDrainer&) = delete;
  QueueDrainer& operator=(const QueueDrainer&) = delete;

  void start();
  /// Failed steps so far (Redis or the destination).
  [[nodiscard]] std::uint64_t failures() const noexcept { return failures_.load(); }
  /// Drains what the queue holds (bounded by stop_deadline), then stops the thread. A derived
  /// class calls it in its destructor, before its own members go.
  void stop();

 protected:
  /// `queue` outlives the drainer; `thread_name` at most 15 characters.
  QueueDrainer(LeasedQueue& queue, DrainTiming timing, std::string thread_name);
  virtual ~QueueDrainer();

  /// One batch (an exception counts as Step::Failed). `draining`: stopping, take whatever
  /// the queue holds.
  virtual Step step(bool draining) = 0;
  /// How long to rest after a failed step.
  virtual std::chrono::milliseconds retry_delay() = 0;
  /// Counts a failed step and logs it (at most every 10 s).
  void failed(std::string_view what, const std::string& error);
  [[nodiscard]] int failures_in_a_row() const noexcept { return failures_in_a_row_; }
  void clear_failures_in_a_row() noexcept { failures_in_a_row_ = 0; }
  /// Rests `d` unless stopping; false: stopping.
  bool wait(std::chrono::milliseconds d);

 private:
  void run();

  LeasedQueue& queue_;
  DrainTiming timing_;
  std::string thread_name_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
  core::LogThrottle failure_log_;
  int failures_in_a_row_ = 0;  ///< the drainer's thread only
  std::atomic<std::uint64_t> failures_{0};
};

}  // namespace llmgw::redis

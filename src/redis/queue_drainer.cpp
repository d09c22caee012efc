#include "redis/queue_drainer.hpp"

#include <algorithm>

#include "core/log.hpp"
#include "core/thread.hpp"

namespace llmgw::redis {

QueueDrainer::QueueDrainer(LeasedQueue& queue, DrainTiming timing, std::string thread_name)
    : queue_(queue), timing_(timing), thread_name_(std::move(thread_name)) {}

QueueDrainer::~QueueDrainer() {
  stop();
}

void QueueDrainer::start() {
  thread_ = std::thread([this] {
    core::name_this_thread(thread_name_);
    core::make_this_thread_background(0);
    run();
  });
}

void QueueDrainer::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
  }
}

bool QueueDrainer::wait(std::chrono::milliseconds d) {
  std::unique_lock lock(mutex_);
  return !cv_.wait_for(lock, d, [&] { return stopping_; });
}

void QueueDrainer::failed(std::string_view what, const std::string& error) {
  failures_.fetch_add(1, std::memory_order_relaxed);
  ++failures_in_a_row_;
  if (failure_log_.allow()) {
    core::LogLine line(core::LogLevel::Warn, what);
    line.field("queue", queue_.what());
    line.field("failures", failures_.load());
    if (!error.empty()) {
      line.field("error", error);
    }
    line.emit();
  }
}

void QueueDrainer::run() {
  if (const auto problems = queue_.durability_problems(); problems && !problems->empty()) {
    core::LogLine(core::LogLevel::Warn, "redis settings can lose queued records")
        .field("queue", queue_.what())
        .field("problems", *problems)
        .emit();
  }
  auto next_reclaim = std::chrono::steady_clock::now();
  // One round; an exception (out of memory for a huge entry someone pushed) is a failed round.
  auto round = [&](bool draining) -> Step {
    try {
      if (std::chrono::steady_clock::now() >= next_reclaim) {
        next_reclaim = std::chrono::steady_clock::now() + timing_.reclaim_every;
        if (const auto moved = queue_.reclaim(); moved && *moved > 0) {
          core::LogLine(core::LogLevel::Warn, "batches of a lapsed worker taken away from it")
              .field("queue", queue_.what())
              .field("entries", static_cast<std::int64_t>(*moved))
              .emit();
        }
      }
      return step(draining);
    } catch (const std::exception& e) {
      failed("a round failed", e.what());
      return Step::Failed;
    }
  };
  while (true) {
    const Step r = round(false);
    if (r == Step::Done) {
      std::lock_guard lock(mutex_);
      if (!stopping_) {
        continue;
      }
      break;
    }
    if (!wait(r == Step::Idle ? timing_.idle_poll : retry_delay())) {
      break;
    }
  }
  // Stopping: what the writers pushed last, while the queue and the store answer.
  const auto deadline = std::chrono::steady_clock::now() + timing_.stop_deadline;
  while (std::chrono::steady_clock::now() < deadline) {
    const Step r = round(true);
    if (r == Step::Idle || r == Step::Unreachable ||
        (r == Step::Failed && !timing_.retry_while_stopping)) {
      break;
    }
    if (r == Step::Failed) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      std::this_thread::sleep_for(std::min(retry_delay(), left));
    }
  }
  queue_.release();
}

}  // namespace llmgw::redis

#pragma once
/// Coarse per-worker deadlines: arming one is a store to an integer, not a timer syscall.
/// A worker's `DeadlineTicker` wakes every tick and fires the expired deadlines it owns, so
/// header, idle, body and upstream timeouts cost nothing on the hot path (precision: a tick).

#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <ctime>

namespace llmgw::http {

using Clock = std::chrono::steady_clock;

/// The monotonic clock at jiffy resolution (a few ms): cheaper to read than `Clock::now()`
/// and on the same time base. Deadlines are checked once a tick, so finer time buys nothing.
inline Clock::time_point coarse_now() noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return Clock::time_point(std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec));
}

/// Something with a deadline. Linked into its worker's ticker while it lives.
class Deadline {
 public:
  Deadline() = default;
  Deadline(const Deadline&) = delete;
  Deadline& operator=(const Deadline&) = delete;
  virtual ~Deadline() = default;

  void arm(Clock::time_point when) noexcept { when_ = when; }
  void arm_after(Clock::duration d) noexcept { when_ = coarse_now() + d; }
  void disarm() noexcept { when_ = Clock::time_point::max(); }
  [[nodiscard]] bool armed() const noexcept { return when_ != Clock::time_point::max(); }
  [[nodiscard]] Clock::time_point when() const noexcept { return when_; }

  /// Called on the worker's thread once the deadline has passed (then disarmed).
  virtual void on_deadline() = 0;

 private:
  friend class DeadlineTicker;
  Clock::time_point when_ = Clock::time_point::max();
  Deadline* prev_ = nullptr;
  Deadline* next_ = nullptr;
};

/// Owns an intrusive list of deadlines of one worker thread; not thread-safe by design.
class DeadlineTicker {
 public:
  static constexpr std::chrono::milliseconds kTick{50};

  explicit DeadlineTicker(boost::asio::io_context& ioc) : timer_(ioc) {}

  void add(Deadline& d) noexcept {
    d.next_ = head_;
    d.prev_ = nullptr;
    if (head_ != nullptr) {
      head_->prev_ = &d;
    }
    head_ = &d;
  }
  void remove(Deadline& d) noexcept {
    if (d.prev_ != nullptr) {
      d.prev_->next_ = d.next_;
    } else if (head_ == &d) {
      head_ = d.next_;
    }
    if (d.next_ != nullptr) {
      d.next_->prev_ = d.prev_;
    }
    if (cursor_ == &d) {
      cursor_ = d.next_;
    }
    d.prev_ = d.next_ = nullptr;
  }

  void start() { schedule(); }
  void stop() {
    stopped_ = true;
    timer_.cancel();
  }

 private:
  void schedule() {
    timer_.expires_after(kTick);
    timer_.async_wait([this](boost::system::error_code ec) {
      if (ec || stopped_) {
        return;
      }
      fire(Clock::now());
      schedule();
    });
  }
  void fire(Clock::time_point now) {
    // on_deadline may remove any node (its own included): the cursor survives that.
    cursor_ = head_;
    while (cursor_ != nullptr) {
      Deadline* d = cursor_;
      cursor_ = d->next_;
      if (d->when_ <= now) {
        d->when_ = Clock::time_point::max();
        d->on_deadline();
      }
    }
  }

  boost::asio::steady_timer timer_;
  Deadline* head_ = nullptr;
  Deadline* cursor_ = nullptr;
  bool stopped_ = false;
};

}  // namespace llmgw::http

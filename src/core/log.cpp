#include "core/log.hpp"

#include "core/ids.hpp"
#include "core/json.hpp"
#include "core/thread.hpp"

#include <unistd.h>

#include <atomic>
#include <charconv>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace llmgw::core {

namespace {

/// Lines are gathered in one buffer per producing thread and written by a background thread a
/// few times a second in large writes. A producer takes only its own (uncontended) mutex: no
/// wake-up, no syscall and no allocation beyond its buffer's growth per line — spdlog's
/// asynchronous logger signals a condition variable and writes (flushes) once per line, which
/// cost more than the rest of a proxied request.
class LineSink {
 public:
  static constexpr std::size_t kMaxBufferedBytes = 8u << 20;  ///< per thread; beyond: dropped
  static constexpr std::chrono::milliseconds kFlushInterval{100};

  void start() {
    std::lock_guard lock(mutex_);
    if (running_) {
      return;
    }
    running_ = true;
    stopping_ = false;
    writer_ = std::thread([this] {
      name_this_thread("llmgw-log");
      make_this_thread_background(0);
      run();
    });
  }

  void stop() {
    {
      std::lock_guard lock(mutex_);
      if (!running_) {
        return;
      }
      stopping_ = true;
    }
    cv_.notify_one();
    writer_.join();
    std::lock_guard lock(mutex_);
    running_ = false;
  }

  bool running() const noexcept { return running_.load(std::memory_order_acquire); }

  void append(std::string_view line, bool urgent) {
    Buffer& b = local_buffer();
    {
      std::lock_guard lock(b.mutex);
      if (b.data.size() + line.size() + 1 > kMaxBufferedBytes) {
        ++b.dropped;
        return;
      }
      b.data.append(line);
      b.data.push_back('\n');
    }
    if (urgent) {
      cv_.notify_one();
    }
  }

 private:
  struct Buffer {
    std::mutex mutex;
    std::string data;
    std::uint64_t dropped = 0;
  };

  Buffer& local_buffer() {
    thread_local std::shared_ptr<Buffer> mine;
    if (!mine) {
      mine = std::make_shared<Buffer>();
      mine->data.reserve(64 * 1024);
      std::lock_guard lock(mutex_);
      buffers_.push_back(mine);  // kept after the thread ends: its last lines still get out
    }
    return *mine;
  }

  void run() {
    std::string out;
    std::unique_lock lock(mutex_);
    while (true) {
      cv_.wait_for(lock, kFlushInterval);
      const bool last = stopping_;
      const auto buffers = buffers_;
      lock.unlock();
      std::uint64_t dropped = 0;
      for (const auto& b : buffers) {
        std::lock_guard bl(b->mutex);
        out.append(b->data);
        b->data.clear();
        dropped += b->dropped;
        b->dropped = 0;
      }
      if (dropped > 0) {
        out += R"({"level":"warn","msg":"log lines dropped: writer fell behind","dropped":)" +
               std::to_string(dropped) + "}\n";
      }
      write_all(out);
      out.clear();
      lock.lock();
      if (last) {
        return;
      }
    }
  }

  static void write_all(std::string_view s) {
    while (!s.empty()) {
      const ssize_t n = ::write(STDERR_FILENO, s.data(), s.size());
      if (n < 0) {
        if (errno == EINTR) {
          continue;
        }
        return;  // stderr closed: nothing sensible left to do with log lines
      }
      s.remove_prefix(static_cast<std::size_t>(n));
    }
  }

  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<std::shared_ptr<Buffer>> buffers_;
  std::atomic<bool> running_{false};
  bool stopping_ = false;
  std::thread writer_;
};

LineSink& sink() {
  static LineSink s;
  return s;
}

std::atomic<int> g_min_level{static_cast<int>(LogLevel::Info)};

std::string_view level_name(LogLevel l) {
  switch (l) {
    case LogLevel::Debug: return "debug";
    case LogLevel::Info: return "info";
    case LogLevel::Warn: return "warn";
    case LogLevel::Error: return "error";
  }
  return "info";
}

/// "2026-01-02T03:04:05.678Z"; the seconds part is formatted once per second per thread.
void append_timestamp(std::string& out) {
  thread_local std::int64_t last_second = -1;
  thread_local std::string second_text;
  const auto us = unix_micros();
  const std::int64_t sec = us / 1'000'000;
  if (sec != last_second) {
    last_second = sec;
    second_text = format_utc(sec);
    second_text.pop_back();  // drop 'Z'
  }
  const int ms = static_cast<int>((us / 1000) % 1000);
  const char frac[] = {'.', static_cast<char>('0' + ms / 100),
                       static_cast<char>('0' + ms / 10 % 10), static_cast<char>('0' + ms % 10),
                       'Z', '"'};
  out.push_back('"');
  out += second_text;
  out.append(frac, sizeof frac);
}

}  // namespace

void init_logging(std::string_view level) {
  LogLevel l = LogLevel::Info;
  if (level == "debug" || level == "trace") {
    l = LogLevel::Debug;
  } else if (level == "warn" || level == "warning") {
    l = LogLevel::Warn;
  } else if (level == "error") {
    l = LogLevel::Error;
  }
  g_min_level.store(static_cast<int>(l), std::memory_order_relaxed);
  sink().start();
}

void shutdown_logging() { sink().stop(); }

void set_log_level(LogLevel level) noexcept {
  g_min_level.store(static_cast<int>(level), std::memory_order_relaxed);
}

LogLevel log_level() noexcept {
  return static_cast<LogLevel>(g_min_level.load(std::memory_order_relaxed));
}

std::string_view to_string(LogLevel level) noexcept {
  return level_name(level);
}

bool parse_log_level(std::string_view s, LogLevel& out) noexcept {
  for (const auto l : {LogLevel::Debug, LogLevel::Info, LogLevel::Warn, LogLevel::Error}) {
    if (s == level_name(l)) {
      out = l;
      return true;
    }
  }
  return false;
}

bool log_enabled(LogLevel level) noexcept {
  return static_cast<int>(level) >= g_min_level.load(std::memory_order_relaxed);
}

namespace {
/// One spare buffer per thread: a line's string is taken from it and given back after
/// `emit`, so a log line costs no allocation once the thread has logged.
thread_local std::string t_spare_line;
}  // namespace

LogLine::LogLine(LogLevel level, std::string_view msg) : level_(level) {
  line_.swap(t_spare_line);
  line_.clear();
  line_.reserve(256);
  line_ += R"({"ts":)";
  append_timestamp(line_);
  line_ += R"(,"level":")";
  line_ += level_name(level);
  line_ += R"(","msg":)";
  append_json_string(line_, msg);
}

LogLine& LogLine::field(std::string_view key, std::string_view value) {
  line_ += ",\"";
  line_ += key;
  line_ += "\":";
  append_json_string(line_, value);
  return *this;
}

LogLine& LogLine::field_plain(std::string_view key, std::string_view value) {
  line_ += ",\"";
  line_ += key;
  line_ += "\":\"";
  line_ += value;
  line_ += '"';
  return *this;
}

LogLine::~LogLine() {
  if (line_.capacity() <= 4096) {
    t_spare_line.swap(line_);
  }
}

LogLine& LogLine::field(std::string_view key, std::int64_t value) {
  line_ += ",\"";
  line_ += key;
  line_ += "\":";
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, value);
  line_.append(buf, r.ptr);
  return *this;
}

LogLine& LogLine::field(std::string_view key, bool value) {
  line_ += ",\"";
  line_ += key;
  line_ += value ? "\":true" : "\":false";
  return *this;
}

void LogLine::emit() {
  if (!log_enabled(level_)) {
    return;
  }
  line_.push_back('}');
  if (sink().running()) {
    sink().append(line_, level_ >= LogLevel::Warn);
  } else {
    // Before start-up finished (or in a CLI command): write at once.
    line_.push_back('\n');
    std::fwrite(line_.data(), 1, line_.size(), stderr);
  }
}

bool LogThrottle::allow() noexcept {
  const std::int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::steady_clock::now().time_since_epoch())
                               .count();
  std::int64_t next = next_ms_.load(std::memory_order_relaxed);
  return now >= next &&
         next_ms_.compare_exchange_strong(next, now + interval_ms_, std::memory_order_relaxed);
}

}  // namespace llmgw::core

#include "core/log.hpp"

#include "core/ids.hpp"
#include "core/json.hpp"

#include <spdlog/async.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>

namespace llmgw::core {

namespace {

std::atomic<int> g_min_level{static_cast<int>(LogLevel::Info)};
std::shared_ptr<spdlog::logger> g_logger;
std::mutex g_init_mutex;

std::string_view level_name(LogLevel l) {
  switch (l) {
    case LogLevel::Debug: return "debug";
    case LogLevel::Info: return "info";
    case LogLevel::Warn: return "warn";
    case LogLevel::Error: return "error";
  }
  return "info";
}

spdlog::logger& logger() {
  if (!g_logger) {
    init_logging("info");
  }
  return *g_logger;
}

}  // namespace

void init_logging(std::string_view level) {
  std::lock_guard lock(g_init_mutex);
  LogLevel l = LogLevel::Info;
  if (level == "debug" || level == "trace") {
    l = LogLevel::Debug;
  } else if (level == "warn" || level == "warning") {
    l = LogLevel::Warn;
  } else if (level == "error") {
    l = LogLevel::Error;
  }
  g_min_level.store(static_cast<int>(l), std::memory_order_relaxed);
  if (g_logger) {
    return;
  }
  // Bounded queue; when full the oldest lines are dropped rather than blocking an I/O thread.
  constexpr std::size_t kQueueLines = 8192;
  spdlog::init_thread_pool(kQueueLines, 1);
  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  g_logger = std::make_shared<spdlog::async_logger>("llmgw", sink, spdlog::thread_pool(),
                                                    spdlog::async_overflow_policy::overrun_oldest);
  g_logger->set_pattern("%v");
  g_logger->set_level(spdlog::level::trace);
  // Access lines are many: let stdio batch them into few writes, flushed once a second.
  static char stderr_buffer[1 << 16];
  std::setvbuf(stderr, stderr_buffer, _IOFBF, sizeof stderr_buffer);
  g_logger->flush_on(spdlog::level::warn);
  spdlog::flush_every(std::chrono::seconds(1));
}

void shutdown_logging() {
  std::lock_guard lock(g_init_mutex);
  if (g_logger) {
    g_logger->flush();
  }
  spdlog::shutdown();
  g_logger.reset();
}

bool log_enabled(LogLevel level) noexcept {
  return static_cast<int>(level) >= g_min_level.load(std::memory_order_relaxed);
}

LogLine::LogLine(LogLevel level, std::string_view msg) : level_(level) {
  line_.reserve(256);
  line_ += R"({"ts":)";
  const auto us = unix_micros();
  std::string ts = format_utc(us / 1'000'000);
  // RFC 3339 with milliseconds.
  char ms[8];
  std::snprintf(ms, sizeof ms, ".%03dZ", static_cast<int>((us / 1000) % 1000));
  ts.pop_back();
  ts += ms;
  append_json_string(line_, ts);
  line_ += R"(,"level":")";
  line_ += level_name(level);
  line_ += R"(","msg":)";
  append_json_string(line_, msg);
}

LogLine& LogLine::field(std::string_view key, std::string_view value) {
  line_.push_back(',');
  append_json_string(line_, key);
  line_.push_back(':');
  append_json_string(line_, value);
  return *this;
}

LogLine& LogLine::field(std::string_view key, std::int64_t value) {
  line_.push_back(',');
  append_json_string(line_, key);
  line_.push_back(':');
  line_ += std::to_string(value);
  return *this;
}

LogLine& LogLine::field(std::string_view key, bool value) {
  line_.push_back(',');
  append_json_string(line_, key);
  line_ += value ? ":true" : ":false";
  return *this;
}

void LogLine::emit() {
  if (!log_enabled(level_)) {
    return;
  }
  line_.push_back('}');
  if (level_ >= LogLevel::Warn) {
    logger().warn(line_);
  } else {
    logger().info(line_);
  }
}

}  // namespace llmgw::core

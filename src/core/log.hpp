#pragma once
/// Structured logging: one JSON object per line on stderr. Lines are buffered per thread and
/// written by a background thread in large writes, so an I/O thread only formats into memory
/// and never blocks on the terminal or a pipe.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace llmgw::core {

enum class LogLevel : std::uint8_t { Debug, Info, Warn, Error };

/// Starts the background writer. Before it (and in CLI commands) lines are written at once.
void init_logging(std::string_view level);
/// Writes what is buffered and stops the background writer (at exit).
void shutdown_logging();
bool log_enabled(LogLevel level) noexcept;
/// The least level written, changed at run time (the admin API's PUT /admin/logging).
void set_log_level(LogLevel level) noexcept;
LogLevel log_level() noexcept;
std::string_view to_string(LogLevel level) noexcept;
/// "debug", "info", "warn" or "error"; false for anything else.
bool parse_log_level(std::string_view s, LogLevel& out) noexcept;

/// Builds one JSON log line: `LogLine(LogLevel::Info, "listening").field("port", 8080).emit()`.
class LogLine {
 public:
  LogLine(LogLevel level, std::string_view msg);
  ~LogLine();
  LogLine(const LogLine&) = delete;
  LogLine& operator=(const LogLine&) = delete;
  LogLine& field(std::string_view key, std::string_view value);
  LogLine& field(std::string_view key, const char* value) {
    return field(key, std::string_view(value));
  }
  LogLine& field(std::string_view key, const std::string& value) {
    return field(key, std::string_view(value));
  }
  LogLine& field(std::string_view key, std::int64_t value);
  LogLine& field(std::string_view key, int value) { return field(key, std::int64_t{value}); }
  LogLine& field(std::string_view key, unsigned value) {
    return field(key, std::int64_t{value});
  }
  LogLine& field(std::string_view key, std::uint64_t value) {
    return field(key, static_cast<std::int64_t>(value));
  }
  LogLine& field(std::string_view key, bool value);
  /// For values the caller knows need no escaping (hex ids, method names, our own tokens):
  /// no quote, backslash or control character. Keys are always plain identifiers.
  LogLine& field_plain(std::string_view key, std::string_view value);
  void emit();

 private:
  LogLevel level_;
  std::string line_;
};

/// For a warning that could repeat on every call or every retry: allow() is true at most once
/// per interval (thread-safe), so the condition is logged, not the log flooded.
class LogThrottle {
 public:
  explicit LogThrottle(std::chrono::milliseconds interval = std::chrono::seconds(10)) noexcept
      : interval_ms_(interval.count()) {}
  bool allow() noexcept;

 private:
  std::int64_t interval_ms_;
  std::atomic<std::int64_t> next_ms_{0};  ///< steady-clock ms before which allow() is false
};

}  // namespace llmgw::core

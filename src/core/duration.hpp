#pragma once
/// Durations written as Go's time.ParseDuration reads them, the form the seed's settings use
/// (`LOGGING_SINK_FLUSH_INTERVAL=5m`): one or more decimal numbers, each with an optional
/// fraction and a unit (`ns`, `us` or `µs`, `ms`, `s`, `m`, `h`), e.g. `30s`, `1h30m`,
/// `1.5h`, `250ms`; a bare `0` is zero. Unlike Go, a sign is refused (no setting takes a
/// negative duration).

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace llmgw::core {

/// The duration `text` names, or nullopt when it is malformed or beyond ±292 years.
std::optional<std::chrono::nanoseconds> parse_duration(std::string_view text) noexcept;

/// The shortest Go-style spelling of `d` ("5m0s" is written "5m"; "1h30m", "250ms", "0s").
std::string format_duration(std::chrono::nanoseconds d);

}  // namespace llmgw::core

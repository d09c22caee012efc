#pragma once
/// Pieces of the Prometheus text exposition format 0.0.4.

#include "core/money.hpp"

#include <cstdint>
#include <string>
#include <string_view>

namespace llmgw::metrics {

/// Appends `v` as a label value: backslash, double quote and line feed escaped; bytes that are
/// not valid UTF-8 replaced by U+FFFD (the format requires UTF-8).
void append_label_value(std::string& out, std::string_view v);
/// Appends HELP text: backslash and line feed escaped.
void append_help_text(std::string& out, std::string_view v);
/// Appends nanoseconds as exact decimal seconds ("0.000012", "3", "1.5").
void append_seconds(std::string& out, std::uint64_t ns);
/// Appends money as decimal USD: exact decimal text, which Prometheus reads as a float.
void append_money(std::string& out, core::Money m);
/// Appends a float sample value (shortest round-trip form; NaN, +Inf, -Inf).
void append_double(std::string& out, double v);
void append_uint(std::string& out, std::uint64_t v);
void append_int(std::string& out, std::int64_t v);

}  // namespace llmgw::metrics

#include "events/archive/object_name.hpp"

#include "core/ids.hpp"

#include <array>
#include <cstdio>

namespace llmgw::archive {

namespace {
constexpr std::size_t kMaxNameBytes = 1024;
constexpr std::size_t kMaxPodBytes = 128;
constexpr std::int64_t kNanosPerSecond = 1'000'000'000;
}  // namespace

std::string sanitize_pod_name(std::string_view pod) {
  std::string out;
  for (const char c : pod.substr(0, kMaxPodBytes)) {
    const bool safe = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                      (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    out += safe ? c : '_';
  }
  if (out.empty() || out.front() == '.') {
    out.insert(0, "llmgw");
  }
  return out;
}

std::string object_name(std::string_view prefix, std::string_view pod,
                        std::chrono::system_clock::time_point t) {
  const std::int64_t ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  std::int64_t seconds = ns / kNanosPerSecond;
  std::int64_t nanos = ns % kNanosPerSecond;
  if (nanos < 0) {
    nanos += kNanosPerSecond;
    --seconds;
  }
  const std::string utc = core::format_utc(seconds);  // 2026-12-07T18:01:02Z
  std::string name(prefix);
  if (!name.empty() && name.back() != '/') {
    name += '/';
  }
  name.append(utc, 0, 4);
  name += '/';
  name.append(utc, 5, 2);
  name += '/';
  name.append(utc, 8, 2);
  name += '/';
  name += sanitize_pod_name(pod);
  name += '-';
  for (const char c : utc) {
    if (c != '-' && c != ':') {
      name += c;
    }
  }
  std::array<char, 16> digits{};
  std::snprintf(digits.data(), digits.size(), "-%09lld", static_cast<long long>(nanos));
  name += digits.data();
  name += kObjectSuffix;
  return name;
}

bool valid_object_name(std::string_view name) noexcept {
  if (name.empty() || name.size() > kMaxNameBytes) {
    return false;
  }
  for (const char c : name) {
    if (c < 0x21 || c > 0x7e || c == '\\') {
      return false;
    }
  }
  std::size_t start = 0;
  for (;;) {
    const std::size_t slash = name.find('/', start);
    const std::string_view seg =
        name.substr(start, slash == std::string_view::npos ? std::string_view::npos
                                                           : slash - start);
    if (seg.empty() || seg == "." || seg == "..") {
      return false;
    }
    if (slash == std::string_view::npos) {
      return seg.front() != '.';
    }
    start = slash + 1;
  }
}

}  // namespace llmgw::archive

#include "events/usage_codec.hpp"

#include <boost/json.hpp>

#include <array>

namespace llmgw::events {

namespace json = boost::json;

namespace {

constexpr int kFormat = 1;

/// The text fields and the integer fields of a record, by their JSON names: encode and decode
/// walk the same tables, so a field added to one cannot be forgotten by the other.
using TextField = std::string store::UsageRecord::*;
using IntField = std::int64_t store::UsageRecord::*;
constexpr std::array<std::pair<std::string_view, TextField>, 12> kText{{
    {"request_id", &store::UsageRecord::request_id},
    {"client_request_id", &store::UsageRecord::client_request_id},
    {"key_id", &store::UsageRecord::key_id},
    {"model", &store::UsageRecord::model},
    {"upstream_model", &store::UsageRecord::upstream_model},
    {"provider", &store::UsageRecord::provider},
    {"endpoint", &store::UsageRecord::endpoint},
    {"pricing_model", &store::UsageRecord::pricing_model},
    {"service_tier", &store::UsageRecord::service_tier},
    {"cost_usd", &store::UsageRecord::cost_usd},
    {"cost_status", &store::UsageRecord::cost_status},
    {"prices_json", &store::UsageRecord::prices_json},
}};
constexpr std::array<std::pair<std::string_view, IntField>, 8> kInt{{
    {"prompt_tokens", &store::UsageRecord::prompt_tokens},
    {"completion_tokens", &store::UsageRecord::completion_tokens},
    {"cached_tokens", &store::UsageRecord::cached_tokens},
    {"reasoning_tokens", &store::UsageRecord::reasoning_tokens},
    {"cache_write_tokens", &store::UsageRecord::cache_write_tokens},
    {"overhead_us", &store::UsageRecord::overhead_us},
    {"upstream_us", &store::UsageRecord::upstream_us},
    {"created_at_us", &store::UsageRecord::created_at_us},
}};

/// Bounds of a decoded record's numbers: far beyond any real call, far below an overflow of
/// the store's sums (2^40 tokens per call; dates between 2000 and 2200).
constexpr std::int64_t kMaxCount = std::int64_t{1} << 40;
constexpr std::int64_t kMinTimeUs = 946'684'800'000'000;
constexpr std::int64_t kMaxTimeUs = 7'258'118'400'000'000;

}  // namespace

std::string encode_usage(const store::UsageRecord& r) {
  json::object o;
  o.reserve(kText.size() + kInt.size() + 4);
  o["v"] = kFormat;
  for (const auto& [name, field] : kText) {
    o[name] = r.*field;
  }
  for (const auto& [name, field] : kInt) {
    o[name] = r.*field;
  }
  o["status"] = r.status;
  o["stream"] = r.stream;
  o["usage_reported"] = r.usage_reported;
  return json::serialize(o);
}

std::optional<store::UsageRecord> decode_usage(std::string_view text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) {
    return std::nullopt;
  }
  const json::object& o = v.get_object();
  auto field = [&](std::string_view name) -> const json::value* { return o.if_contains(name); };
  const json::value* format = field("v");
  if (format == nullptr || !format->is_int64() || format->get_int64() != kFormat) {
    return std::nullopt;
  }
  store::UsageRecord r;
  for (const auto& [name, member] : kText) {
    const json::value* f = field(name);
    if (f == nullptr || !f->is_string()) {
      return std::nullopt;
    }
    r.*member = std::string(f->get_string());
  }
  for (const auto& [name, member] : kInt) {
    const json::value* f = field(name);
    if (f == nullptr || !f->is_int64()) {
      return std::nullopt;
    }
    r.*member = f->get_int64();
    const bool time = member == &store::UsageRecord::created_at_us;
    if (time ? (r.*member < kMinTimeUs || r.*member > kMaxTimeUs)
             : (r.*member < 0 || r.*member > kMaxCount)) {
      return std::nullopt;  // no real call; summed, it could overflow the store's totals
    }
  }
  const json::value* status = field("status");
  const json::value* stream = field("stream");
  const json::value* reported = field("usage_reported");
  if (status == nullptr || !status->is_int64() || status->get_int64() < 0 ||
      status->get_int64() > 999 || stream == nullptr || !stream->is_bool() ||
      reported == nullptr || !reported->is_bool() || r.request_id.empty() || r.key_id.empty()) {
    return std::nullopt;
  }
  r.status = static_cast<int>(status->get_int64());
  r.stream = stream->get_bool();
  r.usage_reported = reported->get_bool();
  return r;
}

}  // namespace llmgw::events

#pragma once
/// A usage record as one line of JSON (`"v":1`, every field of store::UsageRecord): the entries
/// of the Redis usage queue and of the usage writer's dead-letter file.

#include "store/store.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace llmgw::events {

std::string encode_usage(const store::UsageRecord& r);
/// nullopt when `text` is not a record encode_usage wrote (wrong JSON, a field missing or of
/// the wrong type or out of range, an empty request or key id).
std::optional<store::UsageRecord> decode_usage(std::string_view text);

}  // namespace llmgw::events

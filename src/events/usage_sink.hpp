#pragma once
/// Where the usage writer sends its batches instead of the store: the Redis usage queue
/// (redis/usage_queue.hpp), which app attaches when it is configured.

#include "store/store.hpp"

#include <span>

namespace llmgw::events {

class UsageSink {
 public:
  virtual ~UsageSink() = default;
  /// Takes the whole batch or nothing; false when it could not (the writer then writes the
  /// batch to the store itself). Called from the usage writer's thread only.
  virtual bool push(std::span<const store::UsageRecord> batch) = 0;
};

}  // namespace llmgw::events

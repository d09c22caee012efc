#pragma once
/// Where the audit log's archiver sends spooled records instead of archiving them itself: the
/// shared Redis audit queue of the distributed shape (redis/audit_queue.hpp), which app
/// attaches when LLMGW_USAGE_QUEUE=redis. A drain worker in every replica archives from there.

#include <span>
#include <string>
#include <string_view>

namespace llmgw::audit {

class AuditBuffer {
 public:
  virtual ~AuditBuffer() = default;
  /// Takes all of `records` or none; false when it could not (the archiver keeps them spooled
  /// and tries again). A push made again with the same `push_id` (after a lost answer or a
  /// crash) is not taken twice and counts as taken. Called from the archiver's thread only.
  virtual bool push(std::span<const std::string> records, std::string_view push_id) = 0;
};

}  // namespace llmgw::audit

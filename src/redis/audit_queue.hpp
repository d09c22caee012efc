#pragma once
/// The Redis audit queue (the distributed shape, LLMGW_USAGE_QUEUE=redis): every replica's
/// audit log pushes the records of its spools to one Redis list, and a drain worker in every
/// replica takes batches of them from that list and uploads each as one archive object. What
/// a replica has pushed outlives the replica and its disk.
///
/// It is a LeasedQueue (leased_queue.hpp, prefix `llmgw:audit:`) of rendered audit records
/// with whole batches (Reclaim::Whole): a batch, once taken, keeps its records and its object
/// name — the first element of its taken list — until the sink has acknowledged the object.
/// A worker that fails (the sink refuses) tries the same batch again; a worker whose lease
/// ended (it died, or its upload hangs) loses the batch whole, name included, to the next
/// worker that takes. The encoding is deterministic (archive/batch_codec.hpp), so every upload
/// of a batch writes the same name with the same bytes, which the sink answers Stored: a
/// record reaches exactly one object, even when two workers upload its batch.
///
/// Pushes are idempotent by push id (the audit log's marker names each push): a replica that
/// crashed between its push and consuming its spools pushes the same records again at its
/// next start, and Redis does not take them twice.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "core/log.hpp"
#include "events/archive/archive_sink.hpp"
#include "events/audit/audit_buffer.hpp"
#include "redis/leased_queue.hpp"
#include "redis/queue_drainer.hpp"

namespace llmgw::redis {

inline constexpr std::string_view kAuditQueuePrefix = "llmgw:audit:";

/// The audit queue of worker `worker_id` (this replica's id).
std::unique_ptr<LeasedQueue> make_audit_queue(Options opts, std::string worker_id,
                                              std::chrono::milliseconds lease,
                                              std::string prefix = std::string(kAuditQueuePrefix));

/// The audit log's side: pushes spooled records (audit::AuditLog::attach_buffer).
class AuditQueuePusher final : public audit::AuditBuffer {
 public:
  explicit AuditQueuePusher(std::unique_ptr<LeasedQueue> queue) : queue_(std::move(queue)) {}
  bool push(std::span<const std::string> records, std::string_view push_id) override {
    return queue_->push(records, push_id);
  }

 private:
  std::unique_ptr<LeasedQueue> queue_;
};

struct AuditQueueWorkerOptions {
  std::size_t flush_size = 1'000;                           ///< records per object
  std::chrono::milliseconds flush_interval{5 * 60 * 1000};  ///< longest wait of a record
  /// Bytes of records per object at most (a batch is one Redis script and one upload).
  std::size_t max_object_bytes = 64u << 20;
  std::chrono::milliseconds idle_poll{500};
  std::chrono::milliseconds retry_min{500};
  std::chrono::milliseconds retry_max{60'000};
  std::chrono::milliseconds reclaim_every{5'000};
  std::chrono::milliseconds stop_deadline{20'000};  ///< stop(): drain the queue until then
  /// Failed uploads in a row after which the worker gives its batch up, so a replica cut off
  /// from the store does not sit on records another replica could archive.
  int give_back_after = 5;
};

/// The drain worker: a thread making archive objects of the queue's batches.
class AuditQueueWorker final : public QueueDrainer {
 public:
  /// `name_for(t)`: the object name of a batch made at `t` (archive::object_name). The lease
  /// of `queue` should be longer than one upload; retries are spaced at most half of it.
  AuditQueueWorker(std::unique_ptr<archive::ArchiveSink> sink, std::unique_ptr<LeasedQueue> queue,
                   std::function<std::string(std::chrono::system_clock::time_point)> name_for,
                   std::chrono::milliseconds lease, AuditQueueWorkerOptions opts = {});
  ~AuditQueueWorker() override;

  [[nodiscard]] std::uint64_t archived_records() const noexcept { return archived_.load(); }
  [[nodiscard]] std::uint64_t archived_objects() const noexcept { return objects_.load(); }
  /// Failed uploads and Redis failures.
  [[nodiscard]] std::uint64_t failed_uploads() const noexcept { return failures(); }
  /// Records left out of objects: not one JSON line each.
  [[nodiscard]] std::uint64_t dropped() const noexcept { return dropped_.load(); }
  /// The sink's state for /readyz: false after an upload failed until one succeeds.
  [[nodiscard]] bool sink_healthy() const noexcept { return healthy_.load(); }

 private:
  Step step(bool draining) override;
  std::chrono::milliseconds retry_delay() override;
  /// Whether the object `name` already holds exactly `records` (a Conflict on bytes, as when
  /// another replica's zlib compressed the same batch differently).
  bool holds_records(const std::string& name, const std::vector<std::string>& records);

  std::unique_ptr<archive::ArchiveSink> sink_;
  std::unique_ptr<LeasedQueue> queue_;
  std::function<std::string(std::chrono::system_clock::time_point)> name_for_;
  AuditQueueWorkerOptions opts_;
  std::chrono::milliseconds max_wait_;  ///< the back-off's ceiling
  std::chrono::milliseconds wait_;      ///< the next back-off
  std::atomic<std::uint64_t> archived_{0};
  std::atomic<std::uint64_t> objects_{0};
  std::atomic<std::uint64_t> dropped_{0};
  std::atomic<bool> healthy_{true};
};

}  // namespace llmgw::redis

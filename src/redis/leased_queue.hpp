#pragma once
/// A Redis list that replicas push entries to and drain in leased batches: the machinery
/// shared by the usage queue (usage_queue.hpp) and the audit queue (audit_queue.hpp).
///
/// Keys (under a prefix such as `llmgw:usage:`; one Redis database per deployment):
///   queue          list of entries, oldest first
///   since          when the queue last went from empty to holding entries (ms, Redis's clock)
///   taken:<id>     the batch worker <id> is working on
///   leases         hash worker id → lease end (ms, Redis's clock)
///   dead           entries that cannot be used, kept for an operator
///   pushed         hash worker id → the id of its last idempotent push that Redis took
///   orphans        (whole batches) keys of batches whose worker's lease ended
///   orphan:<name>  (whole batches) such a batch, as it was taken
/// A worker takes a batch by moving entries from `queue` to its `taken:<id>` list in one
/// script (which also renews its lease), works on it, then acknowledges it (deletes the list).
/// A worker whose lease ended (it died, or its work hangs) loses its batch to the next worker
/// that looks, in one of two ways:
///   - Reclaim::Requeue: its entries go back to the head of the queue, to be mixed into the
///     next batches (the usage queue: the store skips a request id it already holds).
///   - Reclaim::Whole: the batch keeps its composition and its name (the first element of the
///     taken list): it is moved whole to `orphans`, and the next take hands it over as it is
///     before any new batch (the audit queue: a batch is one archive object, and uploading it
///     again must write the same name with the same bytes).
///
/// The scripts' first write never needs memory (LTRIM, DEL, HDEL, RENAME, LPOP), so they still
/// run when Redis is at `maxmemory` with `noeviction`: a full queue drains, while pushes are
/// refused.
///
/// Not thread-safe: one LeasedQueue per thread (each has its own blocking connection). Only
/// background threads use it, never an I/O thread.

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/log.hpp"
#include "redis/redis_client.hpp"

namespace llmgw::redis {

/// What happens to the batch of a worker whose lease ended (see above).
enum class Reclaim : std::uint8_t { Requeue, Whole };

/// When take() moves a new batch from the queue (a worker's own or an orphaned batch is always
/// handed over): when the queue holds `min_entries`, or when it has held entries for
/// `max_wait`.
struct TakeRule {
  std::size_t min_entries = 1;
  std::chrono::milliseconds max_wait{0};
  std::size_t max_bytes = 0;  ///< a batch stops before this many bytes (0: no limit; >= 1 entry)
};

struct TakenBatch {
  std::string name;  ///< Reclaim::Whole: the batch's name, given by the worker that made it
  std::vector<std::string> entries;
};

class LeasedQueue {
 public:
  /// `worker_id`: this replica's id (a restarted replica resumes its own taken batch).
  /// `what` names the queue in logs ("usage queue").
  LeasedQueue(Options opts, std::string worker_id, std::chrono::milliseconds lease,
              std::string prefix, Reclaim reclaim, std::string what);

  /// Appends `entries` to the queue in one script. With a `push_id`, a push that Redis
  /// already took under that id as this worker's last is not made again (and counts as taken):
  /// a worker pushes one batch at a time, and repeats only its last one (after a lost answer,
  /// or a crash before it noted the answer). False when Redis did not take them.
  bool push(std::span<const std::string> entries, std::string_view push_id = {});
  /// This worker's unfinished batch if it has one; with Reclaim::Whole else an orphaned batch;
  /// else, when `rule` says so, up to `max` entries moved from the head of the queue (named
  /// `name` with Reclaim::Whole). Renews the lease. An empty batch: nothing to do. nullopt:
  /// Redis failed.
  std::optional<TakenBatch> take(std::size_t max, const TakeRule& rule = {},
                                 std::string_view name = {});
  /// The batch taken is done: forget it. False when Redis failed (the batch is then taken
  /// again and done again).
  bool ack();
  /// Reclaim::Whole: gives the taken batch a new name. False when Redis failed or the batch
  /// is no longer this worker's.
  bool rename(std::string_view name);
  /// Gives this worker's taken batch up (as if its lease had ended) and ends its lease, for
  /// another worker. False when Redis failed.
  bool give_back();
  /// Takes the batches of workers whose lease ended away from them; returns how many entries
  /// moved.
  std::optional<long long> reclaim();
  /// Appends entries to the dead list. False when Redis failed.
  bool bury(const std::vector<std::string>& entries);
  /// Ends this worker's lease if it holds no batch (a clean stop).
  bool release();
  /// Entries in the queue (not counting taken or orphaned batches).
  std::optional<long long> length();
  /// What in Redis's settings can lose queued entries (no append-only file, an eviction
  /// policy other than noeviction); empty when nothing, nullopt when it cannot tell.
  std::optional<std::string> durability_problems();

  [[nodiscard]] const std::string& queue_key() const noexcept { return queue_key_; }
  [[nodiscard]] const std::string& dead_key() const noexcept { return dead_key_; }
  [[nodiscard]] const std::string& what() const noexcept { return what_; }

 private:
  [[nodiscard]] bool whole() const noexcept { return reclaim_ == Reclaim::Whole; }
  void refused(std::string_view script, const std::optional<Reply>& reply);

  BlockingClient client_;
  std::string worker_id_;
  std::chrono::milliseconds lease_;
  std::string prefix_;
  Reclaim reclaim_;
  std::string what_;
  std::string queue_key_;
  std::string since_key_;
  std::string taken_key_;
  std::string leases_key_;
  std::string dead_key_;
  std::string orphans_key_;
  std::string pushed_key_;
  core::LogThrottle error_log_;
};

}  // namespace llmgw::redis

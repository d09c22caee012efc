#pragma once
/// The Redis usage queue (LLMGW_USAGE_QUEUE=redis): every replica's usage writer appends the
/// records of its spool to one Redis list, and a worker in every replica moves them from that
/// list into the store. What a replica has pushed outlives the replica and its disk: any other
/// replica's worker writes it, even while the replica that served the call is gone for good.
///
/// Keys (prefix `llmgw:usage:`; one Redis database per deployment, since every store that
/// shares it would take the others' records):
///   queue         list of records (JSON, events/usage_codec.hpp), oldest first
///   taken:<id>    the batch worker <id> is writing to the store
///   leases        hash worker id → lease end (ms, Redis's clock)
///   dead          entries that are not records, and records the store refuses (a value
///                 its schema does not allow), kept for an operator
/// A worker takes a batch by moving it from `queue` to its `taken:<id>` list in one script
/// (which also renews its lease), writes it in one store transaction, then deletes the list.
/// A worker whose lease ended (it died, or its store write hangs) has its batch put back at
/// the head of the queue by the next worker that looks. So a batch may reach the store twice;
/// the store skips a request id it already holds (one usage row per request), which makes
/// every delivery idempotent.
///
/// The scripts' first write never needs memory (LTRIM, DEL, HDEL), so they still run when
/// Redis is at `maxmemory` with `noeviction`: a full queue drains, while pushes are refused
/// and the writers write to the store themselves.
///
/// Not thread-safe: one UsageQueue per thread (each has its own blocking connection). Only
/// background threads use it, never an I/O thread.

#include "core/log.hpp"
#include "events/usage_sink.hpp"
#include "redis/redis_client.hpp"
#include "store/store.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace llmgw::redis {

class UsageQueue : public events::UsageSink {
 public:
  /// `worker_id`: this replica's id (a restarted replica resumes its own taken batch).
  UsageQueue(Options opts, std::string worker_id,
             std::chrono::milliseconds lease = std::chrono::seconds(15),
             std::string prefix = "llmgw:usage:");

  /// Appends `batch` to the queue in one RPUSH. False when Redis did not take it.
  bool push(std::span<const store::UsageRecord> batch) override;
  /// This worker's unfinished batch if it has one, else up to `max` records moved from the
  /// head of the queue; renews the lease. nullopt: Redis failed.
  std::optional<std::vector<std::string>> take(std::size_t max);
  /// The batch taken is in the store: forget it. False when Redis failed (the batch is then
  /// taken again and written again, which the store skips).
  bool ack();
  /// Puts this worker's taken batch back at the head of the queue and ends its lease, for
  /// another worker to write. False when Redis failed.
  bool give_back();
  /// Puts back the batches of workers whose lease ended; returns how many records moved.
  std::optional<long long> reclaim();
  /// Appends entries to the dead list. False when Redis failed.
  bool bury(const std::vector<std::string>& entries);
  /// Ends this worker's lease if it holds no batch (a clean stop).
  bool release();
  /// Records in the queue (not counting taken batches).
  std::optional<long long> length();
  /// What in Redis's settings can lose queued records (no append-only file, an eviction
  /// policy other than noeviction); empty when nothing, nullopt when it cannot tell.
  std::optional<std::string> durability_problems();

  [[nodiscard]] const std::string& queue_key() const noexcept { return queue_key_; }
  [[nodiscard]] const std::string& dead_key() const noexcept { return dead_key_; }

 private:
  BlockingClient client_;
  std::string worker_id_;
  std::chrono::milliseconds lease_;
  std::string prefix_;
  std::string queue_key_;
  std::string taken_key_;
  std::string leases_key_;
  std::string dead_key_;
  core::LogThrottle error_log_;
};

struct UsageQueueWorkerOptions {
  std::size_t batch_size = 500;                    ///< at most kMaxBatch
  std::chrono::milliseconds idle_poll{100};        ///< queue empty: look again after this
  std::chrono::milliseconds retry_delay{1'000};    ///< after a Redis or store failure
  std::chrono::milliseconds reclaim_every{5'000};
  std::chrono::milliseconds stop_deadline{5'000};  ///< stop(): drain the queue until then
  /// Store failures in a row after which the worker gives its batch back to the queue, so a
  /// replica cut off from the store does not sit on records another replica could write.
  int give_back_after = 5;
  static constexpr std::size_t kMaxBatch = 1'000;  ///< one take is one Redis script: keep it short
};

/// The drain worker: a thread moving batches from the queue into the store.
class UsageQueueWorker {
 public:
  UsageQueueWorker(store::Store& store, std::unique_ptr<UsageQueue> queue,
                   UsageQueueWorkerOptions opts = {});
  ~UsageQueueWorker();
  UsageQueueWorker(const UsageQueueWorker&) = delete;
  UsageQueueWorker& operator=(const UsageQueueWorker&) = delete;

  void start();
  /// Drains what the queue holds (bounded by stop_deadline), then stops the thread. What is
  /// left stays in Redis for the other replicas, or for this one's next start.
  void stop();

  [[nodiscard]] std::uint64_t written() const noexcept { return written_.load(); }
  /// Entries moved to the dead list: not records, or records the store refused.
  [[nodiscard]] std::uint64_t buried() const noexcept { return buried_.load(); }
  [[nodiscard]] std::uint64_t failures() const noexcept { return failures_.load(); }

 private:
  void run();
  /// One batch: 1 written, 0 nothing to take, -1 a failure.
  int step();
  /// The store refused `batch` as values (store::RefusedError): writes its records one by
  /// one and buries those refused, so one bad record cannot hold up every later one. False
  /// when another kind of failure interrupts, or Redis did not take the buried records.
  bool write_singly(const std::vector<store::UsageRecord>& batch,
                    const std::vector<std::string>& texts);
  void failed(std::string_view what, const std::string& error);
  bool wait(std::chrono::milliseconds d);  ///< false: stopping

  store::Store& store_;
  std::unique_ptr<UsageQueue> queue_;
  UsageQueueWorkerOptions opts_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
  core::LogThrottle failure_log_;
  int failures_in_a_row_ = 0;
  std::atomic<std::uint64_t> written_{0};
  std::atomic<std::uint64_t> buried_{0};
  std::atomic<std::uint64_t> failures_{0};
};

}  // namespace llmgw::redis

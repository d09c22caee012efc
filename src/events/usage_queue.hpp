#pragma once
/// The Redis usage queue (LLMGW_USAGE_QUEUE=redis): every replica's usage writer appends the
/// records of its spool to one Redis list, and a worker in every replica moves them from that
/// list into the store. What a replica has pushed outlives the replica and its disk: any other
/// replica's worker writes it, even while the replica that served the call is gone for good.
///
/// Keys (prefix `llmgw:usage:`):
///   queue         list of records (JSON, see encode_usage), oldest first
///   taken:<id>    the batch worker <id> is writing to the store
///   leases        hash worker id → lease end (ms, Redis's clock)
///   dead          records the store refused while it answered (kept for an operator)
/// A worker takes a batch by moving it from `queue` to its `taken:<id>` list in one script
/// (which also renews its lease), writes it in one store transaction, then deletes the list.
/// A worker whose lease ended (it died, or its store write hangs) has its batch put back at
/// the head of the queue by the next worker that looks. So a batch may reach the store twice;
/// the store skips a request id it already holds (one usage row per request), which makes
/// every delivery idempotent.
///
/// Not thread-safe: one UsageQueue per thread (each has its own blocking connection). Only
/// background threads use it, never an I/O thread.

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

namespace llmgw::events {

/// One record as a JSON object (`"v":1`, every field of store::UsageRecord).
std::string encode_usage(const store::UsageRecord& r);
/// nullopt when `text` is not a record encode_usage wrote (wrong JSON, a field missing or of
/// the wrong type, an empty request or key id).
std::optional<store::UsageRecord> decode_usage(std::string_view text);

class UsageQueue {
 public:
  /// `worker_id`: this replica's id (a restarted replica resumes its own taken batch).
  UsageQueue(redis::Options opts, std::string worker_id,
             std::chrono::milliseconds lease = std::chrono::seconds(15),
             std::string prefix = "llmgw:usage:");

  /// Appends `batch` to the queue in one RPUSH. False when Redis did not take it.
  bool push(std::span<const store::UsageRecord> batch);
  /// This worker's unfinished batch if it has one, else up to `max` records moved from the
  /// head of the queue; renews the lease. nullopt: Redis failed.
  std::optional<std::vector<std::string>> take(std::size_t max);
  /// The batch taken is in the store: forget it. False when Redis failed (the batch is then
  /// taken again and written again, which the store skips).
  bool ack();
  /// Puts back the batches of workers whose lease ended; returns how many records moved.
  std::optional<long long> reclaim();
  /// Appends records the store refuses to the dead list. False when Redis failed.
  bool bury(const std::vector<std::string>& records);
  /// Ends this worker's lease if it holds no batch (a clean stop).
  bool release();
  /// Records in the queue (not counting taken batches).
  std::optional<long long> length();

  [[nodiscard]] const std::string& queue_key() const noexcept { return queue_key_; }
  [[nodiscard]] const std::string& taken_key() const noexcept { return taken_key_; }
  [[nodiscard]] const std::string& leases_key() const noexcept { return leases_key_; }
  [[nodiscard]] const std::string& dead_key() const noexcept { return dead_key_; }

 private:
  redis::BlockingClient client_;
  std::string worker_id_;
  std::chrono::milliseconds lease_;
  std::string prefix_;
  std::string queue_key_;
  std::string taken_key_;
  std::string leases_key_;
  std::string dead_key_;
};

struct UsageQueueWorkerOptions {
  std::size_t batch_size = 500;
  std::chrono::milliseconds idle_poll{100};       ///< queue empty: look again after this
  std::chrono::milliseconds retry_delay{1'000};   ///< after a Redis or store failure
  std::chrono::milliseconds reclaim_every{5'000};
  std::chrono::milliseconds stop_deadline{5'000}; ///< stop(): drain the queue until then
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
  [[nodiscard]] std::uint64_t undecodable() const noexcept { return undecodable_.load(); }
  [[nodiscard]] std::uint64_t failures() const noexcept { return failures_.load(); }
  /// Records moved to the dead list.
  [[nodiscard]] std::uint64_t buried() const noexcept { return buried_.load(); }

 private:
  void run();
  /// One batch: 1 written, 0 nothing to take, -1 a failure.
  int step();
  /// The store refused `batch` but answers a plain read: writes the records one by one and
  /// buries those it refuses, so one bad record cannot hold up every later one (when none
  /// goes in, only after 10 such rounds). False: the store is away, the rounds are not up,
  /// or Redis did not take the buried records (the batch stays taken).
  bool write_singly(const std::vector<store::UsageRecord>& batch,
                    const std::vector<std::string>& texts);
  bool wait(std::chrono::milliseconds d);  ///< false: stopping

  store::Store& store_;
  std::unique_ptr<UsageQueue> queue_;
  UsageQueueWorkerOptions opts_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
  std::chrono::steady_clock::time_point last_warning_{};
  int refusals_ = 0;  ///< rounds the taken batch was refused whole while the store answered
  std::atomic<std::uint64_t> written_{0};
  std::atomic<std::uint64_t> undecodable_{0};
  std::atomic<std::uint64_t> failures_{0};
  std::atomic<std::uint64_t> buried_{0};
};

}  // namespace llmgw::events

#pragma once
/// The Redis usage queue (LLMGW_USAGE_QUEUE=redis): every replica's usage writer appends the
/// records of its spool to one Redis list, and a worker in every replica moves them from that
/// list into the store. What a replica has pushed outlives the replica and its disk: any other
/// replica's worker writes it, even while the replica that served the call is gone for good.
///
/// It is a LeasedQueue (leased_queue.hpp, prefix `llmgw:usage:`; one Redis database per
/// deployment, since every store that shares it would take the others' records) whose
/// entries are records (JSON, events/usage_codec.hpp), and whose `dead` list also keeps the
/// records the store refuses (a value its schema does not allow). A worker takes a batch,
/// writes it in one store transaction, then acknowledges it. A worker whose lease ended (it
/// died, or its store write hangs) has its batch put back at the head of the queue
/// (Reclaim::Requeue) by the next worker that looks. So a batch may reach the store twice; the
/// store skips a request id it already holds (one usage row per request), which makes every
/// delivery idempotent.
///
/// Not thread-safe: one UsageQueue per thread (each has its own blocking connection). Only
/// background threads use it, never an I/O thread.

#include "core/log.hpp"
#include "events/usage_sink.hpp"
#include "redis/leased_queue.hpp"
#include "redis/queue_drainer.hpp"
#include "redis/redis_client.hpp"
#include "store/store.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace llmgw::redis {

/// A LeasedQueue (ack, give_back, reclaim, bury, release, length… as there) whose entries are
/// encoded usage records.
class UsageQueue final : public events::UsageSink, public LeasedQueue {
 public:
  /// `worker_id`: this replica's id (a restarted replica resumes its own taken batch).
  UsageQueue(Options opts, std::string worker_id,
             std::chrono::milliseconds lease = std::chrono::seconds(15),
             std::string prefix = "llmgw:usage:");

  /// Appends `batch` to the queue in one script. False when Redis did not take it.
  bool push(std::span<const store::UsageRecord> batch) override;
  /// This worker's unfinished batch if it has one, else up to `max` records moved from the
  /// head of the queue; renews the lease. nullopt: Redis failed.
  std::optional<std::vector<std::string>> take(std::size_t max);
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
class UsageQueueWorker final : public QueueDrainer {
 public:
  UsageQueueWorker(store::Store& store, std::unique_ptr<UsageQueue> queue,
                   UsageQueueWorkerOptions opts = {});
  ~UsageQueueWorker() override;

  [[nodiscard]] std::uint64_t written() const noexcept { return written_.load(); }
  /// Entries moved to the dead list: not records, or records the store refused.
  [[nodiscard]] std::uint64_t buried() const noexcept { return buried_.load(); }

 private:
  Step step(bool draining) override;
  std::chrono::milliseconds retry_delay() override { return opts_.retry_delay; }
  /// The store refused `batch` as values (store::RefusedError): writes its records one by
  /// one and buries those refused, so one bad record cannot hold up every later one. False
  /// when another kind of failure interrupts, or Redis did not take the buried records.
  bool write_singly(const std::vector<store::UsageRecord>& batch,
                    const std::vector<std::string>& texts);

  store::Store& store_;
  std::unique_ptr<UsageQueue> queue_;
  UsageQueueWorkerOptions opts_;
  std::atomic<std::uint64_t> written_{0};
  std::atomic<std::uint64_t> buried_{0};
};

}  // namespace llmgw::redis

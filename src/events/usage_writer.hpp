#pragma once
/// Usage records leave the request path as queued events and are written to the store in
/// batches (one transaction each) by a background thread. With spools attached (one per I/O
/// thread, see usage_spool.hpp) a record is crash-safe the moment it is submitted; the
/// in-memory queue remains for threads without a spool and for a full spool. `stop()` drains
/// everything, so a clean shutdown loses none either way. With a sink attached (the Redis
/// usage queue) the batches go there, and every replica's queue worker writes them.

#include "events/usage_sink.hpp"
#include "events/usage_spool.hpp"
#include "core/log.hpp"
#include "store/store.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace llmgw::events {

struct UsageWriterOptions {
  std::size_t batch_size = 1000;
  std::chrono::milliseconds flush_interval{200};
  std::size_t queue_limit = 1'000'000;
  /// Where records the store refuses as values (store::RefusedError) go, one JSON line each
  /// (usage_codec.hpp), so that one of them cannot hold up the spool behind it. Empty: such a
  /// batch is retried like any failed one.
  std::string dead_letter_path{};
};

class UsageWriter {
 public:
  UsageWriter(store::Store& store, UsageWriterOptions opts);
  ~UsageWriter();
  UsageWriter(const UsageWriter&) = delete;
  UsageWriter& operator=(const UsageWriter&) = delete;

  /// Before start(): spools to drain (and replay); `producers` of them take submissions
  /// (spool i for submit(…, i)); the others are left from an earlier run with more threads.
  void attach_spools(std::vector<std::unique_ptr<UsageSpool>> spools, std::size_t producers);
  /// Before start(): batches go to `sink` (the Redis usage queue) instead of the store, and
  /// straight to the store only while the sink does not take them.
  void attach_sink(std::unique_ptr<UsageSink> sink);
  /// Replays what the spools hold beyond the store's marks, then starts the thread.
  /// Returns the number of records replayed. Throws if the store refuses them.
  std::size_t start();
  /// Never blocks on I/O. With `spool` naming an attached producer spool (one thread each),
  /// the record goes there; otherwise into the queue. False (and counted) if dropped.
  bool submit(store::UsageRecord&& r, std::size_t spool = SIZE_MAX);
  /// Writes everything queued and spooled, then stops the thread.
  void stop();

  /// Records written to the store by this writer.
  [[nodiscard]] std::uint64_t written() const noexcept { return written_.load(); }
  /// Records handed to the sink.
  [[nodiscard]] std::uint64_t queued() const noexcept { return queued_.load(); }
  [[nodiscard]] std::uint64_t dropped() const noexcept { return dropped_.load(); }
  [[nodiscard]] std::uint64_t failed_batches() const noexcept { return failed_batches_.load(); }
  /// Records the store refused, written to the dead-letter file.
  [[nodiscard]] std::uint64_t dead_letters() const noexcept { return dead_letters_.load(); }
  /// Bytes spooled and not yet written (any thread, after start()).
  [[nodiscard]] std::uint64_t pending_bytes() const noexcept;

 private:
  void run();
  /// One round: the queue and every spool into the store. False if the store failed.
  bool drain_once(bool replay);
  /// To the sink if attached and it takes the batch, else write_with_retry.
  bool deliver(std::vector<store::UsageRecord>& batch, const std::vector<store::SpoolMark>& marks);
  bool write_with_retry(std::vector<store::UsageRecord>& batch,
                        const std::vector<store::SpoolMark>& marks);
  /// After a RefusedError: the records one by one, the refused ones to the dead-letter file,
  /// then the marks. False when the store failed otherwise or the file could not be written.
  bool write_singly(const std::vector<store::UsageRecord>& batch,
                    const std::vector<store::SpoolMark>& marks);

  store::Store& store_;
  UsageWriterOptions opts_;
  std::vector<std::unique_ptr<UsageSpool>> spools_;
  std::size_t producers_ = 0;
  std::unique_ptr<UsageSink> sink_;
  core::LogThrottle sink_warning_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<store::UsageRecord> queue_;
  bool stopping_ = false;
  std::thread thread_;
  std::atomic<std::uint64_t> written_{0};
  std::atomic<std::uint64_t> queued_{0};
  std::atomic<std::uint64_t> dropped_{0};
  std::atomic<std::uint64_t> failed_batches_{0};
  std::atomic<std::uint64_t> dead_letters_{0};
};

}  // namespace llmgw::events

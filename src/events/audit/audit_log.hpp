#pragma once
/// The audit log: each I/O thread appends its requests' audit records (record.hpp) to its own
/// crash-safe spool (src/events/spool/spool.hpp) — a memcpy, nothing that waits — and one
/// background thread drains the spools into gzip JSON Lines objects through an ArchiveSink
/// (a local directory or S3), flushed by size (records per object) and by time.
///
/// Nothing is lost and nothing is written twice: before an object is uploaded, its name and
/// the spool positions it ends at are written to a marker file (fsync, rename); the spools are
/// consumed only once the sink has acknowledged the object. A failed upload is retried with
/// back-off, with the same name and the same bytes (the encoding is deterministic), so after
/// a crash the batch is uploaded again under its name — the sink answers Stored for the same
/// bytes — and never as a second object.
///
/// In the distributed shape an AuditBuffer is attached (the Redis audit queue): the archiver
/// then pushes what is spooled to it — every second, whatever the flush size and interval,
/// which apply to the objects the queue's drain workers make — in the same way: the marker
/// names the push (an id the buffer remembers, so a push made again after a crash or a lost
/// answer is not taken twice), and the spools are consumed once the buffer took it.

#include "events/archive/archive_sink.hpp"
#include "events/audit/audit_buffer.hpp"
#include "events/spool/spool.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace llmgw::audit {

struct AuditLogOptions {
  std::string spool_dir;                     ///< DATA_DIR/spool
  /// Ring bytes per I/O thread's spool. Every page of a ring written round stays resident:
  /// 4 MiB (about 6,000 metadata records, 0.3 s at 20,000 req/s) bounds what a loaded
  /// thread's spool adds to RSS; the overflow spool takes what a thread's spool cannot, and
  /// is touched only then.
  std::size_t spool_bytes = 4u << 20;
  std::size_t overflow_bytes = 16u << 20;  ///< ring bytes of the shared overflow spool
  unsigned producers = 1;                    ///< I/O threads (spool i for submit(…, i))
  std::size_t flush_size = 1'000;            ///< records per object
  std::chrono::milliseconds flush_interval{5 * 60 * 1000};
  /// How long stop() keeps retrying a failing sink before it leaves the rest in the spools
  /// (they are archived after the next start).
  std::chrono::milliseconds stop_grace{20'000};
  std::chrono::milliseconds retry_min{500};
  std::chrono::milliseconds retry_max{60'000};
};

class AuditLog {
 public:
  /// `name_for(t)`: the object name of a batch begun at `t` (archive::object_name). `sink` may
  /// be null when a buffer is attached.
  AuditLog(AuditLogOptions opt, std::unique_ptr<archive::ArchiveSink> sink,
           std::function<std::string(std::chrono::system_clock::time_point)> name_for);
  ~AuditLog();
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  /// Before start(): records go to `buffer` instead of the sink.
  void attach_buffer(std::unique_ptr<AuditBuffer> buffer);
  /// Opens the spools (with those an earlier run with more threads left), uploads a batch a
  /// crash left between marker and acknowledgement, and starts the thread. Throws on an
  /// unusable spool directory.
  void start();
  /// From I/O thread `producer`: appends one rendered record. Never blocks on I/O; a full
  /// spool falls back to a shared overflow spool (under a lock). False: the record could not
  /// be kept (both full), counted in dropped().
  bool submit(std::string_view line, std::size_t producer);
  /// Archives everything spooled (retrying a failing sink for stop_grace; a buffer that does
  /// not take pushes for at most 2 s), then stops.
  void stop();

  [[nodiscard]] std::uint64_t archived_records() const noexcept { return archived_.load(); }
  [[nodiscard]] std::uint64_t archived_objects() const noexcept { return objects_.load(); }
  [[nodiscard]] std::uint64_t failed_uploads() const noexcept { return failures_.load(); }
  [[nodiscard]] std::uint64_t dropped() const noexcept { return dropped_.load(); }
  /// Bytes spooled and not yet archived (with a buffer: not yet pushed).
  [[nodiscard]] std::uint64_t pending_bytes() const noexcept;
  /// Seconds since the oldest unarchived (with a buffer: unpushed) record was spooled (0 when
  /// nothing waits).
  [[nodiscard]] double lag_seconds() const noexcept;
  /// The sink's (with a buffer: the buffer's) state for /readyz: false after an upload failed
  /// until one succeeds.
  [[nodiscard]] bool sink_healthy() const noexcept { return healthy_.load(); }

 private:
  struct Batch {
    std::string name;
    std::vector<std::pair<std::size_t, std::uint64_t>> ends;  ///< spool index, next tail
    std::vector<std::string> records;
  };
  void run();
  /// Records submitted since start (to the producers' spools and the overflow).
  [[nodiscard]] std::uint64_t submitted_total() const noexcept;
  /// Archives batches: with `drain`, until the spools are empty (or stopping and past
  /// `deadline`); otherwise the first batch whatever its size, then only full ones. Returns
  /// the records left spooled (a part batch, which waits for the next size or time trigger).
  std::size_t flush(std::chrono::steady_clock::time_point deadline, bool drain);
  bool take(Batch& b, std::size_t max);
  /// Uploads `b` (or pushes it to the buffer), retrying until acknowledged, or false past
  /// `deadline`; then consumes it.
  bool upload(Batch& b, std::chrono::steady_clock::time_point deadline);
  archive::PutResult send(const Batch& b, const std::string& bytes);
  void write_marker(const Batch& b);
  void finish_marked();

  AuditLogOptions opt_;
  std::unique_ptr<archive::ArchiveSink> sink_;
  std::unique_ptr<AuditBuffer> buffer_;
  /// A marked batch not sent yet (at start, the earlier run's; or one whose retries were
  /// cut short by stop()): sent before any new batch, which would hold its records under
  /// another name or push id.
  std::optional<Batch> pending_;
  std::function<std::string(std::chrono::system_clock::time_point)> name_for_;
  std::vector<std::unique_ptr<events::Spool>> spools_;  ///< producers', then leftovers
  std::unique_ptr<events::Spool> overflow_;
  std::mutex overflow_mu_;
  struct alignas(64) Counter {
    std::atomic<std::uint64_t> n{0};
  };
  std::unique_ptr<Counter[]> submitted_;  ///< per producer, written by its thread only
  std::atomic<std::uint64_t> overflowed_{0};
  std::atomic<std::int64_t> drop_logged_us_{0};  ///< when a drop was last logged
  std::uint64_t taken_ = 0;  ///< archiver thread only
  /// When the archiver first saw records waiting (unix µs; 0: none): the lag's start, kept by
  /// the archiver so that the request path writes nothing shared.
  std::atomic<std::int64_t> waiting_since_us_{0};
  std::atomic<std::uint64_t> archived_{0};
  std::atomic<std::uint64_t> objects_{0};
  std::atomic<std::uint64_t> failures_{0};
  std::atomic<std::uint64_t> dropped_{0};
  std::atomic<bool> healthy_{true};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::chrono::steady_clock::time_point stop_deadline_;  ///< set by stop(), under mu_
  std::thread thread_;
};

}  // namespace llmgw::audit

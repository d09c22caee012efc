#pragma once
/// A crash-safe spool for usage records: a ring buffer in a memory-mapped file, one per I/O
/// thread (single producer), drained by the usage writer (single consumer). Appending is a
/// memcpy into the shared mapping and one release store — no syscall, nothing that waits —
/// and what is in the mapping survives the process: the kernel owns those pages. So a record
/// appended is not lost if the process is killed; after a restart the writer replays what
/// the store had not yet recorded (each record carries a sequence number, and the store keeps
/// the last one applied per spool in the same transaction as the rows).
/// Not covered: a power loss before the kernel wrote the pages back (the writer msyncs after
/// each drain).

#include "store/store.hpp"

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace llmgw::events {

class UsageSpool {
 public:
  struct Header;  ///< the mapped file's first page (defined in the .cpp)

  /// Opens or creates `path` with `capacity` bytes of ring. Throws std::runtime_error.
  /// `name_prefix` makes the spool's name (its mark in the store) unique among processes
  /// sharing one database: every replica has a `usage-0.spool`.
  static std::unique_ptr<UsageSpool> open(const std::string& path, std::size_t capacity,
                                          const std::string& name_prefix = {});
  ~UsageSpool();
  UsageSpool(const UsageSpool&) = delete;
  UsageSpool& operator=(const UsageSpool&) = delete;

  /// Producer side (one thread): false when the ring is full (the caller keeps the record).
  bool append(const store::UsageRecord& r);

  /// Consumer side: decodes up to `max` records after the consumed position. `seqs` gets
  /// each record's sequence number; `next_tail` the position after the last one read.
  /// `*damaged` (if given) is set when bytes that cannot be a record were skipped.
  void read(std::size_t max, std::vector<store::UsageRecord>& out, std::vector<std::uint64_t>& seqs,
            std::uint64_t& next_tail, bool* damaged = nullptr) const;
  /// Marks everything before `next_tail` as recorded by the store (and flushes the mapping).
  void consume(std::uint64_t next_tail);

  /// A spool created anew (or moved aside) starts numbering after what the store already
  /// has for its name, so replay never mistakes new records for applied ones.
  void start_sequence_after(std::uint64_t seq);
  [[nodiscard]] std::uint64_t next_sequence() const noexcept;
  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  [[nodiscard]] std::uint64_t pending_bytes() const noexcept;

 private:
  UsageSpool() = default;
  void copy_in(std::uint64_t pos, const char* data, std::size_t n);
  void copy_out(std::uint64_t pos, char* data, std::size_t n) const;

  std::string name_;
  int fd_ = -1;
  char* map_ = nullptr;
  std::size_t map_bytes_ = 0;
  Header* header_ = nullptr;
  char* ring_ = nullptr;
  std::uint64_t capacity_ = 0;
  std::string scratch_;  ///< producer's encoding buffer
};

}  // namespace llmgw::events

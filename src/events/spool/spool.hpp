#pragma once
/// A crash-safe spool of byte records: a ring buffer in a memory-mapped file, one per I/O
/// thread (single producer), drained by one background consumer. Appending is a memcpy into
/// the shared mapping and one release store — no syscall, nothing that waits — and what is in
/// the mapping survives the process: the kernel owns those pages. So a record appended is not
/// lost if the process is killed; after a restart the consumer reads again what it had not
/// consumed. Each record carries a sequence number (see start_sequence_after).
/// Not covered: a power loss before the kernel wrote the pages back (the consumer msyncs after
/// each drain).
///
/// The usage records (src/events/usage_spool.hpp) and the audit records (src/events/audit/)
/// each have their own spools of this kind.

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace llmgw::events {

class Spool {
 public:
  struct Header;  ///< the mapped file's first page (defined in the .cpp)

  /// Largest record append() takes.
  static constexpr std::uint32_t kMaxRecordBytes = 1u << 20;

  /// Opens or creates `path` with `capacity` bytes of ring. Throws std::runtime_error.
  /// `name_prefix` makes the spool's name unique among processes sharing one database.
  /// `what` names the spool in errors ("usage spool").
  static std::unique_ptr<Spool> open(const std::string& path, std::size_t capacity,
                                     const std::string& name_prefix = {},
                                     std::string_view what = "spool");
  ~Spool();
  Spool(const Spool&) = delete;
  Spool& operator=(const Spool&) = delete;

  /// Producer side (one thread): false when the ring is full or the record too large (the
  /// caller keeps it). The record gets the next sequence number.
  bool append(std::string_view payload);

  /// Consumer side: up to `max` records after the consumed position, and no further than
  /// `limit` (a position read() gave before; 0: no limit). `seqs` gets each record's sequence
  /// number; `next_tail` the position after the last one read. `*damaged` (if given) is set
  /// when bytes that cannot be a record were skipped.
  void read(std::size_t max, std::vector<std::string>& out, std::vector<std::uint64_t>& seqs,
            std::uint64_t& next_tail, bool* damaged = nullptr, std::uint64_t limit = 0) const;
  /// Marks everything before `next_tail` as consumed (and starts writing the mapping back).
  void consume(std::uint64_t next_tail);

  /// A spool created anew (or moved aside) starts numbering after `seq`, so replay never
  /// mistakes new records for applied ones.
  void start_sequence_after(std::uint64_t seq);
  [[nodiscard]] std::uint64_t next_sequence() const noexcept;
  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  [[nodiscard]] std::uint64_t pending_bytes() const noexcept;
  /// The consumed position (what consume() last stored).
  [[nodiscard]] std::uint64_t tail() const noexcept;

 private:
  Spool() = default;
  void copy_in(std::uint64_t pos, const char* data, std::size_t n);
  void copy_out(std::uint64_t pos, char* data, std::size_t n) const;

  std::string name_;
  int fd_ = -1;
  char* map_ = nullptr;
  std::size_t map_bytes_ = 0;
  Header* header_ = nullptr;
  char* ring_ = nullptr;
  std::uint64_t capacity_ = 0;
  std::string frame_;  ///< producer's framing buffer
};

}  // namespace llmgw::events

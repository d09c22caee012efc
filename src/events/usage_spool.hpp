#pragma once
/// The usage records' crash-safe spool: a Spool (spool.hpp) of encoded store::UsageRecord,
/// one per I/O thread, drained by the usage writer. After a restart the writer replays what
/// the store had not yet recorded (each record carries a sequence number, and the store keeps
/// the last one applied per spool in the same transaction as the rows).

#include "events/spool/spool.hpp"
#include "store/store.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace llmgw::events {

class UsageSpool {
 public:
  /// Opens or creates `path` with `capacity` bytes of ring. Throws std::runtime_error.
  /// `name_prefix` makes the spool's name (its mark in the store) unique among processes
  /// sharing one database: every replica has a `usage-0.spool`.
  static std::unique_ptr<UsageSpool> open(const std::string& path, std::size_t capacity,
                                          const std::string& name_prefix = {});

  /// Producer side (one thread): false when the ring is full (the caller keeps the record).
  bool append(const store::UsageRecord& r);

  /// Consumer side: decodes up to `max` records after the consumed position. `seqs` gets
  /// each record's sequence number; `next_tail` the position after the last one read.
  /// `*damaged` (if given) is set when bytes that cannot be a record were skipped.
  void read(std::size_t max, std::vector<store::UsageRecord>& out, std::vector<std::uint64_t>& seqs,
            std::uint64_t& next_tail, bool* damaged = nullptr) const;
  /// Marks everything before `next_tail` as recorded by the store (and flushes the mapping).
  void consume(std::uint64_t next_tail) { spool_->consume(next_tail); }

  /// A spool created anew (or moved aside) starts numbering after what the store already
  /// has for its name, so replay never mistakes new records for applied ones.
  void start_sequence_after(std::uint64_t seq) { spool_->start_sequence_after(seq); }
  [[nodiscard]] std::uint64_t next_sequence() const noexcept { return spool_->next_sequence(); }
  [[nodiscard]] const std::string& name() const noexcept { return spool_->name(); }
  [[nodiscard]] std::uint64_t pending_bytes() const noexcept { return spool_->pending_bytes(); }

 private:
  explicit UsageSpool(std::unique_ptr<Spool> s) : spool_(std::move(s)) {}
  std::unique_ptr<Spool> spool_;
  std::string scratch_;  ///< producer's encoding buffer
};

}  // namespace llmgw::events

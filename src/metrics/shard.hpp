#pragma once
/// Per-I/O-thread metric storage. Each I/O thread owns one Shard and is its only writer: an
/// increment is a relaxed load and a relaxed store of a value no other thread writes (no lock,
/// no read-modify-write shared between threads). The scrape reads every shard with relaxed
/// loads and sums; the 128-bit cost sums are read under a per-cell sequence lock.

#include "core/money.hpp"
#include "metrics/labels.hpp"

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>

namespace llmgw::metrics {

/// Index of a (model, provider) pair, assigned by Registry::target at snapshot build time and
/// stable for the life of the process. 0 means "not resolved" (the request was answered before
/// a model was found: bad key, unknown model, malformed body…).
using TargetId = std::uint32_t;
inline constexpr TargetId kNoTarget = 0;
/// Upper bound on distinct (model, provider) pairs; past it Registry::target answers kNoTarget.
inline constexpr std::size_t kMaxTargets = 16384;

/// A counter cell with one writer.
class Cell {
 public:
  void add(std::uint64_t n) noexcept {
    v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  [[nodiscard]] std::uint64_t load() const noexcept { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> v_{0};
};

/// An up-down gauge cell with one writer (the shard's sums may go below zero one by one; the
/// total across shards does not).
class GaugeCell {
 public:
  void add(std::int64_t n) noexcept {
    v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  [[nodiscard]] std::int64_t load() const noexcept { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::int64_t> v_{0};
};

/// An exact money sum (core::Money units, 128 bits) with one writer. The two halves are
/// published under a sequence lock so that a scrape never sees a torn value.
class MoneyCell {
 public:
  void add(core::Money m) noexcept;
  [[nodiscard]] core::Money load() const noexcept;

 private:
  std::atomic<std::uint64_t> seq_{0};
  std::atomic<std::uint64_t> lo_{0};
  std::atomic<std::uint64_t> hi_{0};
};

/// Fixed latency buckets, upper bounds in nanoseconds (Prometheus `le`, inclusive).
struct Buckets {
  static constexpr std::size_t kMax = 20;
  std::array<std::uint64_t, kMax> le_ns{};
  std::size_t size = 0;
};
/// 100 µs … 60 s: total, upstream and time to first token.
extern const Buckets kRequestBuckets;
/// 5 µs … 1 s: the gateway's own overhead, which is microseconds when all is well.
extern const Buckets kOverheadBuckets;
/// The bucket set of each Latency.
const Buckets& buckets_of(Latency l) noexcept;

/// A histogram with one writer: per-bucket (not cumulative) counts, the last one +Inf, and
/// the sum in nanoseconds (exact; rendered as seconds at scrape).
struct Histogram {
  std::array<Cell, Buckets::kMax + 1> counts;
  Cell sum_ns;
  void observe(const Buckets& b, std::uint64_t ns) noexcept;
};

/// Everything counted per (model, provider) pair.
struct TargetStats {
  std::array<std::array<Cell, kStatusClasses>, kRoutes> requests;
  std::array<Histogram, kLatencies> latency;
  std::array<Cell, kTokenKinds> tokens;
  std::array<Cell, kUpstreamErrors> upstream_errors;
  MoneyCell cost;
};

/// Token counts of one request, indexed by TokenKind (negative values are ignored).
using TokenCounts = std::array<std::int64_t, kTokenKinds>;

/// "Not measured" for a latency of RequestRecord.
inline constexpr std::chrono::nanoseconds kNotMeasured{-1};

/// The facts of one finished request that the metrics keep. Built once at the end of every
/// request, on every exit path.
struct RequestRecord {
  Route route = Route::Other;
  TargetId target = kNoTarget;
  unsigned status = 0;  ///< as answered to the client (0: nothing was sent)
  std::chrono::nanoseconds total = kNotMeasured;
  std::chrono::nanoseconds upstream = kNotMeasured;
  std::chrono::nanoseconds overhead = kNotMeasured;
  std::chrono::nanoseconds first_token = kNotMeasured;
  TokenCounts tokens{};
  core::Money cost;
};

/// One I/O thread's metrics. Obtain with Registry::add_shard; every method below is called only
/// from the owning thread. Never throws except std::bad_alloc when a block of 64 targets is
/// first touched (call prepare() at snapshot time to keep that off the request path).
class alignas(64) Shard {
 public:
  static constexpr std::size_t kBlock = 64;  ///< targets per lazily allocated block
  static constexpr std::size_t kBlocks = kMaxTargets / kBlock;

  Shard() = default;
  ~Shard();
  Shard(const Shard&) = delete;
  Shard& operator=(const Shard&) = delete;

  /// Counts a finished request: requests, the latencies measured, tokens and cost.
  void observe(const RequestRecord& r);

  void request_started() noexcept { in_flight_.add(1); }
  void request_finished() noexcept { in_flight_.add(-1); }
  void stream_opened() noexcept { open_streams_.add(1); }
  void stream_closed() noexcept { open_streams_.add(-1); }
  void key_cache(bool hit) noexcept { key_cache_[hit ? 0 : 1].add(1); }
  void refused(Refusal why) noexcept { refusals_[static_cast<std::size_t>(why)].add(1); }
  void upstream_error(TargetId t, UpstreamError e) {
    stats(t).upstream_errors[static_cast<std::size_t>(e)].add(1);
  }

  /// Allocates the storage of `t` now (off the request path). Owning thread only.
  void prepare(TargetId t) { (void)stats(t); }

  // Scrape side (any thread): relaxed reads.
  /// The stats of `t`, or null when this shard never counted it.
  [[nodiscard]] const TargetStats* find(TargetId t) const noexcept;
  [[nodiscard]] std::int64_t in_flight() const noexcept { return in_flight_.load(); }
  [[nodiscard]] std::int64_t open_streams() const noexcept { return open_streams_.load(); }
  [[nodiscard]] std::uint64_t key_cache_hits() const noexcept { return key_cache_[0].load(); }
  [[nodiscard]] std::uint64_t key_cache_misses() const noexcept { return key_cache_[1].load(); }
  [[nodiscard]] std::uint64_t refusals(Refusal why) const noexcept {
    return refusals_[static_cast<std::size_t>(why)].load();
  }

 private:
  struct alignas(64) Block {
    std::array<TargetStats, kBlock> targets;
  };
  TargetStats& stats(TargetId t);

  GaugeCell in_flight_;
  GaugeCell open_streams_;
  std::array<Cell, 2> key_cache_;
  std::array<Cell, kRefusals> refusals_;
  std::array<std::atomic<Block*>, kBlocks> blocks_{};
};

}  // namespace llmgw::metrics

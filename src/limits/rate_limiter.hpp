#pragma once
/// Requests and tokens per minute, and requests in flight, per key: a sliding-window log, so
/// no 60-second window ever holds more than the limit (no 2x burst at a window edge, unlike
/// fixed windows; exact, unlike refill buckets, which let `limit + refill` through while a
/// burst lasts). Tokens are reserved from an estimate before the call and the entry is
/// corrected to the actual count after it.
///
/// `RateLimiter` is the interface; `LocalRateLimiter` (embedded default) keeps the windows in
/// process, sharded by key. Time is passed in (milliseconds on any monotonic scale), so tests
/// drive the clock; a clock that steps back is held at the latest time seen.

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace llmgw::limits {

struct RateLimits {
  std::optional<std::int64_t> rpm{};
  std::optional<std::int64_t> tpm{};
  std::optional<std::int64_t> max_concurrent{};
  [[nodiscard]] bool any() const noexcept { return rpm || tpm || max_concurrent; }
};

/// One limit's state after a decision, for the x-ratelimit-* headers.
struct WindowState {
  std::int64_t limit = 0;
  std::int64_t remaining = 0;
  std::int64_t reset_ms = 0;  ///< until the window is empty again
};

/// What a call holds from acquire() until release(): its log entries and its concurrency slot.
struct RateTicket {
  std::string key_id;
  std::string call_id;         ///< the shared limiter's id of its entries (unique across replicas)
  std::uint64_t entry = 0;     ///< id of its log entries (0: none)
  std::int64_t tokens = 0;     ///< tokens currently counted for it
  bool slot = false;           ///< holds a concurrency slot
  bool active = false;
};

enum class RateVerdict : std::uint8_t { Ok, Requests, Tokens, Concurrency, TooLarge };

struct RateDecision {
  RateVerdict verdict = RateVerdict::Ok;
  std::int64_t retry_after_ms = 0;  ///< when refused: until the call could pass
  std::optional<WindowState> requests;
  std::optional<WindowState> tokens;
};

class RateLimiter {
 public:
  virtual ~RateLimiter() = default;
  /// Checks every limit of `limits` and, only if all pass, counts the request and
  /// `est_tokens` (all or nothing). A refused call takes nothing.
  virtual RateDecision acquire(std::string_view key_id, const RateLimits& limits,
                               std::int64_t est_tokens, std::int64_t now_ms,
                               RateTicket& out) = 0;
  /// Replaces the call's token estimate by the actual count (its time stays the call's start).
  virtual void reconcile(RateTicket& t, std::int64_t actual_tokens, std::int64_t now_ms) = 0;
  /// Frees the concurrency slot; the window entries stay until they age out.
  virtual void release(RateTicket& t) = 0;
  /// Takes back everything `acquire` counted (another limit of the same call refused it).
  virtual void cancel(RateTicket& t) = 0;
};

class LocalRateLimiter final : public RateLimiter {
 public:
  static constexpr std::int64_t kWindowMs = 60'000;

  RateDecision acquire(std::string_view key_id, const RateLimits& limits, std::int64_t est_tokens,
                       std::int64_t now_ms, RateTicket& out) override;
  void reconcile(RateTicket& t, std::int64_t actual_tokens, std::int64_t now_ms) override;
  void release(RateTicket& t) override;
  void cancel(RateTicket& t) override;

 private:
  struct Entry {
    std::int64_t at_ms;
    std::uint64_t id;
    std::int64_t tokens;
  };
  struct KeyState {
    std::deque<Entry> log;     ///< oldest first
    std::int64_t tokens = 0;   ///< sum of log[].tokens
    std::int64_t in_flight = 0;
    std::int64_t latest_ms = 0;
  };
  struct Shard {
    std::mutex mutex;
    std::unordered_map<std::string, KeyState> keys;
  };
  static constexpr std::size_t kShards = 16;
  Shard& shard(std::string_view key);
  static void expire(KeyState& s, std::int64_t now_ms);

  std::array<Shard, kShards> shards_;
  std::atomic<std::uint64_t> next_id_{1};  ///< entry ids, increasing with time per key
};

/// "250ms", "1.5s", "6m0s" (the shape of OpenAI's x-ratelimit-reset-* values).
std::string format_reset(std::int64_t ms);

}  // namespace llmgw::limits

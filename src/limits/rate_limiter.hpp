#pragma once
/// Requests and tokens per minute, and requests in flight, per key: a sliding-window log, so
/// no 60-second window ever holds more than the limit (no 2x burst at a window edge, unlike
/// fixed windows; exact, unlike refill buckets, which let `limit + refill` through while a
/// burst lasts). Tokens are reserved from an estimate before the call and the entry is
/// corrected to the actual count after it.
///
/// `RateLimiter` is the request path's interface, whichever shape runs: it admits a call
/// against every set of limits that applies and, in the same step, holds the call's budget
/// (all or nothing), then finishes or cancels what the call holds. Its calls may wait (the
/// shared state is in Redis: redis/rate_limits.hpp); the in-process implementation,
/// `LocalRateLimiter`, completes them at once. `LocalRateLimiter` keeps the windows in
/// process, sharded by key, and its budget holds in a LocalSpendLedger. Time is passed in to
/// its window operations (milliseconds on any monotonic scale), so tests drive the clock; a
/// clock that steps back is held at the latest time seen.

#include "core/money.hpp"
#include "limits/spend_ledger.hpp"

#include <boost/asio/awaitable.hpp>

#include <array>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <span>
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
  std::uint64_t entry = 0;     ///< 1: counted in a window (0: not)
  std::int64_t entry_ms = 0;   ///< the in-process limiter's window slot it counts in
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

/// What an outage of the shared state (Redis) does to the calls it should check: served
/// unchecked (counted and logged by the caller) or refused with 503.
enum class FailurePolicy : std::uint8_t { FailOpen, FailClosed };

/// One set of limits a call is checked against: a gateway key ("key_…") or a model
/// ("model:…", shared by every key).
struct RateSubject {
  std::string_view id{};
  RateLimits limits{};
};

/// The budget hold asked for with a call's rate limits: its worst case against the key's
/// budget for the period.
struct BudgetRequest {
  std::string_view key_id{};
  std::string_view period_id{};
  std::int64_t period_end_unix = 0;  ///< a shared ledger keeps the period a day past it
  core::Money budget{};
  core::Money amount{};
  /// The store's spend of the period, when the ledger answered NotLoaded (it seeds the
  /// period unless the ledger meanwhile knows more).
  std::optional<core::Money> seed{};
};

enum class BudgetStatus : std::uint8_t {
  NotAsked,    ///< no budget request, or a rate limit refused first
  Held,        ///< the hold is in the Reservation (none for a zero amount in a shared ledger)
  OverBudget,  ///< spent + held + this would pass the budget
  NotLoaded,   ///< the period's spend is not known: load it from the store, admit again
};

struct AdmitRequest {
  std::span<const RateSubject> subjects{};
  std::int64_t est_tokens = 0;
  std::string_view call_id{};  ///< unique across replicas (the gateway request id)
  const BudgetRequest* budget = nullptr;
};

/// How an admission went. Unless it was admitted, the call holds nothing.
struct Admission {
  static constexpr std::size_t kNone = static_cast<std::size_t>(-1);
  std::size_t refused = kNone;  ///< the first subject whose limits refused the call
  BudgetStatus budget = BudgetStatus::NotAsked;
  core::Money spent{};          ///< OverBudget: the period's settled spend
  bool unavailable = false;     ///< the shared state did not answer: nothing was decided
  [[nodiscard]] bool admitted() const noexcept {
    return !unavailable && refused == kNone &&
           (budget == BudgetStatus::NotAsked || budget == BudgetStatus::Held);
  }
};

/// The request path's rate limiter. One object serves one I/O thread (a shared one may
/// serve all); its calls are made on that thread.
class RateLimiter {
 public:
  virtual ~RateLimiter() = default;
  /// Checks every subject's limits and then, if `rq.budget` asks, the budget hold; only if
  /// all pass is the call counted (with `est_tokens`) and the hold taken into `hold`.
  /// `decisions` and `tickets` have one element per subject (the x-ratelimit-* windows, and
  /// what the call holds until finish() or cancel()).
  virtual boost::asio::awaitable<Admission> admit(const AdmitRequest& rq,
                                                  std::span<RateDecision> decisions,
                                                  std::span<RateTicket> tickets,
                                                  Reservation& hold) = 0;
  /// After the call: the actual tokens replace the estimate and the concurrency slots are
  /// freed. Does not wait (a shared limiter updates in the background, best effort: if that
  /// fails the estimate ages out and the slot lapses).
  virtual void finish(std::span<RateTicket> tickets, std::int64_t actual_tokens) = 0;
  /// Takes back everything admit() counted (the call ended before the provider was called),
  /// before the caller answers: the client's retry must not find it still counted.
  virtual boost::asio::awaitable<void> cancel(std::span<RateTicket> tickets) = 0;
  /// The call is gone without finishing (its coroutine was destroyed): frees what needs no
  /// I/O. A shared limiter's slots lapse on their own.
  virtual void abandon(std::span<RateTicket> tickets) noexcept = 0;
};

class LocalRateLimiter final : public RateLimiter {
 public:
  static constexpr std::int64_t kWindowMs = 60'000;

  /// `ledger`: where admit() holds budgets (none: a budget request is not checked).
  explicit LocalRateLimiter(LocalSpendLedger* ledger = nullptr) : ledger_(ledger) {}

  boost::asio::awaitable<Admission> admit(const AdmitRequest& rq,
                                          std::span<RateDecision> decisions,
                                          std::span<RateTicket> tickets,
                                          Reservation& hold) override;
  void finish(std::span<RateTicket> tickets, std::int64_t actual_tokens) override;
  boost::asio::awaitable<void> cancel(std::span<RateTicket> tickets) override;
  void abandon(std::span<RateTicket> tickets) noexcept override;

  /// admit() at `now_ms`, without a coroutine.
  Admission admit_now(const AdmitRequest& rq, std::span<RateDecision> decisions,
                      std::span<RateTicket> tickets, Reservation& hold, std::int64_t now_ms);

  /// Checks every limit of `limits` and, only if all pass, counts the request and
  /// `est_tokens` (all or nothing). A refused call takes nothing.
  RateDecision acquire(std::string_view key_id, const RateLimits& limits,
                       std::int64_t est_tokens, std::int64_t now_ms, RateTicket& out);
  /// Replaces the call's token estimate by the actual count (its time stays the call's start).
  void reconcile(RateTicket& t, std::int64_t actual_tokens, std::int64_t now_ms);
  /// Frees the concurrency slot; the window entries stay until they age out.
  void release(RateTicket& t);
  /// Takes back everything `acquire` counted (another limit of the same call refused it).
  void cancel(RateTicket& t);

 private:
  /// The calls admitted in one millisecond. One entry per call made the window a log as long
  /// as the calls of a minute (1.2 million entries, 29 MB, at 20,000 calls a second), searched
  /// on every call's end; per millisecond it holds at most 60,000 entries whatever the limit,
  /// and is as exact: the window's edges are whole milliseconds anyway.
  struct Entry {
    std::int64_t at_ms;
    std::int64_t calls;
    std::int64_t tokens;
  };
  struct KeyState {
    std::deque<Entry> log;     ///< oldest first, one per millisecond with calls
    std::int64_t calls = 0;    ///< sum of log[].calls
    std::int64_t tokens = 0;   ///< sum of log[].tokens
    std::int64_t in_flight = 0;
    std::int64_t latest_ms = 0;
  };
  struct Hash {  // finds by string_view: no key copied per call
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };
  struct Shard {
    std::mutex mutex;
    std::unordered_map<std::string, KeyState, Hash, std::equal_to<>> keys;
  };
  static constexpr std::size_t kShards = 16;
  Shard& shard(std::string_view key);
  static void expire(KeyState& s, std::int64_t now_ms);
  /// The entry of `at_ms`, or log.end().
  static std::deque<Entry>::iterator find(KeyState& s, std::int64_t at_ms);

  LocalSpendLedger* ledger_;
  std::array<Shard, kShards> shards_;
};

/// "250ms", "1.5s", "6m0s" (the shape of OpenAI's x-ratelimit-reset-* values).
std::string format_reset(std::int64_t ms);
/// format_reset(ms) appended to `out` (no allocation when `out` has room).
void append_reset(std::string& out, std::int64_t ms);

}  // namespace llmgw::limits

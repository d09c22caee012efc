#pragma once
/// API key lookups without a database call on an I/O thread: each worker keeps an LRU cache
/// (positive and negative entries) in front of the store; misses are answered on the blocking
/// pool. `KeyInvalidations` carries, from the config reloader to every worker, the digests of
/// keys that changed (created, disabled, edited) so that a change is seen within one reload
/// interval, by this process or another one sharing the database.

#include "auth/api_key.hpp"
#include "core/config.hpp"
#include "core/money.hpp"
#include "store/store.hpp"

#include <atomic>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace llmgw::auth {

/// What a request needs to know about its key; immutable once built.
struct KeyInfo {
  std::string id;
  std::string name;
  bool enabled = true;
  std::optional<std::int64_t> expires_at;  ///< unix seconds
  std::optional<std::int64_t> rpm_limit;
  std::optional<std::int64_t> tpm_limit;
  std::optional<std::int64_t> max_concurrent;
  std::optional<core::Money> budget;      ///< none: no budget
  std::string budget_period = "monthly";
  std::unordered_set<std::string> allowed_models;  ///< empty: every model
  std::optional<core::AuditBodies> audit_bodies;   ///< none: the gateway's LOGGING_BODIES

  static std::shared_ptr<const KeyInfo> from_record(const store::ApiKeyRecord& r);
  [[nodiscard]] bool allows(std::string_view model) const;
  [[nodiscard]] bool expired(std::int64_t now_unix) const noexcept {
    return expires_at && now_unix >= *expires_at;
  }
};

/// Shared between the reloader thread (writer) and the workers (readers).
class KeyInvalidations {
 public:
  static constexpr std::size_t kMaxLog = 4096;

  /// The generation workers compare against; one acquire load per request.
  [[nodiscard]] std::uint64_t generation() const noexcept {
    return generation_.load(std::memory_order_acquire);
  }
  /// Records changed keys and bumps the generation.
  void publish(const std::vector<KeyDigest>& changed);
  /// Digests changed after `since`; false if the log no longer reaches back that far (the
  /// caller then drops its whole cache).
  bool changes_since(std::uint64_t since, std::vector<KeyDigest>& out) const;

 private:
  std::atomic<std::uint64_t> generation_{0};
  mutable std::mutex mutex_;
  std::uint64_t oldest_ = 0;  ///< generation before the first entry still in the log
  std::vector<std::pair<std::uint64_t, KeyDigest>> log_;
};

/// Per-worker LRU; not thread-safe (one per I/O thread).
class KeyCache {
 public:
  KeyCache(std::size_t capacity, const KeyInvalidations& inv);

  /// Applies pending invalidations; call once per request before `find`.
  void sync();
  /// Hit: the entry (nullptr inside = known unknown key). Miss: nullopt.
  std::optional<std::shared_ptr<const KeyInfo>> find(const KeyDigest& d);
  /// Caches a lookup answered by the store, unless invalidations arrived since the lookup
  /// started (`generation_at_lookup`): then the answer may predate a change.
  void insert(const KeyDigest& d, std::shared_ptr<const KeyInfo> info,
              std::uint64_t generation_at_lookup);
  [[nodiscard]] std::uint64_t generation() const noexcept { return inv_.generation(); }
  [[nodiscard]] std::size_t size() const noexcept { return map_.size(); }

 private:
  using Lru = std::list<KeyDigest>;
  struct Entry {
    std::shared_ptr<const KeyInfo> info;
    Lru::iterator pos;
  };
  std::size_t capacity_;
  const KeyInvalidations& inv_;
  std::uint64_t seen_generation_;
  Lru lru_;
  std::unordered_map<KeyDigest, Entry, KeyDigestHash> map_;
  std::vector<KeyDigest> scratch_;
};

}  // namespace llmgw::auth

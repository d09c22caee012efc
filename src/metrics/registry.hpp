#pragma once
/// The gateway's Prometheus registry: the per-thread shards, the (model, provider) pairs their
/// series are indexed by, the gauges read at scrape time, and the text exposition of it all.
///
/// Start-up: construct one Registry, give each I/O thread a shard (add_shard), set the probes.
/// Snapshot build: Registry::target(model, provider) for every route, stored beside the route.
/// Request path: the thread's Shard only (shard.hpp). Scrape: render().

#include "metrics/shard.hpp"

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace llmgw::metrics {

/// The media type of render()'s output.
inline constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

/// What `llmgw_build_info` reports.
struct BuildInfo {
  std::string version;
  std::string commit;  ///< empty: the build does not know it (the label is left out)
};
/// This build's: the project version, and the commit when the build was configured with
/// -DLLMGW_GIT_COMMIT=….
BuildInfo this_build();

/// Gauges (and two counters) whose value lives elsewhere and is read at scrape time.
enum class Probe : std::uint8_t {
  UsageBufferBytes,    ///< llmgw_usage_buffer_bytes: spooled usage records not yet written
  AuditBufferBytes,    ///< llmgw_audit_buffer_bytes: spooled audit records not yet archived
  AuditArchiveLag,     ///< llmgw_audit_archive_lag_seconds: age of the oldest unarchived record
  RedisUp,             ///< llmgw_redis_up: 1 reachable, 0 not
  DatabaseUp,          ///< llmgw_database_up: 1 reachable, 0 not
  UsageDropped,        ///< llmgw_usage_records_dropped_total (counter): records not kept
  AuditDropped,        ///< llmgw_audit_records_dropped_total (counter): records not kept
};
inline constexpr std::size_t kProbes = 7;

/// Reads a probe's value; nullopt leaves the gauge out of this scrape (e.g. no Redis in the
/// embedded shape). Runs on the scraping thread under the registry's lock: it must not block
/// (read an atomic) and must not call into the Registry.
using ProbeFn = std::function<std::optional<double>()>;

class Registry {
 public:
  explicit Registry(BuildInfo build = this_build(), std::chrono::system_clock::time_point started =
                                                        std::chrono::system_clock::now());
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  /// A new shard for one I/O thread; it lives as long as the registry (its counts stay in the
  /// sums after its thread ends).
  Shard& add_shard();

  /// The id of a (model, provider) pair: the same pair always gets the same id, so a new
  /// catalog snapshot keeps its series. Takes a lock: call it when building a snapshot, never
  /// per request. Only names from the catalog belong here — never a name a client sent that
  /// did not resolve (unbounded label values) and never a secret. Past kMaxTargets pairs
  /// answers kNoTarget (and counts the pair in llmgw_metrics_targets_dropped_total).
  TargetId target(std::string_view model, std::string_view provider);

  /// Sets (or, with an empty function, clears) a probe.
  void set_probe(Probe p, ProbeFn fn);

  /// The text exposition (format 0.0.4) of every metric, summed over the shards.
  [[nodiscard]] std::string render() const;
  void render(std::string& out) const;

 private:
  mutable std::mutex mu_;  ///< guards the vectors and map below; never taken by a shard
  std::vector<std::unique_ptr<Shard>> shards_;
  /// Per target: `model="…",provider="…"`, escaped once when the pair is first seen.
  std::vector<std::string> target_labels_;
  std::unordered_map<std::string, TargetId> target_ids_;
  std::uint64_t targets_dropped_ = 0;
  std::array<ProbeFn, kProbes> probes_;
  std::string build_labels_;
  std::chrono::system_clock::time_point started_;
};

}  // namespace llmgw::metrics

#pragma once
/// The `Store` interface: everything the gateway keeps in its database. Two implementations:
/// `SqliteStore` (embedded default) and, in the distributed shape, PostgreSQL. Calls block:
/// they run on the blocking pool or background workers, never on an I/O thread.
/// Implementations are safe to call from several threads at once.

#include "core/config.hpp"

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace llmgw::store {

/// An API key row. The plaintext key is never stored: `key_hash` is hex SHA-256 of it.
struct ApiKeyRecord {
  std::string id;              ///< "key_" + 16 hex digits
  std::string key_hash;        ///< lowercase hex SHA-256 of the plaintext key
  std::string prefix;          ///< display prefix, e.g. "sk-llmgw-Ab12"
  std::string name;
  bool enabled = true;
  std::optional<std::int64_t> expires_at;   ///< unix seconds; none = never
  std::optional<std::int64_t> rpm_limit;
  std::optional<std::int64_t> tpm_limit;
  std::optional<std::string> budget_usd;    ///< exact decimal string, e.g. "25.00"
  std::string budget_period = "monthly";     ///< daily | weekly | monthly (UTC calendar)
  std::vector<std::string> allowed_models;  ///< model or alias names; empty = all
  std::int64_t created_at = 0;              ///< unix seconds
  std::int64_t updated_at = 0;              ///< unix seconds
  std::int64_t version = 0;                 ///< config version of the last change
  bool operator==(const ApiKeyRecord&) const = default;
};

/// A provider as the gateway uses it (credentials in clear, in memory only).
struct ProviderRecord {
  std::string id;
  core::ProviderConfig config;
  bool enabled = true;
  std::string source;  ///< "config" (from the YAML file) or "admin"
};

struct ModelRecord {
  std::string id;
  core::ModelConfig config;  ///< config.pricing_model: price-list name (empty: upstream model)
  bool enabled = true;
  std::string source;
};

/// A model of the price list, independent of routing (a routed model is priced by the name
/// in its `pricing_model`, else its upstream model name).
struct PriceModelRecord {
  std::string name;
  std::string litellm_provider;
  std::string mode;
  std::optional<std::int64_t> max_input_tokens;
  std::optional<std::int64_t> max_output_tokens;
  bool operator==(const PriceModelRecord&) const = default;
};

/// One price: USD per `unit` as exact decimal text. `source` is "catalog" (imported) or
/// "override" (operator); an override wins over the catalog row with the same
/// (model_name, direction, modality, unit, tier) and survives re-imports.
struct PriceComponentRecord {
  std::string model_name;
  std::string direction;  ///< input, output, cache_read, cache_write_5m, cache_write_1h, reasoning, tool
  std::string modality;   ///< text, image, audio, video
  std::string unit;       ///< token, 1k_tokens, 1m_tokens, character, image, pixel, second, ...
  std::string tier;       ///< default, above_200k, priority, above_272k_priority, ...
  std::string price;      ///< decimal USD, e.g. "0.00000015"
  std::string source;     ///< "catalog" | "override"
  bool operator==(const PriceComponentRecord&) const = default;
};

/// What an import changed, per priced model.
struct ImportResult {
  std::vector<std::string> added;
  std::vector<std::string> changed;
  std::size_t unchanged = 0;
};

struct AliasRecord {
  core::AliasConfig config;
  std::string source;
};

/// Everything the catalog snapshot is built from, read in one transaction.
struct CatalogData {
  std::int64_t version = 0;
  std::vector<ProviderRecord> providers;
  std::vector<ModelRecord> models;
  std::vector<AliasRecord> aliases;
  std::vector<PriceModelRecord> price_models;
  std::vector<PriceComponentRecord> prices;  ///< catalog and override rows
};

/// Settled spend of one key, one UTC day and one model (as the client named it).
struct SpendRow {
  std::string key_id;
  std::string day;    ///< "YYYY-MM-DD" (UTC)
  std::string model;
  std::string cost_usd;            ///< exact decimal: the sum of the known costs
  std::int64_t requests = 0;
  std::int64_t unpriced_requests = 0;  ///< requests whose cost is unknown (not in cost_usd)
  std::int64_t prompt_tokens = 0;
  std::int64_t completion_tokens = 0;
  bool operator==(const SpendRow&) const = default;
};

/// How far a usage spool has been applied: its records up to `seq` are in the store.
struct SpoolMark {
  std::string spool;
  std::uint64_t seq = 0;
};

/// A budget event (the soft threshold crossed, once per key and period), for alerting.
struct BudgetEvent {
  std::string key_id;
  std::string period;  ///< e.g. "2026-11" (monthly), "2026-W48" (weekly), "2026-11-27" (daily)
  std::string kind;    ///< "soft_threshold"
  std::string spent_usd;
  std::string budget_usd;
  std::int64_t at_us = 0;
};

/// One row per proxied request.
struct UsageRecord {
  std::string request_id;         ///< the gateway's own id (unique)
  std::string client_request_id;  ///< x-request-id the client sent, or empty
  std::string key_id;
  std::string model;      ///< the name the client asked for (model or alias)
  std::string upstream_model;
  std::string provider;
  std::string endpoint;   ///< "chat.completions" | "embeddings"
  std::string pricing_model;  ///< price-list name used to price it (may be empty)
  std::string service_tier;   ///< "default", "priority", "flex", "batch"
  int status = 0;         ///< HTTP status returned to the client
  std::int64_t prompt_tokens = 0;
  std::int64_t completion_tokens = 0;
  std::int64_t cached_tokens = 0;
  std::int64_t reasoning_tokens = 0;
  std::int64_t cache_write_tokens = 0;
  std::string cost_usd;     ///< exact decimal; empty when the cost is unknown
  std::string cost_status;  ///< exact | estimated | partial | unpriced
  std::string prices_json;  ///< the prices it was billed at (pricing::Cost::lines_json)
  std::int64_t overhead_us = 0;  ///< gateway time: total minus upstream
  std::int64_t upstream_us = 0;
  bool stream = false;
  bool usage_reported = false;   ///< false: the provider sent no usage
  std::int64_t created_at_us = 0;  ///< unix microseconds
  bool operator==(const UsageRecord&) const = default;
};

class Store {
 public:
  virtual ~Store() = default;

  /// Applies every pending migration (idempotent). Returns the schema version reached.
  virtual int migrate() = 0;
  virtual int schema_version() = 0;

  /// Monotonic counter bumped by every configuration change (keys, providers, models,
  /// aliases), by this process or another one sharing the database.
  virtual std::int64_t config_version() = 0;

  // --- API keys
  /// Inserts a key; assigns `version`, `created_at`, `updated_at`. Throws on duplicate id/hash.
  virtual void insert_key(ApiKeyRecord& key) = 0;
  virtual std::vector<ApiKeyRecord> list_keys() = 0;
  virtual std::optional<ApiKeyRecord> find_key_by_id(const std::string& id) = 0;
  virtual std::optional<ApiKeyRecord> find_key_by_hash(const std::string& key_hash) = 0;
  /// Returns false when no key has this id.
  virtual bool set_key_enabled(const std::string& id, bool enabled) = 0;
  /// Hashes of keys created or changed after `version` (to invalidate caches).
  virtual std::vector<std::string> key_hashes_changed_since(std::int64_t version) = 0;

  // --- catalog
  /// Makes the config-sourced providers, models and aliases equal to `cfg` (insert, update,
  /// delete those the file no longer names) in one transaction; bumps the version on change.
  virtual void apply_config(const core::GatewayConfig& cfg) = 0;
  virtual CatalogData load_catalog() = 0;

  // --- prices
  /// Creates or updates price models and their catalog rows from an import, idempotently:
  /// override rows are never touched. Bumps the config version if anything changed.
  virtual ImportResult import_prices(const std::vector<PriceModelRecord>& models,
                                     const std::vector<PriceComponentRecord>& catalog_rows) = 0;
  /// Makes the override rows equal to `rows` for the models they name, and removes override
  /// rows of models `rows` no longer names (config-file overrides are declarative).
  virtual void replace_price_overrides(const std::vector<PriceComponentRecord>& rows) = 0;
  /// Number of price models stored (0: never imported).
  virtual std::int64_t count_price_models() = 0;

  // --- usage and spend
  /// Inserts a batch in one transaction, and in the same transaction adds each record's cost
  /// and tokens to its (key, UTC day, model) spend row, so spend always equals the usage rows.
  virtual void insert_usage(std::span<const UsageRecord> batch) = 0;
  /// Same, and in the same transaction records how far each spool has been applied, so a
  /// replay after a crash skips what is already stored.
  virtual void insert_usage_marked(std::span<const UsageRecord> batch,
                                   std::span<const SpoolMark> marks) = 0;
  /// The last sequence number of `spool` applied (0: none).
  virtual std::uint64_t spool_mark(const std::string& spool) = 0;
  /// Spend rows of a key between two UTC days inclusive ("YYYY-MM-DD"), ordered by day, model.
  virtual std::vector<SpendRow> spend(const std::string& key_id, const std::string& from_day,
                                      const std::string& to_day) = 0;
  /// Recomputes every spend row from the usage records (repair after a manual change).
  virtual void rebuild_spend() = 0;
  virtual void insert_budget_event(const BudgetEvent& e) = 0;
  virtual std::vector<BudgetEvent> budget_events(const std::string& key_id) = 0;
  virtual std::int64_t count_usage() = 0;
  /// Most recent first.
  virtual std::vector<UsageRecord> recent_usage(std::size_t limit) = 0;
};

}  // namespace llmgw::store

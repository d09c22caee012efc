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
  core::ModelConfig config;
  bool enabled = true;
  std::string source;
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
  int status = 0;         ///< HTTP status returned to the client
  std::int64_t prompt_tokens = 0;
  std::int64_t completion_tokens = 0;
  std::int64_t cached_tokens = 0;
  std::int64_t reasoning_tokens = 0;
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

  // --- usage
  /// Inserts a batch in one transaction.
  virtual void insert_usage(std::span<const UsageRecord> batch) = 0;
  virtual std::int64_t count_usage() = 0;
  /// Most recent first.
  virtual std::vector<UsageRecord> recent_usage(std::size_t limit) = 0;
};

}  // namespace llmgw::store

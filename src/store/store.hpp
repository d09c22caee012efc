#pragma once
/// The `Store` interface: everything the gateway keeps in its database. Two implementations:
/// `SqliteStore` (embedded default) and, in the distributed shape, PostgreSQL. Calls block:
/// they run on the blocking pool or background workers, never on an I/O thread.
/// Implementations are safe to call from several threads at once.

#include "core/config.hpp"

#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
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
  std::optional<std::int64_t> max_concurrent;  ///< requests in flight at once; none = no limit
  std::vector<std::string> tags;                ///< free-form labels ("team-a", "prod")
  std::map<std::string, std::string> metadata;  ///< free-form name → value
  /// What the audit log keeps of this key's bodies: full, metadata or redacted; none: the
  /// gateway's LOGGING_BODIES.
  std::optional<std::string> audit_bodies;
  std::int64_t created_at = 0;              ///< unix seconds
  std::int64_t updated_at = 0;              ///< unix seconds
  std::int64_t version = 0;                 ///< config version of the last change
  bool operator==(const ApiKeyRecord&) const = default;
};

/// Thrown by a write that would break a uniqueness or reference rule: a name already used,
/// a row still referenced, a row owned by the configuration file. Nothing was changed.
class ConflictError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Thrown by a write that names a row that does not exist (a model's provider, an alias's
/// model). Nothing was changed.
class ReferenceError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Thrown by a usage insert whose values the database refuses (a constraint of its schema, a
/// malformed or out-of-range value): retrying the same rows cannot succeed, while the store
/// itself is fine. Any other exception from a write may be the store's (unreachable, full,
/// read-only) and worth a retry. Nothing was changed.
class RefusedError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Thrown by a provider write whose settings its type refuses (core::check_provider_settings):
/// `field` names the setting. Nothing was changed.
class InvalidSettingError : public std::invalid_argument {
 public:
  InvalidSettingError(std::string field, const std::string& message)
      : std::invalid_argument(message), field_(std::move(field)) {}
  [[nodiscard]] const std::string& field() const noexcept { return field_; }

 private:
  std::string field_;
};

/// Encrypts secrets at rest (provider credentials). Implemented in auth on AES-256-GCM; the
/// store only calls it, so it holds no key of its own.
class SecretCodec {
 public:
  virtual ~SecretCodec() = default;
  /// `aad` binds the sealed value to its row (the provider id): a value copied to another
  /// row does not open.
  [[nodiscard]] virtual std::string seal(std::string_view plaintext,
                                         std::string_view aad) const = 0;
  /// nullopt when no key of the codec opens it.
  [[nodiscard]] virtual std::optional<std::string> open(std::string_view sealed,
                                                        std::string_view aad) const = 0;
};

/// A provider as the gateway uses it (credentials in clear, in memory only).
struct ProviderRecord {
  std::string id;
  core::ProviderConfig config;
  bool enabled = true;
  std::string source;  ///< "config" (from the YAML file) or "admin"
  std::int64_t created_at = 0;
  std::int64_t updated_at = 0;
  /// Read only: the stored credential is sealed under a key this process does not hold. It
  /// reads as empty, the catalog leaves the provider out, and writing the record back without
  /// a new api_key would lose the credential.
  bool credential_unreadable = false;
};

struct ModelRecord {
  std::string id;
  core::ModelConfig config;  ///< config.pricing_model: price-list name (empty: upstream model)
  bool enabled = true;
  std::string source;
  std::int64_t created_at = 0;
  std::int64_t updated_at = 0;
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

/// One price: USD per `unit` as exact decimal text. `source` is "catalog" (imported),
/// "override" (the configuration file's `prices:`) or "admin" (set through the admin API).
/// For the same (model_name, direction, modality, unit, tier) "admin" wins over "override",
/// which wins over "catalog"; imports never touch "override" or "admin" rows, and applying
/// the configuration file never touches "admin" rows.
struct PriceComponentRecord {
  std::string model_name;
  std::string direction;  ///< input, output, cache_read, cache_write_5m, cache_write_1h, reasoning, tool
  std::string modality;   ///< text, image, audio, video
  std::string unit;       ///< token, 1k_tokens, 1m_tokens, character, image, pixel, second, ...
  std::string tier;       ///< default, above_200k, priority, above_272k_priority, ...
  std::string price;      ///< decimal USD, e.g. "0.00000015"
  std::string source;     ///< "catalog" | "override" | "admin"
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
  std::int64_t created_at = 0;
  std::int64_t updated_at = 0;
};

/// An operator of the admin API. `role` is viewer | editor | admin.
struct AdminUserRecord {
  std::string id;             ///< "usr_" + 16 hex digits
  std::string email;          ///< unique, compared without case
  std::string password_hash;  ///< Argon2id PHC string
  std::string role;
  bool enabled = true;
  std::int64_t created_at = 0;
  std::int64_t updated_at = 0;
  bool operator==(const AdminUserRecord&) const = default;
};

/// A machine identity of the admin API (CI jobs, provisioning scripts).
struct AdminTokenRecord {
  std::string id;            ///< "tok_" + 16 hex digits
  std::string service_name;  ///< unique
  std::string token_hash;    ///< Argon2id PHC string of the secret
  std::string role;
  bool enabled = true;
  std::int64_t created_at = 0;
  std::int64_t updated_at = 0;
  bool operator==(const AdminTokenRecord&) const = default;
};

/// One admin write, stored in the same transaction as the write itself. before/after are
/// JSON objects with secrets already masked ("" = JSON null: nothing before a create,
/// nothing after a delete).
struct AuditRecord {
  std::int64_t id = 0;          ///< assigned by the store, increasing
  std::int64_t at_us = 0;       ///< unix microseconds
  std::string actor_type;       ///< "user" | "token" | "cli" | "system"
  std::string actor_id;         ///< admin user or token id; "" for cli/system
  std::string actor_name;       ///< email, service name, "cli" or "system"
  std::string action;           ///< "create" | "update" | "delete" | "regenerate" | ...
  std::string resource_type;    ///< "key" | "provider" | "model" | "alias" | "prices" | "user" | "token"
  std::string resource_id;
  std::string before_json;
  std::string after_json;
  std::string request_id;
  std::string client_ip;
  bool operator==(const AuditRecord&) const = default;
};

/// A page of a list: rows after `after` (an id, in the list's order), at most `limit`
/// (0 = no limit). Implementations return up to limit + 1 rows so the caller can tell
/// whether there is a next page.
struct PageRequest {
  std::string after;
  std::size_t limit = 0;
};

struct KeyQuery {
  PageRequest page;                 ///< ordered by id
  std::optional<bool> enabled;
  std::string name_contains;        ///< substring, case-sensitive; "" = any
  std::string tag;                  ///< keys carrying this tag; "" = any
};

struct AuditQuery {
  std::optional<std::int64_t> before_id;  ///< newest first: rows with id < before_id
  std::size_t limit = 0;                  ///< 0 = no limit (limit + 1 returned, see PageRequest)
  std::string resource_type;              ///< "" = any
  std::string resource_id;                ///< "" = any
  std::string actor_id;                   ///< "" = any
  std::int64_t from_us = 0;
  std::int64_t to_us = std::numeric_limits<std::int64_t>::max();  ///< exclusive
};

/// Usage totals over the usage records matching every non-empty filter, in
/// [from_us, to_us), grouped by `group_by`: "" (one total row, group ""), "day"
/// ("YYYY-MM-DD", UTC), "model" (as the client named it), "key" (key id) or "provider".
struct UsageQuery {
  std::string key_id;
  std::string model;
  std::string provider;
  std::int64_t from_us = 0;
  std::int64_t to_us = std::numeric_limits<std::int64_t>::max();
  std::string group_by;
};

struct UsageTotals {
  std::string group;
  std::int64_t requests = 0;
  std::int64_t unpriced_requests = 0;  ///< cost unknown: not in cost_usd
  std::int64_t prompt_tokens = 0;
  std::int64_t completion_tokens = 0;
  std::int64_t cached_tokens = 0;
  std::int64_t reasoning_tokens = 0;
  std::string cost_usd = "0";          ///< exact decimal sum (core::Money), never float
  bool operator==(const UsageTotals&) const = default;
};

/// Everything the catalog snapshot is built from, read in one transaction.
struct CatalogData {
  std::int64_t version = 0;
  std::vector<ProviderRecord> providers;
  std::vector<ModelRecord> models;
  std::vector<AliasRecord> aliases;
  std::vector<PriceModelRecord> price_models;
  std::vector<PriceComponentRecord> prices;  ///< every source: catalog, override, admin
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

  /// Provider credentials are sealed with `codec` on every write and opened on every read
  /// from now on (rows written in clear before stay readable). Without a codec they are
  /// stored in clear. Call before serving; not synchronised with concurrent calls.
  virtual void set_secret_codec(std::shared_ptr<const SecretCodec> codec) = 0;
  /// Opens every provider credential with `from` (or reads it in clear) and seals it again
  /// with `to`, in one transaction; returns how many were rewritten. Throws, changing
  /// nothing, if one does not open. Does not bump the config version (nothing visible
  /// changes).
  virtual std::size_t reseal_credentials(const SecretCodec* from, const SecretCodec& to) = 0;

  // --- API keys
  // Every write below bumps the config version, and stores `audit` (when not null) in the
  // same transaction.

  /// Inserts a key; assigns `version`, `created_at`, `updated_at`. Throws on duplicate id/hash.
  virtual void insert_key(ApiKeyRecord& key, const AuditRecord* audit) = 0;
  /// Every key, ordered by id.
  virtual std::vector<ApiKeyRecord> list_keys() = 0;
  virtual std::vector<ApiKeyRecord> list_keys(const KeyQuery& q) = 0;
  virtual std::optional<ApiKeyRecord> find_key_by_id(const std::string& id) = 0;
  virtual std::optional<ApiKeyRecord> find_key_by_hash(const std::string& key_hash) = 0;
  /// Returns false when no key has this id.
  virtual bool set_key_enabled(const std::string& id, bool enabled, const AuditRecord* audit) = 0;
  /// Writes every mutable field of `key` (name, hash and prefix, limits, budget, expiry,
  /// enabled, allowed models, tags, metadata); assigns `updated_at` and `version`. Throws
  /// ConflictError when the row's version is no longer `key.version` (another write came in
  /// between the read and this write; 0 skips the check). When the
  /// hash changes (regenerate) the old hash is reported by key_hashes_changed_since, so
  /// caches drop it. Returns false when no key has this id.
  virtual bool update_key(ApiKeyRecord& key, const AuditRecord* audit) = 0;
  /// Deletes a key (its usage and spend rows stay); its hash is reported by
  /// key_hashes_changed_since. Returns false when no key has this id.
  virtual bool delete_key(const std::string& id, const AuditRecord* audit) = 0;
  /// Hashes of keys created, changed or deleted after `version`, including the old hashes
  /// of regenerated keys (to invalidate caches).
  virtual std::vector<std::string> key_hashes_changed_since(std::int64_t version) = 0;

  // --- admin identities (writes do not bump the config version)
  /// Throws ConflictError when the email (compared without case) is taken.
  virtual void insert_admin_user(AdminUserRecord& user, const AuditRecord* audit) = 0;
  /// Writes email, password_hash, role, enabled. Throws ConflictError on a taken email.
  virtual bool update_admin_user(AdminUserRecord& user, const AuditRecord* audit) = 0;
  virtual bool delete_admin_user(const std::string& id, const AuditRecord* audit) = 0;
  virtual std::optional<AdminUserRecord> find_admin_user(const std::string& id) = 0;
  virtual std::optional<AdminUserRecord> find_admin_user_by_email(const std::string& email) = 0;
  /// Ordered by id.
  virtual std::vector<AdminUserRecord> list_admin_users(const PageRequest& page) = 0;
  /// Enabled users with role "admin".
  virtual std::int64_t count_enabled_admins() = 0;

  /// Throws ConflictError when the service name is taken.
  virtual void insert_admin_token(AdminTokenRecord& token, const AuditRecord* audit) = 0;
  virtual bool update_admin_token(AdminTokenRecord& token, const AuditRecord* audit) = 0;
  virtual bool delete_admin_token(const std::string& id, const AuditRecord* audit) = 0;
  virtual std::optional<AdminTokenRecord> find_admin_token(const std::string& id) = 0;
  virtual std::optional<AdminTokenRecord> find_admin_token_by_service(const std::string& name) = 0;
  virtual std::vector<AdminTokenRecord> list_admin_tokens(const PageRequest& page) = 0;

  // --- audit
  /// Stores an audit record on its own (sign-ins, CLI actions without a row write).
  virtual void insert_audit(AuditRecord& record) = 0;
  /// Newest first.
  virtual std::vector<AuditRecord> list_audit(const AuditQuery& q) = 0;

  // --- catalog
  /// Makes the config-sourced providers, models and aliases equal to `cfg` (insert, update,
  /// delete those the file no longer names) in one transaction; bumps the version on change.
  virtual void apply_config(const core::GatewayConfig& cfg) = 0;
  virtual CatalogData load_catalog() = 0;

  // --- catalog rows written through the admin API (source "admin"). Each write bumps the
  // config version and stores `audit` in the same transaction. Rows whose source is
  // "config" belong to the configuration file: updating or deleting one throws
  // ConflictError.
  /// Assigns id (when empty), source "admin", created_at, updated_at. Throws ConflictError
  /// on a taken name.
  virtual void insert_provider(ProviderRecord& p, const AuditRecord* audit) = 0;
  /// Writes name, type, base_url, api_key, timeouts and enabled. Returns false if unknown.
  virtual bool update_provider(ProviderRecord& p, const AuditRecord* audit) = 0;
  /// Throws ConflictError while a model uses it.
  virtual bool delete_provider(const std::string& id, const AuditRecord* audit) = 0;
  virtual std::optional<ProviderRecord> find_provider(const std::string& id) = 0;
  /// Ordered by name.
  virtual std::vector<ProviderRecord> list_providers() = 0;

  /// config.provider names the provider (by name): ReferenceError if there is none.
  /// Throws ConflictError on a taken name (a model's or an alias's).
  virtual void insert_model(ModelRecord& m, const AuditRecord* audit) = 0;
  virtual bool update_model(ModelRecord& m, const AuditRecord* audit) = 0;
  /// Throws ConflictError while an alias points at it.
  virtual bool delete_model(const std::string& id, const AuditRecord* audit) = 0;
  virtual std::optional<ModelRecord> find_model(const std::string& id) = 0;
  virtual std::vector<ModelRecord> list_models() = 0;

  /// config.model names the model (by name): ReferenceError if there is none. Throws
  /// ConflictError on a taken alias or model name.
  virtual void insert_alias(AliasRecord& a, const AuditRecord* audit) = 0;
  /// Points an existing alias at config.model. Returns false if the alias is unknown.
  virtual bool update_alias(AliasRecord& a, const AuditRecord* audit) = 0;
  virtual bool delete_alias(const std::string& alias, const AuditRecord* audit) = 0;
  virtual std::optional<AliasRecord> find_alias(const std::string& alias) = 0;
  virtual std::vector<AliasRecord> list_aliases() = 0;

  // --- prices
  /// Creates or updates price models and their catalog rows from an import, idempotently:
  /// override and admin rows are never touched. Bumps the config version if anything changed.
  virtual ImportResult import_prices(const std::vector<PriceModelRecord>& models,
                                     const std::vector<PriceComponentRecord>& catalog_rows) = 0;
  /// Makes the override rows equal to `rows` for the models they name, and removes override
  /// rows of models `rows` no longer names (config-file overrides are declarative). Admin
  /// rows are never touched.
  virtual void replace_price_overrides(const std::vector<PriceComponentRecord>& rows) = 0;
  /// Number of price models stored (0: never imported).
  virtual std::int64_t count_price_models() = 0;
  /// Every price row of one price-list model (all sources), ordered by direction, modality,
  /// unit, tier, source.
  virtual std::vector<PriceComponentRecord> prices_of(const std::string& model_name) = 0;
  /// Makes the "admin" rows of `model_name` equal to `rows` (empty: removes them), validated
  /// like import_prices; bumps the config version and stores `audit` in the transaction.
  virtual void set_admin_prices(const std::string& model_name,
                                const std::vector<PriceComponentRecord>& rows,
                                const AuditRecord* audit) = 0;

  // --- usage and spend
  /// Inserts a batch in one transaction, and in the same transaction adds each record's cost
  /// and tokens to its (key, UTC day, model) spend row, so spend always equals the usage rows.
  /// A record whose request id is stored already is skipped (its spend counted once). Throws
  /// RefusedError when the database refuses a record's values.
  virtual void insert_usage(std::span<const UsageRecord> batch) = 0;
  /// Same, and in the same transaction records how far each spool has been applied, so a
  /// replay after a crash skips what is already stored.
  virtual void insert_usage_marked(std::span<const UsageRecord> batch,
                                   std::span<const SpoolMark> marks) = 0;
  /// The last sequence number of `spool` applied (0: none).
  virtual std::uint64_t spool_mark(const std::string& spool) = 0;

  // --- secret checks (see admin/secret_checks.hpp)
  /// The stored check value of secret `name`, if any.
  virtual std::optional<std::string> secret_check(const std::string& name) = 0;
  /// Stores `value` for `name` unless one is stored; returns the value stored after.
  virtual std::string claim_secret_check(const std::string& name, const std::string& value) = 0;
  /// Stores `value` for `name`, replacing any (a rotation).
  virtual void set_secret_check(const std::string& name, const std::string& value) = 0;
  /// Spend rows of a key between two UTC days inclusive ("YYYY-MM-DD"), ordered by day, model.
  virtual std::vector<SpendRow> spend(const std::string& key_id, const std::string& from_day,
                                      const std::string& to_day) = 0;
  /// Recomputes every spend row from the usage records (repair after a manual change).
  virtual void rebuild_spend() = 0;
  virtual void insert_budget_event(const BudgetEvent& e) = 0;
  virtual std::vector<BudgetEvent> budget_events(const std::string& key_id) = 0;
  virtual std::int64_t count_usage() = 0;
  /// Totals per group, ordered by group; groups without rows are absent. With group_by ""
  /// there is always exactly one row (zeros when nothing matches).
  virtual std::vector<UsageTotals> usage_report(const UsageQuery& q) = 0;
  /// Most recent first.
  virtual std::vector<UsageRecord> recent_usage(std::size_t limit) = 0;
};

}  // namespace llmgw::store

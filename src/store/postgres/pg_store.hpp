#pragma once
/// `PgStore`: `Store` on PostgreSQL (libpq), for the distributed shape: several replicas share
/// one database and see each other's committed changes on their next call
/// (`config_version()` reads the row every time).
///
/// Semantics are SqliteStore's (see sqlite_store.hpp for what each write validates and
/// throws); only the error texts of the database differ. Replicas write concurrently:
/// configuration writes serialise on the config_version row, usage writes add to spend rows
/// atomically, and migrations run under an advisory lock.

#include <cstddef>
#include <memory>
#include <string>

#include "store/store.hpp"

namespace llmgw::store {

struct PgStoreOptions {
  /// Connections opened at most (lazily, on demand); a call waits for a free one.
  std::size_t pool_size = 4;
};

class PgStore final : public Store {
 public:
  /// Parses `url` (postgres://user:password@host:port/db?params, or any libpq connection
  /// string) without connecting: connections are opened by the first calls. Throws
  /// std::runtime_error if it does not parse (the message never quotes the password).
  explicit PgStore(const std::string& url, PgStoreOptions options = {});
  ~PgStore() override;

  PgStore(const PgStore&) = delete;
  PgStore& operator=(const PgStore&) = delete;

  /// Throws std::runtime_error when the database was migrated by a newer build.
  int migrate() override;
  int schema_version() override;
  std::int64_t config_version() override;

  void set_secret_codec(std::shared_ptr<const SecretCodec> codec) override;
  std::size_t reseal_credentials(const SecretCodec* from, const SecretCodec& to) override;

  void insert_key(ApiKeyRecord& key, const AuditRecord* audit) override;
  std::vector<ApiKeyRecord> list_keys() override;
  std::vector<ApiKeyRecord> list_keys(const KeyQuery& q) override;
  std::optional<ApiKeyRecord> find_key_by_id(const std::string& id) override;
  std::optional<ApiKeyRecord> find_key_by_hash(const std::string& key_hash) override;
  bool set_key_enabled(const std::string& id, bool enabled, const AuditRecord* audit) override;
  bool update_key(ApiKeyRecord& key, const AuditRecord* audit) override;
  bool delete_key(const std::string& id, const AuditRecord* audit) override;
  std::vector<std::string> key_hashes_changed_since(std::int64_t version) override;

  void insert_admin_user(AdminUserRecord& user, const AuditRecord* audit) override;
  bool update_admin_user(AdminUserRecord& user, const AuditRecord* audit) override;
  bool delete_admin_user(const std::string& id, const AuditRecord* audit) override;
  std::optional<AdminUserRecord> find_admin_user(const std::string& id) override;
  std::optional<AdminUserRecord> find_admin_user_by_email(const std::string& email) override;
  std::vector<AdminUserRecord> list_admin_users(const PageRequest& page) override;
  std::int64_t count_enabled_admins() override;

  void insert_admin_token(AdminTokenRecord& token, const AuditRecord* audit) override;
  bool update_admin_token(AdminTokenRecord& token, const AuditRecord* audit) override;
  bool delete_admin_token(const std::string& id, const AuditRecord* audit) override;
  std::optional<AdminTokenRecord> find_admin_token(const std::string& id) override;
  std::optional<AdminTokenRecord> find_admin_token_by_service(const std::string& name) override;
  std::vector<AdminTokenRecord> list_admin_tokens(const PageRequest& page) override;

  void insert_audit(AuditRecord& record) override;
  std::vector<AuditRecord> list_audit(const AuditQuery& q) override;

  void apply_config(const core::GatewayConfig& cfg) override;
  CatalogData load_catalog() override;

  void insert_provider(ProviderRecord& p, const AuditRecord* audit) override;
  bool update_provider(ProviderRecord& p, const AuditRecord* audit) override;
  bool delete_provider(const std::string& id, const AuditRecord* audit) override;
  std::optional<ProviderRecord> find_provider(const std::string& id) override;
  std::vector<ProviderRecord> list_providers() override;

  void insert_model(ModelRecord& m, const AuditRecord* audit) override;
  bool update_model(ModelRecord& m, const AuditRecord* audit) override;
  bool delete_model(const std::string& id, const AuditRecord* audit) override;
  std::optional<ModelRecord> find_model(const std::string& id) override;
  std::vector<ModelRecord> list_models() override;

  void insert_alias(AliasRecord& a, const AuditRecord* audit) override;
  bool update_alias(AliasRecord& a, const AuditRecord* audit) override;
  bool delete_alias(const std::string& alias, const AuditRecord* audit) override;
  std::optional<AliasRecord> find_alias(const std::string& alias) override;
  std::vector<AliasRecord> list_aliases() override;

  ImportResult import_prices(const std::vector<PriceModelRecord>& models,
                             const std::vector<PriceComponentRecord>& catalog_rows) override;
  void replace_price_overrides(const std::vector<PriceComponentRecord>& rows) override;
  std::int64_t count_price_models() override;
  std::vector<PriceComponentRecord> prices_of(const std::string& model_name) override;
  void set_admin_prices(const std::string& model_name,
                        const std::vector<PriceComponentRecord>& rows,
                        const AuditRecord* audit) override;

  void insert_usage(std::span<const UsageRecord> batch) override;
  void insert_usage_marked(std::span<const UsageRecord> batch,
                           std::span<const SpoolMark> marks) override;
  std::uint64_t spool_mark(const std::string& spool) override;
  std::optional<std::string> secret_check(const std::string& name) override;
  std::string claim_secret_check(const std::string& name, const std::string& value) override;
  void set_secret_check(const std::string& name, const std::string& value) override;
  std::vector<SpendRow> spend(const std::string& key_id, const std::string& from_day,
                              const std::string& to_day) override;
  void rebuild_spend() override;
  void insert_budget_event(const BudgetEvent& e) override;
  std::vector<BudgetEvent> budget_events(const std::string& key_id) override;
  std::int64_t count_usage() override;
  std::vector<UsageTotals> usage_report(const UsageQuery& q) override;
  std::vector<UsageRecord> recent_usage(std::size_t limit) override;

  /// The database as messages name it ("postgresql://db.internal:5432/llmgw"): never the
  /// user, the password or the URL's parameters.
  [[nodiscard]] const std::string& description() const noexcept { return description_; }

 private:
  struct Impl;
  void insert_usage_rows(std::span<const UsageRecord> batch, std::span<const SpoolMark> marks);

  std::string description_;
  std::unique_ptr<Impl> impl_;
};

/// Whether `url` selects PostgreSQL: it starts with postgres:// or postgresql://.
bool is_postgres_url(std::string_view url) noexcept;

}  // namespace llmgw::store

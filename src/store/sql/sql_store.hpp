#pragma once
/// `SqlStore`: every `Store` method, written once over the SQL layer (src/store/sql/sql.hpp).
/// `SqliteStore` and `PgStore` are this class on their driver. Its definitions are split by
/// resource: store.cpp (schema, versions, secrets), keys.cpp, admins.cpp (admin users,
/// service tokens, the audit trail), catalog.cpp (providers, models, aliases, the
/// configuration file), prices.cpp, usage.cpp (usage, spend, reports).

#include <memory>
#include <mutex>
#include <string>

#include "store/sql/sql.hpp"
#include "store/store.hpp"

namespace llmgw::store {

class SqlStore : public Store {
 public:
  ~SqlStore() override;

  SqlStore(const SqlStore&) = delete;
  SqlStore& operator=(const SqlStore&) = delete;

  int migrate() override;
  int schema_version() override;
  std::int64_t config_version() override;

  void set_secret_codec(std::shared_ptr<const SecretCodec> codec) override;
  /// Throws std::runtime_error naming the provider (never the secret) when one does not open.
  std::size_t reseal_credentials(const SecretCodec* from, const SecretCodec& to) override;

  // Every write below throws std::runtime_error, changing nothing (its audit record
  // included), for a value the schema rejects: an unknown budget period or role, a
  // non-positive max_concurrent, an audit record with an unknown actor type or invalid JSON.

  /// Throws ConflictError on a duplicate id or hash.
  void insert_key(ApiKeyRecord& key, const AuditRecord* audit) override;
  std::vector<ApiKeyRecord> list_keys() override;
  std::vector<ApiKeyRecord> list_keys(const KeyQuery& q) override;
  std::optional<ApiKeyRecord> find_key_by_id(const std::string& id) override;
  std::optional<ApiKeyRecord> find_key_by_hash(const std::string& key_hash) override;
  bool set_key_enabled(const std::string& id, bool enabled, const AuditRecord* audit) override;
  /// Also assigns `created_at` from the stored row. Throws ConflictError when another key
  /// has the new hash.
  bool update_key(ApiKeyRecord& key, const AuditRecord* audit) override;
  bool delete_key(const std::string& id, const AuditRecord* audit) override;
  std::vector<std::string> key_hashes_changed_since(std::int64_t version) override;

  /// Assigns `id` ("usr_…") when empty, `created_at` and `updated_at`.
  void insert_admin_user(AdminUserRecord& user, const AuditRecord* audit) override;
  /// Also assigns `created_at` from the stored row.
  bool update_admin_user(AdminUserRecord& user, const AuditRecord* audit) override;
  bool delete_admin_user(const std::string& id, const AuditRecord* audit) override;
  std::optional<AdminUserRecord> find_admin_user(const std::string& id) override;
  std::optional<AdminUserRecord> find_admin_user_by_email(const std::string& email) override;
  std::vector<AdminUserRecord> list_admin_users(const PageRequest& page) override;
  std::int64_t count_enabled_admins() override;

  /// Assigns `id` ("tok_…") when empty, `created_at` and `updated_at`.
  void insert_admin_token(AdminTokenRecord& token, const AuditRecord* audit) override;
  /// Writes service_name, token_hash, role and enabled; also assigns `created_at` from the
  /// stored row. Throws ConflictError on a taken service name.
  bool update_admin_token(AdminTokenRecord& token, const AuditRecord* audit) override;
  bool delete_admin_token(const std::string& id, const AuditRecord* audit) override;
  std::optional<AdminTokenRecord> find_admin_token(const std::string& id) override;
  std::optional<AdminTokenRecord> find_admin_token_by_service(const std::string& name) override;
  std::vector<AdminTokenRecord> list_admin_tokens(const PageRequest& page) override;

  /// Assigns `id`, and `at_us` when 0.
  void insert_audit(AuditRecord& record) override;
  std::vector<AuditRecord> list_audit(const AuditQuery& q) override;

  /// Throws std::runtime_error (rolling everything back) when a name in `cfg` is already
  /// used by an admin-created row (model and alias names count as one namespace), when a
  /// model names an unknown provider or an alias an unknown model, or when a row the file no
  /// longer names is still referenced by an admin-created row. Credentials are compared in
  /// clear, so an unchanged provider is not rewritten although sealing is randomised.
  void apply_config(const core::GatewayConfig& cfg) override;
  CatalogData load_catalog() override;

  // Providers, models and aliases written through the admin API follow the rules
  // apply_config checks the file by. Besides what Store documents, renaming a row that a
  // configuration-file row names (the provider of a config model, the model of a config
  // alias) throws ConflictError: the file would no longer load at the next start.

  void insert_provider(ProviderRecord& p, const AuditRecord* audit) override;
  /// Also assigns source and created_at (from the stored row) and updated_at.
  bool update_provider(ProviderRecord& p, const AuditRecord* audit) override;
  bool delete_provider(const std::string& id, const AuditRecord* audit) override;
  std::optional<ProviderRecord> find_provider(const std::string& id) override;
  std::vector<ProviderRecord> list_providers() override;

  /// An empty config.upstream_model is stored (and returned) as the model's name, as
  /// apply_config does.
  void insert_model(ModelRecord& m, const AuditRecord* audit) override;
  /// Writes name, provider, upstream_model (empty: the name), pricing_model and enabled;
  /// also assigns source and created_at (from the stored row) and updated_at.
  bool update_model(ModelRecord& m, const AuditRecord* audit) override;
  bool delete_model(const std::string& id, const AuditRecord* audit) override;
  std::optional<ModelRecord> find_model(const std::string& id) override;
  /// Ordered by name.
  std::vector<ModelRecord> list_models() override;

  void insert_alias(AliasRecord& a, const AuditRecord* audit) override;
  /// Also assigns source and created_at (from the stored row) and updated_at.
  bool update_alias(AliasRecord& a, const AuditRecord* audit) override;
  bool delete_alias(const std::string& alias, const AuditRecord* audit) override;
  std::optional<AliasRecord> find_alias(const std::string& alias) override;
  /// Ordered by alias.
  std::vector<AliasRecord> list_aliases() override;

  /// Prices are validated with core::Money::parse and stored in its canonical form
  /// (`to_string()`: "1.5e-07" and "0.000000150" are both stored as "0.00000015"), so a
  /// re-import that only spells a price differently changes nothing. Throws
  /// std::runtime_error, changing nothing, for an invalid price, a model named twice, a row
  /// of a model not in `models`, a component given twice, a row whose source is neither empty
  /// nor "catalog", or a value the schema rejects (an unknown direction, modality or unit).
  ImportResult import_prices(const std::vector<PriceModelRecord>& models,
                             const std::vector<PriceComponentRecord>& catalog_rows) override;
  /// Validates like import_prices (a row's source must be empty or "override").
  void replace_price_overrides(const std::vector<PriceComponentRecord>& rows) override;
  std::int64_t count_price_models() override;
  std::vector<PriceComponentRecord> prices_of(const std::string& model_name) override;
  /// Validates like replace_price_overrides: a row's source must be empty or "admin", its
  /// model_name empty or `model_name`. Bumps the version and stores `audit` even when the
  /// rows equal the stored ones (an operator's explicit write).
  void set_admin_prices(const std::string& model_name,
                        const std::vector<PriceComponentRecord>& rows,
                        const AuditRecord* audit) override;

  /// A cost that core::Money cannot parse is stored as unknown (NULL, counted in
  /// `unpriced_requests`) rather than failing the whole batch; one in exponent notation is
  /// stored in plain decimal.
  void insert_usage(std::span<const UsageRecord> batch) override;
  void insert_usage_marked(std::span<const UsageRecord> batch,
                           std::span<const SpoolMark> marks) override;
  std::uint64_t spool_mark(const std::string& spool) override;
  std::optional<std::string> secret_check(const std::string& name) override;
  std::string claim_secret_check(const std::string& name, const std::string& value) override;
  void set_secret_check(const std::string& name, const std::string& value) override;
  std::vector<SpendRow> spend(const std::string& key_id, const std::string& from_day,
                              const std::string& to_day) override;
  /// Throws std::runtime_error (changing nothing) if a usage row holds a cost core::Money
  /// cannot parse (only a manual edit can write one).
  void rebuild_spend() override;
  /// Does nothing if an event of the same (key, period, kind) is already recorded.
  void insert_budget_event(const BudgetEvent& e) override;
  std::vector<BudgetEvent> budget_events(const std::string& key_id) override;
  std::int64_t count_usage() override;
  /// Throws std::invalid_argument for an unknown group_by, and std::runtime_error if a usage
  /// row holds a cost core::Money cannot parse (only a manual edit can write one).
  std::vector<UsageTotals> usage_report(const UsageQuery& q) override;
  std::vector<UsageRecord> recent_usage(std::size_t limit) override;

  /// The database file this store was opened on.
 protected:
  explicit SqlStore(std::unique_ptr<sql::Database> database);

  [[nodiscard]] sql::Database& database() const noexcept { return *db_; }

 private:
  /// Runs `fn(sql::Connection&)` on a connection and returns its result.
  template <typename Fn>
  auto call(Fn&& fn) {
    return sql::call(*db_, sql::Use::Default, std::forward<Fn>(fn));
  }
  [[nodiscard]] std::shared_ptr<const SecretCodec> codec() const;
  bool migrate_steps();
  void insert_usage_rows(std::span<const UsageRecord> batch, std::span<const SpoolMark> marks);

  std::unique_ptr<sql::Database> db_;
  mutable std::mutex codec_mutex_;
  std::shared_ptr<const SecretCodec> codec_;  ///< null: credentials are written in clear
};

}  // namespace llmgw::store

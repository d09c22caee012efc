#pragma once
/// `SqliteStore`: the embedded implementation of `Store` on one SQLite file in WAL mode.
/// The server and the CLI may open the same file at once; each sees the other's committed
/// changes on its next call (`config_version()` reads the row every time).

#include <memory>
#include <string>

#include "store/store.hpp"

namespace llmgw::store {

class SqliteStore final : public Store {
 public:
  /// Opens or creates the database file (and its parent directory) and sets the connection
  /// up: WAL journal, synchronous=NORMAL, foreign keys on, 5 s busy timeout. Does not
  /// migrate. Throws std::runtime_error if the file cannot be opened.
  explicit SqliteStore(std::string path);
  ~SqliteStore() override;

  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  /// Throws std::runtime_error when the file was migrated by a newer build.
  int migrate() override;
  int schema_version() override;
  std::int64_t config_version() override;

  void insert_key(ApiKeyRecord& key) override;
  std::vector<ApiKeyRecord> list_keys() override;
  std::optional<ApiKeyRecord> find_key_by_id(const std::string& id) override;
  std::optional<ApiKeyRecord> find_key_by_hash(const std::string& key_hash) override;
  bool set_key_enabled(const std::string& id, bool enabled) override;
  std::vector<std::string> key_hashes_changed_since(std::int64_t version) override;

  /// Throws std::runtime_error (rolling everything back) when a name in `cfg` is already
  /// used by an admin-created row, when a model names an unknown provider or an alias an
  /// unknown model, or when a row the file no longer names is still referenced by an
  /// admin-created row.
  void apply_config(const core::GatewayConfig& cfg) override;
  CatalogData load_catalog() override;

  /// Prices are validated with core::Money::parse and stored in its canonical form
  /// (`to_string()`: "1.5e-07" and "0.000000150" are both stored as "0.00000015"), so a
  /// re-import that only spells a price differently changes nothing. Throws
  /// std::runtime_error, changing nothing, for an invalid price, a model named twice, a row
  /// of a model not in `models`, a component given twice, a row whose source is "override",
  /// or a value the schema rejects (an unknown direction, modality or unit).
  ImportResult import_prices(const std::vector<PriceModelRecord>& models,
                             const std::vector<PriceComponentRecord>& catalog_rows) override;
  /// Validates like import_prices (a row's source must be empty or "override").
  void replace_price_overrides(const std::vector<PriceComponentRecord>& rows) override;
  std::int64_t count_price_models() override;

  /// A cost that core::Money cannot parse is stored as unknown (NULL, counted in
  /// `unpriced_requests`) rather than failing the whole batch; one in exponent notation is
  /// stored in plain decimal.
  void insert_usage(std::span<const UsageRecord> batch) override;
  void insert_usage_marked(std::span<const UsageRecord> batch,
                           std::span<const SpoolMark> marks) override;
  std::uint64_t spool_mark(const std::string& spool) override;
  std::vector<SpendRow> spend(const std::string& key_id, const std::string& from_day,
                              const std::string& to_day) override;
  /// Throws std::runtime_error (changing nothing) if a usage row holds a cost core::Money
  /// cannot parse (only a manual edit can write one).
  void rebuild_spend() override;
  /// Does nothing if an event of the same (key, period, kind) is already recorded.
  void insert_budget_event(const BudgetEvent& e) override;
  std::vector<BudgetEvent> budget_events(const std::string& key_id) override;
  std::int64_t count_usage() override;
  std::vector<UsageRecord> recent_usage(std::size_t limit) override;

  /// The database file this store was opened on.
  [[nodiscard]] const std::string& path() const noexcept { return path_; }

 private:
  struct Impl;

  std::string path_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace llmgw::store

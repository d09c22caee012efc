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

  void insert_usage(std::span<const UsageRecord> batch) override;
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

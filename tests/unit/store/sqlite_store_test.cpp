// What only the SQLite store has: one file (created with its directory) in WAL mode, and
// the schema as SQLite stores it. The Store contract itself is tested on both backends in
// store_test.cpp and admin_store_test.cpp.
#include "store/sqlite/sqlite_store.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "store/sqlite/migrations.hpp"
#include "test_db.hpp"

namespace llmgw::store {
namespace {

using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

using test_db::RawDb;
using test_db::TempDir;

TEST(SqliteStore, CreatesParentDirectoryAndUsesWal) {
  TempDir dir;
  const std::string path = dir.file("a/b/llmgw.db");
  SqliteStore store(path);
  EXPECT_EQ(store.path(), path);
  EXPECT_TRUE(std::filesystem::exists(path));
  RawDb raw(path);
  EXPECT_EQ(raw.value("PRAGMA journal_mode"), "wal");
}

TEST(SqliteStore, MigrationsHaveIncreasingVersionsFromOne) {
  int expected = 1;
  for (const auto& m : sqlite::migrations()) {
    EXPECT_EQ(m.version, expected++);
    EXPECT_FALSE(m.name.empty());
  }
}

TEST(SqliteStore, MigrateCreatesEveryTableOfTheDataModel) {
  TempDir dir;
  const std::string path = dir.file("llmgw.db");
  SqliteStore store(path);
  store.migrate();
  RawDb raw(path);
  EXPECT_THAT(
      raw.column("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"),
      UnorderedElementsAre("admin_audit", "admin_tokens", "admin_users", "api_keys",
                           "budget_events", "config_version", "model_aliases", "models",
                           "price_models", "pricing_components", "providers", "retired_key_hashes",
                           "schema_migrations", "secret_checks", "spend_daily", "spool_marks",
                           "usage_records"));
  EXPECT_EQ(raw.value("PRAGMA foreign_key_check"), "");
  EXPECT_EQ(raw.value("PRAGMA integrity_check"), "ok");
  EXPECT_EQ(store.config_version(), 0);
}

TEST(SqliteStore, AdminApiMigrationRebuildsThePricesTableStrictAndWithoutRowid) {
  TempDir dir;
  const std::string path = dir.file("llmgw.db");
  SqliteStore store(path);
  store.migrate();
  RawDb raw(path);
  EXPECT_EQ(raw.value("SELECT COUNT(*) FROM sqlite_master WHERE name = 'key_metadata'"), "0");
  const std::string prices_table =
      raw.value("SELECT sql FROM sqlite_master WHERE name = 'pricing_components'");
  EXPECT_THAT(prices_table, HasSubstr("STRICT"));
  EXPECT_THAT(prices_table, HasSubstr("WITHOUT ROWID"));
  EXPECT_THAT(prices_table, HasSubstr("PRIMARY KEY (model_name, direction, modality, unit, tier,"
                                      " source)"));
  EXPECT_THAT(raw.column("SELECT name FROM sqlite_master WHERE type = 'index'"
                         " AND tbl_name IN ('admin_audit', 'retired_key_hashes', 'usage_records')"
                         " AND name NOT LIKE 'sqlite_autoindex%'"),
              UnorderedElementsAre("admin_audit_by_resource", "admin_audit_by_time",
                                   "retired_key_hashes_by_version", "usage_records_by_key_time",
                                   "usage_records_by_time", "usage_records_by_request"));
}

}  // namespace
}  // namespace llmgw::store

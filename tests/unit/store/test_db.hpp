#pragma once
/// What the store tests share: a fresh database of either backend, stores opened on it, and
/// a raw connection for looking under the store.
///
/// SQLite: a file in a scratch directory under /tmp. PostgreSQL: a schema of its own (named
/// t_<random>) in the database of LLMGW_TEST_DATABASE_URL, dropped at the end of the test;
/// stores reach it through `options=-csearch_path=...` in their URL. Without
/// LLMGW_TEST_DATABASE_URL a PostgreSQL test fails (scripts/test.sh starts a server and sets
/// it; by hand: eval "$(scripts/pg.sh start)").

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "store/store.hpp"

namespace llmgw::store::test_db {

enum class Kind : std::uint8_t { Sqlite, Postgres };

/// "Sqlite" / "Postgres": the suffix of a parameterised test's name.
std::string kind_name(const ::testing::TestParamInfo<Kind>& info);
/// The same in failure messages (GoogleTest finds it by argument-dependent lookup).
void PrintTo(Kind kind, std::ostream* os);

/// A fresh directory under /tmp, removed with everything in it at the end of the test.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  [[nodiscard]] std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

/// A raw connection for looking under the store (and for writing what the store would
/// refuse to, or what an older schema held). Values read as text; SQL NULL reads "NULL" and
/// a PostgreSQL boolean "1" or "0", as SQLite's integers do.
class RawSql {
 public:
  virtual ~RawSql() = default;
  /// Runs one or more statements; throws std::runtime_error with the database's message.
  virtual void exec(const std::string& sql) = 0;
  /// The first column of every row, as text.
  virtual std::vector<std::string> column(const std::string& sql) = 0;
  std::string value(const std::string& sql) {
    auto rows = column(sql);
    return rows.empty() ? std::string() : rows.front();
  }
};

/// SQLite's RawSql on a file.
class RawDb final : public RawSql {
 public:
  explicit RawDb(const std::string& path);
  ~RawDb() override;
  RawDb(const RawDb&) = delete;
  RawDb& operator=(const RawDb&) = delete;

  void exec(const std::string& sql) override;
  std::vector<std::string> column(const std::string& sql) override;

 private:
  sqlite3* db_ = nullptr;
};

/// One fresh, empty database of either kind for one test.
class Database {
 public:
  virtual ~Database() = default;
  [[nodiscard]] virtual Kind kind() const noexcept = 0;
  /// A new store on this database (not migrated): a second process or replica.
  virtual std::unique_ptr<Store> open() = 0;
  virtual std::unique_ptr<RawSql> raw() = 0;
  /// The highest migration version of this backend's build.
  [[nodiscard]] virtual int latest_migration_version() const = 0;
  /// Applies migrations 1 to `version` only and records them, as a build of that time left
  /// the database.
  virtual void migrate_raw_to_version(int version) = 0;
  void migrate_raw_to_version_one() { migrate_raw_to_version(1); }
  /// What the database says when a CHECK constraint rejects a row.
  [[nodiscard]] virtual std::string_view check_violation() const noexcept = 0;
  /// The SQL function naming a JSON value's type ("array", "object").
  [[nodiscard]] virtual std::string_view json_type_function() const noexcept = 0;
  /// SQL joining `column` of the rows in `column` order, comma-separated.
  [[nodiscard]] virtual std::string ordered_group_concat(const std::string& column) const = 0;

  [[nodiscard]] bool is_sqlite() const noexcept { return kind() == Kind::Sqlite; }
};

/// A fresh database of `kind`. Throws std::runtime_error for PostgreSQL when
/// LLMGW_TEST_DATABASE_URL is unset or its server cannot be reached.
std::unique_ptr<Database> make_database(Kind kind);

/// The SQLite database's file (Kind::Sqlite only).
std::string sqlite_path(const Database& db);
/// The URL a PgStore on this database uses; its connections carry the schema's name as
/// application_name (Kind::Postgres only).
std::string postgres_url(const Database& db);
std::string postgres_schema(const Database& db);
/// A raw connection to LLMGW_TEST_DATABASE_URL itself (no schema of a test).
std::unique_ptr<RawSql> postgres_admin();

/// The two backends, for INSTANTIATE_TEST_SUITE_P.
inline auto all_kinds() {
  return ::testing::Values(Kind::Sqlite, Kind::Postgres);
}

}  // namespace llmgw::store::test_db

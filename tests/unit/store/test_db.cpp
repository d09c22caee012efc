#include "test_db.hpp"

#include <libpq-fe.h>

#include <cstdlib>
#include <filesystem>
#include <random>
#include <span>
#include <stdexcept>
#include <system_error>

#include "store/postgres/migrations.hpp"
#include "store/postgres/pg_store.hpp"
#include "store/sqlite/migrations.hpp"
#include "store/sqlite/sqlite_store.hpp"

namespace llmgw::store::test_db {
namespace {

constexpr Oid kBoolOid = 16;  // pg_type.oid of boolean (fixed by PostgreSQL)

/// PostgreSQL's RawSql on one libpq connection.
class RawPg final : public RawSql {
 public:
  explicit RawPg(const std::string& url) : conn_(PQconnectdb(url.c_str())) {
    if (PQstatus(conn_) != CONNECTION_OK) {
      const std::string message = PQerrorMessage(conn_);
      PQfinish(conn_);
      throw std::runtime_error("cannot connect to the test PostgreSQL server: " + message);
    }
    PQsetNoticeProcessor(
        conn_, [](void*, const char*) {}, nullptr);
  }
  ~RawPg() override { PQfinish(conn_); }
  RawPg(const RawPg&) = delete;
  RawPg& operator=(const RawPg&) = delete;

  void exec(const std::string& sql) override { PQclear(run(sql)); }

  std::vector<std::string> column(const std::string& sql) override {
    PGresult* result = run(sql);
    std::vector<std::string> out;
    const bool boolean = PQnfields(result) > 0 && PQftype(result, 0) == kBoolOid;
    for (int i = 0; i < PQntuples(result); ++i) {
      if (PQgetisnull(result, i, 0) != 0) {
        out.emplace_back("NULL");
      } else if (boolean) {
        out.emplace_back(PQgetvalue(result, i, 0)[0] == 't' ? "1" : "0");
      } else {
        out.emplace_back(PQgetvalue(result, i, 0));
      }
    }
    PQclear(result);
    return out;
  }

 private:
  PGresult* run(const std::string& sql) {
    PGresult* result = PQexec(conn_, sql.c_str());
    const ExecStatusType status = PQresultStatus(result);
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
      const std::string message = PQerrorMessage(conn_);
      PQclear(result);
      throw std::runtime_error(message);
    }
    return result;
  }

  PGconn* conn_;
};

/// Runs `migrations` up to `version` on `db` and records each in schema_migrations.
template <typename Migration>
void apply_migrations(RawSql& db, std::span<const Migration> migrations, int version) {
  for (const auto& m : migrations) {
    if (m.version > version) {
      break;
    }
    db.exec(std::string(m.sql));
    db.exec("INSERT INTO schema_migrations VALUES (" + std::to_string(m.version) + ", '" +
            std::string(m.name) + "', 0)");
  }
}

class SqliteDatabase final : public Database {
 public:
  SqliteDatabase() : path_(dir_.file("data/llmgw.db")) {}

  [[nodiscard]] Kind kind() const noexcept override { return Kind::Sqlite; }
  std::unique_ptr<Store> open() override { return std::make_unique<SqliteStore>(path_); }
  std::unique_ptr<RawSql> raw() override {
    std::filesystem::create_directories(std::filesystem::path(path_).parent_path());
    return std::make_unique<RawDb>(path_);
  }
  [[nodiscard]] int latest_migration_version() const override {
    return sqlite::latest_migration_version();
  }
  void migrate_raw_to_version(int version) override {
    auto db = raw();
    db->exec(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
        " applied_at INTEGER NOT NULL) STRICT");
    apply_migrations(*db, sqlite::migrations(), version);
  }
  [[nodiscard]] std::string_view check_violation() const noexcept override {
    return "CHECK constraint failed";
  }
  [[nodiscard]] std::string_view json_type_function() const noexcept override {
    return "json_type";
  }
  [[nodiscard]] std::string ordered_group_concat(const std::string& column) const override {
    // SQLite 3.40 has no ORDER BY inside an aggregate: rows come in table (insertion) order.
    return "group_concat(" + column + ")";
  }

  [[nodiscard]] const std::string& path() const noexcept { return path_; }

 private:
  TempDir dir_;
  std::string path_;
};

std::string random_suffix() {
  std::random_device device;
  std::mt19937_64 generator((static_cast<std::uint64_t>(device()) << 32) ^ device());
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(generator()));
  return text;
}

std::string test_server_url() {
  const char* url = std::getenv("LLMGW_TEST_DATABASE_URL");
  if (url == nullptr || *url == '\0') {
    throw std::runtime_error(
        "LLMGW_TEST_DATABASE_URL is not set: the PostgreSQL store tests need a server. Run "
        "scripts/test.sh, or start one with eval \"$(scripts/pg.sh start)\"");
  }
  return url;
}

/// `url` with extra URI query parameters (or key=value pairs for a conninfo string).
std::string with_parameters(const std::string& url, const std::string& query) {
  if (!is_postgres_url(url)) {
    std::string out = url;
    std::string pairs = query;
    for (auto& ch : pairs) {
      if (ch == '&') {
        ch = ' ';
      }
    }
    return out + " " + pairs;
  }
  return url + (url.find('?') == std::string::npos ? "?" : "&") + query;
}

class PostgresDatabase final : public Database {
 public:
  PostgresDatabase()
      : server_url_(test_server_url()), schema_("t_" + random_suffix()), admin_(server_url_) {
    admin_.exec("CREATE SCHEMA " + schema_);
    // %3D is '=' inside the options value; the schema name doubles as application_name so
    // that a test can find (and terminate) the store's own connections.
    url_ = with_parameters(server_url_,
                           "options=-csearch_path%3D" + schema_ + "&application_name=" + schema_);
  }
  ~PostgresDatabase() override {
    try {
      admin_.exec("DROP SCHEMA " + schema_ + " CASCADE");
    } catch (const std::exception& e) {
      ADD_FAILURE() << "cannot drop test schema " << schema_ << ": " << e.what();
    }
  }

  [[nodiscard]] Kind kind() const noexcept override { return Kind::Postgres; }
  std::unique_ptr<Store> open() override { return std::make_unique<PgStore>(url_); }
  std::unique_ptr<RawSql> raw() override { return std::make_unique<RawPg>(url_); }
  [[nodiscard]] int latest_migration_version() const override {
    return postgres::latest_migration_version();
  }
  void migrate_raw_to_version(int version) override {
    auto db = raw();
    db->exec(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
        " applied_at BIGINT NOT NULL)");
    apply_migrations(*db, postgres::migrations(), version);
  }
  [[nodiscard]] std::string_view check_violation() const noexcept override {
    return "violates check constraint";
  }
  [[nodiscard]] std::string_view json_type_function() const noexcept override {
    return "jsonb_typeof";
  }
  [[nodiscard]] std::string ordered_group_concat(const std::string& column) const override {
    return "string_agg(" + column + ", ',' ORDER BY " + column + ")";
  }

  [[nodiscard]] const std::string& url() const noexcept { return url_; }
  [[nodiscard]] const std::string& schema() const noexcept { return schema_; }

 private:
  std::string server_url_;
  std::string schema_;
  RawPg admin_;
  std::string url_;
};

}  // namespace

std::string kind_name(const ::testing::TestParamInfo<Kind>& info) {
  return info.param == Kind::Sqlite ? "Sqlite" : "Postgres";
}

void PrintTo(Kind kind, std::ostream* os) {
  *os << (kind == Kind::Sqlite ? "Sqlite" : "Postgres");
}

TempDir::TempDir() {
  std::string pattern =
      (std::filesystem::temp_directory_path() / "llmgw_store_test_XXXXXX").string();  // TMPDIR
  if (mkdtemp(pattern.data()) == nullptr) {
    throw std::runtime_error("mkdtemp failed");
  }
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

RawDb::RawDb(const std::string& path) {
  if (sqlite3_open(path.c_str(), &db_) != SQLITE_OK) {
    throw std::runtime_error("open failed");
  }
  sqlite3_busy_timeout(db_, 5'000);
}

RawDb::~RawDb() {
  sqlite3_close(db_);
}

void RawDb::exec(const std::string& sql) {
  char* error = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error) != SQLITE_OK) {
    std::string message = error != nullptr ? error : "?";
    sqlite3_free(error);
    throw std::runtime_error(message);
  }
}

std::vector<std::string> RawDb::column(const std::string& sql) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) {
    throw std::runtime_error(sqlite3_errmsg(db_));
  }
  std::vector<std::string> out;
  while (sqlite3_step(stmt) == SQLITE_ROW) {
    const auto* text = sqlite3_column_text(stmt, 0);
    out.emplace_back(text != nullptr ? reinterpret_cast<const char*>(text) : "NULL");
  }
  sqlite3_finalize(stmt);
  return out;
}

std::unique_ptr<Database> make_database(Kind kind) {
  if (kind == Kind::Sqlite) {
    return std::make_unique<SqliteDatabase>();
  }
  return std::make_unique<PostgresDatabase>();
}

std::string sqlite_path(const Database& db) {
  return dynamic_cast<const SqliteDatabase&>(db).path();
}

std::string postgres_url(const Database& db) {
  return dynamic_cast<const PostgresDatabase&>(db).url();
}

std::string postgres_schema(const Database& db) {
  return dynamic_cast<const PostgresDatabase&>(db).schema();
}

std::unique_ptr<RawSql> postgres_admin() {
  return std::make_unique<RawPg>(test_server_url());
}

}  // namespace llmgw::store::test_db

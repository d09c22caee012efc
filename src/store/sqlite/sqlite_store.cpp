#include "store/sqlite/sqlite_store.hpp"

#include <sqlite3.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "store/sqlite/migrations.hpp"

namespace llmgw::store {
namespace {

using sql::Failure;

constexpr int kBusyTimeoutMs = 5'000;

const sql::Dialect kDialect{
    .decimal_arithmetic = false,
    .usage_rows_per_insert = 1,
    .key_filters =
        "($2 IS NULL OR enabled = $2) AND ($3 = '' OR instr(name, $3) > 0)"
        " AND ($4 = '' OR EXISTS (SELECT 1 FROM json_each(api_keys.tags) WHERE value = $4))",
    // The column's COLLATE NOCASE applies to the comparison: any case finds the user.
    .email_equals = "email = $1",
};

/// Sorts an SQLite result code into what the store needs to know.
Failure failure_of(int code) noexcept {
  if (code == SQLITE_CONSTRAINT_PRIMARYKEY || code == SQLITE_CONSTRAINT_UNIQUE) {
    return Failure::Unique;
  }
  const int primary = code & 0xff;
  if (primary == SQLITE_CONSTRAINT || primary == SQLITE_MISMATCH || primary == SQLITE_TOOBIG ||
      primary == SQLITE_RANGE) {
    return Failure::Refused;
  }
  return Failure::Other;
}

// Messages carry SQLite's own text and the SQL, never bound values: those may be secrets.
[[noreturn]] void throw_error(sqlite3* db, int code, std::string_view sql) {
  throw sql::Error(failure_of(code), "sqlite: " + std::string(sqlite3_errmsg(db)) + " (in `" +
                                         sql::sql_excerpt(sql) + "`)");
}

/// The statements are written once for both dialects (src/store/sql/sql.hpp): parameters
/// `$N` are SQLite's `?N`, and `FOR UPDATE` is dropped (a write transaction already holds the
/// database's write lock). Outside string literals only.
std::string translate(std::string_view sql) {
  constexpr std::string_view kForUpdate = " FOR UPDATE";
  std::string out;
  out.reserve(sql.size());
  bool quoted = false;
  for (std::size_t i = 0; i < sql.size(); ++i) {
    const char ch = sql[i];
    if (ch == '\'') {
      quoted = !quoted;
    } else if (!quoted && ch == '$' && i + 1 < sql.size() && sql[i + 1] >= '0' &&
               sql[i + 1] <= '9') {
      out += '?';
      continue;
    } else if (!quoted && sql.substr(i).starts_with(kForUpdate)) {
      i += kForUpdate.size() - 1;
      continue;
    }
    out += ch;
  }
  return out;
}

class Statement final : public sql::Statement {
 public:
  Statement(sqlite3* db, std::string_view sql) {
    const std::string text = translate(sql);
    // PERSISTENT: these statements live as long as the connection.
    const int rc = sqlite3_prepare_v3(db, text.data(), static_cast<int>(text.size()),
                                      SQLITE_PREPARE_PERSISTENT, &stmt_, nullptr);
    if (rc != SQLITE_OK) {
      sqlite3_finalize(stmt_);
      throw_error(db, rc, sql);
    }
  }
  ~Statement() override { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  void bind_null(int index) override { check(sqlite3_bind_null(stmt_, index)); }
  void bind_integer(int index, std::int64_t value) override {
    check(sqlite3_bind_int64(stmt_, index, static_cast<sqlite3_int64>(value)));
  }
  void bind_boolean(int index, bool value) override {
    check(sqlite3_bind_int(stmt_, index, value ? 1 : 0));
  }
  void bind_text(int index, std::string_view value, bool borrowed) override {
    // A null data pointer would bind SQL NULL, not the empty string.
    check(sqlite3_bind_text64(stmt_, index, value.empty() ? "" : value.data(), value.size(),
                              borrowed ? SQLITE_STATIC : SQLITE_TRANSIENT, SQLITE_UTF8));
  }
  void stream() override {}  // SQLite always steps through rows

  bool step() override {
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) {
      return true;
    }
    if (rc != SQLITE_DONE) {
      throw_error(sqlite3_db_handle(stmt_), rc, sqlite3_sql(stmt_));
    }
    changes_ = sqlite3_changes64(sqlite3_db_handle(stmt_));
    return false;
  }
  [[nodiscard]] std::int64_t changes() const override { return changes_; }
  // The bindings are cleared too: no borrowed text outlives its use.
  void reset() noexcept override {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
    changes_ = 0;
  }
  void restart() noexcept override {
    sqlite3_reset(stmt_);
    changes_ = 0;
  }

  [[nodiscard]] bool is_null(int column) const override {
    return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
  }
  [[nodiscard]] std::int64_t integer(int column) const override {
    return sqlite3_column_int64(stmt_, column);
  }
  [[nodiscard]] bool boolean(int column) const override { return integer(column) != 0; }
  [[nodiscard]] std::string_view text(int column) const override {
    const auto* data = sqlite3_column_text(stmt_, column);
    if (data == nullptr) {
      return {};
    }
    return {reinterpret_cast<const char*>(data),
            static_cast<std::size_t>(sqlite3_column_bytes(stmt_, column))};
  }

 private:
  void check(int rc) const {
    if (rc != SQLITE_OK) {
      throw_error(sqlite3_db_handle(stmt_), rc, sqlite3_sql(stmt_));
    }
  }

  sqlite3_stmt* stmt_ = nullptr;
  std::int64_t changes_ = 0;
};

struct SqlHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    return std::hash<std::string_view>{}(s);
  }
};

/// Process-wide SQLite settings, applied once before the library initialises: no global
/// memory-statistics mutex (taken on every allocation; we never read the statistics).
void configure_sqlite_once() {
  static const bool configured = [] {
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    return sqlite3_initialize() == SQLITE_OK;
  }();
  (void)configured;
}

/// One SQLite connection with its prepared-statement cache. Not thread-safe: the database
/// serialises calls with its mutex.
class Connection final : public sql::Connection {
 public:
  explicit Connection(const std::string& path) {
    configure_sqlite_once();
    // NOMUTEX: the database's own mutex already serialises every use of this connection.
    const int rc =
        sqlite3_open_v2(path.c_str(), &db_,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
    if (rc != SQLITE_OK) {
      const std::string message = db_ != nullptr ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
      sqlite3_close(db_);
      throw sql::Error(Failure::Other, "sqlite: cannot open " + path + ": " + message);
    }
    sqlite3_extended_result_codes(db_, 1);
    try {
      // The busy timeout first: switching to WAL takes a lock another process may hold.
      exec("PRAGMA busy_timeout = " + std::to_string(kBusyTimeoutMs));
      std::string mode;
      {
        sql::Query q = query("PRAGMA journal_mode = WAL");
        if (q.step()) {
          mode = q.text(0);
        }
      }
      // An in-memory database reports "memory" and cannot use WAL; anything else is a file
      // system without shared-memory support, where the CLI and server could not coexist.
      if (mode != "wal" && mode != "memory") {
        throw sql::Error(Failure::Other, "sqlite: cannot use WAL for " + path +
                                             " (journal_mode is '" + mode + "')");
      }
      // NORMAL in WAL mode: a power loss can lose the last commits but never corrupts.
      exec("PRAGMA synchronous = NORMAL");
      exec("PRAGMA foreign_keys = ON");
    } catch (...) {
      statements_.clear();
      sqlite3_close(db_);
      throw;
    }
  }

  ~Connection() override {
    statements_.clear();  // finalize before close, or close fails with SQLITE_BUSY
    sqlite3_close(db_);
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  sql::Statement& prepare(std::string_view sql) override {
    auto it = statements_.find(sql);
    if (it == statements_.end()) {
      it = statements_.emplace(std::string(sql), std::make_unique<Statement>(db_, sql)).first;
    }
    return *it->second;
  }

  void exec(std::string_view sql) override {
    const std::string text(sql);
    const int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) {
      throw_error(db_, rc, sql);
    }
  }

  // Writers use IMMEDIATE so that they wait (busy timeout) for the write lock up front: a
  // deferred transaction that reads first and then writes can fail at once with
  // SQLITE_BUSY_SNAPSHOT when another process committed in between.
  void begin(sql::TxKind kind) override {
    query(kind == sql::TxKind::Write ? "BEGIN IMMEDIATE" : "BEGIN DEFERRED").run();
  }
  void commit() override { query("COMMIT").run(); }
  void rollback() noexcept override {
    if (sqlite3_get_autocommit(db_) == 0) {
      // Nothing useful to do if this fails: SQLite may already have rolled back itself.
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    }
  }

  [[nodiscard]] const sql::Dialect& dialect() const noexcept override { return kDialect; }
  bool table_exists(std::string_view table) override {
    return !query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = $1", table).empty();
  }
  // BEGIN IMMEDIATE holds the database's one write lock already.
  void lock_migrations() override {}
  void lock_table(std::string_view /*table*/) override {}

 private:
  sqlite3* db_ = nullptr;
  std::unordered_map<std::string, std::unique_ptr<Statement>, SqlHash, std::equal_to<>>
      statements_;
};

/// One connection for every call, serialised by a mutex, and one more for long reads: in
/// WAL mode a reader on its own connection never waits for the writer, nor makes key lookups
/// and the usage writer wait behind a report that scans millions of rows.
class Database final : public sql::Database {
 public:
  explicit Database(std::string path) : path_(std::move(path)), connection_(path_) {}

  void run(sql::Use use, const std::function<void(sql::Connection&)>& call) override {
    if (use == sql::Use::Report) {
      std::lock_guard lock(reports_mutex_);
      if (!reports_) {
        reports_ = std::make_unique<Connection>(path_);
      }
      call(*reports_);
      return;
    }
    std::lock_guard lock(mutex_);
    call(connection_);
  }

  [[nodiscard]] const std::string& description() const noexcept override { return path_; }
  [[nodiscard]] std::span<const sql::Migration> migrations() const noexcept override {
    return sqlite::migrations();
  }
  [[nodiscard]] std::string_view migrations_table_ddl() const noexcept override {
    return "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY,"
           " name TEXT NOT NULL, applied_at INTEGER NOT NULL) STRICT";
  }

 private:
  const std::string path_;
  std::mutex mutex_;
  Connection connection_;
  std::mutex reports_mutex_;
  std::unique_ptr<Connection> reports_;
};

std::unique_ptr<sql::Database> open(const std::string& path) {
  const std::filesystem::path file(path);
  if (file.has_parent_path()) {
    std::filesystem::create_directories(file.parent_path());
  }
  return std::make_unique<Database>(path);
}

}  // namespace

SqliteStore::SqliteStore(std::string path) : SqlStore(open(path)) {}

}  // namespace llmgw::store

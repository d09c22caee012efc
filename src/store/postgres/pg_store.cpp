#include "store/postgres/pg_store.hpp"

#include <libpq-fe.h>

#include <algorithm>
#include <charconv>
#include <condition_variable>
#include <cstdlib>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/log.hpp"
#include "store/postgres/migrations.hpp"

namespace llmgw::store {
namespace {

using sql::Failure;

/// The advisory lock migrations hold (one bigint key; "llmgw:mg" in ASCII): replicas starting
/// together apply each migration once, one after the other.
constexpr std::int64_t kMigrationLockKey = 0x6c6c6d67773a6d67;
constexpr std::string_view kUniqueViolation = "23505";
/// Class 22 (data exception: a malformed or out-of-range value) and 23 (integrity constraint
/// violation): the values, not the database.
constexpr std::string_view kDataExceptionClass = "22";
constexpr std::string_view kConstraintClass = "23";
constexpr std::string_view kConnectionExceptionClass = "08";
/// Server shutting down or the backend terminated (pg_terminate_backend): the session is gone.
constexpr std::string_view kAdminShutdown = "57P01";
constexpr std::string_view kCrashShutdown = "57P02";
/// Connection defaults the URL may override: how long a connection attempt may take
/// (seconds), and how soon a silent peer counts as gone (keepalive probes after 30 s idle,
/// every 10 s, 3 of them; unacknowledged writes for 30 s), so that no call waits forever on a
/// server that vanished without closing its sockets.
constexpr const char* kDefaultConnectTimeout = "10";
constexpr const char* kKeepalivesIdle = "30";
constexpr const char* kKeepalivesInterval = "10";
constexpr const char* kKeepalivesCount = "3";
constexpr const char* kTcpUserTimeoutMs = "30000";

/// Usage rows per INSERT: one round trip per 64 rows instead of one per row (64 rows × 23
/// columns stays far below the protocol's 65535 parameters).
const sql::Dialect kDialect{
    .decimal_arithmetic = true,
    .usage_rows_per_insert = 64,
    // A tag is a whole element of the JSONB array (`?`), never a part of one.
    .key_filters = "($2::boolean IS NULL OR enabled = $2)"
                   " AND ($3::text = '' OR strpos(name, $3) > 0) AND ($4::text = '' OR tags ? $4)",
    // The expression of the unique index admin_users_by_email.
    .email_equals = "lower(email) = lower($1::text COLLATE \"C\")",
};

std::string trim_trailing_newlines(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) {
    text.pop_back();
  }
  return text;
}

/// Owns one PGresult.
struct ResultDeleter {
  void operator()(PGresult* result) const noexcept { PQclear(result); }
};
using Result = std::unique_ptr<PGresult, ResultDeleter>;

class Connection;

/// A prepared statement of one connection. Parameters are sent in text format; results are
/// read whole (or one row at a time after stream()).
class Statement final : public sql::Statement {
 public:
  Statement(Connection& connection, std::string name, std::string sql)
      : connection_(connection), name_(std::move(name)), sql_(std::move(sql)) {}

  void bind_null(int index) override { slot(index).reset(); }
  void bind_integer(int index, std::int64_t value) override {
    slot(index) = std::to_string(value);
  }
  void bind_boolean(int index, bool value) override { slot(index) = value ? "t" : "f"; }
  void bind_text(int index, std::string_view value, bool /*borrowed*/) override {
    // Text parameters are C strings: a NUL would cut the value short without a word.
    if (value.find('\0') != std::string_view::npos) {
      throw std::invalid_argument("postgres: a text value holds a NUL byte (in `" +
                                  sql::sql_excerpt(sql_) + "`)");
    }
    slot(index) = std::string(value);
  }
  void stream() override { streaming_ = true; }

  bool step() override;
  [[nodiscard]] std::int64_t changes() const override {
    if (!result_) {
      return 0;
    }
    const char* n = PQcmdTuples(result_.get());
    return n[0] == '\0' ? 0 : std::strtoll(n, nullptr, 10);
  }
  void reset() noexcept override;
  void restart() noexcept override { reset(); }

  [[nodiscard]] bool is_null(int column) const override {
    return PQgetisnull(result_.get(), row_, column) != 0;
  }
  [[nodiscard]] std::int64_t integer(int column) const override {
    const std::string_view v = text(column);
    std::int64_t out = 0;
    const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
    if (ec != std::errc() || end != v.data() + v.size()) {
      throw std::runtime_error("postgres: column " + std::to_string(column) +
                               " is not an integer (in `" + sql::sql_excerpt(sql_) + "`)");
    }
    return out;
  }
  [[nodiscard]] bool boolean(int column) const override { return text(column) == "t"; }
  [[nodiscard]] std::string_view text(int column) const override {
    return {PQgetvalue(result_.get(), row_, column),
            static_cast<std::size_t>(PQgetlength(result_.get(), row_, column))};
  }

 private:
  std::optional<std::string>& slot(int index) {
    const auto i = static_cast<std::size_t>(index - 1);
    if (params_.size() <= i) {
      params_.resize(i + 1);
    }
    return params_[i];
  }
  [[nodiscard]] std::vector<const char*> pointers() const {
    std::vector<const char*> out;
    out.reserve(params_.size());
    for (const auto& v : params_) {
      out.push_back(v ? v->c_str() : nullptr);
    }
    return out;
  }

  Connection& connection_;
  const std::string name_;
  const std::string sql_;
  std::vector<std::optional<std::string>> params_;
  Result result_;
  int row_ = -1;
  bool ran_ = false;
  bool streaming_ = false;
  bool drained_ = false;  ///< streaming: every result of the run has been read
};

struct SqlHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    return std::hash<std::string_view>{}(s);
  }
};

/// One libpq connection with its prepared-statement cache. Used by one thread at a time
/// (the pool hands it out).
class Connection final : public sql::Connection {
 public:
  Connection(const std::string& url, const std::string& description) {
    // Defaults first: the URL (expanded from `dbname`) overrides them. A failed attempt is
    // not retryable: the call's one retry is for a connection lost under it.
    const char* keywords[] = {"application_name",
                              "connect_timeout",
                              "client_encoding",
                              "keepalives_idle",
                              "keepalives_interval",
                              "keepalives_count",
                              "tcp_user_timeout",
                              "dbname",
                              nullptr};
    const char* values[] = {
        "llmgw",          kDefaultConnectTimeout, "UTF8",      kKeepalivesIdle, kKeepalivesInterval,
        kKeepalivesCount, kTcpUserTimeoutMs,      url.c_str(), nullptr};
    conn_ = PQconnectdbParams(keywords, values, /*expand_dbname=*/1);
    if (conn_ == nullptr) {
      throw sql::Error(Failure::Other, "postgres: out of memory connecting to " + description);
    }
    if (PQstatus(conn_) != CONNECTION_OK) {
      const std::string message = trim_trailing_newlines(PQerrorMessage(conn_));
      PQfinish(conn_);
      throw sql::Error(Failure::Other,
                       "postgres: cannot connect to " + description + ": " + message);
    }
    // Notices ("relation already exists, skipping") would go to stderr.
    PQsetNoticeProcessor(
        conn_, [](void*, const char*) {}, nullptr);
  }
  ~Connection() override {
    statements_.clear();
    PQfinish(conn_);
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  /// Whether the session is usable; false after a lost connection (reconnect() reopens it).
  [[nodiscard]] bool ok() const noexcept { return !broken_ && PQstatus(conn_) == CONNECTION_OK; }

  /// Reconnects with the same parameters. Prepared statements die with the old session.
  void reconnect(const std::string& description) {
    statements_.clear();
    PQreset(conn_);
    if (PQstatus(conn_) != CONNECTION_OK) {
      throw sql::Error(Failure::Other, "postgres: cannot reconnect to " + description + ": " +
                                           trim_trailing_newlines(PQerrorMessage(conn_)));
    }
    broken_ = false;
  }

  sql::Statement& prepare(std::string_view sql) override {
    auto it = statements_.find(sql);
    if (it != statements_.end()) {
      return *it->second;
    }
    std::string name = "llmgw_" + std::to_string(next_statement_++);
    std::string text(sql);
    check(PQprepare(conn_, name.c_str(), text.c_str(), 0, nullptr), sql);
    auto statement = std::make_unique<Statement>(*this, std::move(name), text);
    return *statements_.emplace(std::move(text), std::move(statement)).first->second;
  }

  void exec(std::string_view sql) override { check(PQexec(conn_, std::string(sql).c_str()), sql); }

  // Write: READ COMMITTED, each statement sees what committed before it started. Writers of
  // the configuration lock the config_version row first (`FOR UPDATE`), so they run one at a
  // time across replicas, as SQLite's BEGIN IMMEDIATE makes them, and what they read after
  // the lock is current. Snapshot: every statement sees one snapshot (load_catalog).
  void begin(sql::TxKind kind) override {
    exec(kind == sql::TxKind::Write ? "BEGIN" : "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
  }
  /// A connection lost during COMMIT leaves the outcome unknown: that error is not `Lost`.
  void commit() override {
    committing_ = true;
    try {
      exec("COMMIT");
    } catch (...) {
      committing_ = false;
      throw;
    }
    committing_ = false;
  }
  void rollback() noexcept override {
    const PGTransactionStatusType status = PQtransactionStatus(conn_);
    if (status == PQTRANS_INTRANS || status == PQTRANS_INERROR) {
      PQclear(PQexec(conn_, "ROLLBACK"));
    }
  }

  [[nodiscard]] const sql::Dialect& dialect() const noexcept override { return kDialect; }
  bool table_exists(std::string_view table) override {
    // to_regclass resolves the name through the session's search_path, as the statements do.
    sql::Query q = query("SELECT to_regclass($1::text) IS NOT NULL", table);
    return q.first().boolean(0);
  }
  void lock_migrations() override {
    query("SELECT pg_advisory_xact_lock($1::bigint)", kMigrationLockKey).run();
  }
  void lock_table(std::string_view table) override {
    exec("LOCK TABLE " + std::string(table) + " IN EXCLUSIVE MODE");
  }

  [[nodiscard]] PGconn* get() const noexcept { return conn_; }

  /// Takes ownership of `raw`; throws sql::Error unless it reports success. Messages carry
  /// the server's primary message and the SQL, never DETAIL (it quotes row values, which may
  /// be secrets) nor bound values.
  Result check(PGresult* raw, std::string_view sql) {
    Result result(raw);
    const ExecStatusType status = raw != nullptr ? PQresultStatus(raw) : PGRES_FATAL_ERROR;
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK ||
        status == PGRES_SINGLE_TUPLE) {
      return result;
    }
    const char* state = raw != nullptr ? PQresultErrorField(raw, PG_DIAG_SQLSTATE) : nullptr;
    const char* primary =
        raw != nullptr ? PQresultErrorField(raw, PG_DIAG_MESSAGE_PRIMARY) : nullptr;
    const std::string_view sqlstate = state != nullptr ? state : "";
    const bool lost = PQstatus(conn_) != CONNECTION_OK ||
                      sqlstate.starts_with(kConnectionExceptionClass) ||
                      sqlstate == kAdminShutdown || sqlstate == kCrashShutdown ||
                      (state == nullptr && primary == nullptr);
    if (lost) {
      broken_ = true;
    }
    Failure failure = Failure::Other;
    if (lost) {
      failure = committing_ ? Failure::Other : Failure::Lost;
    } else if (sqlstate == kUniqueViolation) {
      failure = Failure::Unique;
    } else if (sqlstate.starts_with(kDataExceptionClass) ||
               sqlstate.starts_with(kConstraintClass)) {
      failure = Failure::Refused;
    }
    // Without a server message (the connection failed), libpq's own text holds no values.
    const std::string message =
        primary != nullptr ? std::string(primary) : trim_trailing_newlines(PQerrorMessage(conn_));
    throw sql::Error(failure, "postgres: " + message + " (in `" + sql::sql_excerpt(sql) + "`)");
  }

 private:
  PGconn* conn_ = nullptr;
  std::unordered_map<std::string, std::unique_ptr<Statement>, SqlHash, std::equal_to<>>
      statements_;
  std::size_t next_statement_ = 0;
  bool broken_ = false;
  bool committing_ = false;
};

bool Statement::step() {
  PGconn* conn = connection_.get();
  if (!ran_) {
    ran_ = true;
    const auto values = pointers();
    const int count = static_cast<int>(params_.size());
    if (!streaming_) {
      result_ = connection_.check(PQexecPrepared(conn, name_.c_str(), count, values.data(),
                                                 nullptr, nullptr, /*resultFormat=*/0),
                                  sql_);
      row_ = -1;
    } else if (PQsendQueryPrepared(conn, name_.c_str(), count, values.data(), nullptr, nullptr,
                                   0) == 0 ||
               PQsetSingleRowMode(conn) == 0) {
      drained_ = true;
      connection_.check(nullptr, sql_);
    }
  }
  if (!streaming_) {
    return ++row_ < PQntuples(result_.get());
  }
  // Single-row mode: each row is a result of its own, then one empty TUPLES_OK, then null.
  // Every result must be read before the connection takes another command, so a failure is
  // thrown only once the run is drained.
  result_.reset();
  row_ = 0;
  if (drained_) {
    return false;
  }
  PGresult* raw = PQgetResult(conn);
  if (raw != nullptr && PQresultStatus(raw) == PGRES_SINGLE_TUPLE) {
    result_.reset(raw);
    return true;
  }
  Result last(raw);
  while (PGresult* rest = PQgetResult(conn)) {
    PQclear(rest);
  }
  drained_ = true;
  if (last && PQresultStatus(last.get()) != PGRES_TUPLES_OK) {
    connection_.check(last.release(), sql_);
  }
  return false;
}

void Statement::reset() noexcept {
  if (streaming_ && ran_ && !drained_) {
    while (PGresult* rest = PQgetResult(connection_.get())) {
      PQclear(rest);
    }
  }
  result_.reset();
  params_.clear();
  row_ = -1;
  ran_ = false;
  streaming_ = false;
  drained_ = false;
}

/// Up to `size` connections, opened on demand and reused; a call waits for a free one.
class Pool {
 public:
  Pool(std::string url, std::string description, std::size_t size)
      : url_(std::move(url)),
        description_(std::move(description)),
        size_(std::max<std::size_t>(size, 1)) {}

  /// A connection lent to one call; returned to the pool when destroyed.
  class Lease {
   public:
    Lease(Pool& pool, std::unique_ptr<Connection> connection) noexcept
        : pool_(&pool), connection_(std::move(connection)) {}
    ~Lease() {
      if (connection_) {
        pool_->give_back(std::move(connection_));
      }
    }
    Lease(Lease&& other) noexcept : pool_(other.pool_), connection_(std::move(other.connection_)) {}
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    Lease& operator=(Lease&&) = delete;
    Connection& operator*() const noexcept { return *connection_; }

   private:
    Pool* pool_;
    std::unique_ptr<Connection> connection_;
  };

  /// A healthy connection: an idle one (reconnected first if it broke), or a new one while
  /// fewer than `size` are open. Throws sql::Error when the server cannot be reached.
  Lease acquire() {
    std::unique_ptr<Connection> connection;
    {
      std::unique_lock lock(mutex_);
      available_.wait(lock, [this] { return !idle_.empty() || open_ < size_; });
      if (!idle_.empty()) {
        connection = std::move(idle_.back());
        idle_.pop_back();
      } else {
        ++open_;
      }
    }
    if (!connection) {
      try {
        connection = std::make_unique<Connection>(url_, description_);
      } catch (...) {
        std::lock_guard lock(mutex_);
        --open_;
        available_.notify_one();
        throw;
      }
      return Lease(*this, std::move(connection));
    }
    Lease lease(*this, std::move(connection));
    if (!(*lease).ok()) {
      (*lease).reconnect(description_);  // on failure the lease returns it, still broken
    }
    return lease;
  }

 private:
  void give_back(std::unique_ptr<Connection> connection) {
    connection->rollback();  // nothing leaks into the next call's transaction
    std::lock_guard lock(mutex_);
    idle_.push_back(std::move(connection));
    available_.notify_one();
  }

  const std::string url_;
  const std::string description_;
  const std::size_t size_;
  std::mutex mutex_;
  std::condition_variable available_;
  std::vector<std::unique_ptr<Connection>> idle_;
  std::size_t open_ = 0;
};

class Database final : public sql::Database {
 public:
  Database(const std::string& url, std::string description, std::size_t pool_size)
      : description_(std::move(description)), pool_(url, description_, pool_size) {}

  /// A connection found lost (or lost during the call, before COMMIT) is reopened and the
  /// call runs once more: the server rolled back whatever the first run had done.
  void run(sql::Use /*use*/, const std::function<void(sql::Connection&)>& call) override {
    for (int attempt = 0;; ++attempt) {
      try {
        Pool::Lease lease = pool_.acquire();
        call(*lease);
        return;
      } catch (const sql::Error& e) {
        if (attempt > 0 || e.failure() != Failure::Lost) {
          throw;
        }
        core::LogLine(core::LogLevel::Warn, "postgres connection lost; retrying the call")
            .field("database", description_)
            .emit();
      }
    }
  }

  [[nodiscard]] const std::string& description() const noexcept override { return description_; }
  [[nodiscard]] std::span<const sql::Migration> migrations() const noexcept override {
    return postgres::migrations();
  }
  [[nodiscard]] std::string_view migrations_table_ddl() const noexcept override {
    return "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY,"
           " name TEXT NOT NULL, applied_at BIGINT NOT NULL)";
  }

 private:
  const std::string description_;
  Pool pool_;
};

/// "postgresql://HOST:PORT/NAME" from a connection URL (no user, password nor parameters), or
/// nullopt if it does not parse.
std::optional<std::string> describe_url(const std::string& url) {
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(url.c_str(), &error);
  if (options == nullptr) {
    PQfreemem(error);
    return std::nullopt;
  }
  std::string dbname;
  std::string host;
  std::string port;
  for (const PQconninfoOption* o = options; o->keyword != nullptr; ++o) {
    const std::string_view keyword = o->keyword;
    const std::string value = o->val != nullptr ? o->val : "";
    if (keyword == "dbname") {
      dbname = value;
    } else if (keyword == "host") {
      host = value;
    } else if (keyword == "hostaddr" && host.empty()) {
      host = value;
    } else if (keyword == "port") {
      port = value;
    }
  }
  PQconninfoFree(options);
  std::string out = "postgresql://" + host;
  if (!port.empty()) {
    out += ":" + port;
  }
  return out + "/" + dbname;
}

std::unique_ptr<sql::Database> open(const std::string& url, const PgStoreOptions& options) {
  auto description = describe_url(url);
  if (!description) {
    throw std::runtime_error(
        "postgres: the database URL does not parse as a PostgreSQL connection URL");
  }
  return std::make_unique<Database>(url, std::move(*description), options.pool_size);
}

}  // namespace

bool is_postgres_url(std::string_view url) noexcept {
  return url.starts_with("postgres://") || url.starts_with("postgresql://");
}

PgStore::PgStore(const std::string& url, PgStoreOptions options) : SqlStore(open(url, options)) {}

}  // namespace llmgw::store

#include "store/postgres/pg_store.hpp"

#include <libpq-fe.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <functional>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "core/ids.hpp"
#include "core/log.hpp"
#include "core/money.hpp"
#include "store/detail.hpp"
#include "store/postgres/migrations.hpp"

namespace llmgw::store {
namespace {

using detail::ComponentKey;
using detail::ExistingRow;
using detail::kSourceAdmin;
using detail::kSourceCatalog;
using detail::kSourceConfig;
using detail::kSourceOverride;
using detail::ModelComponentKey;
using detail::StoredCredential;

/// How much of a statement's SQL an error message quotes (enough to tell which one failed).
constexpr std::size_t kSqlExcerptChars = 60;
/// The advisory lock migrations hold (one bigint key; "llmgw:mg" in ASCII): replicas starting
/// together apply each migration once, one after the other.
constexpr std::int64_t kMigrationLockKey = 0x6c6c6d67773a6d67;
/// Usage rows per INSERT statement: one round trip per 64 rows instead of one per row
/// (64 rows × 23 columns stays far below the protocol's 65535 parameters).
constexpr std::size_t kUsageRowsPerInsert = 64;
constexpr std::size_t kUsageColumnCount = 23;
constexpr std::string_view kUniqueViolation = "23505";
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

/// A PostgreSQL failure. Derives from std::runtime_error (what callers catch); the SQLSTATE
/// tells a uniqueness violation from other failures, and `retryable` a lost connection whose
/// call may run again (the server rolled its transaction back) from one lost during COMMIT,
/// whose outcome is unknown.
/// The migration that makes usage request ids unique (removing repeated rows first).
constexpr int kUsageRequestIdsMigration = 4;

class PgError : public std::runtime_error {
 public:
  PgError(std::string sqlstate, bool retryable, const std::string& message)
      : std::runtime_error(message), sqlstate_(std::move(sqlstate)), retryable_(retryable) {}
  [[nodiscard]] const std::string& sqlstate() const noexcept { return sqlstate_; }
  [[nodiscard]] bool retryable() const noexcept { return retryable_; }

 private:
  std::string sqlstate_;
  bool retryable_;
};

std::string sql_excerpt(std::string_view sql) {
  if (sql.size() <= kSqlExcerptChars) {
    return std::string(sql);
  }
  return std::string(sql.substr(0, kSqlExcerptChars)) + "...";
}

std::string trim_trailing_newlines(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) {
    text.pop_back();
  }
  return text;
}

template <typename T>
struct IsOptional : std::false_type {};
template <typename T>
struct IsOptional<std::optional<T>> : std::true_type {};

/// The parameters of one statement, in text format ($1, $2, ... in order). Values are
/// copied: they must stay NUL-terminated while libpq sends them.
class Params {
 public:
  template <typename... Values>
  explicit Params(const Values&... values) {
    values_.reserve(sizeof...(Values));
    (add(values), ...);
  }

  template <typename T>
  void add(const T& value) {
    if constexpr (std::is_same_v<T, std::nullptr_t>) {
      values_.emplace_back(std::nullopt);
    } else if constexpr (IsOptional<T>::value) {
      if (value) {
        add(*value);
      } else {
        values_.emplace_back(std::nullopt);
      }
    } else if constexpr (std::is_same_v<T, bool>) {
      values_.emplace_back(value ? "t" : "f");
    } else if constexpr (std::is_integral_v<T>) {
      values_.emplace_back(std::to_string(value));
    } else {
      const std::string_view text(value);
      // Text parameters are C strings: a NUL would cut the value short without a word.
      if (text.find('\0') != std::string_view::npos) {
        throw std::invalid_argument("postgres: a text value holds a NUL byte");
      }
      values_.emplace_back(text);
    }
  }

  void reserve(std::size_t n) { values_.reserve(n); }
  [[nodiscard]] int size() const noexcept { return static_cast<int>(values_.size()); }
  [[nodiscard]] std::vector<const char*> pointers() const {
    std::vector<const char*> out;
    out.reserve(values_.size());
    for (const auto& v : values_) {
      out.push_back(v ? v->c_str() : nullptr);
    }
    return out;
  }

 private:
  std::vector<std::optional<std::string>> values_;
};

/// Binds SQL NULL for an empty string.
std::optional<std::string_view> null_if_empty(std::string_view text) noexcept {
  if (text.empty()) {
    return std::nullopt;
  }
  return text;
}

/// One row of a result, read like SqliteStore's Query: columns by index, NULL as "" or
/// nullopt.
class Row {
 public:
  Row(const PGresult* result, int row) noexcept : result_(result), row_(row) {}

  [[nodiscard]] bool is_null(int column) const noexcept {
    return PQgetisnull(result_, row_, column) != 0;
  }
  [[nodiscard]] std::string_view view(int column) const noexcept {
    return {PQgetvalue(result_, row_, column),
            static_cast<std::size_t>(PQgetlength(result_, row_, column))};
  }
  [[nodiscard]] std::string text(int column) const { return std::string(view(column)); }
  [[nodiscard]] std::int64_t integer(int column) const {
    const std::string_view v = view(column);
    std::int64_t out = 0;
    const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
    if (ec != std::errc() || end != v.data() + v.size()) {
      throw std::runtime_error("postgres: column " + std::to_string(column) + " is not an integer");
    }
    return out;
  }
  [[nodiscard]] bool boolean(int column) const noexcept { return view(column) == "t"; }
  [[nodiscard]] std::optional<std::int64_t> optional_integer(int column) const {
    if (is_null(column)) {
      return std::nullopt;
    }
    return integer(column);
  }
  [[nodiscard]] std::optional<std::string> optional_text(int column) const {
    if (is_null(column)) {
      return std::nullopt;
    }
    return text(column);
  }

 private:
  const PGresult* result_;
  int row_;
};

/// Owns one PGresult.
class Result {
 public:
  explicit Result(PGresult* result) noexcept : result_(result) {}
  ~Result() { PQclear(result_); }
  Result(Result&& other) noexcept : result_(std::exchange(other.result_, nullptr)) {}
  Result(const Result&) = delete;
  Result& operator=(const Result&) = delete;
  Result& operator=(Result&&) = delete;

  [[nodiscard]] int rows() const noexcept { return PQntuples(result_); }
  [[nodiscard]] bool empty() const noexcept { return rows() == 0; }
  [[nodiscard]] Row row(int i) const noexcept { return Row(result_, i); }
  /// Rows an INSERT, UPDATE or DELETE changed.
  [[nodiscard]] std::int64_t affected() const noexcept {
    const char* n = PQcmdTuples(result_);
    return n[0] == '\0' ? 0 : std::strtoll(n, nullptr, 10);
  }

 private:
  PGresult* result_;
};

struct SqlHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    return std::hash<std::string_view>{}(s);
  }
};

/// One libpq connection with its prepared-statement cache. Used by one thread at a time
/// (the pool hands it out).
class Connection {
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
      throw PgError("", false, "postgres: out of memory connecting to " + description);
    }
    if (PQstatus(conn_) != CONNECTION_OK) {
      const std::string message = trim_trailing_newlines(PQerrorMessage(conn_));
      PQfinish(conn_);
      throw PgError("", false, "postgres: cannot connect to " + description + ": " + message);
    }
    // Notices ("relation already exists, skipping") would go to stderr.
    PQsetNoticeProcessor(
        conn_, [](void*, const char*) {}, nullptr);
  }
  ~Connection() { PQfinish(conn_); }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  /// Whether the session is usable; false after a lost connection (reset() reconnects).
  [[nodiscard]] bool ok() const noexcept { return !broken_ && PQstatus(conn_) == CONNECTION_OK; }

  /// Reconnects with the same parameters. Prepared statements die with the old session.
  void reset(const std::string& description) {
    prepared_.clear();
    PQreset(conn_);
    if (PQstatus(conn_) != CONNECTION_OK) {
      throw PgError("", false,
                    "postgres: cannot reconnect to " + description + ": " +
                        trim_trailing_newlines(PQerrorMessage(conn_)));
    }
    broken_ = false;
  }

  /// Runs the prepared statement for `sql` (prepared on first use on this connection).
  Result query(std::string_view sql, const Params& params) {
    const std::string& name = prepare(sql);
    const auto values = params.pointers();
    return check(PQexecPrepared(conn_, name.c_str(), params.size(), values.data(), nullptr, nullptr,
                                /*resultFormat=*/0),
                 sql);
  }
  template <typename... Values>
  Result query(std::string_view sql, const Values&... values) {
    return query(sql, Params(values...));
  }
  /// Runs a statement that returns no rows; returns how many rows it changed.
  template <typename... Values>
  std::int64_t run(std::string_view sql, const Values&... values) {
    return query(sql, Params(values...)).affected();
  }

  /// Runs the statement for `sql` and hands each row to `on_row` as it arrives (single-row
  /// mode), for results too large to hold at once.
  template <typename OnRow>
  void for_each_row(std::string_view sql, const Params& params, OnRow&& on_row) {
    const std::string& name = prepare(sql);
    const auto values = params.pointers();
    if (PQsendQueryPrepared(conn_, name.c_str(), params.size(), values.data(), nullptr, nullptr,
                            0) == 0 ||
        PQsetSingleRowMode(conn_) == 0) {
      check(nullptr, sql);
    }
    // Every result must be read before the connection takes another command, so a failure
    // (of the statement or of `on_row`) is kept until the end.
    std::exception_ptr failure;
    while (PGresult* raw = PQgetResult(conn_)) {
      const ExecStatusType status = PQresultStatus(raw);
      if (status == PGRES_SINGLE_TUPLE || status == PGRES_TUPLES_OK) {
        const Result result(raw);
        if (status == PGRES_SINGLE_TUPLE && !failure) {
          try {
            on_row(result.row(0));
          } catch (...) {
            failure = std::current_exception();
          }
        }
        continue;
      }
      try {
        check(raw, sql);  // takes `raw`, throws
      } catch (...) {
        if (!failure) {
          failure = std::current_exception();
        }
      }
    }
    if (failure) {
      std::rethrow_exception(failure);
    }
  }

  /// Runs `sql` (one or more statements without parameters: DDL, BEGIN, ROLLBACK).
  void exec(std::string_view sql) { check(PQexec(conn_, std::string(sql).c_str()), sql); }

  /// COMMIT: a connection lost now leaves the outcome unknown, so that error is not
  /// retryable.
  void commit() {
    committing_ = true;
    try {
      exec("COMMIT");
    } catch (...) {
      committing_ = false;
      throw;
    }
    committing_ = false;
  }

  /// ROLLBACK if a transaction is open, ignoring failures (the session may be gone, which
  /// rolls back as well).
  void rollback_quietly() noexcept {
    const PGTransactionStatusType status = PQtransactionStatus(conn_);
    if (status == PQTRANS_INTRANS || status == PQTRANS_INERROR) {
      PQclear(PQexec(conn_, "ROLLBACK"));
    }
  }

 private:
  const std::string& prepare(std::string_view sql) {
    auto it = prepared_.find(sql);
    if (it != prepared_.end()) {
      return it->second;
    }
    std::string name = "llmgw_" + std::to_string(next_statement_++);
    const std::string text(sql);
    check(PQprepare(conn_, name.c_str(), text.c_str(), 0, nullptr), sql);
    return prepared_.emplace(text, std::move(name)).first->second;
  }

  /// Takes ownership of `raw`; throws PgError unless it reports success. Messages carry the
  /// server's primary message and the SQL, never DETAIL (it quotes row values, which may be
  /// secrets) nor bound values.
  Result check(PGresult* raw, std::string_view sql) {
    Result result(raw);
    const ExecStatusType status = raw != nullptr ? PQresultStatus(raw) : PGRES_FATAL_ERROR;
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) {
      return result;
    }
    const char* state = raw != nullptr ? PQresultErrorField(raw, PG_DIAG_SQLSTATE) : nullptr;
    const char* primary =
        raw != nullptr ? PQresultErrorField(raw, PG_DIAG_MESSAGE_PRIMARY) : nullptr;
    const std::string sqlstate = state != nullptr ? state : "";
    const bool lost = PQstatus(conn_) != CONNECTION_OK ||
                      sqlstate.starts_with(kConnectionExceptionClass) ||
                      sqlstate == kAdminShutdown || sqlstate == kCrashShutdown ||
                      (state == nullptr && primary == nullptr);
    if (lost) {
      broken_ = true;
    }
    // Without a server message (the connection failed), libpq's own text holds no values.
    const std::string message =
        primary != nullptr ? std::string(primary) : trim_trailing_newlines(PQerrorMessage(conn_));
    throw PgError(sqlstate, lost && !committing_,
                  "postgres: " + message + " (in `" + sql_excerpt(sql) + "`)");
  }

  PGconn* conn_ = nullptr;
  std::unordered_map<std::string, std::string, SqlHash, std::equal_to<>> prepared_;
  std::size_t next_statement_ = 0;
  bool broken_ = false;
  bool committing_ = false;
};

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

  /// A healthy connection: an idle one (reset first if it broke), or a new one while fewer
  /// than `size` are open. Throws PgError when the server cannot be reached.
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
      (*lease).reset(description_);  // on failure the lease returns it, still broken
    }
    return lease;
  }

 private:
  void give_back(std::unique_ptr<Connection> connection) {
    connection->rollback_quietly();  // nothing leaks into the next call's transaction
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

/// BEGIN on construction; ROLLBACK on destruction unless committed.
/// - Write: READ COMMITTED, each statement sees what committed before it started. Writers of
///   the configuration lock the config_version row first (lock_config_version), so they run
///   one at a time across replicas, as SQLite's BEGIN IMMEDIATE makes them, and what they
///   read after the lock is current.
/// - Snapshot: REPEATABLE READ READ ONLY: every statement sees one snapshot (load_catalog).
class Transaction {
 public:
  enum class Kind : std::uint8_t { Write, Snapshot };

  Transaction(Connection& connection, Kind kind) : connection_(connection) {
    connection_.exec(kind == Kind::Write ? "BEGIN"
                                         : "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
  }
  ~Transaction() {
    if (active_) {
      connection_.rollback_quietly();
    }
  }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  void commit() {
    active_ = false;
    connection_.commit();
  }

 private:
  Connection& connection_;
  bool active_ = true;
};

std::int64_t read_config_version(Connection& c) {
  const Result r = c.query("SELECT version FROM config_version WHERE id = 1");
  if (r.empty()) {
    throw std::runtime_error("postgres: config_version row is missing (database not migrated?)");
  }
  return r.row(0).integer(0);
}

/// Locks the config_version row until the caller's write transaction ends (every other
/// configuration writer waits) and returns the version.
std::int64_t lock_config_version(Connection& c) {
  const Result r = c.query("SELECT version FROM config_version WHERE id = 1 FOR UPDATE");
  if (r.empty()) {
    throw std::runtime_error("postgres: config_version row is missing (database not migrated?)");
  }
  return r.row(0).integer(0);
}

void write_config_version(Connection& c, std::int64_t version) {
  c.run("UPDATE config_version SET version = $1 WHERE id = 1", version);
}

/// The LIMIT of a page of `limit` rows: one more, so that the caller can tell whether a
/// next page exists; NULL (no limit) for 0.
std::optional<std::int64_t> page_limit(std::size_t limit) noexcept {
  constexpr auto kMax = static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max());
  if (limit == 0 || limit >= kMax) {
    return std::nullopt;
  }
  return static_cast<std::int64_t>(limit) + 1;
}

/// Runs a write; a uniqueness violation (a taken id, name or hash) becomes ConflictError
/// with `conflict` as its message.
template <typename Write>
void write_unique(Write&& write, const std::string& conflict) {
  try {
    std::forward<Write>(write)();
  } catch (const PgError& e) {
    if (e.sqlstate() == kUniqueViolation) {
      throw ConflictError(conflict);
    }
    throw;
  }
}

// --- audit

/// Stores `a` inside the caller's write transaction. Returns the id assigned.
std::int64_t append_audit(Connection& c, const AuditRecord& a) {
  const Result r = c.query(
      "INSERT INTO admin_audit (at_us, actor_type, actor_id, actor_name, action,"
      " resource_type, resource_id, before_json, after_json, request_id, client_ip)"
      " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
      a.at_us != 0 ? a.at_us : core::unix_micros(), a.actor_type, a.actor_id, a.actor_name,
      a.action, a.resource_type, a.resource_id, null_if_empty(a.before_json),
      null_if_empty(a.after_json), a.request_id, a.client_ip);
  return r.row(0).integer(0);
}

void append_audit(Connection& c, const AuditRecord* a) {
  if (a != nullptr) {
    append_audit(c, *a);
  }
}

AuditRecord read_audit(const Row& q) {
  AuditRecord a;
  a.id = q.integer(0);
  a.at_us = q.integer(1);
  a.actor_type = q.text(2);
  a.actor_id = q.text(3);
  a.actor_name = q.text(4);
  a.action = q.text(5);
  a.resource_type = q.text(6);
  a.resource_id = q.text(7);
  a.before_json = q.text(8);  // NULL reads as ""
  a.after_json = q.text(9);
  a.request_id = q.text(10);
  a.client_ip = q.text(11);
  return a;
}

// --- api_keys

constexpr std::string_view kKeyColumns =
    "SELECT id, key_hash, prefix, name, enabled, expires_at, rpm_limit, tpm_limit, budget_usd,"
    " allowed_models, created_at, updated_at, version, budget_period, max_concurrent, tags,"
    " metadata FROM api_keys ";

ApiKeyRecord read_key(const Row& q) {
  ApiKeyRecord key;
  key.id = q.text(0);
  key.key_hash = q.text(1);
  key.prefix = q.text(2);
  key.name = q.text(3);
  key.enabled = q.boolean(4);
  key.expires_at = q.optional_integer(5);
  key.rpm_limit = q.optional_integer(6);
  key.tpm_limit = q.optional_integer(7);
  key.budget_usd = q.optional_text(8);
  key.allowed_models = detail::from_json_array(q.view(9), "api_keys.allowed_models");
  key.created_at = q.integer(10);
  key.updated_at = q.integer(11);
  key.version = q.integer(12);
  key.budget_period = q.text(13);
  key.max_concurrent = q.optional_integer(14);
  key.tags = detail::from_json_array(q.view(15), "api_keys.tags");
  key.metadata = detail::from_json_object(q.view(16), "api_keys.metadata");
  return key;
}

std::optional<ApiKeyRecord> find_key(Connection& c, std::string_view sql,
                                     const std::string& value) {
  const Result r = c.query(sql, value);
  if (r.empty()) {
    return std::nullopt;
  }
  return read_key(r.row(0));
}

/// Records that `key_hash` no longer opens a key, stamped with the version of the change.
void retire_key_hash(Connection& c, const std::string& key_hash, const std::string& key_id,
                     std::int64_t now, std::int64_t version) {
  c.run(
      "INSERT INTO retired_key_hashes (key_hash, key_id, retired_at, version)"
      " VALUES ($1, $2, $3, $4) ON CONFLICT (key_hash) DO UPDATE SET key_id = excluded.key_id,"
      " retired_at = excluded.retired_at, version = excluded.version",
      key_hash, key_id, now, version);
}

// --- admin users and tokens

constexpr std::string_view kAdminUserColumns =
    "SELECT id, email, password_hash, role, enabled, created_at, updated_at FROM admin_users ";

AdminUserRecord read_admin_user(const Row& q) {
  return AdminUserRecord{q.text(0),    q.text(1),    q.text(2),   q.text(3),
                         q.boolean(4), q.integer(5), q.integer(6)};
}

constexpr std::string_view kAdminTokenColumns =
    "SELECT id, service_name, token_hash, role, enabled, created_at, updated_at"
    " FROM admin_tokens ";

AdminTokenRecord read_admin_token(const Row& q) {
  return AdminTokenRecord{q.text(0),    q.text(1),    q.text(2),   q.text(3),
                          q.boolean(4), q.integer(5), q.integer(6)};
}

/// The created_at that `sql` selects (and locks) for $1 = `id`; nullopt when there is none.
std::optional<std::int64_t> created_at_of(Connection& c, std::string_view sql,
                                          const std::string& id) {
  const Result r = c.query(sql, id);
  if (r.empty()) {
    return std::nullopt;
  }
  return r.row(0).integer(0);
}

// --- catalog

/// A provider row as apply_config compares it.
struct ProviderRow {
  std::string id;
  std::string source;
  core::ProviderConfig config;
};

struct ModelRow {
  std::string id;
  std::string source;
  std::string provider_id;
  std::string upstream_model;
  std::string pricing_model;  ///< empty: NULL in the table
  std::optional<std::int64_t> rpm_limit;
  std::optional<std::int64_t> tpm_limit;
};

struct AliasRow {
  std::string source;
  std::string model_id;
};

constexpr std::string_view kProviderColumns =
    "SELECT id, name, type, base_url, credentials, credentials_encrypted, connect_timeout_ms,"
    " first_byte_timeout_ms, idle_timeout_ms, enabled, source, created_at, updated_at"
    " FROM providers ";

ProviderRecord read_provider(const Row& q, const SecretCodec* codec) {
  ProviderRecord p;
  p.id = q.text(0);
  p.config.name = q.text(1);
  p.config.base_url = q.text(3);
  p.config.connect_timeout = std::chrono::milliseconds(q.integer(6));
  p.config.first_byte_timeout = std::chrono::milliseconds(q.integer(7));
  p.config.idle_timeout = std::chrono::milliseconds(q.integer(8));
  p.enabled = q.boolean(9);
  p.source = q.text(10);
  p.created_at = q.integer(11);
  p.updated_at = q.integer(12);
  // A row this build cannot use must not stop the whole catalog loading: a provider type from
  // a newer build reads as disabled; credentials sealed under a key this process does not
  // hold read as unreadable (left out of the catalog), `enabled` as stored, so that an admin
  // write of the record does not store a "disabled" nobody asked for.
  const std::string type = q.text(2);
  if (!core::parse_provider_type(type, p.config.type)) {
    core::LogLine(core::LogLevel::Warn, "provider disabled: type not supported by this build")
        .field("provider", p.config.name)
        .field("type", type)
        .emit();
    p.enabled = false;
  } else if (auto api_key =
                 detail::open_credential(codec, p.id, p.config.name, q.view(4), q.boolean(5))) {
    p.config.api_key = std::move(*api_key);
  } else {
    p.credential_unreadable = true;
  }
  return p;
}

/// Every provider, ordered by name.
std::vector<ProviderRecord> read_providers(Connection& c, const SecretCodec* codec) {
  static const std::string kSql = std::string(kProviderColumns) + "ORDER BY name";
  std::vector<ProviderRecord> out;
  const Result r = c.query(kSql);
  out.reserve(static_cast<std::size_t>(r.rows()));
  for (int i = 0; i < r.rows(); ++i) {
    out.push_back(read_provider(r.row(i), codec));
  }
  return out;
}

constexpr std::string_view kModelColumns =
    "SELECT m.id, m.name, p.name, m.upstream_model, m.enabled, m.source, m.pricing_model,"
    " m.created_at, m.updated_at, m.rpm_limit, m.tpm_limit"
    " FROM models m JOIN providers p ON p.id = m.provider_id ";

ModelRecord read_model(const Row& q) {
  ModelRecord m;
  m.id = q.text(0);
  m.config.name = q.text(1);
  m.config.provider = q.text(2);
  m.config.upstream_model = q.text(3);
  m.enabled = q.boolean(4);
  m.source = q.text(5);
  m.config.pricing_model = q.text(6);  // NULL reads as ""
  m.created_at = q.integer(7);
  m.updated_at = q.integer(8);
  m.config.rpm_limit = q.optional_integer(9);
  m.config.tpm_limit = q.optional_integer(10);
  return m;
}

/// Every model, ordered by name.
std::vector<ModelRecord> read_models(Connection& c) {
  static const std::string kSql = std::string(kModelColumns) + "ORDER BY m.name";
  std::vector<ModelRecord> out;
  const Result r = c.query(kSql);
  for (int i = 0; i < r.rows(); ++i) {
    out.push_back(read_model(r.row(i)));
  }
  return out;
}

constexpr std::string_view kAliasColumns =
    "SELECT a.alias, m.name, a.source, a.created_at, a.updated_at FROM model_aliases a"
    " JOIN models m ON m.id = a.model_id ";

AliasRecord read_alias(const Row& q) {
  AliasRecord a;
  a.config.alias = q.text(0);
  a.config.model = q.text(1);
  a.source = q.text(2);
  a.created_at = q.integer(3);
  a.updated_at = q.integer(4);
  return a;
}

/// Every alias, ordered by alias.
std::vector<AliasRecord> read_aliases(Connection& c) {
  static const std::string kSql = std::string(kAliasColumns) + "ORDER BY a.alias";
  std::vector<AliasRecord> out;
  const Result r = c.query(kSql);
  for (int i = 0; i < r.rows(); ++i) {
    out.push_back(read_alias(r.row(i)));
  }
  return out;
}

/// Applies `cfg` inside the caller's write transaction (which holds the config_version
/// lock), stamping changes with `next`. Returns whether any row changed. The same steps as
/// SqliteStore's, in the same order (the foreign keys need it).
bool apply_config_rows(Connection& c, const SecretCodec* codec, const core::GatewayConfig& cfg,
                       std::int64_t next, std::int64_t now) {
  bool changed = false;
  detail::check_config_names(cfg);

  // Credentials are read in clear, so an unchanged one compares equal although sealing it
  // again would give other bytes.
  std::map<std::string, ProviderRow> providers;
  for (auto& p : read_providers(c, codec)) {
    std::string name = p.config.name;
    providers.emplace(std::move(name), ProviderRow{p.id, p.source, std::move(p.config)});
  }
  std::map<std::string, ModelRow> models;
  {
    const Result r = c.query(
        "SELECT name, id, source, provider_id, upstream_model, COALESCE(pricing_model, ''),"
        " rpm_limit, tpm_limit FROM models");
    for (int i = 0; i < r.rows(); ++i) {
      const Row q = r.row(i);
      models.emplace(q.text(0), ModelRow{q.text(1), q.text(2), q.text(3), q.text(4), q.text(5),
                                         q.optional_integer(6), q.optional_integer(7)});
    }
  }
  std::map<std::string, AliasRow> aliases;
  {
    const Result r = c.query("SELECT alias, source, model_id FROM model_aliases");
    for (int i = 0; i < r.rows(); ++i) {
      const Row q = r.row(i);
      aliases.emplace(q.text(0), AliasRow{q.text(1), q.text(2)});
    }
  }

  std::set<std::string> cfg_providers;
  std::set<std::string> cfg_models;
  std::set<std::string> cfg_aliases;
  for (const auto& p : cfg.providers) {
    cfg_providers.insert(p.name);
  }
  for (const auto& m : cfg.models) {
    cfg_models.insert(m.name);
  }
  for (const auto& a : cfg.aliases) {
    cfg_aliases.insert(a.alias);
  }

  for (auto it = aliases.begin(); it != aliases.end();) {
    if (it->second.source == kSourceConfig && !cfg_aliases.contains(it->first)) {
      c.run("DELETE FROM model_aliases WHERE alias = $1", it->first);
      it = aliases.erase(it);
      changed = true;
    } else {
      ++it;
    }
  }

  for (const auto& p : cfg.providers) {
    const auto type = std::string(core::to_string(p.type));
    auto it = providers.find(p.name);
    if (it == providers.end()) {
      const std::string id = core::new_id("prov_");
      const StoredCredential credential = detail::store_credential(codec, id, p.api_key);
      c.run(
          "INSERT INTO providers (id, name, type, base_url, credentials,"
          " credentials_encrypted, connect_timeout_ms, first_byte_timeout_ms, idle_timeout_ms,"
          " source, created_at, updated_at, version)"
          " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'config', $10, $10, $11)",
          id, p.name, type, p.base_url, credential.value, credential.encrypted,
          p.connect_timeout.count(), p.first_byte_timeout.count(), p.idle_timeout.count(), now,
          next);
      providers.emplace(p.name, ProviderRow{id, std::string(kSourceConfig), p});
      changed = true;
      continue;
    }
    detail::reject_admin_collision(it->second.source, "provider", p.name);
    if (it->second.config == p) {
      continue;
    }
    // `enabled` is not part of the file: an operator's switch survives a restart.
    const StoredCredential credential = detail::store_credential(codec, it->second.id, p.api_key);
    c.run(
        "UPDATE providers SET type = $2, base_url = $3, credentials = $4,"
        " credentials_encrypted = $5, connect_timeout_ms = $6, first_byte_timeout_ms = $7,"
        " idle_timeout_ms = $8, updated_at = $9, version = $10 WHERE id = $1",
        it->second.id, type, p.base_url, credential.value, credential.encrypted,
        p.connect_timeout.count(), p.first_byte_timeout.count(), p.idle_timeout.count(), now, next);
    it->second.config = p;
    changed = true;
  }

  for (const auto& m : cfg.models) {
    const auto provider = providers.find(m.provider);
    if (provider == providers.end()) {
      throw std::runtime_error("config model '" + m.name + "' names unknown provider '" +
                               m.provider + "'");
    }
    const std::string& provider_id = provider->second.id;
    const std::string& upstream = m.upstream_model.empty() ? m.name : m.upstream_model;
    if (aliases.contains(m.name)) {
      throw std::runtime_error("config model '" + m.name +
                               "' collides with an alias created through the admin API;"
                               " rename one of them");
    }
    auto it = models.find(m.name);
    if (it == models.end()) {
      const std::string id = core::new_id("model_");
      c.run(
          "INSERT INTO models (id, name, provider_id, upstream_model, pricing_model, rpm_limit,"
          " tpm_limit, source, created_at, updated_at, version)"
          " VALUES ($1, $2, $3, $4, NULLIF($5, ''), $6, $7, 'config', $8, $8, $9)",
          id, m.name, provider_id, upstream, m.pricing_model, m.rpm_limit, m.tpm_limit, now, next);
      models.emplace(m.name, ModelRow{id, std::string(kSourceConfig), provider_id, upstream,
                                      m.pricing_model, m.rpm_limit, m.tpm_limit});
      changed = true;
      continue;
    }
    detail::reject_admin_collision(it->second.source, "model", m.name);
    if (it->second.provider_id == provider_id && it->second.upstream_model == upstream &&
        it->second.pricing_model == m.pricing_model && it->second.rpm_limit == m.rpm_limit &&
        it->second.tpm_limit == m.tpm_limit) {
      continue;
    }
    c.run(
        "UPDATE models SET provider_id = $2, upstream_model = $3, pricing_model = NULLIF($4, ''),"
        " rpm_limit = $5, tpm_limit = $6, updated_at = $7, version = $8 WHERE id = $1",
        it->second.id, provider_id, upstream, m.pricing_model, m.rpm_limit, m.tpm_limit, now,
        next);
    it->second.provider_id = provider_id;
    it->second.upstream_model = upstream;
    it->second.pricing_model = m.pricing_model;
    it->second.rpm_limit = m.rpm_limit;
    it->second.tpm_limit = m.tpm_limit;
    changed = true;
  }

  for (const auto& a : cfg.aliases) {
    const auto model = models.find(a.model);
    if (model == models.end()) {
      throw std::runtime_error("config alias '" + a.alias + "' names unknown model '" + a.model +
                               "'");
    }
    const std::string& model_id = model->second.id;
    if (const auto named = models.find(a.alias);
        named != models.end() && named->second.source != kSourceConfig) {
      throw std::runtime_error("config alias '" + a.alias +
                               "' collides with a model created through the admin API;"
                               " rename one of them");
    }
    auto it = aliases.find(a.alias);
    if (it == aliases.end()) {
      c.run(
          "INSERT INTO model_aliases (alias, model_id, source, created_at, updated_at,"
          " version) VALUES ($1, $2, 'config', $3, $3, $4)",
          a.alias, model_id, now, next);
      aliases.emplace(a.alias, AliasRow{std::string(kSourceConfig), model_id});
      changed = true;
      continue;
    }
    detail::reject_admin_collision(it->second.source, "alias", a.alias);
    if (it->second.model_id == model_id) {
      continue;
    }
    c.run(
        "UPDATE model_aliases SET model_id = $2, updated_at = $3, version = $4"
        " WHERE alias = $1",
        a.alias, model_id, now, next);
    it->second.model_id = model_id;
    changed = true;
  }

  for (const auto& [name, row] : models) {
    if (row.source != kSourceConfig || cfg_models.contains(name)) {
      continue;
    }
    {
      // Only an admin alias can still point here: config aliases were re-pointed above.
      const Result r =
          c.query("SELECT alias FROM model_aliases WHERE model_id = $1 LIMIT 1", row.id);
      if (!r.empty()) {
        throw std::runtime_error("model '" + name + "' is no longer in the config file" +
                                 " but alias '" + r.row(0).text(0) + "' still refers to it");
      }
    }
    c.run("DELETE FROM models WHERE id = $1", row.id);
    changed = true;
  }

  for (const auto& [name, row] : providers) {
    if (row.source != kSourceConfig || cfg_providers.contains(name)) {
      continue;
    }
    {
      const Result r = c.query("SELECT name FROM models WHERE provider_id = $1 LIMIT 1", row.id);
      if (!r.empty()) {
        throw std::runtime_error("provider '" + name + "' is no longer in the config file" +
                                 " but model '" + r.row(0).text(0) + "' still refers to it");
      }
    }
    c.run("DELETE FROM providers WHERE id = $1", row.id);
    changed = true;
  }
  return changed;
}

/// The row `sql` selects (source, name, created_at) for $1 = `key`; nullopt when none.
std::optional<ExistingRow> existing_row(Connection& c, std::string_view sql,
                                        const std::string& key) {
  const Result r = c.query(sql, key);
  if (r.empty()) {
    return std::nullopt;
  }
  const Row q = r.row(0);
  return ExistingRow{q.text(0), q.text(1), q.integer(2)};
}

/// Model and alias names are one namespace (a request's `model` names either), so a name is
/// taken by another model (not `own_model_id`) or by any alias.
void refuse_taken_name(Connection& c, const std::string& name, const std::string& own_model_id) {
  if (!c.query("SELECT 1 FROM models WHERE name = $1 AND id <> $2", name, own_model_id).empty()) {
    throw ConflictError("a model named '" + name + "' already exists");
  }
  if (!c.query("SELECT 1 FROM model_aliases WHERE alias = $1", name).empty()) {
    throw ConflictError("an alias named '" + name + "' already exists");
  }
}

/// The id of the provider `m.provider` names. Throws ReferenceError when there is none.
std::string provider_of(Connection& c, const core::ModelConfig& m) {
  const Result r = c.query("SELECT id FROM providers WHERE name = $1", m.provider);
  if (r.empty()) {
    throw ReferenceError("model '" + m.name + "' names unknown provider '" + m.provider + "'");
  }
  return r.row(0).text(0);
}

/// The id of the model `a.model` names. Throws ReferenceError when there is none.
std::string target_of(Connection& c, const core::AliasConfig& a) {
  const Result r = c.query("SELECT id FROM models WHERE name = $1", a.model);
  if (r.empty()) {
    throw ReferenceError("alias '" + a.alias + "' names unknown model '" + a.model + "'");
  }
  return r.row(0).text(0);
}

// --- prices

std::optional<PriceModelRecord> find_price_model(Connection& c, const std::string& name) {
  const Result r = c.query(
      "SELECT litellm_provider, mode, max_input_tokens, max_output_tokens FROM price_models"
      " WHERE name = $1",
      name);
  if (r.empty()) {
    return std::nullopt;
  }
  const Row q = r.row(0);
  return PriceModelRecord{name, q.text(0), q.text(1), q.optional_integer(2), q.optional_integer(3)};
}

/// Component → price of the rows of one model and one source.
std::map<ComponentKey, std::string> read_components(Connection& c, const std::string& model,
                                                    std::string_view source) {
  std::map<ComponentKey, std::string> out;
  const Result r = c.query(
      "SELECT direction, modality, unit, tier, price FROM pricing_components"
      " WHERE model_name = $1 AND source = $2",
      model, source);
  for (int i = 0; i < r.rows(); ++i) {
    const Row q = r.row(i);
    out.emplace(ComponentKey{q.text(0), q.text(1), q.text(2), q.text(3)}, q.text(4));
  }
  return out;
}

/// Inserts a price row, or updates its price if (model, component, source) exists.
void upsert_component(Connection& c, const std::string& model, const ComponentKey& k,
                      const std::string& price, std::string_view source, std::int64_t now,
                      std::int64_t version) {
  c.run(
      "INSERT INTO pricing_components (model_name, direction, modality, unit, tier, price,"
      " source, updated_at, version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
      " ON CONFLICT (model_name, direction, modality, unit, tier, source) DO UPDATE SET"
      " price = excluded.price, updated_at = excluded.updated_at, version = excluded.version",
      model, std::get<0>(k), std::get<1>(k), std::get<2>(k), std::get<3>(k), price, source, now,
      version);
}

void delete_component(Connection& c, const std::string& model, const ComponentKey& k,
                      std::string_view source) {
  c.run(
      "DELETE FROM pricing_components WHERE model_name = $1 AND direction = $2"
      " AND modality = $3 AND unit = $4 AND tier = $5 AND source = $6",
      model, std::get<0>(k), std::get<1>(k), std::get<2>(k), std::get<3>(k), source);
}

/// Writes one imported model and its catalog rows inside the caller's transaction.
/// Returns whether anything was written.
bool import_price_model(Connection& c, const PriceModelRecord& m,
                        const std::map<ComponentKey, std::string>& rows, bool exists,
                        bool row_differs, std::int64_t now, std::int64_t next) {
  bool changed = false;
  if (!exists) {
    c.run(
        "INSERT INTO price_models (name, litellm_provider, mode, max_input_tokens,"
        " max_output_tokens, created_at, updated_at, version)"
        " VALUES ($1, $2, $3, $4, $5, $6, $6, $7)",
        m.name, m.litellm_provider, m.mode, m.max_input_tokens, m.max_output_tokens, now, next);
    changed = true;
  } else if (row_differs) {
    c.run(
        "UPDATE price_models SET litellm_provider = $2, mode = $3, max_input_tokens = $4,"
        " max_output_tokens = $5, updated_at = $6, version = $7 WHERE name = $1",
        m.name, m.litellm_provider, m.mode, m.max_input_tokens, m.max_output_tokens, now, next);
    changed = true;
  }
  const auto stored = read_components(c, m.name, kSourceCatalog);
  for (const auto& [k, price] : rows) {
    const auto it = stored.find(k);
    if (it == stored.end() || detail::price_differs(it->second, price)) {
      upsert_component(c, m.name, k, price, kSourceCatalog, now, next);
      changed = true;
    }
  }
  for (const auto& [k, price] : stored) {
    if (!rows.contains(k)) {
      delete_component(c, m.name, k, kSourceCatalog);
      changed = true;
    }
  }
  return changed;
}

// --- usage and spend

constexpr std::string_view kUsageColumns =
    "request_id, key_id, model, upstream_model, provider, endpoint, status, prompt_tokens,"
    " completion_tokens, cached_tokens, reasoning_tokens, overhead_us, upstream_us, stream,"
    " usage_reported, created_at_us, client_request_id, pricing_model, service_tier,"
    " cache_write_tokens, cost_usd, cost_status, prices";

UsageRecord read_usage(const Row& q) {
  UsageRecord r;
  r.request_id = q.text(0);
  r.key_id = q.text(1);
  r.model = q.text(2);
  r.upstream_model = q.text(3);
  r.provider = q.text(4);
  r.endpoint = q.text(5);
  r.status = static_cast<int>(q.integer(6));
  r.prompt_tokens = q.integer(7);
  r.completion_tokens = q.integer(8);
  r.cached_tokens = q.integer(9);
  r.reasoning_tokens = q.integer(10);
  r.overhead_us = q.integer(11);
  r.upstream_us = q.integer(12);
  r.stream = q.boolean(13);
  r.usage_reported = q.boolean(14);
  r.created_at_us = q.integer(15);
  r.client_request_id = q.text(16);
  r.pricing_model = q.text(17);
  r.service_tier = q.text(18);
  r.cache_write_tokens = q.integer(19);
  r.cost_usd = q.text(20);
  r.cost_status = q.text(21);
  r.prices_json = q.text(22);
  return r;
}

/// INSERT of `rows` usage rows in one statement (cached per row count, at most
/// kUsageRowsPerInsert variants).
std::string usage_insert_sql(std::size_t rows) {
  std::string sql = "INSERT INTO usage_records (" + std::string(kUsageColumns) + ") VALUES ";
  std::size_t parameter = 0;
  for (std::size_t r = 0; r < rows; ++r) {
    sql += r == 0 ? "(" : ", (";
    for (std::size_t column = 0; column < kUsageColumnCount; ++column) {
      if (column != 0) {
        sql += ", ";
      }
      sql += '$';
      sql += std::to_string(++parameter);
    }
    sql += ')';
  }
  // A record stored before (a repeated delivery) is skipped; RETURNING names the new ones,
  // whose spend the caller then adds.
  sql += " ON CONFLICT (request_id) DO NOTHING RETURNING request_id";
  return sql;
}

/// Adds every sum to its spend_daily row inside the caller's write transaction. The sums are
/// exact (core::Money); the stored cost is NUMERIC, so the addition in the statement is exact
/// decimal arithmetic and atomic under concurrent writers (the row is locked by the upsert
/// until the transaction ends). Rows are written in SpendSums' order, the same in every
/// writer, so two writers never wait on each other in a cycle.
void write_spend(Connection& c, const detail::SpendSums& sums, std::int64_t now) {
  for (const auto& [key, d] : sums) {
    c.run(
        "INSERT INTO spend_daily (key_id, day, model, cost_usd, requests, unpriced_requests,"
        " prompt_tokens, completion_tokens, updated_at)"
        " VALUES ($1, $2, $3, $4::numeric, $5, $6, $7, $8, $9)"
        " ON CONFLICT (key_id, day, model) DO UPDATE SET"
        " cost_usd = spend_daily.cost_usd + excluded.cost_usd,"
        " requests = spend_daily.requests + excluded.requests,"
        " unpriced_requests = spend_daily.unpriced_requests + excluded.unpriced_requests,"
        " prompt_tokens = spend_daily.prompt_tokens + excluded.prompt_tokens,"
        " completion_tokens = spend_daily.completion_tokens + excluded.completion_tokens,"
        " updated_at = excluded.updated_at",
        key.key_id, detail::format_day(key.day), key.model, d.cost.to_string(), d.requests,
        d.unpriced_requests, d.prompt_tokens, d.completion_tokens, now);
  }
}

/// A NUMERIC cost as core::Money writes it ("0.750000" → "0.75"), so that both stores return
/// the same text.
std::string canonical_cost(std::string_view numeric) {
  const auto money = core::Money::parse(numeric);
  return money ? money->to_string() : std::string(numeric);
}

bool table_exists(Connection& c, std::string_view name) {
  // to_regclass resolves the name through the session's search_path, as the statements do.
  const Result r = c.query("SELECT to_regclass($1::text) IS NOT NULL", name);
  return r.row(0).boolean(0);
}

int read_schema_version(Connection& c) {
  if (!table_exists(c, "schema_migrations")) {
    return 0;
  }
  const Result r = c.query("SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
  return static_cast<int>(r.row(0).integer(0));
}

void refuse_newer_schema(int found, const std::string& description) {
  const int known = postgres::latest_migration_version();
  if (found > known) {
    throw std::runtime_error("database " + description + " has schema version " +
                             std::to_string(found) + ", newer than the " + std::to_string(known) +
                             " this build knows: run a newer llmgw on it");
  }
}

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

}  // namespace

bool is_postgres_url(std::string_view url) noexcept {
  return url.starts_with("postgres://") || url.starts_with("postgresql://");
}

struct PgStore::Impl {
  Impl(const std::string& url, const std::string& description, std::size_t pool_size)
      : description(description), pool(url, description, pool_size) {}

  /// Runs `fn` on a pooled connection. A connection found lost (or lost during the call,
  /// before COMMIT) is reset and the call runs once more: the server rolled back whatever
  /// the first run had done. `fn` must therefore keep its state inside (it may run twice).
  template <typename Fn>
  auto call(Fn&& fn) -> decltype(fn(std::declval<Connection&>())) {
    for (int attempt = 0;; ++attempt) {
      try {
        Pool::Lease lease = pool.acquire();
        return fn(*lease);
      } catch (const PgError& e) {
        if (attempt > 0 || !e.retryable()) {
          throw;
        }
        core::LogLine(core::LogLevel::Warn, "postgres connection lost; retrying the call")
            .field("database", description)
            .emit();
      }
    }
  }

  [[nodiscard]] std::shared_ptr<const SecretCodec> codec() const {
    std::lock_guard lock(codec_mutex);
    return secret_codec;
  }

  const std::string description;
  Pool pool;
  mutable std::mutex codec_mutex;
  std::shared_ptr<const SecretCodec> secret_codec;  ///< null: credentials are written in clear
};

PgStore::PgStore(const std::string& url, PgStoreOptions options) {
  auto description = describe_url(url);
  if (!description) {
    throw std::runtime_error(
        "postgres: the database URL does not parse as a PostgreSQL connection URL");
  }
  description_ = std::move(*description);
  impl_ = std::make_unique<Impl>(url, description_, options.pool_size);
}

PgStore::~PgStore() = default;

int PgStore::migrate() {
  bool respend = false;
  const int version = impl_->call([&](Connection& c) {
    respend = false;  // a retried call starts over
    const auto lock = [&c] {
      c.query("SELECT pg_advisory_xact_lock($1::bigint)", kMigrationLockKey);
    };
    {
      Transaction tx(c, Transaction::Kind::Write);
      lock();
      c.exec(
          "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY,"
          " name TEXT NOT NULL, applied_at BIGINT NOT NULL)");
      refuse_newer_schema(read_schema_version(c), description_);
      tx.commit();
    }
    for (const auto& m : postgres::migrations()) {
      // Each step re-reads the version under the lock: another replica may have applied it
      // meanwhile.
      Transaction tx(c, Transaction::Kind::Write);
      lock();
      const int current = read_schema_version(c);
      refuse_newer_schema(current, description_);
      if (m.version <= current) {
        continue;
      }
      if (m.version == kUsageRequestIdsMigration) {
        const Result r =
            c.query("SELECT count(*) - count(DISTINCT request_id) FROM usage_records");
        respend = r.row(0).integer(0) > 0;
      }
      try {
        c.exec(m.sql);
      } catch (const PgError& e) {
        if (e.retryable()) {
          throw;
        }
        throw std::runtime_error("migration " + std::to_string(m.version) + " (" +
                                 std::string(m.name) + ") failed: " + e.what());
      }
      c.run("INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
            m.version, m.name, core::unix_seconds());
      tx.commit();
    }
    return read_schema_version(c);
  });
  if (respend) {
    rebuild_spend();  // migration 4 removed repeated usage rows their spend had counted
  }
  return version;
}

int PgStore::schema_version() {
  return impl_->call([](Connection& c) { return read_schema_version(c); });
}

std::int64_t PgStore::config_version() {
  return impl_->call([](Connection& c) { return read_config_version(c); });
}

void PgStore::set_secret_codec(std::shared_ptr<const SecretCodec> codec) {
  std::lock_guard lock(impl_->codec_mutex);
  impl_->secret_codec = std::move(codec);
}

std::size_t PgStore::reseal_credentials(const SecretCodec* from, const SecretCodec& to) {
  struct Resealed {
    std::string id;
    std::string name;
    std::string plaintext;
  };
  return impl_->call([&](Connection& c) {
    Transaction tx(c, Transaction::Kind::Write);
    lock_config_version(c);  // no provider write of another replica in between
    std::vector<Resealed> rows;
    {
      const Result r = c.query(
          "SELECT id, name, credentials, credentials_encrypted FROM providers ORDER BY id"
          " FOR UPDATE");
      for (int i = 0; i < r.rows(); ++i) {
        const Row q = r.row(i);
        Resealed row{q.text(0), q.text(1), {}};
        if (!q.boolean(3)) {
          if (q.view(2).empty()) {
            continue;  // nothing to seal
          }
          row.plaintext = q.text(2);
        } else if (auto opened = from != nullptr ? from->open(q.view(2), row.id) : std::nullopt) {
          row.plaintext = std::move(*opened);
        } else {
          throw std::runtime_error("credentials of provider '" + row.name +
                                   "' do not open with the current key; nothing was re-sealed");
        }
        rows.push_back(std::move(row));
      }
    }
    for (const auto& row : rows) {
      const StoredCredential credential = detail::store_credential(&to, row.id, row.plaintext);
      c.run("UPDATE providers SET credentials = $2, credentials_encrypted = $3 WHERE id = $1",
            row.id, credential.value, credential.encrypted);
    }
    tx.commit();
    return rows.size();
  });
}

void PgStore::insert_key(ApiKeyRecord& key, const AuditRecord* audit) {
  const std::int64_t now = core::unix_seconds();
  const std::int64_t version = impl_->call([&](Connection& c) {
    Transaction tx(c, Transaction::Kind::Write);
    const std::int64_t next = lock_config_version(c) + 1;
    write_unique(
        [&] {
          c.run(
              "INSERT INTO api_keys (id, key_hash, prefix, name, enabled, expires_at, rpm_limit,"
              " tpm_limit, budget_usd, allowed_models, created_at, updated_at, version,"
              " budget_period, max_concurrent, tags, metadata)"
              " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $12, $13, $14, $15,"
              " $16)",
              key.id, key.key_hash, key.prefix, key.name, key.enabled, key.expires_at,
              key.rpm_limit, key.tpm_limit, key.budget_usd,
              detail::to_json_array(key.allowed_models), now, next, key.budget_period,
              key.max_concurrent, detail::to_json_array(key.tags),
              detail::to_json_object(key.metadata));
        },
        "api key '" + key.id + "' not stored: a key with this id or hash already exists");
    write_config_version(c, next);
    append_audit(c, audit);
    tx.commit();
    return next;
  });
  key.created_at = now;
  key.updated_at = now;
  key.version = version;
}

std::vector<ApiKeyRecord> PgStore::list_keys() {
  return list_keys(KeyQuery{});
}

std::vector<ApiKeyRecord> PgStore::list_keys(const KeyQuery& q) {
  // The filters are optional parameters rather than variants of the statement. A tag is a
  // whole element of the JSONB array (`?`), never a part of one.
  static const std::string kSql =
      std::string(kKeyColumns) +
      "WHERE id > $1 AND ($2::boolean IS NULL OR enabled = $2)"
      " AND ($3::text = '' OR strpos(name, $3) > 0) AND ($4::text = '' OR tags ? $4)"
      " ORDER BY id LIMIT $5";
  return impl_->call([&](Connection& c) {
    std::vector<ApiKeyRecord> out;
    const Result r =
        c.query(kSql, q.page.after, q.enabled, q.name_contains, q.tag, page_limit(q.page.limit));
    for (int i = 0; i < r.rows(); ++i) {
      out.push_back(read_key(r.row(i)));
    }
    return out;
  });
}

std::optional<ApiKeyRecord> PgStore::find_key_by_id(const std::string& id) {
  static const std::string kSql = std::string(kKeyColumns) + "WHERE id = $1";
  return impl_->call([&](Connection& c) { return find_key(c, kSql, id); });
}

std::optional<ApiKeyRecord> PgStore::find_key_by_hash(const std::string& key_hash) {
  static const std::string kSql = std::string(kKeyColumns) + "WHERE key_hash = $1";
  return impl_->call([&](Connection& c) { return find_key(c, kSql, key_hash); });
}

bool PgStore::set_key_enabled(const std::string& id, bool enabled, const AuditRecord* audit) {
  return impl_->call([&](Connection& c) {
    Transaction tx(c, Transaction::Kind::Write);
    const std::int64_t next = lock_config_version(c) + 1;
    if (c.run("UPDATE api_keys SET enabled = $2, updated_at = $3, version = $4 WHERE id = $1", id,
              enabled, core::unix_seconds(), next) == 0) {
      return false;  // rolls back; the version stays
    }
    write_config_version(c, next);
    append_audit(c, audit);
    tx.commit();
    return true;
  });
}

bool PgStore::update_key(ApiKeyRecord& key, const AuditRecord* audit) {
  const std::int64_t now = core::unix_seconds();
  struct Outcome {
    std::int64_t created_at = 0;
    std::int64_t version = 0;
  };
  const auto outcome = impl_->call([&](Connection& c) -> std::optional<Outcome> {
    Transaction tx(c, Transaction::Kind::Write);
    const std::int64_t next = lock_config_version(c) + 1;
    std::string old_hash;
    std::int64_t created_at = 0;
    {
      const Result r =
          c.query("SELECT key_hash, created_at, version FROM api_keys WHERE id = $1", key.id);
      if (r.empty()) {
        return std::nullopt;
      }
      old_hash = r.row(0).text(0);
      created_at = r.row(0).integer(1);
      if (key.version != 0 && key.version != r.row(0).integer(2)) {
        throw ConflictError("api key '" + key.id +
                            "' was changed by another request since it was read; read it again");
      }
    }
    write_unique(
        [&] {
          c.run(
              "UPDATE api_keys SET key_hash = $2, prefix = $3, name = $4, enabled = $5,"
              " expires_at = $6, rpm_limit = $7, tpm_limit = $8, budget_usd = $9,"
              " allowed_models = $10, budget_period = $11, max_concurrent = $12, tags = $13,"
              " metadata = $14, updated_at = $15, version = $16 WHERE id = $1",
              key.id, key.key_hash, key.prefix, key.name, key.enabled, key.expires_at,
              key.rpm_limit, key.tpm_limit, key.budget_usd,
              detail::to_json_array(key.allowed_models), key.budget_period, key.max_concurrent,
              detail::to_json_array(key.tags), detail::to_json_object(key.metadata), now, next);
        },
        "api key '" + key.id + "' not updated: another key has this hash");
    if (old_hash != key.key_hash) {
      retire_key_hash(c, old_hash, key.id, now, next);
    }
    write_config_version(c, next);
    append_audit(c, audit);
    tx.commit();
    return Outcome{created_at, next};
  });
  if (!outcome) {
    return false;
  }
  key.created_at = outcome->created_at;
  key.updated_at = now;
  key.version = outcome->version;
  return true;
}

bool PgStore::delete_key(const std::string& id, const AuditRecord* audit) {
  return impl_->call([&](Connection& c) {
    Transaction tx(c, Transaction::Kind::Write);
    const std::int64_t next = lock_config_version(c) + 1;
    const Result r = c.query("DELETE FROM api_keys WHERE id = $1 RETURNING key_hash", id);
    if (r.empty()) {
      return false;
    }
    retire_key_hash(c, r.row(0).text(0), id, core::unix_seconds(), next);
    write_config_version(c, next);
    append_audit(c, audit);
    tx.commit();
    return true;
  });
}

std::vector<std::string> PgStore::key_hashes_changed_since(std::int64_t version) {
  return impl_->call([&](Connection& c) {
    std::vector<std::string> out;
    // A hash may be in both tables (retired, then given to a new key): reported once.
    const Result r = c.query(
        "SELECT key_hash FROM (SELECT key_hash, version FROM api_keys WHERE version > $1"
        " UNION ALL SELECT key_hash, version FROM retired_key_hashes WHERE version > $1)"
        " AS changed GROUP BY key_hash ORDER BY MIN(version), key_hash",
        version);
    for (int i = 0; i < r.rows(); ++i) {
      out.push_back(r.row(i).text(0));
    }
    return out;
  });
}

// --- admin users and tokens: no config version (the gateway's data plane never reads them)

void PgStore::insert_admin_user(AdminUserRecord& user, const AuditRecord* audit) {
  const std::int64_t now = core::unix_seconds();
  if (user.id.empty()) {
    user.id = core::new_id("usr_");
  }
  impl_->call([&](Connection& c) {
    Transaction tx(c, Transaction::Kind::Write);
    write_unique(
        [&] {
          c.run(
              "INSERT INTO admin_users (id, email, password_hash, role, enabled, created_at,"
              " updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6)",
              user.id, user.email, user.password_hash, user.role, user.enabled, now);
        },
        "an admin user with email '" + user.email + "' (or id '" + user.id + "') already exists");
    append_audit(c, audit);
    tx.commit();
  });
  user.created_at = now;
  user.updated_at = now;
}

bool PgStore::update_admin_user(AdminUserRecord& user, const AuditRecord* audit) {
  const std::int64_t now = core::unix_seconds();
  const auto created_at = impl_->call([&](Connection& c) -> std::optional<std::int64_t> {
    Transaction tx(c, Transaction::Kind::Write);
    const auto created =
        created_at_of(c, "SELECT created_at FROM admin_users WHERE id = $1 FOR UPDATE", user.id);
    if (!created) {
      return std::nullopt;
    }
    write_unique(
        [&] {
          c.run(
              "UPDATE admin_users SET email = $2, password_hash = $3, role = $4, enabled = $5,"
              " updated_at = $6 WHERE id = $1",
              user.id, user.email, user.password_hash, user.role, user.enabled, now);
        },
        "an admin user with email '" + user.email + "' already exists");
    append_audit(c, audit);
    tx.commit();
    return created;
  });
  if (!created_at) {
    return false;
  }
  user.created_at = *created_at;
  user.updated_at = now;
  return true;
}

bool PgStore::delete_admin_user(const std::string& id, const AuditRecord* audit) {
  return impl_->call([&](Connection& c) {
    Transaction tx(c, Transaction::Kind::Write);
    if (c.run("DELETE FROM admin_users WHERE id = $1", id) == 0) {
      return false;
    }
    append_audit(c, audit);
    tx.commit();
    return true;
  });
}

std::optional<AdminUserRecord> PgStore::find_admin_user(const std::string& id) {
  static const std::string kSql = std::string(kAdminUserColumns) + "WHERE id = $1";
  return impl_->call([&](Connection& c) -> std::optional<AdminUserRecord> {
    const Result r = c.query(kSql, id);
    if (r.empty()) {
      return std::nullopt;
    }
    return read_admin_user(r.row(0));
  });
}

std::optional<AdminUserRecord> PgStore::find_admin_user_by_email(const std::string& email) {
  // The expression of the unique index admin_users_by_email: ASCII case is ignored.
  static const std::string kSql =
      std::string(kAdminUserColumns) + "WHERE lower(email) = lower($1::text COLLATE \"C\")";
  return impl_->call([&](Connection& c) -> std::optional<AdminUserRecord> {
    const Result r = c.query(kSql, email);
    if (r.empty()) {
      return std::nullopt;
    }
    return read_admin_user(r.row(0));
  });
}

std::vector<AdminUserRecord> PgStore::list_admin_users(const PageRequest& page) {
  static const std::string kSql =
      std::string(kAdminUserColumns) + "WHERE id > $1 ORDER BY id LIMIT $2";
  return impl_->call([&](Connection& c) {
    std::vector<AdminUserRecord> out;
    const Result r = c.query(kSql, page.after, page_limit(page.limit));
    for (int i = 0; i < r.rows(); ++i) {
      out.push_back(read_admin_user(r.row(i)));
    }
    return out;
  });
}

std::int64_t PgStore::count_enabled_admins() {
  return impl_->call([](Connection& c) {
    return c.query("SELECT COUNT(*) FROM admin_users WHERE enabled AND role = 'admin'")
        .row(0)
        .integer(0);
  });
}

void PgStore::insert_admin_token(AdminTokenRecord& token, const AuditRecord* audit) {
  const std::int64_t now = core::unix_seconds();
  if (token.id.empty()) {
    token.id = core::new_id("tok_");
  }
  impl_->call([&](Connection& c) {
    Transaction tx(c, Transaction::Kind::Write);
    write_unique(
        [&] {
          c.run(
              "INSERT INTO admin_tokens (id, service_name, token_hash, role, enabled, created_at,"
              " updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6)",
              token.id, token.service_name, token.token_hash, token.role, token.enabled, now);
        },
        "a service token named '" + token.service_name + "' (or with id '" + token.id +
            "') already exists");
    append_audit(c, audit);
    tx.commit();
  });
  token.created_at = now;
  token.updated_at = now;
}

bool PgStore::update_admin_token(AdminTokenRecord& token, const AuditRecord* audit) {
  const std::int64_t now = core::unix_seconds();
  const auto created_at = impl_->call([&](Connection& c) -> std::optional<std::int64_t> {
    Transaction tx(c, Transaction::Kind::Write);
    const auto created =
        created_at_of(c, "SELECT created_at FROM admin_tokens WHERE id = $1 FOR UPDATE", token.id);
    if (!created) {
      return std::nullopt;
    }
    write_unique(
        [&] {
          c.run(
              "UPDATE admin_tokens SET service_name = $2, token_hash = $3, role = $4,"
              " enabled = $5, updated_at = $6 WHERE id = $1",
              token.id, token.service_name, token.token_hash, token.role, token.enabled, now);
        },
        "a service token named '" + token.service_name + "' already exists");
    append_audit(c, audit);
    tx.commit();
    return created;
  });
  if (!created_at) {
    return false;
  }
  token.created_at = *created_at;
  token.updated_at = now;
  return true;
}

bool PgStore::delete_admin_token(const std::string& id, const AuditRecord* audit) {
  return impl_->call([&](Connection& c) {
    Transaction tx(c, Transaction::Kind::Write);
    if (c.run("DELETE FROM admin_tokens WHERE id = $1", id) == 0) {
      return false;
    }
    append_audit(c, audit);
    tx.commit();
    return true;
  });
}

std::optional<AdminTokenRecord> PgStore::find_admin_token(const std::string& id) {
  static const std::string kSql = std::string(kAdminTokenColumns) + "WHERE id = $1";
  return impl_->call([&](Connection& c) -> std::optional<AdminTokenRecord> {
    const Result r = c.query(kSql, id);
    if (r.empty()) {
      return std::nullopt;
    }
    return read_admin_token(r.row(0));
  });
}

std::optional<AdminTokenRecord> PgStore::find_admin_token_by_service(const std::string& name) {
  static const std::string kSql = std::string(kAdminTokenColumns) + "WHERE service_name = $1";
  return impl_->call([&](Connection& c) -> std::optional<AdminTokenRecord> {
    const Result r = c.query(kSql, name);
    if (r.empty()) {
      return std::nullopt;
    }
    return read_admin_token(r.row(0));
  });
}

std::vector<AdminTokenRecord> PgStore::list_admin_tokens(const PageRequest& page) {
  static const std::string kSql =
      std::string(kAdminTokenColumns) + "WHERE id > $1 ORDER BY id LIMIT $2";
  return impl_->call([&](Connection& c) {
    std::vector<AdminTokenRecord> out;
    const Result r = c.query(kSql, page.after, page_limit(page.limit));
    for (int i = 0; i < r.rows(); ++i) {
      out.push_back(read_admin_token(r.row(i)));
    }
    return out;
  });
}

// --- audit

void PgStore::insert_audit(AuditRecord& record) {
  if (record.at_us == 0) {
    record.at_us = core::unix_micros();
  }
  record.id = impl_->call([&](Connection& c) {
    Transaction tx(c, Transaction::Kind::Write);
    const std::int64_t id = append_audit(c, record);
    tx.commit();
    return id;
  });
}

std::vector<AuditRecord> PgStore::list_audit(const AuditQuery& q) {
  // As in SqliteStore: a filter left out still names its parameter, so that every variant
  // binds the same parameters; one given is a plain equality an index can serve.
  std::string sql =
      "SELECT id, at_us, actor_type, actor_id, actor_name, action, resource_type, resource_id,"
      " before_json, after_json, request_id, client_ip FROM admin_audit"
      " WHERE id < $1 AND at_us >= $2 AND at_us < $3";
  sql += q.resource_type.empty() ? " AND $4::text = ''" : " AND resource_type = $4";
  sql += q.resource_id.empty() ? " AND $5::text = ''" : " AND resource_id = $5";
  sql += q.actor_id.empty() ? " AND $6::text = ''" : " AND actor_id = $6";
  sql += " ORDER BY id DESC LIMIT $7";
  return impl_->call([&](Connection& c) {
    std::vector<AuditRecord> out;
    const Result r =
        c.query(sql, q.before_id.value_or(std::numeric_limits<std::int64_t>::max()), q.from_us,
                q.to_us, q.resource_type, q.resource_id, q.actor_id, page_limit(q.limit));
    for (int i = 0; i < r.rows(); ++i) {
      out.push_back(read_audit(r.row(i)));
    }
    return out;
  });
}

void PgStore::apply_config(const core::GatewayConfig& cfg) {
  const auto codec = impl_->codec();
  impl_->call([&](Connection& c) {
    Transaction tx(c, Transaction::Kind::Write);
    // The version moves only if a row changed, so restarting on the same database keeps
    // every cache built from the current catalog valid.
    const std::int64_t next = lock_config_version(c) + 1;
    if (!apply_config_rows(c, codec.get(), cfg, next, core::unix_seconds())) {
      return;  // nothing written; the rollback is a no-op
    }
    write_config_version(c, next);
    tx.commit();
  });
}

CatalogData PgStore::load_catalog() {
  const auto codec = impl_->codec();
  return impl_->call([&](Connection& c) {
    CatalogData data;
    // One snapshot: the version and the rows are consistent.
    Transaction tx(c, Transaction::Kind::Snapshot);
    data.version = read_config_version(c);
    data.providers = read_providers(c, codec.get());
    data.models = read_models(c);
    data.aliases = read_aliases(c);
    {
      const Result r = c.query(
          "SELECT name, litellm_provider, mode, max_input_tokens, max_output_tokens"
          " FROM price_models ORDER BY name");
      for (int i = 0; i < r.rows(); ++i) {
        const Row q = r.row(i);
        data.price_models.push_back(PriceModelRecord{q.text(0), q.text(1), q.text(2),
                                                     q.optional_integer(3), q.optional_integer(4)});
      }
    }
    {
      const Result r = c.query(
          "SELECT model_name, direction, modality, unit, tier, price, source"
          " FROM pricing_components ORDER BY model_name, direction, modality, unit, tier,"
          " source");
      for (int i = 0; i < r.rows(); ++i) {
        const Row q = r.row(i);
        data.prices.push_back(PriceComponentRecord{q.text(0), q.text(1), q.text(2), q.text(3),
                                                   q.text(4), q.text(5), q.text(6)});
      }
    }
    tx.commit();
    return data;
  });
}

// --- providers, models and aliases written through the admin API

void PgStore::insert_provider(ProviderRecord& p, const AuditRecord* audit) {
  const std::int64_t now = core::unix_seconds();
  if (p.id.empty()) {
    p.id = core::new_id("prov_");
  }
  const auto codec = impl_->codec();
  const StoredCredential credential = detail::store_credential(codec.get(), p.id, p.config.api_key);
  const core::ProviderConfig& cfg = p.config;
  impl_->call([&](Connection& c) {
    Transaction tx(c, Transaction::Kind::Write);
    const std::int64_t next = lock_config_version(c) + 1;
    write_unique(
        [&] {
          c.run(
              "INSERT INTO providers (id, name, type, base_url, credentials,"
              " credentials_encrypted, connect_timeout_ms, first_byte_timeout_ms,"
              " idle_timeout_ms, enabled, source, created_at, updated_at, version)"
              " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'admin', $11, $11, $12)",
              p.id, cfg.name, core::to_string(cfg.type), cfg.base_url, credential.value,
              credential.encrypted, cfg.connect_timeout.count(), cfg.first_byte_timeout.count(),
              cfg.idle_timeout.count(), p.enabled, now, next);
        },
        "a provider named '" + cfg.name + "' (or with id '" + p.id + "') already exists");
    write_config_version(c, next);
    append_audit(c, audit);
    tx.commit();
  });
  p.source = kSourceAdmin;
  p.created_at = now;
  p.updated_at = now;
}

bool PgStore::update_provider(ProviderRecord& p, const AuditRecord* audit) {
  const std::int64_t now = core::unix_seconds();
  const auto codec = impl_->codec();
  const StoredCredential credential = detail::store_credential(codec.get(), p.id, p.config.api_key);
  const core::ProviderConfig& cfg = p.config;
  const auto row = impl_->call([&](Connection& c) -> std::optional<ExistingRow> {
    Transaction tx(c, Transaction::Kind::Write);
    const std::int64_t next = lock_config_version(c) + 1;
    auto existing =
        existing_row(c, "SELECT source, name, created_at FROM providers WHERE id = $1", p.id);
    if (!existing) {
      return std::nullopt;
    }
    detail::refuse_config_row(*existing, "provider");
    if (existing->name != cfg.name) {
      const Result r = c.query(
          "SELECT name FROM models WHERE provider_id = $1 AND source = 'config' ORDER BY name"
          " LIMIT 1",
          p.id);
      if (!r.empty()) {
        throw ConflictError("provider '" + existing->name + "' is named by model '" +
                            r.row(0).text(0) +
                            "' of the configuration file: renaming it would break the file");
      }
    }
    write_unique(
        [&] {
          c.run(
              "UPDATE providers SET name = $2, type = $3, base_url = $4, credentials = $5,"
              " credentials_encrypted = $6, connect_timeout_ms = $7, first_byte_timeout_ms = $8,"
              " idle_timeout_ms = $9, enabled = $10, updated_at = $11, version = $12"
              " WHERE id = $1",
              p.id, cfg.name, core::to_string(cfg.type), cfg.base_url, credential.value,
              credential.encrypted, cfg.connect_timeout.count(), cfg.first_byte_timeout.count(),
              cfg.idle_timeout.count(), p.enabled, now, next);
        },
        "a provider named '" + cfg.name + "' already exists");
    write_config_version(c, next);
    append_audit(c, audit);
    tx.commit();
    return existing;
  });
  if (!row) {
    return false;
  }
  p.source = row->source;
  p.created_at = row->created_at;
  p.updated_at = now;
  return true;
}

bool PgStore::delete_provider(const std::string& id, const AuditRecord* audit) {
  return impl_->call([&](Connection& c) {
    Transaction tx(c, Transaction::Kind::Write);
    const std::int64_t next = lock_config_version(c) + 1;
    const auto row =
        existing_row(c, "SELECT source, name, created_at FROM providers WHERE id = $1", id);
    if (!row) {
      return false;
    }
    detail::refuse_config_row(*row, "provider");
    {
      const Result r =
          c.query("SELECT name FROM models WHERE provider_id = $1 ORDER BY name LIMIT 1", id);
      if (!r.empty()) {
        throw ConflictError("provider '" + row->name + "' is used by model '" + r.row(0).text(0) +
                            "'");
      }
    }
    c.run("DELETE FROM providers WHERE id = $1", id);
    write_config_version(c, next);
    append_audit(c, audit);
    tx.commit();
    return true;
  });
}

std::optional<ProviderRecord> PgStore::find_provider(const std::string& id) {
  static const std::string kSql = std::string(kProviderColumns) + "WHERE id = $1";
  const auto codec = impl_->codec();
  return impl_->call([&](Connection& c) -> std::optional<ProviderRecord> {
    const Result r = c.query(kSql, id);
    if (r.empty()) {
      return std::nullopt;
    }
    return read_provider(r.row(0), codec.get());
  });
}

std::vector<ProviderRecord> PgStore::list_providers() {
  const auto codec = impl_->codec();
  return impl_->call([&](Connection& c) { return read_providers(c, codec.get()); });
}

void PgStore::insert_model(ModelRecord& m, const AuditRecord* audit) {
  const std::int64_t now = core::unix_seconds();
  if (m.id.empty()) {
    m.id = core::new_id("model_");
  }
  if (m.config.upstream_model.empty()) {
    m.config.upstream_model = m.config.name;
  }
  impl_->call([&](Connection& c) {
    Transaction tx(c, Transaction::Kind::Write);
    const std::int64_t next = lock_config_version(c) + 1;
    const std::string provider_id = provider_of(c, m.config);
    refuse_taken_name(c, m.config.name, m.id);
    write_unique(
        [&] {
          c.run(
              "INSERT INTO models (id, name, provider_id, upstream_model, pricing_model, enabled,"
              " rpm_limit, tpm_limit, source, created_at, updated_at, version)"
              " VALUES ($1, $2, $3, $4, NULLIF($5, ''), $6, $7, $8, 'admin', $9, $9, $10)",
              m.id, m.config.name, provider_id, m.config.upstream_model, m.config.pricing_model,
              m.enabled, m.config.rpm_limit, m.config.tpm_limit, now, next);
        },
        "a model with id '" + m.id + "' already exists");
    write_config_version(c, next);
    append_audit(c, audit);
    tx.commit();
  });
  m.source = kSourceAdmin;
  m.created_at = now;
  m.updated_at = now;
}

bool PgStore::update_model(ModelRecord& m, const AuditRecord* audit) {
  const std::int64_t now = core::unix_seconds();
  if (m.config.upstream_model.empty()) {
    m.config.upstream_model = m.config.name;
  }
  const auto row = impl_->call([&](Connection& c) -> std::optional<ExistingRow> {
    Transaction tx(c, Transaction::Kind::Write);
    const std::int64_t next = lock_config_version(c) + 1;
    auto existing =
        existing_row(c, "SELECT source, name, created_at FROM models WHERE id = $1", m.id);
    if (!existing) {
      return std::nullopt;
    }
    detail::refuse_config_row(*existing, "model");
    const std::string provider_id = provider_of(c, m.config);
    if (existing->name != m.config.name) {
      refuse_taken_name(c, m.config.name, m.id);
      const Result r = c.query(
          "SELECT alias FROM model_aliases WHERE model_id = $1 AND source = 'config'"
          " ORDER BY alias LIMIT 1",
          m.id);
      if (!r.empty()) {
        throw ConflictError("model '" + existing->name + "' is named by alias '" +
                            r.row(0).text(0) +
                            "' of the configuration file: renaming it would break the file");
      }
    }
    c.run(
        "UPDATE models SET name = $2, provider_id = $3, upstream_model = $4,"
        " pricing_model = NULLIF($5, ''), enabled = $6, rpm_limit = $7, tpm_limit = $8,"
        " updated_at = $9, version = $10 WHERE id = $1",
        m.id, m.config.name, provider_id, m.config.upstream_model, m.config.pricing_model,
        m.enabled, m.config.rpm_limit, m.config.tpm_limit, now, next);
    write_config_version(c, next);
    append_audit(c, audit);
    tx.commit();
    return existing;
  });
  if (!row) {
    return false;
  }
  m.source = row->source;
  m.created_at = row->created_at;
  m.updated_at = now;
  return true;
}

bool PgStore::delete_model(const std::string& id, const AuditRecord* audit) {
  return impl_->call([&](Connection& c) {
    Transaction tx(c, Transaction::Kind::Write);
    const std::int64_t next = lock_config_version(c) + 1;
    const auto row =
        existing_row(c, "SELECT source, name, created_at FROM models WHERE id = $1", id);
    if (!row) {
      return false;
    }
    detail::refuse_config_row(*row, "model");
    {
      const Result r =
          c.query("SELECT alias FROM model_aliases WHERE model_id = $1 ORDER BY alias LIMIT 1", id);
      if (!r.empty()) {
        throw ConflictError("model '" + row->name + "' is the target of alias '" +
                            r.row(0).text(0) + "'");
      }
    }
    c.run("DELETE FROM models WHERE id = $1", id);
    write_config_version(c, next);
    append_audit(c, audit);
    tx.commit();
    return true;
  });
}

std::optional<ModelRecord> PgStore::find_model(const std::string& id) {
  static const std::string kSql = std::string(kModelColumns) + "WHERE m.id = $1";
  return impl_->call([&](Connection& c) -> std::optional<ModelRecord> {
    const Result r = c.query(kSql, id);
    if (r.empty()) {
      return std::nullopt;
    }
    return read_model(r.row(0));
  });
}

std::vector<ModelRecord> PgStore::list_models() {
  return impl_->call([](Connection& c) { return read_models(c); });
}

void PgStore::insert_alias(AliasRecord& a, const AuditRecord* audit) {
  const std::int64_t now = core::unix_seconds();
  impl_->call([&](Connection& c) {
    Transaction tx(c, Transaction::Kind::Write);
    const std::int64_t next = lock_config_version(c) + 1;
    const std::string model_id = target_of(c, a.config);
    refuse_taken_name(c, a.config.alias, {});
    c.run(
        "INSERT INTO model_aliases (alias, model_id, source, created_at, updated_at, version)"
        " VALUES ($1, $2, 'admin', $3, $3, $4)",
        a.config.alias, model_id, now, next);
    write_config_version(c, next);
    append_audit(c, audit);
    tx.commit();
  });
  a.source = kSourceAdmin;
  a.created_at = now;
  a.updated_at = now;
}

bool PgStore::update_alias(AliasRecord& a, const AuditRecord* audit) {
  const std::int64_t now = core::unix_seconds();
  const auto row = impl_->call([&](Connection& c) -> std::optional<ExistingRow> {
    Transaction tx(c, Transaction::Kind::Write);
    const std::int64_t next = lock_config_version(c) + 1;
    auto existing = existing_row(
        c, "SELECT source, alias, created_at FROM model_aliases WHERE alias = $1", a.config.alias);
    if (!existing) {
      return std::nullopt;
    }
    detail::refuse_config_row(*existing, "alias");
    const std::string model_id = target_of(c, a.config);
    c.run("UPDATE model_aliases SET model_id = $2, updated_at = $3, version = $4 WHERE alias = $1",
          a.config.alias, model_id, now, next);
    write_config_version(c, next);
    append_audit(c, audit);
    tx.commit();
    return existing;
  });
  if (!row) {
    return false;
  }
  a.source = row->source;
  a.created_at = row->created_at;
  a.updated_at = now;
  return true;
}

bool PgStore::delete_alias(const std::string& alias, const AuditRecord* audit) {
  return impl_->call([&](Connection& c) {
    Transaction tx(c, Transaction::Kind::Write);
    const std::int64_t next = lock_config_version(c) + 1;
    const auto row = existing_row(
        c, "SELECT source, alias, created_at FROM model_aliases WHERE alias = $1", alias);
    if (!row) {
      return false;
    }
    detail::refuse_config_row(*row, "alias");
    c.run("DELETE FROM model_aliases WHERE alias = $1", alias);
    write_config_version(c, next);
    append_audit(c, audit);
    tx.commit();
    return true;
  });
}

std::optional<AliasRecord> PgStore::find_alias(const std::string& alias) {
  static const std::string kSql = std::string(kAliasColumns) + "WHERE a.alias = $1";
  return impl_->call([&](Connection& c) -> std::optional<AliasRecord> {
    const Result r = c.query(kSql, alias);
    if (r.empty()) {
      return std::nullopt;
    }
    return read_alias(r.row(0));
  });
}

std::vector<AliasRecord> PgStore::list_aliases() {
  return impl_->call([](Connection& c) { return read_aliases(c); });
}

ImportResult PgStore::import_prices(const std::vector<PriceModelRecord>& models,
                                    const std::vector<PriceComponentRecord>& catalog_rows) {
  // Everything is validated before the transaction starts.
  const auto rows_by_model = detail::validate_import(models, catalog_rows);
  return impl_->call([&](Connection& c) {
    Transaction tx(c, Transaction::Kind::Write);
    const std::int64_t next = lock_config_version(c) + 1;
    const std::int64_t now = core::unix_seconds();
    ImportResult result;
    for (const auto& m : models) {
      const auto stored = find_price_model(c, m.name);
      const bool written = import_price_model(c, m, rows_by_model.at(m.name), stored.has_value(),
                                              stored.has_value() && *stored != m, now, next);
      if (!stored) {
        result.added.push_back(m.name);
      } else if (written) {
        result.changed.push_back(m.name);
      } else {
        ++result.unchanged;
      }
    }
    if (result.added.empty() && result.changed.empty()) {
      return result;  // nothing written; the rollback is a no-op
    }
    write_config_version(c, next);
    tx.commit();
    return result;
  });
}

void PgStore::replace_price_overrides(const std::vector<PriceComponentRecord>& rows) {
  const auto given = detail::validate_overrides(rows);
  impl_->call([&](Connection& c) {
    Transaction tx(c, Transaction::Kind::Write);
    const std::int64_t next = lock_config_version(c) + 1;
    const std::int64_t now = core::unix_seconds();
    std::map<ModelComponentKey, std::string> stored;
    {
      const Result r = c.query(
          "SELECT model_name, direction, modality, unit, tier, price FROM pricing_components"
          " WHERE source = 'override'");
      for (int i = 0; i < r.rows(); ++i) {
        const Row q = r.row(i);
        stored.emplace(ModelComponentKey{q.text(0), q.text(1), q.text(2), q.text(3), q.text(4)},
                       q.text(5));
      }
    }
    bool changed = false;
    for (const auto& [key, price] : stored) {
      if (!given.contains(key)) {
        const auto& [model, direction, modality, unit, tier] = key;
        delete_component(c, model, ComponentKey{direction, modality, unit, tier}, kSourceOverride);
        changed = true;
      }
    }
    for (const auto& [key, price] : given) {
      const auto it = stored.find(key);
      if (it != stored.end() && !detail::price_differs(it->second, price)) {
        continue;
      }
      const auto& [model, direction, modality, unit, tier] = key;
      upsert_component(c, model, ComponentKey{direction, modality, unit, tier}, price,
                       kSourceOverride, now, next);
      changed = true;
    }
    if (!changed) {
      return;  // nothing written; the rollback is a no-op
    }
    write_config_version(c, next);
    tx.commit();
  });
}

std::int64_t PgStore::count_price_models() {
  return impl_->call(
      [](Connection& c) { return c.query("SELECT COUNT(*) FROM price_models").row(0).integer(0); });
}

std::vector<PriceComponentRecord> PgStore::prices_of(const std::string& model_name) {
  return impl_->call([&](Connection& c) {
    std::vector<PriceComponentRecord> out;
    const Result r = c.query(
        "SELECT direction, modality, unit, tier, price, source FROM pricing_components"
        " WHERE model_name = $1 ORDER BY direction, modality, unit, tier, source",
        model_name);
    for (int i = 0; i < r.rows(); ++i) {
      const Row q = r.row(i);
      out.push_back(PriceComponentRecord{model_name, q.text(0), q.text(1), q.text(2), q.text(3),
                                         q.text(4), q.text(5)});
    }
    return out;
  });
}

void PgStore::set_admin_prices(const std::string& model_name,
                               const std::vector<PriceComponentRecord>& rows,
                               const AuditRecord* audit) {
  const auto given = detail::validate_admin_prices(model_name, rows);
  const std::int64_t now = core::unix_seconds();
  impl_->call([&](Connection& c) {
    Transaction tx(c, Transaction::Kind::Write);
    const std::int64_t next = lock_config_version(c) + 1;
    const auto stored = read_components(c, model_name, kSourceAdmin);
    for (const auto& [k, price] : stored) {
      if (!given.contains(k)) {
        delete_component(c, model_name, k, kSourceAdmin);
      }
    }
    for (const auto& [k, price] : given) {
      const auto it = stored.find(k);
      if (it == stored.end() || detail::price_differs(it->second, price)) {
        upsert_component(c, model_name, k, price, kSourceAdmin, now, next);
      }
    }
    write_config_version(c, next);
    append_audit(c, audit);
    tx.commit();
  });
}

void PgStore::insert_usage(std::span<const UsageRecord> batch) {
  insert_usage_marked(batch, {});
}

std::uint64_t PgStore::spool_mark(const std::string& spool) {
  return impl_->call([&](Connection& c) -> std::uint64_t {
    const Result r = c.query("SELECT seq FROM spool_marks WHERE spool = $1", spool);
    return r.empty() ? 0 : static_cast<std::uint64_t>(r.row(0).integer(0));
  });
}

std::optional<std::string> PgStore::secret_check(const std::string& name) {
  return impl_->call([&](Connection& c) -> std::optional<std::string> {
    const Result r = c.query("SELECT value FROM secret_checks WHERE name = $1", name);
    if (r.empty()) {
      return std::nullopt;
    }
    return std::string(r.row(0).text(0));
  });
}

std::string PgStore::claim_secret_check(const std::string& name, const std::string& value) {
  return impl_->call([&](Connection& c) -> std::string {
    c.query("INSERT INTO secret_checks (name, value, updated_at) VALUES ($1, $2, $3)"
            " ON CONFLICT (name) DO NOTHING",
            name, value, core::unix_micros());
    const Result r = c.query("SELECT value FROM secret_checks WHERE name = $1", name);
    return r.empty() ? value : std::string(r.row(0).text(0));
  });
}

void PgStore::set_secret_check(const std::string& name, const std::string& value) {
  impl_->call([&](Connection& c) {
    c.query("INSERT INTO secret_checks (name, value, updated_at) VALUES ($1, $2, $3)"
            " ON CONFLICT (name) DO UPDATE SET value = excluded.value,"
            " updated_at = excluded.updated_at",
            name, value, core::unix_micros());
  });
}

void PgStore::insert_usage_marked(std::span<const UsageRecord> batch,
                                  std::span<const SpoolMark> marks) {
  try {
    insert_usage_rows(batch, marks);
  } catch (const PgError& e) {
    // Class 22 (data exception: a malformed, out-of-range or NUL-holding value) and 23
    // (integrity constraint violation): these values, not the database.
    if (e.sqlstate().starts_with("22") || e.sqlstate().starts_with("23")) {
      throw RefusedError(e.what());
    }
    throw;
  }
}

void PgStore::insert_usage_rows(std::span<const UsageRecord> batch,
                                std::span<const SpoolMark> marks) {
  if (batch.empty() && marks.empty()) {
    return;
  }
  // Costs are checked once, outside the transaction (which may run twice).
  std::vector<std::optional<core::Money>> moneys;
  std::vector<std::optional<std::string>> costs;
  moneys.reserve(batch.size());
  costs.reserve(batch.size());
  for (const auto& r : batch) {
    std::optional<core::Money> money;
    std::optional<std::string> cost;
    if (!r.cost_usd.empty()) {
      money = core::Money::parse(r.cost_usd);
      if (money) {  // else unknown rather than a failed batch
        cost = detail::is_plain_decimal(r.cost_usd) ? r.cost_usd : money->to_string();
      }
    }
    moneys.push_back(std::move(money));
    costs.push_back(std::move(cost));
  }
  impl_->call([&](Connection& c) {
    Transaction tx(c, Transaction::Kind::Write);
    std::unordered_set<std::string> inserted;
    for (std::size_t begin = 0; begin < batch.size(); begin += kUsageRowsPerInsert) {
      const std::size_t end = std::min(batch.size(), begin + kUsageRowsPerInsert);
      Params params;
      params.reserve((end - begin) * kUsageColumnCount);
      for (std::size_t i = begin; i < end; ++i) {
        const UsageRecord& r = batch[i];
        params.add(r.request_id);
        params.add(r.key_id);
        params.add(r.model);
        params.add(r.upstream_model);
        params.add(r.provider);
        params.add(r.endpoint);
        params.add(r.status);
        params.add(r.prompt_tokens);
        params.add(r.completion_tokens);
        params.add(r.cached_tokens);
        params.add(r.reasoning_tokens);
        params.add(r.overhead_us);
        params.add(r.upstream_us);
        params.add(r.stream);
        params.add(r.usage_reported);
        params.add(r.created_at_us);
        params.add(null_if_empty(r.client_request_id));
        params.add(null_if_empty(r.pricing_model));
        params.add(null_if_empty(r.service_tier));
        params.add(r.cache_write_tokens);
        params.add(costs[i]);
        params.add(null_if_empty(r.cost_status));
        params.add(null_if_empty(r.prices_json));
      }
      const Result rows = c.query(usage_insert_sql(end - begin), params);
      for (int i = 0; i < rows.rows(); ++i) {
        inserted.insert(rows.row(i).text(0));
      }
    }
    detail::SpendSums sums;
    for (std::size_t i = 0; i < batch.size(); ++i) {
      const UsageRecord& r = batch[i];
      if (inserted.erase(r.request_id) != 0) {  // once per stored row
        sums.add(r.key_id, r.created_at_us, r.model, moneys[i], r.prompt_tokens,
                 r.completion_tokens);
      }
    }
    write_spend(c, sums, core::unix_seconds());
    for (const auto& m : marks) {
      c.run(
          "INSERT INTO spool_marks (spool, seq) VALUES ($1, $2)"
          " ON CONFLICT (spool) DO UPDATE SET seq = excluded.seq"
          " WHERE excluded.seq > spool_marks.seq",
          m.spool, static_cast<std::int64_t>(m.seq));
    }
    tx.commit();
  });
}

std::vector<SpendRow> PgStore::spend(const std::string& key_id, const std::string& from_day,
                                     const std::string& to_day) {
  return impl_->call([&](Connection& c) {
    std::vector<SpendRow> out;
    const Result r = c.query(
        "SELECT day, model, cost_usd, requests, unpriced_requests, prompt_tokens,"
        " completion_tokens FROM spend_daily WHERE key_id = $1 AND day >= $2 AND day <= $3"
        " ORDER BY day, model",
        key_id, from_day, to_day);
    for (int i = 0; i < r.rows(); ++i) {
      const Row q = r.row(i);
      out.push_back(SpendRow{key_id, q.text(0), q.text(1), canonical_cost(q.view(2)), q.integer(3),
                             q.integer(4), q.integer(5), q.integer(6)});
    }
    return out;
  });
}

void PgStore::rebuild_spend() {
  impl_->call([&](Connection& c) {
    Transaction tx(c, Transaction::Kind::Write);
    // Writers of usage wait until the rebuild commits, then add their rows to the rebuilt
    // sums; usage committed before the lock is read below (READ COMMITTED: each statement
    // sees what committed before it started).
    c.exec("LOCK TABLE spend_daily IN EXCLUSIVE MODE");
    detail::SpendSums sums;
    c.for_each_row(
        "SELECT key_id, created_at_us, model, cost_usd, prompt_tokens, completion_tokens, id"
        " FROM usage_records",
        Params(), [&](const Row& q) {
          std::optional<core::Money> cost;
          if (!q.is_null(3)) {
            cost = core::Money::parse(q.view(3));
            if (!cost) {
              throw std::runtime_error("postgres: usage_records.cost_usd of row " + q.text(6) +
                                       " is not an exact decimal");
            }
          }
          sums.add(q.view(0), q.integer(1), q.view(2), cost, q.integer(4), q.integer(5));
        });
    c.run("DELETE FROM spend_daily");
    write_spend(c, sums, core::unix_seconds());
    tx.commit();
  });
}

void PgStore::insert_budget_event(const BudgetEvent& e) {
  impl_->call([&](Connection& c) {
    c.run(
        "INSERT INTO budget_events (key_id, period, kind, spent_usd, budget_usd, at_us)"
        " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (key_id, period, kind) DO NOTHING",
        e.key_id, e.period, e.kind, e.spent_usd, e.budget_usd, e.at_us);
  });
}

std::vector<BudgetEvent> PgStore::budget_events(const std::string& key_id) {
  return impl_->call([&](Connection& c) {
    std::vector<BudgetEvent> out;
    const Result r = c.query(
        "SELECT period, kind, spent_usd, budget_usd, at_us FROM budget_events WHERE key_id = $1"
        " ORDER BY at_us, id",
        key_id);
    for (int i = 0; i < r.rows(); ++i) {
      const Row q = r.row(i);
      out.push_back(BudgetEvent{key_id, q.text(0), q.text(1), q.text(2), q.text(3), q.integer(4)});
    }
    return out;
  });
}

std::int64_t PgStore::count_usage() {
  return impl_->call([](Connection& c) {
    return c.query("SELECT COUNT(*) FROM usage_records").row(0).integer(0);
  });
}

std::vector<UsageTotals> PgStore::usage_report(const UsageQuery& q) {
  const bool by_day = q.group_by == "day";
  std::string_view column = "''";  // the column holding a row's group (by day: computed)
  if (q.group_by == "model") {
    column = "model";
  } else if (q.group_by == "key") {
    column = "key_id";
  } else if (q.group_by == "provider") {
    column = "provider";
  } else if (!by_day && !q.group_by.empty()) {
    throw std::invalid_argument("usage report: unknown group_by '" + q.group_by + "'");
  }
  std::string sql =
      "SELECT created_at_us, cost_usd, prompt_tokens, completion_tokens,"
      " cached_tokens, reasoning_tokens, id, ";
  sql += column;
  sql += " FROM usage_records WHERE created_at_us >= $1 AND created_at_us < $2";
  sql += q.key_id.empty() ? " AND $3::text = ''" : " AND key_id = $3";
  sql += q.model.empty() ? " AND $4::text = ''" : " AND model = $4";
  sql += q.provider.empty() ? " AND $5::text = ''" : " AND provider = $5";

  return impl_->call([&](Connection& c) {
    // Money is added in C++ (exact), never by the database.
    std::map<std::string, detail::UsageSum, std::less<>> sums;
    std::int64_t last_day = std::numeric_limits<std::int64_t>::min();
    std::string day_text;
    c.for_each_row(
        sql, Params(q.from_us, q.to_us, q.key_id, q.model, q.provider), [&](const Row& row) {
          std::string_view name = row.view(7);
          if (by_day) {
            // Rows mostly come in time order: format a day once per run of rows.
            if (const std::int64_t day = detail::utc_day(row.integer(0)); day != last_day) {
              last_day = day;
              day_text = detail::format_day(day);
            }
            name = day_text;
          }
          auto it = sums.find(name);
          if (it == sums.end()) {
            it = sums.emplace(std::string(name), detail::UsageSum{}).first;
          }
          detail::UsageSum& sum = it->second;
          ++sum.totals.requests;
          if (row.is_null(1)) {
            ++sum.totals.unpriced_requests;
          } else if (const auto cost = core::Money::parse(row.view(1))) {
            sum.cost += *cost;
          } else {
            throw std::runtime_error("postgres: usage_records.cost_usd of row " + row.text(6) +
                                     " is not an exact decimal");
          }
          sum.totals.prompt_tokens += row.integer(2);
          sum.totals.completion_tokens += row.integer(3);
          sum.totals.cached_tokens += row.integer(4);
          sum.totals.reasoning_tokens += row.integer(5);
        });
    return detail::usage_report_rows(sums, q);
  });
}

std::vector<UsageRecord> PgStore::recent_usage(std::size_t limit) {
  static const std::string kSql = "SELECT " + std::string(kUsageColumns) +
                                  " FROM usage_records ORDER BY created_at_us DESC, id DESC"
                                  " LIMIT $1";
  return impl_->call([&](Connection& c) {
    std::vector<UsageRecord> out;
    const Result r = c.query(kSql, static_cast<std::int64_t>(std::min<std::size_t>(
                                       limit, std::numeric_limits<std::int64_t>::max())));
    for (int i = 0; i < r.rows(); ++i) {
      out.push_back(read_usage(r.row(i)));
    }
    return out;
  });
}

}  // namespace llmgw::store

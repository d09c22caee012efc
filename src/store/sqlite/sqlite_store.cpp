#include "store/sqlite/sqlite_store.hpp"

#include "core/log.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <thread>
#include <unordered_map>
#include <utility>

#include "core/ids.hpp"
#include "core/money.hpp"
#include "store/detail.hpp"
#include "store/sqlite/migrations.hpp"

namespace llmgw::store {
namespace {

using detail::ComponentKey;
using detail::ExistingRow;
using detail::from_json_array;
using detail::from_json_object;
using detail::kSourceAdmin;
using detail::kSourceCatalog;
using detail::kSourceConfig;
using detail::kSourceOverride;
using detail::ModelComponentKey;
using detail::StoredCredential;
using detail::to_json_array;
using detail::to_json_object;

constexpr int kBusyTimeoutMs = 5'000;
/// The migration that makes usage request ids unique (removing repeated rows first).
constexpr int kUsageRequestIdsMigration = 4;
/// A usage insert yields the CPU after this many rows (about 0.1 ms of work).
constexpr std::size_t kUsageRowsPerYield = 64;
/// How much of a statement's SQL an error message quotes (enough to tell which one failed).
constexpr std::size_t kSqlExcerptChars = 60;

/// An SQLite failure. Derives from std::runtime_error (what callers catch); the extended
/// result code lets this file tell a constraint violation from other failures.
class SqliteError : public std::runtime_error {
 public:
  SqliteError(int code, const std::string& message) : std::runtime_error(message), code_(code) {}
  [[nodiscard]] int code() const noexcept { return code_; }

 private:
  int code_;
};

std::string sql_excerpt(std::string_view sql) {
  if (sql.size() <= kSqlExcerptChars) {
    return std::string(sql);
  }
  return std::string(sql.substr(0, kSqlExcerptChars)) + "...";
}

// Messages carry SQLite's own text and the SQL, never bound values: those may be secrets.
[[noreturn]] void throw_error(sqlite3* db, int code, std::string_view sql) {
  throw SqliteError(
      code, "sqlite: " + std::string(sqlite3_errmsg(db)) + " (in `" + sql_excerpt(sql) + "`)");
}

/// Owns one prepared statement.
class Statement {
 public:
  Statement(sqlite3* db, std::string_view sql) {
    // PERSISTENT: these statements live as long as the connection.
    const int rc = sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()),
                                      SQLITE_PREPARE_PERSISTENT, &stmt_, nullptr);
    if (rc != SQLITE_OK) {
      sqlite3_finalize(stmt_);
      throw_error(db, rc, sql);
    }
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(Statement&& other) noexcept : stmt_(std::exchange(other.stmt_, nullptr)) {}
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  Statement& operator=(Statement&&) = delete;

  [[nodiscard]] sqlite3_stmt* get() const noexcept { return stmt_; }

 private:
  sqlite3_stmt* stmt_ = nullptr;
};

template <typename T>
struct IsOptional : std::false_type {};
template <typename T>
struct IsOptional<std::optional<T>> : std::true_type {};

/// One use of a cached statement. Resetting it on destruction matters beyond tidiness: a
/// statement left mid-step keeps its read transaction open, and the connection would go on
/// reading an old snapshot, blind to what other processes commit.
class Query {
 public:
  explicit Query(sqlite3_stmt* stmt) noexcept : stmt_(stmt) {}
  ~Query() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  Query(const Query&) = delete;
  Query& operator=(const Query&) = delete;

  /// Binds `values` to parameters ?1, ?2, ... in order (text is copied by SQLite).
  template <typename... Values>
  Query& bind(const Values&... values) {
    int index = 0;
    (bind_one(++index, values, SQLITE_TRANSIENT), ...);
    return *this;
  }

  /// Like `bind`, but text is not copied: every value must outlive the next `reset()` (or
  /// the Query). For the usage hot loop, where the copies were a visible share of the cost.
  template <typename... Values>
  Query& bind_borrowed(const Values&... values) {
    int index = 0;
    (bind_one(++index, values, SQLITE_STATIC), ...);
    return *this;
  }

  /// Makes the statement ready to run again. The bindings stay (clearing them is a visible
  /// cost in the usage hot loop): the next run must bind every parameter again, which
  /// `bind` and `bind_borrowed` do. The destructor clears them, so no borrowed text outlives
  /// the Query.
  void reset() noexcept { sqlite3_reset(stmt_); }

  /// Advances to the next row: true if there is one, false when the statement is done.
  bool step() {
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) {
      return true;
    }
    if (rc != SQLITE_DONE) {
      throw_error(sqlite3_db_handle(stmt_), rc, sqlite3_sql(stmt_));
    }
    return false;
  }

  /// Runs a statement that returns no rows.
  void run() {
    while (step()) {
    }
  }

  [[nodiscard]] bool is_null(int column) const noexcept {
    return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
  }
  [[nodiscard]] std::int64_t integer(int column) const noexcept {
    return sqlite3_column_int64(stmt_, column);
  }
  [[nodiscard]] bool boolean(int column) const noexcept { return integer(column) != 0; }
  [[nodiscard]] std::string text(int column) const {
    const auto* data = sqlite3_column_text(stmt_, column);
    if (data == nullptr) {
      return {};
    }
    return {reinterpret_cast<const char*>(data),
            static_cast<std::size_t>(sqlite3_column_bytes(stmt_, column))};
  }
  /// Valid until the next step() or reset of the statement.
  [[nodiscard]] std::string_view text_view(int column) const noexcept {
    const auto* data = sqlite3_column_text(stmt_, column);
    if (data == nullptr) {
      return {};
    }
    return {reinterpret_cast<const char*>(data),
            static_cast<std::size_t>(sqlite3_column_bytes(stmt_, column))};
  }
  [[nodiscard]] std::optional<std::int64_t> optional_integer(int column) const noexcept {
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
  template <typename T>
  void bind_one(int index, const T& value, sqlite3_destructor_type text_lifetime) {
    int rc = SQLITE_OK;
    if constexpr (std::is_same_v<T, std::nullptr_t>) {
      rc = sqlite3_bind_null(stmt_, index);
    } else if constexpr (IsOptional<T>::value) {
      if (value) {
        bind_one(index, *value, text_lifetime);
      } else {
        rc = sqlite3_bind_null(stmt_, index);
      }
    } else if constexpr (std::is_same_v<T, bool>) {
      rc = sqlite3_bind_int(stmt_, index, value ? 1 : 0);
    } else if constexpr (std::is_integral_v<T>) {
      rc = sqlite3_bind_int64(stmt_, index, static_cast<sqlite3_int64>(value));
    } else {
      const std::string_view s(value);
      // A null data pointer would bind SQL NULL, not the empty string.
      rc = sqlite3_bind_text64(stmt_, index, s.empty() ? "" : s.data(), s.size(), text_lifetime,
                               SQLITE_UTF8);
    }
    if (rc != SQLITE_OK) {
      throw_error(sqlite3_db_handle(stmt_), rc, sqlite3_sql(stmt_));
    }
  }

  sqlite3_stmt* stmt_;
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

/// One SQLite connection with its prepared-statement cache. Not thread-safe: the store
/// serialises calls with its mutex.
class Connection {
 public:
  explicit Connection(const std::string& path) {
    configure_sqlite_once();
    // NOMUTEX: the store's own mutex already serialises every use of this connection.
    const int rc =
        sqlite3_open_v2(path.c_str(), &db_,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
    if (rc != SQLITE_OK) {
      const std::string message = db_ != nullptr ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
      sqlite3_close(db_);
      throw SqliteError(rc, "sqlite: cannot open " + path + ": " + message);
    }
    sqlite3_extended_result_codes(db_, 1);
    try {
      // The busy timeout first: switching to WAL takes a lock another process may hold.
      exec("PRAGMA busy_timeout = " + std::to_string(kBusyTimeoutMs));
      std::string mode;
      {
        Query q = query("PRAGMA journal_mode = WAL");
        if (q.step()) {
          mode = q.text(0);
        }
      }
      // An in-memory database reports "memory" and cannot use WAL; anything else is a file
      // system without shared-memory support, where the CLI and server could not coexist.
      if (mode != "wal" && mode != "memory") {
        throw SqliteError(SQLITE_ERROR, "sqlite: cannot use WAL for " + path +
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

  ~Connection() {
    statements_.clear();  // finalize before close, or close fails with SQLITE_BUSY
    sqlite3_close(db_);
  }

  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  /// A use of the cached statement for `sql` (prepared on first use).
  Query query(std::string_view sql) {
    auto it = statements_.find(sql);
    if (it == statements_.end()) {
      it = statements_.emplace(std::string(sql), Statement(db_, sql)).first;
    }
    return Query(it->second.get());
  }

  /// Runs one or more statements that return nothing, uncached (DDL, pragmas).
  void exec(const std::string& sql) {
    const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) {
      throw_error(db_, rc, sql);
    }
  }

  [[nodiscard]] sqlite3* get() const noexcept { return db_; }

 private:
  sqlite3* db_ = nullptr;
  std::unordered_map<std::string, Statement, SqlHash, std::equal_to<>> statements_;
};

/// BEGIN on construction; ROLLBACK on destruction unless committed. Writers use IMMEDIATE
/// so that they wait (busy timeout) for the write lock up front: a deferred transaction
/// that reads first and then writes can fail at once with SQLITE_BUSY_SNAPSHOT when another
/// process committed in between.
class Transaction {
 public:
  enum class Kind : std::uint8_t { Read, Write };

  Transaction(Connection& connection, Kind kind) : connection_(connection) {
    connection_.query(kind == Kind::Write ? "BEGIN IMMEDIATE" : "BEGIN DEFERRED").run();
  }
  ~Transaction() {
    if (active_) {
      // Nothing useful to do if this fails: SQLite may already have rolled back itself.
      sqlite3_exec(connection_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
    }
  }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  void commit() {
    connection_.query("COMMIT").run();
    active_ = false;
  }

 private:
  Connection& connection_;
  bool active_ = true;
};

std::int64_t read_config_version(Connection& c) {
  Query q = c.query("SELECT version FROM config_version WHERE id = 1");
  if (!q.step()) {
    throw std::runtime_error("sqlite: config_version row is missing (database not migrated?)");
  }
  return q.integer(0);
}

/// Bumps config_version inside the caller's write transaction; returns the new value.
std::int64_t bump_config_version(Connection& c) {
  const std::int64_t next = read_config_version(c) + 1;
  c.query("UPDATE config_version SET version = ?1 WHERE id = 1").bind(next).run();
  return next;
}

/// The LIMIT of a page of `limit` rows: one more, so that the caller can tell whether a
/// next page exists; -1 (no limit) for 0.
std::int64_t page_limit(std::size_t limit) noexcept {
  constexpr auto kMax = static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max());
  if (limit == 0 || limit >= kMax) {
    return -1;
  }
  return static_cast<std::int64_t>(limit) + 1;
}

/// Runs a write; a uniqueness violation (a taken id, name or hash) becomes ConflictError
/// with `conflict` as its message.
template <typename Write>
void write_unique(Write&& write, const std::string& conflict) {
  try {
    std::forward<Write>(write)();
  } catch (const SqliteError& e) {
    if (e.code() == SQLITE_CONSTRAINT_PRIMARYKEY || e.code() == SQLITE_CONSTRAINT_UNIQUE) {
      throw ConflictError(conflict);
    }
    throw;
  }
}

/// Binds SQL NULL for an empty string (cheaper than NULLIF in the statement, per row).
std::optional<std::string_view> null_if_empty(std::string_view text) noexcept {
  if (text.empty()) {
    return std::nullopt;
  }
  return text;
}

// --- audit

/// Stores `a` inside the caller's write transaction, so it commits or rolls back with the
/// write it describes. Returns the id assigned.
std::int64_t append_audit(Connection& c, const AuditRecord& a) {
  c.query(
       "INSERT INTO admin_audit (at_us, actor_type, actor_id, actor_name, action,"
       " resource_type, resource_id, before_json, after_json, request_id, client_ip)"
       " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)")
      .bind(a.at_us != 0 ? a.at_us : core::unix_micros(), a.actor_type, a.actor_id, a.actor_name,
            a.action, a.resource_type, a.resource_id, null_if_empty(a.before_json),
            null_if_empty(a.after_json), a.request_id, a.client_ip)
      .run();
  return sqlite3_last_insert_rowid(c.get());
}

void append_audit(Connection& c, const AuditRecord* a) {
  if (a != nullptr) {
    append_audit(c, *a);
  }
}

AuditRecord read_audit(const Query& q) {
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

ApiKeyRecord read_key(const Query& q) {
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
  key.allowed_models = from_json_array(q.text(9), "api_keys.allowed_models");
  key.created_at = q.integer(10);
  key.updated_at = q.integer(11);
  key.version = q.integer(12);
  key.budget_period = q.text(13);
  key.max_concurrent = q.optional_integer(14);
  key.tags = from_json_array(q.text(15), "api_keys.tags");
  key.metadata = from_json_object(q.text(16), "api_keys.metadata");
  return key;
}

std::optional<ApiKeyRecord> find_key(Connection& c, const std::string& sql,
                                     const std::string& value) {
  Query q = c.query(sql);
  q.bind(value);
  if (!q.step()) {
    return std::nullopt;
  }
  return read_key(q);
}

/// Records that `key_hash` no longer opens a key, stamped with the version of the change, so
/// key_hashes_changed_since reports it to every cache.
void retire_key_hash(Connection& c, const std::string& key_hash, const std::string& key_id,
                     std::int64_t now, std::int64_t version) {
  c.query(
       "INSERT INTO retired_key_hashes (key_hash, key_id, retired_at, version)"
       " VALUES (?1, ?2, ?3, ?4) ON CONFLICT (key_hash) DO UPDATE SET key_id = excluded.key_id,"
       " retired_at = excluded.retired_at, version = excluded.version")
      .bind(key_hash, key_id, now, version)
      .run();
}

// --- admin users and tokens

constexpr std::string_view kAdminUserColumns =
    "SELECT id, email, password_hash, role, enabled, created_at, updated_at FROM admin_users ";

AdminUserRecord read_admin_user(const Query& q) {
  return AdminUserRecord{q.text(0),    q.text(1),    q.text(2),   q.text(3),
                         q.boolean(4), q.integer(5), q.integer(6)};
}

constexpr std::string_view kAdminTokenColumns =
    "SELECT id, service_name, token_hash, role, enabled, created_at, updated_at"
    " FROM admin_tokens ";

AdminTokenRecord read_admin_token(const Query& q) {
  return AdminTokenRecord{q.text(0),    q.text(1),    q.text(2),   q.text(3),
                          q.boolean(4), q.integer(5), q.integer(6)};
}

/// The created_at that `sql` selects for ?1 = `id`; nullopt when there is no such row.
std::optional<std::int64_t> created_at_of(Connection& c, std::string_view sql,
                                          const std::string& id) {
  Query q = c.query(sql);
  q.bind(id);
  if (!q.step()) {
    return std::nullopt;
  }
  return q.integer(0);
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

ProviderRecord read_provider(const Query& q, const SecretCodec* codec) {
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
  // A row this build cannot use must not stop the whole catalog loading: a provider type
  // from a newer build reads as disabled. Credentials it holds no key for read as unreadable
  // (left out of the catalog by Snapshot::build), `enabled` as stored: an admin write of this
  // record must not turn the flag into a stored "disabled".
  const std::string type = q.text(2);
  if (!core::parse_provider_type(type, p.config.type)) {
    core::LogLine(core::LogLevel::Warn, "provider disabled: type not supported by this build")
        .field("provider", p.config.name)
        .field("type", type)
        .emit();
    p.enabled = false;
  } else if (auto api_key = detail::open_credential(codec, p.id, p.config.name, q.text_view(4),
                                                    q.boolean(5))) {
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
  Query q = c.query(kSql);
  while (q.step()) {
    out.push_back(read_provider(q, codec));
  }
  return out;
}

std::optional<ProviderRecord> read_provider_by_id(Connection& c, const SecretCodec* codec,
                                                  const std::string& id) {
  static const std::string kSql = std::string(kProviderColumns) + "WHERE id = ?1";
  Query q = c.query(kSql);
  q.bind(id);
  if (!q.step()) {
    return std::nullopt;
  }
  return read_provider(q, codec);
}

constexpr std::string_view kModelColumns =
    "SELECT m.id, m.name, p.name, m.upstream_model, m.enabled, m.source, m.pricing_model,"
    " m.created_at, m.updated_at, m.rpm_limit, m.tpm_limit"
    " FROM models m JOIN providers p ON p.id = m.provider_id ";

ModelRecord read_model(const Query& q) {
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
  Query q = c.query(kSql);
  while (q.step()) {
    out.push_back(read_model(q));
  }
  return out;
}

constexpr std::string_view kAliasColumns =
    "SELECT a.alias, m.name, a.source, a.created_at, a.updated_at FROM model_aliases a"
    " JOIN models m ON m.id = a.model_id ";

AliasRecord read_alias(const Query& q) {
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
  Query q = c.query(kSql);
  while (q.step()) {
    out.push_back(read_alias(q));
  }
  return out;
}

/// Applies `cfg` inside the caller's write transaction, stamping changes with `next`.
/// Returns whether any row changed.
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
    Query q = c.query(
        "SELECT name, id, source, provider_id, upstream_model, COALESCE(pricing_model, ''),"
        " rpm_limit, tpm_limit FROM models");
    while (q.step()) {
      models.emplace(q.text(0), ModelRow{q.text(1), q.text(2), q.text(3), q.text(4), q.text(5),
                                         q.optional_integer(6), q.optional_integer(7)});
    }
  }
  std::map<std::string, AliasRow> aliases;
  {
    Query q = c.query("SELECT alias, source, model_id FROM model_aliases");
    while (q.step()) {
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

  // Order matters for the foreign keys: stale aliases go first (they may point at stale
  // models), then rows are inserted or re-pointed parents first, and only then are stale
  // models and providers deleted, once nothing the file keeps refers to them.
  for (auto it = aliases.begin(); it != aliases.end();) {
    if (it->second.source == kSourceConfig && !cfg_aliases.contains(it->first)) {
      c.query("DELETE FROM model_aliases WHERE alias = ?1").bind(it->first).run();
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
      c.query(
           "INSERT INTO providers (id, name, type, base_url, credentials,"
           " credentials_encrypted, connect_timeout_ms, first_byte_timeout_ms, idle_timeout_ms,"
           " source, created_at, updated_at, version)"
           " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'config', ?10, ?10, ?11)")
          .bind(id, p.name, type, p.base_url, credential.value, credential.encrypted,
                p.connect_timeout.count(), p.first_byte_timeout.count(), p.idle_timeout.count(),
                now, next)
          .run();
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
    c.query(
         "UPDATE providers SET type = ?2, base_url = ?3, credentials = ?4,"
         " credentials_encrypted = ?5, connect_timeout_ms = ?6, first_byte_timeout_ms = ?7,"
         " idle_timeout_ms = ?8, updated_at = ?9, version = ?10 WHERE id = ?1")
        .bind(it->second.id, type, p.base_url, credential.value, credential.encrypted,
              p.connect_timeout.count(), p.first_byte_timeout.count(), p.idle_timeout.count(), now,
              next)
        .run();
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
    // Stale config aliases are gone and config aliases never take a model name (checked
    // above): an alias of this name is an admin one.
    if (aliases.contains(m.name)) {
      throw std::runtime_error("config model '" + m.name +
                               "' collides with an alias created through the admin API;"
                               " rename one of them");
    }
    auto it = models.find(m.name);
    if (it == models.end()) {
      const std::string id = core::new_id("model_");
      c.query(
           "INSERT INTO models (id, name, provider_id, upstream_model, pricing_model, rpm_limit,"
           " tpm_limit, source, created_at, updated_at, version)"
           " VALUES (?1, ?2, ?3, ?4, NULLIF(?5, ''), ?6, ?7, 'config', ?8, ?8, ?9)")
          .bind(id, m.name, provider_id, upstream, m.pricing_model, m.rpm_limit, m.tpm_limit, now,
                next)
          .run();
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
    c.query(
         "UPDATE models SET provider_id = ?2, upstream_model = ?3, pricing_model = NULLIF(?4, ''),"
         " rpm_limit = ?5, tpm_limit = ?6, updated_at = ?7, version = ?8 WHERE id = ?1")
        .bind(it->second.id, provider_id, upstream, m.pricing_model, m.rpm_limit, m.tpm_limit, now,
              next)
        .run();
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
      c.query(
           "INSERT INTO model_aliases (alias, model_id, source, created_at, updated_at,"
           " version) VALUES (?1, ?2, 'config', ?3, ?3, ?4)")
          .bind(a.alias, model_id, now, next)
          .run();
      aliases.emplace(a.alias, AliasRow{std::string(kSourceConfig), model_id});
      changed = true;
      continue;
    }
    detail::reject_admin_collision(it->second.source, "alias", a.alias);
    if (it->second.model_id == model_id) {
      continue;
    }
    c.query(
         "UPDATE model_aliases SET model_id = ?2, updated_at = ?3, version = ?4"
         " WHERE alias = ?1")
        .bind(a.alias, model_id, now, next)
        .run();
    it->second.model_id = model_id;
    changed = true;
  }

  for (const auto& [name, row] : models) {
    if (row.source != kSourceConfig || cfg_models.contains(name)) {
      continue;
    }
    {
      // Only an admin alias can still point here: config aliases were re-pointed above.
      Query q = c.query("SELECT alias FROM model_aliases WHERE model_id = ?1 LIMIT 1");
      q.bind(row.id);
      if (q.step()) {
        throw std::runtime_error("model '" + name + "' is no longer in the config file" +
                                 " but alias '" + q.text(0) + "' still refers to it");
      }
    }
    c.query("DELETE FROM models WHERE id = ?1").bind(row.id).run();
    changed = true;
  }

  for (const auto& [name, row] : providers) {
    if (row.source != kSourceConfig || cfg_providers.contains(name)) {
      continue;
    }
    {
      Query q = c.query("SELECT name FROM models WHERE provider_id = ?1 LIMIT 1");
      q.bind(row.id);
      if (q.step()) {
        throw std::runtime_error("provider '" + name + "' is no longer in the config file" +
                                 " but model '" + q.text(0) + "' still refers to it");
      }
    }
    c.query("DELETE FROM providers WHERE id = ?1").bind(row.id).run();
    changed = true;
  }
  return changed;
}

/// The row `sql` selects (source, name, created_at) for ?1 = `key`; nullopt when none.
std::optional<ExistingRow> existing_row(Connection& c, std::string_view sql,
                                        const std::string& key) {
  Query q = c.query(sql);
  q.bind(key);
  if (!q.step()) {
    return std::nullopt;
  }
  return ExistingRow{q.text(0), q.text(1), q.integer(2)};
}

/// Model and alias names are one namespace (a request's `model` names either), so a name is
/// taken by another model (not `own_model_id`) or by any alias.
void refuse_taken_name(Connection& c, const std::string& name, const std::string& own_model_id) {
  {
    Query q = c.query("SELECT 1 FROM models WHERE name = ?1 AND id <> ?2");
    q.bind(name, own_model_id);
    if (q.step()) {
      throw ConflictError("a model named '" + name + "' already exists");
    }
  }
  Query q = c.query("SELECT 1 FROM model_aliases WHERE alias = ?1");
  q.bind(name);
  if (q.step()) {
    throw ConflictError("an alias named '" + name + "' already exists");
  }
}

/// The id of the provider `m.provider` names. Throws ReferenceError when there is none.
std::string provider_of(Connection& c, const core::ModelConfig& m) {
  Query q = c.query("SELECT id FROM providers WHERE name = ?1");
  q.bind(m.provider);
  if (!q.step()) {
    throw ReferenceError("model '" + m.name + "' names unknown provider '" + m.provider + "'");
  }
  return q.text(0);
}

/// The id of the model `a.model` names. Throws ReferenceError when there is none.
std::string target_of(Connection& c, const core::AliasConfig& a) {
  Query q = c.query("SELECT id FROM models WHERE name = ?1");
  q.bind(a.model);
  if (!q.step()) {
    throw ReferenceError("alias '" + a.alias + "' names unknown model '" + a.model + "'");
  }
  return q.text(0);
}

// --- prices

std::optional<PriceModelRecord> find_price_model(Connection& c, const std::string& name) {
  Query q = c.query(
      "SELECT litellm_provider, mode, max_input_tokens, max_output_tokens FROM price_models"
      " WHERE name = ?1");
  q.bind(name);
  if (!q.step()) {
    return std::nullopt;
  }
  return PriceModelRecord{name, q.text(0), q.text(1), q.optional_integer(2), q.optional_integer(3)};
}

/// Component → price of the rows of one model and one source.
std::map<ComponentKey, std::string> read_components(Connection& c, const std::string& model,
                                                    std::string_view source) {
  std::map<ComponentKey, std::string> out;
  Query q = c.query(
      "SELECT direction, modality, unit, tier, price FROM pricing_components"
      " WHERE model_name = ?1 AND source = ?2");
  q.bind(model, source);
  while (q.step()) {
    out.emplace(ComponentKey{q.text(0), q.text(1), q.text(2), q.text(3)}, q.text(4));
  }
  return out;
}

/// Inserts a price row, or updates its price if (model, component, source) exists.
void upsert_component(Connection& c, const std::string& model, const ComponentKey& k,
                      const std::string& price, std::string_view source, std::int64_t now,
                      std::int64_t version) {
  c.query(
       "INSERT INTO pricing_components (model_name, direction, modality, unit, tier, price,"
       " source, updated_at, version) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
       " ON CONFLICT (model_name, direction, modality, unit, tier, source) DO UPDATE SET"
       " price = excluded.price, updated_at = excluded.updated_at, version = excluded.version")
      .bind(model, std::get<0>(k), std::get<1>(k), std::get<2>(k), std::get<3>(k), price, source,
            now, version)
      .run();
}

void delete_component(Connection& c, const std::string& model, const ComponentKey& k,
                      std::string_view source) {
  c.query(
       "DELETE FROM pricing_components WHERE model_name = ?1 AND direction = ?2"
       " AND modality = ?3 AND unit = ?4 AND tier = ?5 AND source = ?6")
      .bind(model, std::get<0>(k), std::get<1>(k), std::get<2>(k), std::get<3>(k), source)
      .run();
}

/// Writes one imported model and its catalog rows inside the caller's transaction.
/// Returns whether anything was written.
bool import_price_model(Connection& c, const PriceModelRecord& m,
                        const std::map<ComponentKey, std::string>& rows, bool exists,
                        bool row_differs, std::int64_t now, std::int64_t next) {
  bool changed = false;
  if (!exists) {
    c.query(
         "INSERT INTO price_models (name, litellm_provider, mode, max_input_tokens,"
         " max_output_tokens, created_at, updated_at, version)"
         " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7)")
        .bind(m.name, m.litellm_provider, m.mode, m.max_input_tokens, m.max_output_tokens, now,
              next)
        .run();
    changed = true;
  } else if (row_differs) {
    c.query(
         "UPDATE price_models SET litellm_provider = ?2, mode = ?3, max_input_tokens = ?4,"
         " max_output_tokens = ?5, updated_at = ?6, version = ?7 WHERE name = ?1")
        .bind(m.name, m.litellm_provider, m.mode, m.max_input_tokens, m.max_output_tokens, now,
              next)
        .run();
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

UsageRecord read_usage(const Query& q) {
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

/// Adds every sum to its spend_daily row inside the caller's write transaction. The money
/// is read, added with core::Money and written back as text; SQLite only adds integers.
void write_spend(Connection& c, const detail::SpendSums& sums, std::int64_t now) {
  for (const auto& [key, d] : sums) {
    const std::string day = detail::format_day(key.day);
    core::Money total = d.cost;
    {
      Query q = c.query(
          "SELECT cost_usd FROM spend_daily WHERE key_id = ?1 AND day = ?2 AND model = ?3");
      q.bind(key.key_id, day, key.model);
      if (q.step()) {
        const auto stored = core::Money::parse(q.text_view(0));
        if (!stored) {
          throw std::runtime_error("sqlite: spend_daily.cost_usd of key '" + key.key_id +
                                   "' on " + day + " is not an exact decimal");
        }
        total += *stored;
      }
    }
    c.query(
         "INSERT INTO spend_daily (key_id, day, model, cost_usd, requests, unpriced_requests,"
         " prompt_tokens, completion_tokens, updated_at)"
         " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
         " ON CONFLICT (key_id, day, model) DO UPDATE SET cost_usd = excluded.cost_usd,"
         " requests = requests + excluded.requests,"
         " unpriced_requests = unpriced_requests + excluded.unpriced_requests,"
         " prompt_tokens = prompt_tokens + excluded.prompt_tokens,"
         " completion_tokens = completion_tokens + excluded.completion_tokens,"
         " updated_at = excluded.updated_at")
        .bind(key.key_id, day, key.model, total.to_string(), d.requests, d.unpriced_requests,
              d.prompt_tokens, d.completion_tokens, now)
        .run();
  }
}

bool table_exists(Connection& c, std::string_view name) {
  Query q = c.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1");
  q.bind(name);
  return q.step();
}

int read_schema_version(Connection& c) {
  if (!table_exists(c, "schema_migrations")) {
    return 0;
  }
  Query q = c.query("SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
  q.step();
  return static_cast<int>(q.integer(0));
}

void refuse_newer_schema(int found, const std::string& path) {
  const int known = sqlite::latest_migration_version();
  if (found > known) {
    throw std::runtime_error("database " + path + " has schema version " + std::to_string(found) +
                             ", newer than the " + std::to_string(known) +
                             " this build knows: run a newer llmgw on it");
  }
}

}  // namespace

struct SqliteStore::Impl {
  explicit Impl(const std::string& path) : path(path), connection(path) {}

  /// The connection of long reads (usage reports), opened at the first one: in WAL mode a
  /// reader on its own connection never waits for the writer, nor makes key lookups and the
  /// usage writer wait behind a report that scans millions of rows.
  Connection& reports_connection() {
    if (!reports) {
      reports = std::make_unique<Connection>(path);
    }
    return *reports;
  }

  const std::string path;
  std::mutex mutex;
  Connection connection;
  std::mutex reports_mutex;
  std::unique_ptr<Connection> reports;
  std::shared_ptr<const SecretCodec> codec;  ///< null: credentials are written in clear
};

SqliteStore::SqliteStore(std::string path) : path_(std::move(path)) {
  const std::filesystem::path file(path_);
  if (file.has_parent_path()) {
    std::filesystem::create_directories(file.parent_path());
  }
  impl_ = std::make_unique<Impl>(path_);
}

SqliteStore::~SqliteStore() = default;

int SqliteStore::migrate() {
  if (migrate_steps()) {
    rebuild_spend();  // migration 4 removed repeated usage rows their spend had counted
  }
  return schema_version();
}

bool SqliteStore::migrate_steps() {
  bool respend = false;
  std::lock_guard lock(impl_->mutex);
  Connection& c = impl_->connection;
  {
    Transaction tx(c, Transaction::Kind::Write);
    c.exec(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY,"
        " name TEXT NOT NULL, applied_at INTEGER NOT NULL) STRICT");
    refuse_newer_schema(read_schema_version(c), path_);
    tx.commit();
  }
  for (const auto& m : sqlite::migrations()) {
    // Each step re-reads the version under the write lock: another process (the CLI and
    // the server starting together) may have applied it meanwhile.
    Transaction tx(c, Transaction::Kind::Write);
    const int current = read_schema_version(c);
    refuse_newer_schema(current, path_);
    if (m.version <= current) {
      continue;
    }
    if (m.version == kUsageRequestIdsMigration) {
      Query q = c.query("SELECT count(*) - count(DISTINCT request_id) FROM usage_records");
      respend = q.step() && q.integer(0) > 0;
    }
    try {
      c.exec(std::string(m.sql));
    } catch (const std::exception& e) {
      throw std::runtime_error("migration " + std::to_string(m.version) + " (" +
                               std::string(m.name) + ") failed: " + e.what());
    }
    c.query("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)")
        .bind(m.version, m.name, core::unix_seconds())
        .run();
    tx.commit();
  }
  return respend;
}

int SqliteStore::schema_version() {
  std::lock_guard lock(impl_->mutex);
  return read_schema_version(impl_->connection);
}

std::int64_t SqliteStore::config_version() {
  std::lock_guard lock(impl_->mutex);
  return read_config_version(impl_->connection);
}

void SqliteStore::set_secret_codec(std::shared_ptr<const SecretCodec> codec) {
  std::lock_guard lock(impl_->mutex);
  impl_->codec = std::move(codec);
}

std::size_t SqliteStore::reseal_credentials(const SecretCodec* from, const SecretCodec& to) {
  struct Row {
    std::string id;
    std::string name;
    std::string plaintext;
  };
  std::lock_guard lock(impl_->mutex);
  Connection& c = impl_->connection;
  Transaction tx(c, Transaction::Kind::Write);
  std::vector<Row> rows;
  {
    Query q = c.query("SELECT id, name, credentials, credentials_encrypted FROM providers");
    while (q.step()) {
      Row row{q.text(0), q.text(1), {}};
      if (!q.boolean(3)) {
        if (q.text_view(2).empty()) {
          continue;  // nothing to seal
        }
        row.plaintext = q.text(2);
      } else if (auto opened =
                     from != nullptr ? from->open(q.text_view(2), row.id) : std::nullopt) {
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
    c.query("UPDATE providers SET credentials = ?2, credentials_encrypted = ?3 WHERE id = ?1")
        .bind(row.id, credential.value, credential.encrypted)
        .run();
  }
  tx.commit();
  return rows.size();
}

void SqliteStore::insert_key(ApiKeyRecord& key, const AuditRecord* audit) {
  std::lock_guard lock(impl_->mutex);
  Connection& c = impl_->connection;
  const std::int64_t now = core::unix_seconds();
  Transaction tx(c, Transaction::Kind::Write);
  const std::int64_t version = bump_config_version(c);
  write_unique(
      [&] {
        c.query(
             "INSERT INTO api_keys (id, key_hash, prefix, name, enabled, expires_at, rpm_limit,"
             " tpm_limit, budget_usd, allowed_models, created_at, updated_at, version,"
             " budget_period, max_concurrent, tags, metadata)"
             " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11, ?12, ?13, ?14, ?15, ?16)")
            .bind(key.id, key.key_hash, key.prefix, key.name, key.enabled, key.expires_at,
                  key.rpm_limit, key.tpm_limit, key.budget_usd, to_json_array(key.allowed_models),
                  now, version, key.budget_period, key.max_concurrent, to_json_array(key.tags),
                  to_json_object(key.metadata))
            .run();
      },
      "api key '" + key.id + "' not stored: a key with this id or hash already exists");
  append_audit(c, audit);
  tx.commit();
  key.created_at = now;
  key.updated_at = now;
  key.version = version;
}

std::vector<ApiKeyRecord> SqliteStore::list_keys() {
  return list_keys(KeyQuery{});
}

std::vector<ApiKeyRecord> SqliteStore::list_keys(const KeyQuery& q) {
  // The filters are optional parameters rather than variants of the statement: the rows are
  // read in id order from the primary key whichever filters apply.
  static const std::string kSql =
      std::string(kKeyColumns) +
      "WHERE id > ?1 AND (?2 IS NULL OR enabled = ?2) AND (?3 = '' OR instr(name, ?3) > 0)"
      " AND (?4 = '' OR EXISTS (SELECT 1 FROM json_each(api_keys.tags) WHERE value = ?4))"
      " ORDER BY id LIMIT ?5";
  std::lock_guard lock(impl_->mutex);
  std::vector<ApiKeyRecord> out;
  Query query = impl_->connection.query(kSql);
  query.bind(q.page.after, q.enabled, q.name_contains, q.tag, page_limit(q.page.limit));
  while (query.step()) {
    out.push_back(read_key(query));
  }
  return out;
}

std::optional<ApiKeyRecord> SqliteStore::find_key_by_id(const std::string& id) {
  static const std::string kSql = std::string(kKeyColumns) + "WHERE id = ?1";
  std::lock_guard lock(impl_->mutex);
  return find_key(impl_->connection, kSql, id);
}

std::optional<ApiKeyRecord> SqliteStore::find_key_by_hash(const std::string& key_hash) {
  static const std::string kSql = std::string(kKeyColumns) + "WHERE key_hash = ?1";
  std::lock_guard lock(impl_->mutex);
  return find_key(impl_->connection, kSql, key_hash);
}

bool SqliteStore::set_key_enabled(const std::string& id, bool enabled, const AuditRecord* audit) {
  std::lock_guard lock(impl_->mutex);
  Connection& c = impl_->connection;
  Transaction tx(c, Transaction::Kind::Write);
  const std::int64_t version = bump_config_version(c);
  c.query("UPDATE api_keys SET enabled = ?2, updated_at = ?3, version = ?4 WHERE id = ?1")
      .bind(id, enabled, core::unix_seconds(), version)
      .run();
  if (sqlite3_changes(c.get()) == 0) {
    return false;  // rolls the version bump back
  }
  append_audit(c, audit);
  tx.commit();
  return true;
}

bool SqliteStore::update_key(ApiKeyRecord& key, const AuditRecord* audit) {
  std::lock_guard lock(impl_->mutex);
  Connection& c = impl_->connection;
  const std::int64_t now = core::unix_seconds();
  Transaction tx(c, Transaction::Kind::Write);
  std::string old_hash;
  std::int64_t created_at = 0;
  {
    Query q = c.query("SELECT key_hash, created_at, version FROM api_keys WHERE id = ?1");
    q.bind(key.id);
    if (!q.step()) {
      return false;
    }
    old_hash = q.text(0);
    created_at = q.integer(1);
    if (key.version != 0 && key.version != q.integer(2)) {
      throw ConflictError("api key '" + key.id +
                          "' was changed by another request since it was read; read it again");
    }
  }
  const std::int64_t version = bump_config_version(c);
  write_unique(
      [&] {
        c.query(
             "UPDATE api_keys SET key_hash = ?2, prefix = ?3, name = ?4, enabled = ?5,"
             " expires_at = ?6, rpm_limit = ?7, tpm_limit = ?8, budget_usd = ?9,"
             " allowed_models = ?10, budget_period = ?11, max_concurrent = ?12, tags = ?13,"
             " metadata = ?14, updated_at = ?15, version = ?16 WHERE id = ?1")
            .bind(key.id, key.key_hash, key.prefix, key.name, key.enabled, key.expires_at,
                  key.rpm_limit, key.tpm_limit, key.budget_usd, to_json_array(key.allowed_models),
                  key.budget_period, key.max_concurrent, to_json_array(key.tags),
                  to_json_object(key.metadata), now, version)
            .run();
      },
      "api key '" + key.id + "' not updated: another key has this hash");
  if (old_hash != key.key_hash) {
    retire_key_hash(c, old_hash, key.id, now, version);
  }
  append_audit(c, audit);
  tx.commit();
  key.created_at = created_at;
  key.updated_at = now;
  key.version = version;
  return true;
}

bool SqliteStore::delete_key(const std::string& id, const AuditRecord* audit) {
  std::lock_guard lock(impl_->mutex);
  Connection& c = impl_->connection;
  Transaction tx(c, Transaction::Kind::Write);
  std::string key_hash;
  {
    Query q = c.query("SELECT key_hash FROM api_keys WHERE id = ?1");
    q.bind(id);
    if (!q.step()) {
      return false;
    }
    key_hash = q.text(0);
  }
  const std::int64_t version = bump_config_version(c);
  c.query("DELETE FROM api_keys WHERE id = ?1").bind(id).run();
  retire_key_hash(c, key_hash, id, core::unix_seconds(), version);
  append_audit(c, audit);
  tx.commit();
  return true;
}

std::vector<std::string> SqliteStore::key_hashes_changed_since(std::int64_t version) {
  std::lock_guard lock(impl_->mutex);
  std::vector<std::string> out;
  // A hash may be in both tables (retired, then given to a new key): reported once.
  Query q = impl_->connection.query(
      "SELECT key_hash FROM (SELECT key_hash, version FROM api_keys WHERE version > ?1"
      " UNION ALL SELECT key_hash, version FROM retired_key_hashes WHERE version > ?1)"
      " GROUP BY key_hash ORDER BY MIN(version), key_hash");
  q.bind(version);
  while (q.step()) {
    out.push_back(q.text(0));
  }
  return out;
}

// --- admin users and tokens: no config version (the gateway's data plane never reads them)

void SqliteStore::insert_admin_user(AdminUserRecord& user, const AuditRecord* audit) {
  std::lock_guard lock(impl_->mutex);
  Connection& c = impl_->connection;
  const std::int64_t now = core::unix_seconds();
  if (user.id.empty()) {
    user.id = core::new_id("usr_");
  }
  Transaction tx(c, Transaction::Kind::Write);
  write_unique(
      [&] {
        c.query(
             "INSERT INTO admin_users (id, email, password_hash, role, enabled, created_at,"
             " updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)")
            .bind(user.id, user.email, user.password_hash, user.role, user.enabled, now)
            .run();
      },
      "an admin user with email '" + user.email + "' (or id '" + user.id + "') already exists");
  append_audit(c, audit);
  tx.commit();
  user.created_at = now;
  user.updated_at = now;
}

bool SqliteStore::update_admin_user(AdminUserRecord& user, const AuditRecord* audit) {
  std::lock_guard lock(impl_->mutex);
  Connection& c = impl_->connection;
  const std::int64_t now = core::unix_seconds();
  Transaction tx(c, Transaction::Kind::Write);
  const auto created_at =
      created_at_of(c, "SELECT created_at FROM admin_users WHERE id = ?1", user.id);
  if (!created_at) {
    return false;
  }
  write_unique(
      [&] {
        c.query(
             "UPDATE admin_users SET email = ?2, password_hash = ?3, role = ?4, enabled = ?5,"
             " updated_at = ?6 WHERE id = ?1")
            .bind(user.id, user.email, user.password_hash, user.role, user.enabled, now)
            .run();
      },
      "an admin user with email '" + user.email + "' already exists");
  append_audit(c, audit);
  tx.commit();
  user.created_at = *created_at;
  user.updated_at = now;
  return true;
}

bool SqliteStore::delete_admin_user(const std::string& id, const AuditRecord* audit) {
  std::lock_guard lock(impl_->mutex);
  Connection& c = impl_->connection;
  Transaction tx(c, Transaction::Kind::Write);
  c.query("DELETE FROM admin_users WHERE id = ?1").bind(id).run();
  if (sqlite3_changes(c.get()) == 0) {
    return false;
  }
  append_audit(c, audit);
  tx.commit();
  return true;
}

std::optional<AdminUserRecord> SqliteStore::find_admin_user(const std::string& id) {
  static const std::string kSql = std::string(kAdminUserColumns) + "WHERE id = ?1";
  std::lock_guard lock(impl_->mutex);
  Query q = impl_->connection.query(kSql);
  q.bind(id);
  if (!q.step()) {
    return std::nullopt;
  }
  return read_admin_user(q);
}

std::optional<AdminUserRecord> SqliteStore::find_admin_user_by_email(const std::string& email) {
  // The column's COLLATE NOCASE applies to the comparison: any case finds the user.
  static const std::string kSql = std::string(kAdminUserColumns) + "WHERE email = ?1";
  std::lock_guard lock(impl_->mutex);
  Query q = impl_->connection.query(kSql);
  q.bind(email);
  if (!q.step()) {
    return std::nullopt;
  }
  return read_admin_user(q);
}

std::vector<AdminUserRecord> SqliteStore::list_admin_users(const PageRequest& page) {
  static const std::string kSql =
      std::string(kAdminUserColumns) + "WHERE id > ?1 ORDER BY id LIMIT ?2";
  std::lock_guard lock(impl_->mutex);
  std::vector<AdminUserRecord> out;
  Query q = impl_->connection.query(kSql);
  q.bind(page.after, page_limit(page.limit));
  while (q.step()) {
    out.push_back(read_admin_user(q));
  }
  return out;
}

std::int64_t SqliteStore::count_enabled_admins() {
  std::lock_guard lock(impl_->mutex);
  Query q = impl_->connection.query(
      "SELECT COUNT(*) FROM admin_users WHERE enabled = 1 AND role = 'admin'");
  q.step();
  return q.integer(0);
}

void SqliteStore::insert_admin_token(AdminTokenRecord& token, const AuditRecord* audit) {
  std::lock_guard lock(impl_->mutex);
  Connection& c = impl_->connection;
  const std::int64_t now = core::unix_seconds();
  if (token.id.empty()) {
    token.id = core::new_id("tok_");
  }
  Transaction tx(c, Transaction::Kind::Write);
  write_unique(
      [&] {
        c.query(
             "INSERT INTO admin_tokens (id, service_name, token_hash, role, enabled, created_at,"
             " updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)")
            .bind(token.id, token.service_name, token.token_hash, token.role, token.enabled, now)
            .run();
      },
      "a service token named '" + token.service_name + "' (or with id '" + token.id +
          "') already exists");
  append_audit(c, audit);
  tx.commit();
  token.created_at = now;
  token.updated_at = now;
}

bool SqliteStore::update_admin_token(AdminTokenRecord& token, const AuditRecord* audit) {
  std::lock_guard lock(impl_->mutex);
  Connection& c = impl_->connection;
  const std::int64_t now = core::unix_seconds();
  Transaction tx(c, Transaction::Kind::Write);
  const auto created_at =
      created_at_of(c, "SELECT created_at FROM admin_tokens WHERE id = ?1", token.id);
  if (!created_at) {
    return false;
  }
  write_unique(
      [&] {
        c.query(
             "UPDATE admin_tokens SET service_name = ?2, token_hash = ?3, role = ?4,"
             " enabled = ?5, updated_at = ?6 WHERE id = ?1")
            .bind(token.id, token.service_name, token.token_hash, token.role, token.enabled, now)
            .run();
      },
      "a service token named '" + token.service_name + "' already exists");
  append_audit(c, audit);
  tx.commit();
  token.created_at = *created_at;
  token.updated_at = now;
  return true;
}

bool SqliteStore::delete_admin_token(const std::string& id, const AuditRecord* audit) {
  std::lock_guard lock(impl_->mutex);
  Connection& c = impl_->connection;
  Transaction tx(c, Transaction::Kind::Write);
  c.query("DELETE FROM admin_tokens WHERE id = ?1").bind(id).run();
  if (sqlite3_changes(c.get()) == 0) {
    return false;
  }
  append_audit(c, audit);
  tx.commit();
  return true;
}

std::optional<AdminTokenRecord> SqliteStore::find_admin_token(const std::string& id) {
  static const std::string kSql = std::string(kAdminTokenColumns) + "WHERE id = ?1";
  std::lock_guard lock(impl_->mutex);
  Query q = impl_->connection.query(kSql);
  q.bind(id);
  if (!q.step()) {
    return std::nullopt;
  }
  return read_admin_token(q);
}

std::optional<AdminTokenRecord> SqliteStore::find_admin_token_by_service(const std::string& name) {
  static const std::string kSql = std::string(kAdminTokenColumns) + "WHERE service_name = ?1";
  std::lock_guard lock(impl_->mutex);
  Query q = impl_->connection.query(kSql);
  q.bind(name);
  if (!q.step()) {
    return std::nullopt;
  }
  return read_admin_token(q);
}

std::vector<AdminTokenRecord> SqliteStore::list_admin_tokens(const PageRequest& page) {
  static const std::string kSql =
      std::string(kAdminTokenColumns) + "WHERE id > ?1 ORDER BY id LIMIT ?2";
  std::lock_guard lock(impl_->mutex);
  std::vector<AdminTokenRecord> out;
  Query q = impl_->connection.query(kSql);
  q.bind(page.after, page_limit(page.limit));
  while (q.step()) {
    out.push_back(read_admin_token(q));
  }
  return out;
}

// --- audit

void SqliteStore::insert_audit(AuditRecord& record) {
  std::lock_guard lock(impl_->mutex);
  Connection& c = impl_->connection;
  if (record.at_us == 0) {
    record.at_us = core::unix_micros();
  }
  Transaction tx(c, Transaction::Kind::Write);
  const std::int64_t id = append_audit(c, record);
  tx.commit();
  record.id = id;
}

std::vector<AuditRecord> SqliteStore::list_audit(const AuditQuery& q) {
  // A filter left out still names its parameter (`?4 = ''`), so that every variant binds
  // the same parameters; one given is a plain equality the planner can use an index for
  // (resource type and id: admin_audit_by_resource, in id order).
  std::string sql =
      "SELECT id, at_us, actor_type, actor_id, actor_name, action, resource_type, resource_id,"
      " before_json, after_json, request_id, client_ip FROM admin_audit"
      " WHERE id < ?1 AND at_us >= ?2 AND at_us < ?3";
  sql += q.resource_type.empty() ? " AND ?4 = ''" : " AND resource_type = ?4";
  sql += q.resource_id.empty() ? " AND ?5 = ''" : " AND resource_id = ?5";
  sql += q.actor_id.empty() ? " AND ?6 = ''" : " AND actor_id = ?6";
  sql += " ORDER BY id DESC LIMIT ?7";
  std::lock_guard lock(impl_->mutex);
  std::vector<AuditRecord> out;
  Query query = impl_->connection.query(sql);
  query.bind(q.before_id.value_or(std::numeric_limits<std::int64_t>::max()), q.from_us, q.to_us,
             q.resource_type, q.resource_id, q.actor_id, page_limit(q.limit));
  while (query.step()) {
    out.push_back(read_audit(query));
  }
  return out;
}

void SqliteStore::apply_config(const core::GatewayConfig& cfg) {
  std::lock_guard lock(impl_->mutex);
  Connection& c = impl_->connection;
  Transaction tx(c, Transaction::Kind::Write);
  // The version moves only if a row changed, so restarting on the same file keeps every
  // cache built from the current catalog valid.
  const std::int64_t next = read_config_version(c) + 1;
  if (!apply_config_rows(c, impl_->codec.get(), cfg, next, core::unix_seconds())) {
    return;  // nothing written; the rollback is a no-op
  }
  c.query("UPDATE config_version SET version = ?1 WHERE id = 1").bind(next).run();
  tx.commit();
}

CatalogData SqliteStore::load_catalog() {
  std::lock_guard lock(impl_->mutex);
  Connection& c = impl_->connection;
  CatalogData data;
  // One read transaction: the version and the rows come from the same snapshot.
  Transaction tx(c, Transaction::Kind::Read);
  data.version = read_config_version(c);
  data.providers = read_providers(c, impl_->codec.get());
  data.models = read_models(c);
  data.aliases = read_aliases(c);
  {
    Query q = c.query(
        "SELECT name, litellm_provider, mode, max_input_tokens, max_output_tokens"
        " FROM price_models ORDER BY name");
    while (q.step()) {
      data.price_models.push_back(PriceModelRecord{q.text(0), q.text(1), q.text(2),
                                                   q.optional_integer(3), q.optional_integer(4)});
    }
  }
  {
    Query q = c.query(
        "SELECT model_name, direction, modality, unit, tier, price, source"
        " FROM pricing_components ORDER BY model_name, direction, modality, unit, tier, source");
    while (q.step()) {
      data.prices.push_back(PriceComponentRecord{q.text(0), q.text(1), q.text(2), q.text(3),
                                                 q.text(4), q.text(5), q.text(6)});
    }
  }
  tx.commit();
  return data;
}

// --- providers, models and aliases written through the admin API

void SqliteStore::insert_provider(ProviderRecord& p, const AuditRecord* audit) {
  std::lock_guard lock(impl_->mutex);
  Connection& c = impl_->connection;
  const std::int64_t now = core::unix_seconds();
  if (p.id.empty()) {
    p.id = core::new_id("prov_");
  }
  const StoredCredential credential =
      detail::store_credential(impl_->codec.get(), p.id, p.config.api_key);
  const core::ProviderConfig& cfg = p.config;
  Transaction tx(c, Transaction::Kind::Write);
  const std::int64_t version = bump_config_version(c);
  write_unique(
      [&] {
        c.query(
             "INSERT INTO providers (id, name, type, base_url, credentials,"
             " credentials_encrypted, connect_timeout_ms, first_byte_timeout_ms,"
             " idle_timeout_ms, enabled, source, created_at, updated_at, version)"
             " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'admin', ?11, ?11, ?12)")
            .bind(p.id, cfg.name, core::to_string(cfg.type), cfg.base_url, credential.value,
                  credential.encrypted, cfg.connect_timeout.count(), cfg.first_byte_timeout.count(),
                  cfg.idle_timeout.count(), p.enabled, now, version)
            .run();
      },
      "a provider named '" + cfg.name + "' (or with id '" + p.id + "') already exists");
  append_audit(c, audit);
  tx.commit();
  p.source = kSourceAdmin;
  p.created_at = now;
  p.updated_at = now;
}

bool SqliteStore::update_provider(ProviderRecord& p, const AuditRecord* audit) {
  std::lock_guard lock(impl_->mutex);
  Connection& c = impl_->connection;
  const std::int64_t now = core::unix_seconds();
  const StoredCredential credential =
      detail::store_credential(impl_->codec.get(), p.id, p.config.api_key);
  const core::ProviderConfig& cfg = p.config;
  Transaction tx(c, Transaction::Kind::Write);
  const auto row =
      existing_row(c, "SELECT source, name, created_at FROM providers WHERE id = ?1", p.id);
  if (!row) {
    return false;
  }
  detail::refuse_config_row(*row, "provider");
  if (row->name != cfg.name) {
    Query q = c.query(
        "SELECT name FROM models WHERE provider_id = ?1 AND source = 'config' ORDER BY name"
        " LIMIT 1");
    q.bind(p.id);
    if (q.step()) {
      throw ConflictError("provider '" + row->name + "' is named by model '" + q.text(0) +
                          "' of the configuration file: renaming it would break the file");
    }
  }
  const std::int64_t version = bump_config_version(c);
  write_unique(
      [&] {
        c.query(
             "UPDATE providers SET name = ?2, type = ?3, base_url = ?4, credentials = ?5,"
             " credentials_encrypted = ?6, connect_timeout_ms = ?7, first_byte_timeout_ms = ?8,"
             " idle_timeout_ms = ?9, enabled = ?10, updated_at = ?11, version = ?12"
             " WHERE id = ?1")
            .bind(p.id, cfg.name, core::to_string(cfg.type), cfg.base_url, credential.value,
                  credential.encrypted, cfg.connect_timeout.count(), cfg.first_byte_timeout.count(),
                  cfg.idle_timeout.count(), p.enabled, now, version)
            .run();
      },
      "a provider named '" + cfg.name + "' already exists");
  append_audit(c, audit);
  tx.commit();
  p.source = row->source;
  p.created_at = row->created_at;
  p.updated_at = now;
  return true;
}

bool SqliteStore::delete_provider(const std::string& id, const AuditRecord* audit) {
  std::lock_guard lock(impl_->mutex);
  Connection& c = impl_->connection;
  Transaction tx(c, Transaction::Kind::Write);
  const auto row =
      existing_row(c, "SELECT source, name, created_at FROM providers WHERE id = ?1", id);
  if (!row) {
    return false;
  }
  detail::refuse_config_row(*row, "provider");
  {
    Query q = c.query("SELECT name FROM models WHERE provider_id = ?1 ORDER BY name LIMIT 1");
    q.bind(id);
    if (q.step()) {
      throw ConflictError("provider '" + row->name + "' is used by model '" + q.text(0) + "'");
    }
  }
  bump_config_version(c);
  c.query("DELETE FROM providers WHERE id = ?1").bind(id).run();
  append_audit(c, audit);
  tx.commit();
  return true;
}

std::optional<ProviderRecord> SqliteStore::find_provider(const std::string& id) {
  std::lock_guard lock(impl_->mutex);
  return read_provider_by_id(impl_->connection, impl_->codec.get(), id);
}

std::vector<ProviderRecord> SqliteStore::list_providers() {
  std::lock_guard lock(impl_->mutex);
  return read_providers(impl_->connection, impl_->codec.get());
}

void SqliteStore::insert_model(ModelRecord& m, const AuditRecord* audit) {
  std::lock_guard lock(impl_->mutex);
  Connection& c = impl_->connection;
  const std::int64_t now = core::unix_seconds();
  if (m.id.empty()) {
    m.id = core::new_id("model_");
  }
  if (m.config.upstream_model.empty()) {
    m.config.upstream_model = m.config.name;
  }
  Transaction tx(c, Transaction::Kind::Write);
  const std::string provider_id = provider_of(c, m.config);
  refuse_taken_name(c, m.config.name, m.id);
  const std::int64_t version = bump_config_version(c);
  write_unique(
      [&] {
        c.query(
             "INSERT INTO models (id, name, provider_id, upstream_model, pricing_model, enabled,"
             " rpm_limit, tpm_limit, source, created_at, updated_at, version)"
             " VALUES (?1, ?2, ?3, ?4, NULLIF(?5, ''), ?6, ?7, ?8, 'admin', ?9, ?9, ?10)")
            .bind(m.id, m.config.name, provider_id, m.config.upstream_model, m.config.pricing_model,
                  m.enabled, m.config.rpm_limit, m.config.tpm_limit, now, version)
            .run();
      },
      "a model with id '" + m.id + "' already exists");
  append_audit(c, audit);
  tx.commit();
  m.source = kSourceAdmin;
  m.created_at = now;
  m.updated_at = now;
}

bool SqliteStore::update_model(ModelRecord& m, const AuditRecord* audit) {
  std::lock_guard lock(impl_->mutex);
  Connection& c = impl_->connection;
  const std::int64_t now = core::unix_seconds();
  if (m.config.upstream_model.empty()) {
    m.config.upstream_model = m.config.name;
  }
  Transaction tx(c, Transaction::Kind::Write);
  const auto row =
      existing_row(c, "SELECT source, name, created_at FROM models WHERE id = ?1", m.id);
  if (!row) {
    return false;
  }
  detail::refuse_config_row(*row, "model");
  const std::string provider_id = provider_of(c, m.config);
  if (row->name != m.config.name) {
    refuse_taken_name(c, m.config.name, m.id);
    Query q = c.query(
        "SELECT alias FROM model_aliases WHERE model_id = ?1 AND source = 'config'"
        " ORDER BY alias LIMIT 1");
    q.bind(m.id);
    if (q.step()) {
      throw ConflictError("model '" + row->name + "' is named by alias '" + q.text(0) +
                          "' of the configuration file: renaming it would break the file");
    }
  }
  const std::int64_t version = bump_config_version(c);
  c.query(
       "UPDATE models SET name = ?2, provider_id = ?3, upstream_model = ?4,"
       " pricing_model = NULLIF(?5, ''), enabled = ?6, rpm_limit = ?7, tpm_limit = ?8,"
       " updated_at = ?9, version = ?10 WHERE id = ?1")
      .bind(m.id, m.config.name, provider_id, m.config.upstream_model, m.config.pricing_model,
            m.enabled, m.config.rpm_limit, m.config.tpm_limit, now, version)
      .run();
  append_audit(c, audit);
  tx.commit();
  m.source = row->source;
  m.created_at = row->created_at;
  m.updated_at = now;
  return true;
}

bool SqliteStore::delete_model(const std::string& id, const AuditRecord* audit) {
  std::lock_guard lock(impl_->mutex);
  Connection& c = impl_->connection;
  Transaction tx(c, Transaction::Kind::Write);
  const auto row = existing_row(c, "SELECT source, name, created_at FROM models WHERE id = ?1", id);
  if (!row) {
    return false;
  }
  detail::refuse_config_row(*row, "model");
  {
    Query q = c.query("SELECT alias FROM model_aliases WHERE model_id = ?1 ORDER BY alias LIMIT 1");
    q.bind(id);
    if (q.step()) {
      throw ConflictError("model '" + row->name + "' is the target of alias '" + q.text(0) + "'");
    }
  }
  bump_config_version(c);
  c.query("DELETE FROM models WHERE id = ?1").bind(id).run();
  append_audit(c, audit);
  tx.commit();
  return true;
}

std::optional<ModelRecord> SqliteStore::find_model(const std::string& id) {
  static const std::string kSql = std::string(kModelColumns) + "WHERE m.id = ?1";
  std::lock_guard lock(impl_->mutex);
  Query q = impl_->connection.query(kSql);
  q.bind(id);
  if (!q.step()) {
    return std::nullopt;
  }
  return read_model(q);
}

std::vector<ModelRecord> SqliteStore::list_models() {
  std::lock_guard lock(impl_->mutex);
  return read_models(impl_->connection);
}

void SqliteStore::insert_alias(AliasRecord& a, const AuditRecord* audit) {
  std::lock_guard lock(impl_->mutex);
  Connection& c = impl_->connection;
  const std::int64_t now = core::unix_seconds();
  Transaction tx(c, Transaction::Kind::Write);
  const std::string model_id = target_of(c, a.config);
  refuse_taken_name(c, a.config.alias, {});
  const std::int64_t version = bump_config_version(c);
  c.query(
       "INSERT INTO model_aliases (alias, model_id, source, created_at, updated_at, version)"
       " VALUES (?1, ?2, 'admin', ?3, ?3, ?4)")
      .bind(a.config.alias, model_id, now, version)
      .run();
  append_audit(c, audit);
  tx.commit();
  a.source = kSourceAdmin;
  a.created_at = now;
  a.updated_at = now;
}

bool SqliteStore::update_alias(AliasRecord& a, const AuditRecord* audit) {
  std::lock_guard lock(impl_->mutex);
  Connection& c = impl_->connection;
  const std::int64_t now = core::unix_seconds();
  Transaction tx(c, Transaction::Kind::Write);
  const auto row = existing_row(
      c, "SELECT source, alias, created_at FROM model_aliases WHERE alias = ?1", a.config.alias);
  if (!row) {
    return false;
  }
  detail::refuse_config_row(*row, "alias");
  const std::string model_id = target_of(c, a.config);
  const std::int64_t version = bump_config_version(c);
  c.query("UPDATE model_aliases SET model_id = ?2, updated_at = ?3, version = ?4 WHERE alias = ?1")
      .bind(a.config.alias, model_id, now, version)
      .run();
  append_audit(c, audit);
  tx.commit();
  a.source = row->source;
  a.created_at = row->created_at;
  a.updated_at = now;
  return true;
}

bool SqliteStore::delete_alias(const std::string& alias, const AuditRecord* audit) {
  std::lock_guard lock(impl_->mutex);
  Connection& c = impl_->connection;
  Transaction tx(c, Transaction::Kind::Write);
  const auto row = existing_row(
      c, "SELECT source, alias, created_at FROM model_aliases WHERE alias = ?1", alias);
  if (!row) {
    return false;
  }
  detail::refuse_config_row(*row, "alias");
  bump_config_version(c);
  c.query("DELETE FROM model_aliases WHERE alias = ?1").bind(alias).run();
  append_audit(c, audit);
  tx.commit();
  return true;
}

std::optional<AliasRecord> SqliteStore::find_alias(const std::string& alias) {
  static const std::string kSql = std::string(kAliasColumns) + "WHERE a.alias = ?1";
  std::lock_guard lock(impl_->mutex);
  Query q = impl_->connection.query(kSql);
  q.bind(alias);
  if (!q.step()) {
    return std::nullopt;
  }
  return read_alias(q);
}

std::vector<AliasRecord> SqliteStore::list_aliases() {
  std::lock_guard lock(impl_->mutex);
  return read_aliases(impl_->connection);
}

ImportResult SqliteStore::import_prices(const std::vector<PriceModelRecord>& models,
                                        const std::vector<PriceComponentRecord>& catalog_rows) {
  // Everything is validated before the transaction starts.
  const auto rows_by_model = detail::validate_import(models, catalog_rows);

  std::lock_guard lock(impl_->mutex);
  Connection& c = impl_->connection;
  Transaction tx(c, Transaction::Kind::Write);
  const std::int64_t next = read_config_version(c) + 1;
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
  c.query("UPDATE config_version SET version = ?1 WHERE id = 1").bind(next).run();
  tx.commit();
  return result;
}

void SqliteStore::replace_price_overrides(const std::vector<PriceComponentRecord>& rows) {
  const auto given = detail::validate_overrides(rows);

  std::lock_guard lock(impl_->mutex);
  Connection& c = impl_->connection;
  Transaction tx(c, Transaction::Kind::Write);
  const std::int64_t next = read_config_version(c) + 1;
  const std::int64_t now = core::unix_seconds();
  std::map<ModelComponentKey, std::string> stored;
  {
    Query q = c.query(
        "SELECT model_name, direction, modality, unit, tier, price FROM pricing_components"
        " WHERE source = 'override'");
    while (q.step()) {
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
  c.query("UPDATE config_version SET version = ?1 WHERE id = 1").bind(next).run();
  tx.commit();
}

std::int64_t SqliteStore::count_price_models() {
  std::lock_guard lock(impl_->mutex);
  Query q = impl_->connection.query("SELECT COUNT(*) FROM price_models");
  q.step();
  return q.integer(0);
}

std::vector<PriceComponentRecord> SqliteStore::prices_of(const std::string& model_name) {
  std::lock_guard lock(impl_->mutex);
  std::vector<PriceComponentRecord> out;
  Query q = impl_->connection.query(
      "SELECT direction, modality, unit, tier, price, source FROM pricing_components"
      " WHERE model_name = ?1 ORDER BY direction, modality, unit, tier, source");
  q.bind(model_name);
  while (q.step()) {
    out.push_back(PriceComponentRecord{model_name, q.text(0), q.text(1), q.text(2), q.text(3),
                                       q.text(4), q.text(5)});
  }
  return out;
}

void SqliteStore::set_admin_prices(const std::string& model_name,
                                   const std::vector<PriceComponentRecord>& rows,
                                   const AuditRecord* audit) {
  const auto given = detail::validate_admin_prices(model_name, rows);

  std::lock_guard lock(impl_->mutex);
  Connection& c = impl_->connection;
  const std::int64_t now = core::unix_seconds();
  Transaction tx(c, Transaction::Kind::Write);
  const std::int64_t version = bump_config_version(c);
  const auto stored = read_components(c, model_name, kSourceAdmin);
  for (const auto& [k, price] : stored) {
    if (!given.contains(k)) {
      delete_component(c, model_name, k, kSourceAdmin);
    }
  }
  for (const auto& [k, price] : given) {
    const auto it = stored.find(k);
    if (it == stored.end() || detail::price_differs(it->second, price)) {
      upsert_component(c, model_name, k, price, kSourceAdmin, now, version);
    }
  }
  append_audit(c, audit);
  tx.commit();
}

void SqliteStore::insert_usage(std::span<const UsageRecord> batch) {
  insert_usage_marked(batch, {});
}

std::uint64_t SqliteStore::spool_mark(const std::string& spool) {
  std::lock_guard lock(impl_->mutex);
  Query q = impl_->connection.query("SELECT seq FROM spool_marks WHERE spool = ?1");
  q.bind(spool);
  return q.step() ? static_cast<std::uint64_t>(q.integer(0)) : 0;
}

std::optional<std::string> SqliteStore::secret_check(const std::string& name) {
  std::lock_guard lock(impl_->mutex);
  Query q = impl_->connection.query("SELECT value FROM secret_checks WHERE name = ?1");
  q.bind(name);
  if (!q.step()) {
    return std::nullopt;
  }
  return q.text(0);
}

std::string SqliteStore::claim_secret_check(const std::string& name, const std::string& value) {
  {
    std::lock_guard lock(impl_->mutex);
    Query q = impl_->connection.query(
        "INSERT INTO secret_checks (name, value, updated_at) VALUES (?1, ?2, ?3)"
        " ON CONFLICT (name) DO NOTHING");
    q.bind(name, value, core::unix_micros()).run();
  }
  return secret_check(name).value_or(value);
}

void SqliteStore::set_secret_check(const std::string& name, const std::string& value) {
  std::lock_guard lock(impl_->mutex);
  Query q = impl_->connection.query(
      "INSERT INTO secret_checks (name, value, updated_at) VALUES (?1, ?2, ?3)"
      " ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at");
  q.bind(name, value, core::unix_micros()).run();
}

void SqliteStore::insert_usage_marked(std::span<const UsageRecord> batch,
                                      std::span<const SpoolMark> marks) {
  try {
    insert_usage_locked(batch, marks);
  } catch (const SqliteError& e) {
    const int primary = e.code() & 0xff;
    if (primary == SQLITE_CONSTRAINT || primary == SQLITE_MISMATCH || primary == SQLITE_TOOBIG ||
        primary == SQLITE_RANGE) {
      throw RefusedError(e.what());  // these values, not the database
    }
    throw;
  }
}

void SqliteStore::insert_usage_locked(std::span<const UsageRecord> batch,
                                      std::span<const SpoolMark> marks) {
  if (batch.empty() && marks.empty()) {
    return;
  }
  static const std::string kSql =
      "INSERT INTO usage_records (" + std::string(kUsageColumns) +
      ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,"
      " ?18, ?19, ?20, ?21, ?22, ?23) ON CONFLICT (request_id) DO NOTHING";
  std::lock_guard lock(impl_->mutex);
  Connection& c = impl_->connection;
  Transaction tx(c, Transaction::Kind::Write);
  detail::SpendSums sums;
  {
    Query q = c.query(kSql);
    std::size_t rows = 0;
    for (const auto& r : batch) {
      std::string_view cost = r.cost_usd;
      std::optional<core::Money> money;
      std::string normalized;  // borrowed by the statement until reset()
      if (!cost.empty()) {
        money = core::Money::parse(cost);
        if (!money) {
          cost = {};  // unknown rather than a failed batch
        } else if (!detail::is_plain_decimal(cost)) {
          normalized = money->to_string();
          cost = normalized;
        }
      }
      q.bind_borrowed(r.request_id, r.key_id, r.model, r.upstream_model, r.provider, r.endpoint,
                      r.status, r.prompt_tokens, r.completion_tokens, r.cached_tokens,
                      r.reasoning_tokens, r.overhead_us, r.upstream_us, r.stream, r.usage_reported,
                      r.created_at_us, null_if_empty(r.client_request_id),
                      null_if_empty(r.pricing_model), null_if_empty(r.service_tier),
                      r.cache_write_tokens, null_if_empty(cost), null_if_empty(r.cost_status),
                      null_if_empty(r.prices_json))
          .run();
      q.reset();
      if (++rows % kUsageRowsPerYield == 0) {
        // The batch is milliseconds of CPU: on a core shared with an I/O thread, let a
        // request that became ready run rather than wait for the whole batch.
        std::this_thread::yield();
      }
      if (sqlite3_changes(c.get()) == 0) {
        continue;  // stored before (a repeated delivery): its spend is counted already
      }
      sums.add(r.key_id, r.created_at_us, r.model, money, r.prompt_tokens, r.completion_tokens);
    }
  }
  write_spend(c, sums, core::unix_seconds());
  for (const auto& m : marks) {
    Query q = c.query(
        "INSERT INTO spool_marks (spool, seq) VALUES (?1, ?2)"
        " ON CONFLICT (spool) DO UPDATE SET seq = excluded.seq WHERE excluded.seq > seq");
    q.bind(m.spool, static_cast<std::int64_t>(m.seq)).run();
  }
  tx.commit();
}

std::vector<SpendRow> SqliteStore::spend(const std::string& key_id, const std::string& from_day,
                                         const std::string& to_day) {
  std::lock_guard lock(impl_->mutex);
  std::vector<SpendRow> out;
  Query q = impl_->connection.query(
      "SELECT day, model, cost_usd, requests, unpriced_requests, prompt_tokens,"
      " completion_tokens FROM spend_daily WHERE key_id = ?1 AND day >= ?2 AND day <= ?3"
      " ORDER BY day, model");
  q.bind(key_id, from_day, to_day);
  while (q.step()) {
    out.push_back(SpendRow{key_id, q.text(0), q.text(1), q.text(2), q.integer(3), q.integer(4),
                           q.integer(5), q.integer(6)});
  }
  return out;
}

void SqliteStore::rebuild_spend() {
  std::lock_guard lock(impl_->mutex);
  Connection& c = impl_->connection;
  Transaction tx(c, Transaction::Kind::Write);
  detail::SpendSums sums;
  {
    Query q = c.query(
        "SELECT key_id, created_at_us, model, cost_usd, prompt_tokens, completion_tokens, id"
        " FROM usage_records");
    while (q.step()) {
      std::optional<core::Money> cost;
      if (!q.is_null(3)) {
        cost = core::Money::parse(q.text_view(3));
        if (!cost) {
          throw std::runtime_error("sqlite: usage_records.cost_usd of row " +
                                   std::to_string(q.integer(6)) + " is not an exact decimal");
        }
      }
      sums.add(q.text_view(0), q.integer(1), q.text_view(2), cost, q.integer(4), q.integer(5));
    }
  }
  c.query("DELETE FROM spend_daily").run();
  write_spend(c, sums, core::unix_seconds());
  tx.commit();
}

void SqliteStore::insert_budget_event(const BudgetEvent& e) {
  std::lock_guard lock(impl_->mutex);
  impl_->connection
      .query(
          "INSERT INTO budget_events (key_id, period, kind, spent_usd, budget_usd, at_us)"
          " VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (key_id, period, kind) DO NOTHING")
      .bind(e.key_id, e.period, e.kind, e.spent_usd, e.budget_usd, e.at_us)
      .run();
}

std::vector<BudgetEvent> SqliteStore::budget_events(const std::string& key_id) {
  std::lock_guard lock(impl_->mutex);
  std::vector<BudgetEvent> out;
  Query q = impl_->connection.query(
      "SELECT period, kind, spent_usd, budget_usd, at_us FROM budget_events WHERE key_id = ?1"
      " ORDER BY at_us, id");
  q.bind(key_id);
  while (q.step()) {
    out.push_back(BudgetEvent{key_id, q.text(0), q.text(1), q.text(2), q.text(3), q.integer(4)});
  }
  return out;
}

std::int64_t SqliteStore::count_usage() {
  std::lock_guard lock(impl_->mutex);
  Query q = impl_->connection.query("SELECT COUNT(*) FROM usage_records");
  q.step();
  return q.integer(0);
}

std::vector<UsageTotals> SqliteStore::usage_report(const UsageQuery& q) {
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
  // As in list_audit, a filter left out still names its parameter; one given is an
  // equality the planner can use (a key's rows: usage_records_by_key_time; else the time
  // range: usage_records_by_time).
  std::string sql =
      "SELECT created_at_us, cost_usd, prompt_tokens, completion_tokens,"
      " cached_tokens, reasoning_tokens, id, ";
  sql += column;
  sql += " FROM usage_records WHERE created_at_us >= ?1 AND created_at_us < ?2";
  sql += q.key_id.empty() ? " AND ?3 = ''" : " AND key_id = ?3";
  sql += q.model.empty() ? " AND ?4 = ''" : " AND model = ?4";
  sql += q.provider.empty() ? " AND ?5 = ''" : " AND provider = ?5";

  // Money is added in C++ (exact), never by SQLite (binary floating point).
  std::map<std::string, detail::UsageSum, std::less<>> sums;
  std::lock_guard lock(impl_->reports_mutex);
  Query rows = impl_->reports_connection().query(sql);
  rows.bind(q.from_us, q.to_us, q.key_id, q.model, q.provider);
  std::int64_t last_day = std::numeric_limits<std::int64_t>::min();
  std::string day_text;
  while (rows.step()) {
    std::string_view name = rows.text_view(7);
    if (by_day) {
      // Rows mostly come in time order: format a day once per run of rows.
      if (const std::int64_t day = detail::utc_day(rows.integer(0)); day != last_day) {
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
    if (rows.is_null(1)) {
      ++sum.totals.unpriced_requests;
    } else if (const auto cost = core::Money::parse(rows.text_view(1))) {
      sum.cost += *cost;
    } else {
      throw std::runtime_error("sqlite: usage_records.cost_usd of row " +
                               std::to_string(rows.integer(6)) + " is not an exact decimal");
    }
    sum.totals.prompt_tokens += rows.integer(2);
    sum.totals.completion_tokens += rows.integer(3);
    sum.totals.cached_tokens += rows.integer(4);
    sum.totals.reasoning_tokens += rows.integer(5);
  }
  return detail::usage_report_rows(sums, q);
}

std::vector<UsageRecord> SqliteStore::recent_usage(std::size_t limit) {
  static const std::string kSql = "SELECT " + std::string(kUsageColumns) +
                                  " FROM usage_records ORDER BY created_at_us DESC, id DESC"
                                  " LIMIT ?1";
  std::lock_guard lock(impl_->mutex);
  std::vector<UsageRecord> out;
  Query q = impl_->connection.query(kSql);
  q.bind(static_cast<std::int64_t>(
      std::min<std::size_t>(limit, std::numeric_limits<std::int64_t>::max())));
  while (q.step()) {
    out.push_back(read_usage(q));
  }
  return out;
}

}  // namespace llmgw::store

#include "store/sqlite/sqlite_store.hpp"

#include "core/log.hpp"

#include <sqlite3.h>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <utility>

#include "core/ids.hpp"
#include "core/json.hpp"
#include "store/sqlite/migrations.hpp"

namespace llmgw::store {
namespace {

constexpr int kBusyTimeoutMs = 5'000;
/// How much of a statement's SQL an error message quotes (enough to tell which one failed).
constexpr std::size_t kSqlExcerptChars = 60;
constexpr std::string_view kSourceConfig = "config";

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

  /// Makes the statement ready to run again with new bindings.
  void reset() noexcept {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }

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

std::string to_json_array(const std::vector<std::string>& values) {
  std::string out = "[";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i != 0) {
      out += ',';
    }
    core::append_json_string(out, values[i]);
  }
  out += ']';
  return out;
}

std::vector<std::string> from_json_array(const std::string& text, std::string_view column) {
  boost::system::error_code ec;
  const boost::json::value value = boost::json::parse(text, ec);
  if (ec || !value.is_array()) {
    throw std::runtime_error("sqlite: " + std::string(column) + " is not a JSON array");
  }
  std::vector<std::string> out;
  out.reserve(value.as_array().size());
  for (const auto& element : value.as_array()) {
    if (!element.is_string()) {
      throw std::runtime_error("sqlite: " + std::string(column) + " holds a non-string");
    }
    out.emplace_back(element.as_string());
  }
  return out;
}

// --- api_keys

constexpr std::string_view kKeyColumns =
    "SELECT id, key_hash, prefix, name, enabled, expires_at, rpm_limit, tpm_limit, budget_usd,"
    " allowed_models, created_at, updated_at, version FROM api_keys ";

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
};

struct AliasRow {
  std::string source;
  std::string model_id;
};

constexpr std::string_view kProviderColumns =
    "SELECT id, name, type, base_url, credentials, credentials_encrypted, connect_timeout_ms,"
    " first_byte_timeout_ms, idle_timeout_ms, enabled, source FROM providers ORDER BY name";

ProviderRecord read_provider(const Query& q) {
  ProviderRecord p;
  p.id = q.text(0);
  p.config.name = q.text(1);
  p.config.base_url = q.text(3);
  p.config.connect_timeout = std::chrono::milliseconds(q.integer(6));
  p.config.first_byte_timeout = std::chrono::milliseconds(q.integer(7));
  p.config.idle_timeout = std::chrono::milliseconds(q.integer(8));
  p.enabled = q.boolean(9);
  p.source = q.text(10);
  // A row this build cannot use (a provider type from a newer build, or credentials it holds
  // no key for) is read as disabled: one bad row must not stop the whole catalog loading.
  const std::string type = q.text(2);
  if (!core::parse_provider_type(type, p.config.type)) {
    core::LogLine(core::LogLevel::Warn, "provider disabled: type not supported by this build")
        .field("provider", p.config.name)
        .field("type", type)
        .emit();
    p.enabled = false;
  } else if (q.boolean(5)) {
    core::LogLine(core::LogLevel::Warn, "provider disabled: encrypted credentials unreadable")
        .field("provider", p.config.name)
        .emit();
    p.enabled = false;
  } else {
    p.config.api_key = q.text(4);
  }
  return p;
}

std::vector<ProviderRecord> read_providers(Connection& c) {
  std::vector<ProviderRecord> out;
  Query q = c.query(kProviderColumns);
  while (q.step()) {
    out.push_back(read_provider(q));
  }
  return out;
}

template <typename Map>
void require_unique(Map& seen, const std::string& name, std::string_view what) {
  if (!seen.insert(name).second) {
    throw std::runtime_error("config names " + std::string(what) + " '" + name + "' twice");
  }
}

void reject_admin_collision(const std::string& source, std::string_view what,
                            const std::string& name) {
  if (source != kSourceConfig) {
    throw std::runtime_error("config " + std::string(what) + " '" + name + "' collides with a " +
                             std::string(what) +
                             " created through the admin API; rename one of them");
  }
}

/// Applies `cfg` inside the caller's write transaction, stamping changes with `next`.
/// Returns whether any row changed.
bool apply_config_rows(Connection& c, const core::GatewayConfig& cfg, std::int64_t next,
                       std::int64_t now) {
  bool changed = false;

  std::map<std::string, ProviderRow> providers;
  for (auto& p : read_providers(c)) {
    std::string name = p.config.name;
    providers.emplace(std::move(name), ProviderRow{p.id, p.source, std::move(p.config)});
  }
  std::map<std::string, ModelRow> models;
  {
    Query q = c.query("SELECT name, id, source, provider_id, upstream_model FROM models");
    while (q.step()) {
      models.emplace(q.text(0), ModelRow{q.text(1), q.text(2), q.text(3), q.text(4)});
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
    require_unique(cfg_providers, p.name, "provider");
  }
  for (const auto& m : cfg.models) {
    require_unique(cfg_models, m.name, "model");
  }
  for (const auto& a : cfg.aliases) {
    require_unique(cfg_aliases, a.alias, "alias");
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
      c.query(
           "INSERT INTO providers (id, name, type, base_url, credentials, connect_timeout_ms,"
           " first_byte_timeout_ms, idle_timeout_ms, source, created_at, updated_at, version)"
           " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'config', ?9, ?9, ?10)")
          .bind(id, p.name, type, p.base_url, p.api_key, p.connect_timeout.count(),
                p.first_byte_timeout.count(), p.idle_timeout.count(), now, next)
          .run();
      providers.emplace(p.name, ProviderRow{id, std::string(kSourceConfig), p});
      changed = true;
      continue;
    }
    reject_admin_collision(it->second.source, "provider", p.name);
    if (it->second.config == p) {
      continue;
    }
    // `enabled` is not part of the file: an operator's switch survives a restart.
    c.query(
         "UPDATE providers SET type = ?2, base_url = ?3, credentials = ?4,"
         " credentials_encrypted = 0, connect_timeout_ms = ?5, first_byte_timeout_ms = ?6,"
         " idle_timeout_ms = ?7, updated_at = ?8, version = ?9 WHERE id = ?1")
        .bind(it->second.id, type, p.base_url, p.api_key, p.connect_timeout.count(),
              p.first_byte_timeout.count(), p.idle_timeout.count(), now, next)
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
    auto it = models.find(m.name);
    if (it == models.end()) {
      const std::string id = core::new_id("model_");
      c.query(
           "INSERT INTO models (id, name, provider_id, upstream_model, source, created_at,"
           " updated_at, version) VALUES (?1, ?2, ?3, ?4, 'config', ?5, ?5, ?6)")
          .bind(id, m.name, provider_id, upstream, now, next)
          .run();
      models.emplace(m.name, ModelRow{id, std::string(kSourceConfig), provider_id, upstream});
      changed = true;
      continue;
    }
    reject_admin_collision(it->second.source, "model", m.name);
    if (it->second.provider_id == provider_id && it->second.upstream_model == upstream) {
      continue;
    }
    c.query(
         "UPDATE models SET provider_id = ?2, upstream_model = ?3, updated_at = ?4,"
         " version = ?5 WHERE id = ?1")
        .bind(it->second.id, provider_id, upstream, now, next)
        .run();
    it->second.provider_id = provider_id;
    it->second.upstream_model = upstream;
    changed = true;
  }

  for (const auto& a : cfg.aliases) {
    const auto model = models.find(a.model);
    if (model == models.end()) {
      throw std::runtime_error("config alias '" + a.alias + "' names unknown model '" + a.model +
                               "'");
    }
    const std::string& model_id = model->second.id;
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
    reject_admin_collision(it->second.source, "alias", a.alias);
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

// --- usage

constexpr std::string_view kUsageColumns =
    "request_id, key_id, model, upstream_model, provider, endpoint, status, prompt_tokens,"
    " completion_tokens, cached_tokens, reasoning_tokens, overhead_us, upstream_us, stream,"
    " usage_reported, created_at_us, client_request_id";

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
  return r;
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
  explicit Impl(const std::string& path) : connection(path) {}

  std::mutex mutex;
  Connection connection;
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
  return read_schema_version(c);
}

int SqliteStore::schema_version() {
  std::lock_guard lock(impl_->mutex);
  return read_schema_version(impl_->connection);
}

std::int64_t SqliteStore::config_version() {
  std::lock_guard lock(impl_->mutex);
  return read_config_version(impl_->connection);
}

void SqliteStore::insert_key(ApiKeyRecord& key) {
  std::lock_guard lock(impl_->mutex);
  Connection& c = impl_->connection;
  const std::int64_t now = core::unix_seconds();
  Transaction tx(c, Transaction::Kind::Write);
  const std::int64_t version = bump_config_version(c);
  try {
    c.query(
         "INSERT INTO api_keys (id, key_hash, prefix, name, enabled, expires_at, rpm_limit,"
         " tpm_limit, budget_usd, allowed_models, created_at, updated_at, version)"
         " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11, ?12)")
        .bind(key.id, key.key_hash, key.prefix, key.name, key.enabled, key.expires_at,
              key.rpm_limit, key.tpm_limit, key.budget_usd, to_json_array(key.allowed_models), now,
              version)
        .run();
  } catch (const SqliteError& e) {
    if (e.code() == SQLITE_CONSTRAINT_PRIMARYKEY || e.code() == SQLITE_CONSTRAINT_UNIQUE) {
      throw std::runtime_error("api key '" + key.id +
                               "' not stored: a key with this id or hash already exists");
    }
    throw;
  }
  tx.commit();
  key.created_at = now;
  key.updated_at = now;
  key.version = version;
}

std::vector<ApiKeyRecord> SqliteStore::list_keys() {
  static const std::string kSql = std::string(kKeyColumns) + "ORDER BY created_at, id";
  std::lock_guard lock(impl_->mutex);
  std::vector<ApiKeyRecord> out;
  Query q = impl_->connection.query(kSql);
  while (q.step()) {
    out.push_back(read_key(q));
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

bool SqliteStore::set_key_enabled(const std::string& id, bool enabled) {
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
  tx.commit();
  return true;
}

std::vector<std::string> SqliteStore::key_hashes_changed_since(std::int64_t version) {
  std::lock_guard lock(impl_->mutex);
  std::vector<std::string> out;
  Query q = impl_->connection.query(
      "SELECT key_hash FROM api_keys WHERE version > ?1 ORDER BY version, key_hash");
  q.bind(version);
  while (q.step()) {
    out.push_back(q.text(0));
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
  if (!apply_config_rows(c, cfg, next, core::unix_seconds())) {
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
  data.providers = read_providers(c);
  {
    Query q = c.query(
        "SELECT m.id, m.name, p.name, m.upstream_model, m.enabled, m.source FROM models m"
        " JOIN providers p ON p.id = m.provider_id ORDER BY m.name");
    while (q.step()) {
      ModelRecord m;
      m.id = q.text(0);
      m.config.name = q.text(1);
      m.config.provider = q.text(2);
      m.config.upstream_model = q.text(3);
      m.enabled = q.boolean(4);
      m.source = q.text(5);
      data.models.push_back(std::move(m));
    }
  }
  {
    Query q = c.query(
        "SELECT a.alias, m.name, a.source FROM model_aliases a"
        " JOIN models m ON m.id = a.model_id ORDER BY a.alias");
    while (q.step()) {
      AliasRecord a;
      a.config.alias = q.text(0);
      a.config.model = q.text(1);
      a.source = q.text(2);
      data.aliases.push_back(std::move(a));
    }
  }
  tx.commit();
  return data;
}

void SqliteStore::insert_usage(std::span<const UsageRecord> batch) {
  if (batch.empty()) {
    return;
  }
  static const std::string kSql = "INSERT INTO usage_records (" + std::string(kUsageColumns) +
                                  ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11,"
                                  " ?12, ?13, ?14, ?15, ?16, NULLIF(?17, ''))";
  std::lock_guard lock(impl_->mutex);
  Connection& c = impl_->connection;
  Transaction tx(c, Transaction::Kind::Write);
  Query q = c.query(kSql);
  for (const auto& r : batch) {
    q.bind_borrowed(r.request_id, r.key_id, r.model, r.upstream_model, r.provider, r.endpoint,
                    r.status, r.prompt_tokens, r.completion_tokens, r.cached_tokens,
                    r.reasoning_tokens, r.overhead_us, r.upstream_us, r.stream, r.usage_reported,
                    r.created_at_us, r.client_request_id)
        .run();
    q.reset();
  }
  tx.commit();
}

std::int64_t SqliteStore::count_usage() {
  std::lock_guard lock(impl_->mutex);
  Query q = impl_->connection.query("SELECT COUNT(*) FROM usage_records");
  q.step();
  return q.integer(0);
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

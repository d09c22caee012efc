#include "store/sql/sql_store.hpp"

#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "store/sql/common.hpp"

namespace llmgw::store {

std::string sql::sql_excerpt(std::string_view sql) {
  constexpr std::size_t kSqlExcerptChars = 60;
  if (sql.size() <= kSqlExcerptChars) {
    return std::string(sql);
  }
  return std::string(sql.substr(0, kSqlExcerptChars)) + "...";
}

namespace {

using sql::Connection;
using sql::Query;
using sql::Transaction;
using sql::TxKind;
using namespace sql_store;

/// The migration that makes usage request ids unique (removing repeated rows first).
constexpr int kUsageRequestIdsMigration = 4;

int read_schema_version(Connection& c) {
  if (!c.table_exists("schema_migrations")) {
    return 0;
  }
  Query r = c.query("SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
  return static_cast<int>(r.first().integer(0));
}

void refuse_newer_schema(int found, const sql::Database& db) {
  const int known = db.migrations().back().version;
  if (found > known) {
    throw std::runtime_error("database " + db.description() + " has schema version " +
                             std::to_string(found) + ", newer than the " + std::to_string(known) +
                             " this build knows: run a newer llmgw on it");
  }
}

}  // namespace

SqlStore::SqlStore(std::unique_ptr<sql::Database> database) : db_(std::move(database)) {}

SqlStore::~SqlStore() = default;

std::shared_ptr<const SecretCodec> SqlStore::codec() const {
  std::lock_guard lock(codec_mutex_);
  return codec_;
}

int SqlStore::migrate() {
  if (migrate_steps()) {
    rebuild_spend();  // migration 4 removed repeated usage rows their spend had counted
  }
  return schema_version();
}

// Each step runs in its own write transaction under the migration lock (PostgreSQL's
// advisory lock; SQLite's write lock), and re-reads the version first: another process (a
// replica, or the CLI and the server starting together) may have applied it meanwhile.
bool SqlStore::migrate_steps() {
  return call([&](Connection& c) {
    bool respend = false;  // a retried call starts over
    {
      Transaction tx(c, TxKind::Write);
      c.lock_migrations();
      c.exec(db_->migrations_table_ddl());
      refuse_newer_schema(read_schema_version(c), *db_);
      tx.commit();
    }
    for (const auto& m : db_->migrations()) {
      Transaction tx(c, TxKind::Write);
      c.lock_migrations();
      const int current = read_schema_version(c);
      refuse_newer_schema(current, *db_);
      if (m.version <= current) {
        continue;
      }
      if (m.version == kUsageRequestIdsMigration) {
        Query r = c.query("SELECT count(*) - count(DISTINCT request_id) FROM usage_records");
        respend = r.first().integer(0) > 0;
      }
      try {
        c.exec(m.sql);
      } catch (const sql::Error& e) {
        if (e.failure() == sql::Failure::Lost) {
          throw;
        }
        throw std::runtime_error("migration " + std::to_string(m.version) + " (" +
                                 std::string(m.name) + ") failed: " + e.what());
      }
      c.run("INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
            m.version, m.name, core::unix_seconds());
      tx.commit();
    }
    return respend;
  });
}

int SqlStore::schema_version() {
  return call([](Connection& c) { return read_schema_version(c); });
}

std::int64_t SqlStore::config_version() {
  return call([](Connection& c) { return read_config_version(c); });
}

void SqlStore::set_secret_codec(std::shared_ptr<const SecretCodec> codec) {
  std::lock_guard lock(codec_mutex_);
  codec_ = std::move(codec);
}

std::size_t SqlStore::reseal_credentials(const SecretCodec* from, const SecretCodec& to) {
  struct Resealed {
    std::string id;
    std::string name;
    std::string plaintext;
  };
  return call([&](Connection& c) {
    Transaction tx(c, TxKind::Write);
    lock_config_version(c);  // no provider write of another replica in between
    std::vector<Resealed> rows;
    {
      Query r = c.query(
          "SELECT id, name, secrets, secrets_encrypted, secrets_format FROM providers"
          " ORDER BY id FOR UPDATE");
      while (r.step()) {
        const Query& q = r;
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
        if (q.view(4) == "api_key") {
          // Sealed before the secrets became a document (migration 6): a bare api_key.
          core::ProviderConfig bare;
          bare.api_key = std::move(row.plaintext);
          row.plaintext = detail::provider_secrets_document(bare);
        }
        rows.push_back(std::move(row));
      }
    }
    for (const auto& row : rows) {
      const StoredCredential sealed = detail::store_credential(&to, row.id, row.plaintext);
      c.run(
          "UPDATE providers SET secrets = $2, secrets_encrypted = $3, secrets_format = 'document'"
          " WHERE id = $1",
          row.id, sealed.value, sealed.encrypted);
    }
    tx.commit();
    return rows.size();
  });
}

std::optional<std::string> SqlStore::secret_check(const std::string& name) {
  return call([&](Connection& c) -> std::optional<std::string> {
    Query r = c.query("SELECT value FROM secret_checks WHERE name = $1", name);
    if (r.empty()) {
      return std::nullopt;
    }
    return std::string(r.first().text(0));
  });
}

std::string SqlStore::claim_secret_check(const std::string& name, const std::string& value) {
  return call([&](Connection& c) -> std::string {
    c.run("INSERT INTO secret_checks (name, value, updated_at) VALUES ($1, $2, $3)"
          " ON CONFLICT (name) DO NOTHING",
            name, value, core::unix_micros());
    Query r = c.query("SELECT value FROM secret_checks WHERE name = $1", name);
    return r.empty() ? value : std::string(r.first().text(0));
  });
}

void SqlStore::set_secret_check(const std::string& name, const std::string& value) {
  call([&](Connection& c) {
    c.run("INSERT INTO secret_checks (name, value, updated_at) VALUES ($1, $2, $3)"
          " ON CONFLICT (name) DO UPDATE SET value = excluded.value,"
          " updated_at = excluded.updated_at",
            name, value, core::unix_micros());
  });
}
}  // namespace llmgw::store

#include "store/sql/sql_store.hpp"

#include <string>
#include <vector>

#include "store/sql/common.hpp"

namespace llmgw::store {
namespace {

using sql::Connection;
using sql::Query;
using sql::Transaction;
using sql::TxKind;
using namespace sql_store;

// --- api_keys

constexpr std::string_view kKeyColumns =
    "SELECT id, key_hash, prefix, name, enabled, expires_at, rpm_limit, tpm_limit, budget_usd,"
    " allowed_models, created_at, updated_at, version, budget_period, max_concurrent, tags,"
    " metadata, audit_bodies FROM api_keys ";

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
  key.allowed_models = detail::from_json_array(q.view(9), "api_keys.allowed_models");
  key.created_at = q.integer(10);
  key.updated_at = q.integer(11);
  key.version = q.integer(12);
  key.budget_period = q.text(13);
  key.max_concurrent = q.optional_integer(14);
  key.tags = detail::from_json_array(q.view(15), "api_keys.tags");
  key.metadata = detail::from_json_object(q.view(16), "api_keys.metadata");
  key.audit_bodies = q.optional_text(17);
  return key;
}

std::optional<ApiKeyRecord> find_key(Connection& c, std::string_view sql,
                                     const std::string& value) {
  Query r = c.query(sql, value);
  if (r.empty()) {
    return std::nullopt;
  }
  return read_key(r.first());
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


}  // namespace

void SqlStore::insert_key(ApiKeyRecord& key, const AuditRecord* audit) {
  const std::int64_t now = core::unix_seconds();
  const std::int64_t version = call([&](Connection& c) {
    Transaction tx(c, TxKind::Write);
    const std::int64_t next = lock_config_version(c) + 1;
    write_unique(
        [&] {
          c.run(
              "INSERT INTO api_keys (id, key_hash, prefix, name, enabled, expires_at, rpm_limit,"
              " tpm_limit, budget_usd, allowed_models, created_at, updated_at, version,"
              " budget_period, max_concurrent, tags, metadata, audit_bodies)"
              " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $12, $13, $14, $15,"
              " $16, $17)",
              key.id, key.key_hash, key.prefix, key.name, key.enabled, key.expires_at,
              key.rpm_limit, key.tpm_limit, key.budget_usd,
              detail::to_json_array(key.allowed_models), now, next, key.budget_period,
              key.max_concurrent, detail::to_json_array(key.tags),
              detail::to_json_object(key.metadata), key.audit_bodies);
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

std::vector<ApiKeyRecord> SqlStore::list_keys() {
  return list_keys(KeyQuery{});
}

std::vector<ApiKeyRecord> SqlStore::list_keys(const KeyQuery& q) {
  // The filters are optional parameters rather than variants of the statement: the rows are
  // read in id order from the primary key whichever filters apply.
  return call([&](Connection& c) {
    const std::string sql = std::string(kKeyColumns) + "WHERE id > $1 AND " +
                            std::string(c.dialect().key_filters) + " ORDER BY id LIMIT $5";
    std::vector<ApiKeyRecord> out;
    Query r =
        c.query(sql, q.page.after, q.enabled, q.name_contains, q.tag, page_limit(q.page.limit));
    while (r.step()) {
      out.push_back(read_key(r));
    }
    return out;
  });
}

std::optional<ApiKeyRecord> SqlStore::find_key_by_id(const std::string& id) {
  static const std::string kSql = std::string(kKeyColumns) + "WHERE id = $1";
  return call([&](Connection& c) { return find_key(c, kSql, id); });
}

std::optional<ApiKeyRecord> SqlStore::find_key_by_hash(const std::string& key_hash) {
  static const std::string kSql = std::string(kKeyColumns) + "WHERE key_hash = $1";
  return call([&](Connection& c) { return find_key(c, kSql, key_hash); });
}

bool SqlStore::set_key_enabled(const std::string& id, bool enabled, const AuditRecord* audit) {
  return call([&](Connection& c) {
    Transaction tx(c, TxKind::Write);
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

bool SqlStore::update_key(ApiKeyRecord& key, const AuditRecord* audit) {
  const std::int64_t now = core::unix_seconds();
  struct Outcome {
    std::int64_t created_at = 0;
    std::int64_t version = 0;
  };
  const auto outcome = call([&](Connection& c) -> std::optional<Outcome> {
    Transaction tx(c, TxKind::Write);
    const std::int64_t next = lock_config_version(c) + 1;
    std::string old_hash;
    std::int64_t created_at = 0;
    {
      Query r =
          c.query("SELECT key_hash, created_at, version FROM api_keys WHERE id = $1", key.id);
      if (r.empty()) {
        return std::nullopt;
      }
      old_hash = r.first().text(0);
      created_at = r.first().integer(1);
      if (key.version != 0 && key.version != r.first().integer(2)) {
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
              " metadata = $14, updated_at = $15, version = $16, audit_bodies = $17 WHERE id = $1",
              key.id, key.key_hash, key.prefix, key.name, key.enabled, key.expires_at,
              key.rpm_limit, key.tpm_limit, key.budget_usd,
              detail::to_json_array(key.allowed_models), key.budget_period, key.max_concurrent,
              detail::to_json_array(key.tags), detail::to_json_object(key.metadata), now, next,
              key.audit_bodies);
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

bool SqlStore::delete_key(const std::string& id, const AuditRecord* audit) {
  return call([&](Connection& c) {
    Transaction tx(c, TxKind::Write);
    const std::int64_t next = lock_config_version(c) + 1;
    std::string key_hash;
    {
      Query r = c.query("DELETE FROM api_keys WHERE id = $1 RETURNING key_hash", id);
      if (r.empty()) {
        return false;
      }
      key_hash = r.text(0);
    }
    retire_key_hash(c, key_hash, id, core::unix_seconds(), next);
    write_config_version(c, next);
    append_audit(c, audit);
    tx.commit();
    return true;
  });
}

std::vector<std::string> SqlStore::key_hashes_changed_since(std::int64_t version) {
  return call([&](Connection& c) {
    std::vector<std::string> out;
    // A hash may be in both tables (retired, then given to a new key): reported once.
    Query r = c.query(
        "SELECT key_hash FROM (SELECT key_hash, version FROM api_keys WHERE version > $1"
        " UNION ALL SELECT key_hash, version FROM retired_key_hashes WHERE version > $1)"
        " AS changed GROUP BY key_hash ORDER BY MIN(version), key_hash",
        version);
    while (r.step()) {
      out.push_back(r.text(0));
    }
    return out;
  });
}
}  // namespace llmgw::store

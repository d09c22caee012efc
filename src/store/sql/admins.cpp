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

/// The created_at that `sql` selects (and locks) for $1 = `id`; nullopt when there is none.
std::optional<std::int64_t> created_at_of(Connection& c, std::string_view sql,
                                          const std::string& id) {
  Query r = c.query(sql, id);
  if (r.empty()) {
    return std::nullopt;
  }
  return r.first().integer(0);
}


}  // namespace

// --- admin users and tokens: no config version (the gateway's data plane never reads them)

void SqlStore::insert_admin_user(AdminUserRecord& user, const AuditRecord* audit) {
  const std::int64_t now = core::unix_seconds();
  if (user.id.empty()) {
    user.id = core::new_id("usr_");
  }
  call([&](Connection& c) {
    Transaction tx(c, TxKind::Write);
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

bool SqlStore::update_admin_user(AdminUserRecord& user, const AuditRecord* audit) {
  const std::int64_t now = core::unix_seconds();
  const auto created_at = call([&](Connection& c) -> std::optional<std::int64_t> {
    Transaction tx(c, TxKind::Write);
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

bool SqlStore::delete_admin_user(const std::string& id, const AuditRecord* audit) {
  return call([&](Connection& c) {
    Transaction tx(c, TxKind::Write);
    if (c.run("DELETE FROM admin_users WHERE id = $1", id) == 0) {
      return false;
    }
    append_audit(c, audit);
    tx.commit();
    return true;
  });
}

std::optional<AdminUserRecord> SqlStore::find_admin_user(const std::string& id) {
  static const std::string kSql = std::string(kAdminUserColumns) + "WHERE id = $1";
  return call([&](Connection& c) -> std::optional<AdminUserRecord> {
    Query r = c.query(kSql, id);
    if (r.empty()) {
      return std::nullopt;
    }
    return read_admin_user(r.first());
  });
}

std::optional<AdminUserRecord> SqlStore::find_admin_user_by_email(const std::string& email) {
  return call([&](Connection& c) -> std::optional<AdminUserRecord> {
    const std::string sql =
        std::string(kAdminUserColumns) + "WHERE " + std::string(c.dialect().email_equals);
    Query r = c.query(sql, email);
    if (r.empty()) {
      return std::nullopt;
    }
    return read_admin_user(r.first());
  });
}

std::vector<AdminUserRecord> SqlStore::list_admin_users(const PageRequest& page) {
  static const std::string kSql =
      std::string(kAdminUserColumns) + "WHERE id > $1 ORDER BY id LIMIT $2";
  return call([&](Connection& c) {
    std::vector<AdminUserRecord> out;
    Query r = c.query(kSql, page.after, page_limit(page.limit));
    while (r.step()) {
      out.push_back(read_admin_user(r));
    }
    return out;
  });
}

std::int64_t SqlStore::count_enabled_admins() {
  return call([](Connection& c) {
    return c.query("SELECT COUNT(*) FROM admin_users WHERE enabled AND role = 'admin'")
        .first()
        .integer(0);
  });
}

void SqlStore::insert_admin_token(AdminTokenRecord& token, const AuditRecord* audit) {
  const std::int64_t now = core::unix_seconds();
  if (token.id.empty()) {
    token.id = core::new_id("tok_");
  }
  call([&](Connection& c) {
    Transaction tx(c, TxKind::Write);
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

bool SqlStore::update_admin_token(AdminTokenRecord& token, const AuditRecord* audit) {
  const std::int64_t now = core::unix_seconds();
  const auto created_at = call([&](Connection& c) -> std::optional<std::int64_t> {
    Transaction tx(c, TxKind::Write);
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

bool SqlStore::delete_admin_token(const std::string& id, const AuditRecord* audit) {
  return call([&](Connection& c) {
    Transaction tx(c, TxKind::Write);
    if (c.run("DELETE FROM admin_tokens WHERE id = $1", id) == 0) {
      return false;
    }
    append_audit(c, audit);
    tx.commit();
    return true;
  });
}

std::optional<AdminTokenRecord> SqlStore::find_admin_token(const std::string& id) {
  static const std::string kSql = std::string(kAdminTokenColumns) + "WHERE id = $1";
  return call([&](Connection& c) -> std::optional<AdminTokenRecord> {
    Query r = c.query(kSql, id);
    if (r.empty()) {
      return std::nullopt;
    }
    return read_admin_token(r.first());
  });
}

std::optional<AdminTokenRecord> SqlStore::find_admin_token_by_service(const std::string& name) {
  static const std::string kSql = std::string(kAdminTokenColumns) + "WHERE service_name = $1";
  return call([&](Connection& c) -> std::optional<AdminTokenRecord> {
    Query r = c.query(kSql, name);
    if (r.empty()) {
      return std::nullopt;
    }
    return read_admin_token(r.first());
  });
}

std::vector<AdminTokenRecord> SqlStore::list_admin_tokens(const PageRequest& page) {
  static const std::string kSql =
      std::string(kAdminTokenColumns) + "WHERE id > $1 ORDER BY id LIMIT $2";
  return call([&](Connection& c) {
    std::vector<AdminTokenRecord> out;
    Query r = c.query(kSql, page.after, page_limit(page.limit));
    while (r.step()) {
      out.push_back(read_admin_token(r));
    }
    return out;
  });
}

// --- audit

void SqlStore::insert_audit(AuditRecord& record) {
  if (record.at_us == 0) {
    record.at_us = core::unix_micros();
  }
  record.id = call([&](Connection& c) {
    Transaction tx(c, TxKind::Write);
    const std::int64_t id = append_audit(c, record);
    tx.commit();
    return id;
  });
}

std::vector<AuditRecord> SqlStore::list_audit(const AuditQuery& q) {
  // As in SqliteStore: a filter left out still names its parameter, so that every variant
  // binds the same parameters; one given is a plain equality an index can serve.
  std::string sql =
      "SELECT id, at_us, actor_type, actor_id, actor_name, action, resource_type, resource_id,"
      " before_json, after_json, request_id, client_ip FROM admin_audit"
      " WHERE id < $1 AND at_us >= $2 AND at_us < $3";
  sql += q.resource_type.empty() ? " AND CAST($4 AS TEXT) = ''" : " AND resource_type = $4";
  sql += q.resource_id.empty() ? " AND CAST($5 AS TEXT) = ''" : " AND resource_id = $5";
  sql += q.actor_id.empty() ? " AND CAST($6 AS TEXT) = ''" : " AND actor_id = $6";
  sql += " ORDER BY id DESC LIMIT $7";
  return call([&](Connection& c) {
    std::vector<AuditRecord> out;
    Query r =
        c.query(sql, q.before_id.value_or(std::numeric_limits<std::int64_t>::max()), q.from_us,
                q.to_us, q.resource_type, q.resource_id, q.actor_id, page_limit(q.limit));
    while (r.step()) {
      out.push_back(read_audit(r));
    }
    return out;
  });
}
}  // namespace llmgw::store

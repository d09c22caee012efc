#pragma once
/// What the files of SqlStore (src/store/sql/*.cpp) share: the config version, pages,
/// uniqueness errors and the audit trail. Internal to the store library.

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <utility>

#include "core/ids.hpp"
#include "store/detail.hpp"
#include "store/sql/sql.hpp"
#include "store/store.hpp"

namespace llmgw::store::sql_store {

using detail::ComponentKey;
using detail::ExistingRow;
using detail::kSourceAdmin;
using detail::kSourceCatalog;
using detail::kSourceConfig;
using detail::kSourceOverride;
using detail::ModelComponentKey;
using detail::StoredCredential;
using sql::null_if_empty;

inline std::int64_t read_config_version(sql::Connection& c) {
  sql::Query r = c.query("SELECT version FROM config_version WHERE id = 1");
  if (r.empty()) {
    throw std::runtime_error("config_version row is missing (database not migrated?)");
  }
  return r.first().integer(0);
}

/// Locks the config_version row until the caller's write transaction ends (every other
/// configuration writer waits) and returns the version.
inline std::int64_t lock_config_version(sql::Connection& c) {
  sql::Query r = c.query("SELECT version FROM config_version WHERE id = 1 FOR UPDATE");
  if (r.empty()) {
    throw std::runtime_error("config_version row is missing (database not migrated?)");
  }
  return r.first().integer(0);
}

inline void write_config_version(sql::Connection& c, std::int64_t version) {
  c.run("UPDATE config_version SET version = $1 WHERE id = 1", version);
}

/// The LIMIT of a page of `limit` rows: one more, so that the caller can tell whether a
/// next page exists; the largest integer (no limit) for 0, which both dialects take.
inline std::int64_t page_limit(std::size_t limit) noexcept {
  constexpr auto kMax = static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max());
  if (limit == 0 || limit >= kMax) {
    return std::numeric_limits<std::int64_t>::max();
  }
  return static_cast<std::int64_t>(limit) + 1;
}

/// Runs a write; a uniqueness violation (a taken id, name or hash) becomes ConflictError
/// with `conflict` as its message.
template <typename Write>
void write_unique(Write&& write, const std::string& conflict) {
  try {
    std::forward<Write>(write)();
  } catch (const sql::Error& e) {
    if (e.failure() == sql::Failure::Unique) {
      throw ConflictError(conflict);
    }
    throw;
  }
}

// --- audit

/// Stores `a` inside the caller's write transaction. Returns the id assigned.
inline std::int64_t append_audit(sql::Connection& c, const AuditRecord& a) {
  sql::Query r = c.query(
      "INSERT INTO admin_audit (at_us, actor_type, actor_id, actor_name, action,"
      " resource_type, resource_id, before_json, after_json, request_id, client_ip)"
      " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
      a.at_us != 0 ? a.at_us : core::unix_micros(), a.actor_type, a.actor_id, a.actor_name,
      a.action, a.resource_type, a.resource_id, null_if_empty(a.before_json),
      null_if_empty(a.after_json), a.request_id, a.client_ip);
  return r.first().integer(0);
}

inline void append_audit(sql::Connection& c, const AuditRecord* a) {
  if (a != nullptr) {
    append_audit(c, *a);
  }
}

inline AuditRecord read_audit(const sql::Query& q) {
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

}  // namespace llmgw::store::sql_store

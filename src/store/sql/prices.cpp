#include "store/sql/sql_store.hpp"

#include <map>
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

// --- prices

std::optional<PriceModelRecord> find_price_model(Connection& c, const std::string& name) {
  Query r = c.query(
      "SELECT litellm_provider, mode, max_input_tokens, max_output_tokens FROM price_models"
      " WHERE name = $1",
      name);
  if (r.empty()) {
    return std::nullopt;
  }
  const Query& q = r.first();
  return PriceModelRecord{name, q.text(0), q.text(1), q.optional_integer(2), q.optional_integer(3)};
}

/// Component → price of the rows of one model and one source.
std::map<ComponentKey, std::string> read_components(Connection& c, const std::string& model,
                                                    std::string_view source) {
  std::map<ComponentKey, std::string> out;
  Query r = c.query(
      "SELECT direction, modality, unit, tier, price FROM pricing_components"
      " WHERE model_name = $1 AND source = $2",
      model, source);
  while (r.step()) {
    const Query& q = r;
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


}  // namespace

ImportResult SqlStore::import_prices(const std::vector<PriceModelRecord>& models,
                                    const std::vector<PriceComponentRecord>& catalog_rows) {
  // Everything is validated before the transaction starts.
  const auto rows_by_model = detail::validate_import(models, catalog_rows);
  return call([&](Connection& c) {
    Transaction tx(c, TxKind::Write);
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

void SqlStore::replace_price_overrides(const std::vector<PriceComponentRecord>& rows) {
  const auto given = detail::validate_overrides(rows);
  call([&](Connection& c) {
    Transaction tx(c, TxKind::Write);
    const std::int64_t next = lock_config_version(c) + 1;
    const std::int64_t now = core::unix_seconds();
    std::map<ModelComponentKey, std::string> stored;
    {
      Query r = c.query(
          "SELECT model_name, direction, modality, unit, tier, price FROM pricing_components"
          " WHERE source = 'override'");
      while (r.step()) {
        const Query& q = r;
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

std::int64_t SqlStore::count_price_models() {
  return call([](Connection& c) {
    return c.query("SELECT COUNT(*) FROM price_models").first().integer(0);
  });
}

std::vector<PriceComponentRecord> SqlStore::prices_of(const std::string& model_name) {
  return call([&](Connection& c) {
    std::vector<PriceComponentRecord> out;
    Query r = c.query(
        "SELECT direction, modality, unit, tier, price, source FROM pricing_components"
        " WHERE model_name = $1 ORDER BY direction, modality, unit, tier, source",
        model_name);
    while (r.step()) {
      const Query& q = r;
      out.push_back(PriceComponentRecord{model_name, q.text(0), q.text(1), q.text(2), q.text(3),
                                         q.text(4), q.text(5)});
    }
    return out;
  });
}

void SqlStore::set_admin_prices(const std::string& model_name,
                               const std::vector<PriceComponentRecord>& rows,
                               const AuditRecord* audit) {
  const auto given = detail::validate_admin_prices(model_name, rows);
  const std::int64_t now = core::unix_seconds();
  call([&](Connection& c) {
    Transaction tx(c, TxKind::Write);
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
}  // namespace llmgw::store

#include "store/sql/sql_store.hpp"

#include "core/log.hpp"
#include "core/provider_settings.hpp"
#include <map>
#include <set>
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
    "SELECT id, name, type, settings, secrets, secrets_encrypted, secrets_format, enabled,"
    " source, created_at, updated_at FROM providers ";

/// secrets_format of a credential sealed before the secrets became a document (migration 6):
/// a bare api_key.
constexpr std::string_view kBareApiKey = "api_key";

ProviderRecord read_provider(const Query& q, const SecretCodec* codec) {
  ProviderRecord p;
  p.id = q.text(0);
  p.config.name = q.text(1);
  detail::read_provider_settings(q.view(3), p.config.name, p.config);
  p.enabled = q.boolean(7);
  p.source = q.text(8);
  p.created_at = q.integer(9);
  p.updated_at = q.integer(10);
  // A row this build cannot use must not stop the whole catalog loading: a provider type from
  // a newer build reads as disabled; secrets sealed under a key this process does not hold
  // read as unreadable (left out of the catalog), `enabled` as stored, so that an admin write
  // of the record does not store a "disabled" nobody asked for.
  const std::string type = q.text(2);
  if (!core::parse_provider_type(type, p.config.type)) {
    core::LogLine(core::LogLevel::Warn, "provider disabled: type not supported by this build")
        .field("provider", p.config.name)
        .field("type", type)
        .emit();
    p.enabled = false;
  } else if (auto secrets =
                 detail::open_credential(codec, p.id, p.config.name, q.view(4), q.boolean(5))) {
    if (q.view(6) == kBareApiKey) {
      p.config.api_key = std::move(*secrets);
    } else {
      detail::read_provider_secrets(*secrets, p.config.name, p.config);
    }
  } else {
    p.credential_unreadable = true;
  }
  return p;
}

/// Throws InvalidSettingError when the provider type refuses `p`'s settings.
void check_settings(const core::ProviderConfig& p) {
  if (auto problem = core::check_provider_settings(p)) {
    throw InvalidSettingError(problem->field, "provider '" + p.name + "': " + problem->message);
  }
}

/// The secrets document of `p`, sealed for the row `id` (in clear without a codec).
StoredCredential seal_secrets(const SecretCodec* codec, std::string_view id,
                              const core::ProviderConfig& p) {
  return detail::store_credential(codec, id, detail::provider_secrets_document(p));
}

/// Every provider, ordered by name.
std::vector<ProviderRecord> read_providers(Connection& c, const SecretCodec* codec) {
  static const std::string kSql = std::string(kProviderColumns) + "ORDER BY name";
  std::vector<ProviderRecord> out;
  Query r = c.query(kSql);
  while (r.step()) {
    out.push_back(read_provider(r, codec));
  }
  return out;
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
  Query r = c.query(kSql);
  while (r.step()) {
    out.push_back(read_model(r));
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
  Query r = c.query(kSql);
  while (r.step()) {
    out.push_back(read_alias(r));
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
    Query r = c.query(
        "SELECT name, id, source, provider_id, upstream_model, COALESCE(pricing_model, ''),"
        " rpm_limit, tpm_limit FROM models");
    while (r.step()) {
      const Query& q = r;
      models.emplace(q.text(0), ModelRow{q.text(1), q.text(2), q.text(3), q.text(4), q.text(5),
                                         q.optional_integer(6), q.optional_integer(7)});
    }
  }
  std::map<std::string, AliasRow> aliases;
  {
    Query r = c.query("SELECT alias, source, model_id FROM model_aliases");
    while (r.step()) {
      const Query& q = r;
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
    check_settings(p);
    if (it == providers.end()) {
      const std::string id = core::new_id("prov_");
      const StoredCredential secrets = seal_secrets(codec, id, p);
      c.run(
          "INSERT INTO providers (id, name, type, settings, secrets, secrets_encrypted,"
          " secrets_format, source, created_at, updated_at, version)"
          " VALUES ($1, $2, $3, $4, $5, $6, 'document', 'config', $7, $7, $8)",
          id, p.name, type, detail::provider_settings_document(p), secrets.value,
          secrets.encrypted, now, next);
      providers.emplace(p.name, ProviderRow{id, std::string(kSourceConfig), p});
      changed = true;
      continue;
    }
    detail::reject_admin_collision(it->second.source, "provider", p.name);
    if (it->second.config == p) {
      continue;
    }
    // `enabled` is not part of the file: an operator's switch survives a restart.
    const StoredCredential secrets = seal_secrets(codec, it->second.id, p);
    c.run(
        "UPDATE providers SET type = $2, settings = $3, secrets = $4, secrets_encrypted = $5,"
        " secrets_format = 'document', updated_at = $6, version = $7 WHERE id = $1",
        it->second.id, type, detail::provider_settings_document(p), secrets.value,
        secrets.encrypted, now, next);
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
      Query r =
          c.query("SELECT alias FROM model_aliases WHERE model_id = $1 LIMIT 1", row.id);
      if (!r.empty()) {
        throw std::runtime_error("model '" + name + "' is no longer in the config file" +
                                 " but alias '" + r.first().text(0) + "' still refers to it");
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
      Query r = c.query("SELECT name FROM models WHERE provider_id = $1 LIMIT 1", row.id);
      if (!r.empty()) {
        throw std::runtime_error("provider '" + name + "' is no longer in the config file" +
                                 " but model '" + r.first().text(0) + "' still refers to it");
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
  Query r = c.query(sql, key);
  if (r.empty()) {
    return std::nullopt;
  }
  const Query& q = r.first();
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
  Query r = c.query("SELECT id FROM providers WHERE name = $1", m.provider);
  if (r.empty()) {
    throw ReferenceError("model '" + m.name + "' names unknown provider '" + m.provider + "'");
  }
  return r.first().text(0);
}

/// The id of the model `a.model` names. Throws ReferenceError when there is none.
std::string target_of(Connection& c, const core::AliasConfig& a) {
  Query r = c.query("SELECT id FROM models WHERE name = $1", a.model);
  if (r.empty()) {
    throw ReferenceError("alias '" + a.alias + "' names unknown model '" + a.model + "'");
  }
  return r.first().text(0);
}


}  // namespace

void SqlStore::apply_config(const core::GatewayConfig& cfg) {
  const auto sealer = codec();
  call([&](Connection& c) {
    Transaction tx(c, TxKind::Write);
    // The version moves only if a row changed, so restarting on the same database keeps
    // every cache built from the current catalog valid.
    const std::int64_t next = lock_config_version(c) + 1;
    if (!apply_config_rows(c, sealer.get(), cfg, next, core::unix_seconds())) {
      return;  // nothing written; the rollback is a no-op
    }
    write_config_version(c, next);
    tx.commit();
  });
}

CatalogData SqlStore::load_catalog() {
  const auto sealer = codec();
  return call([&](Connection& c) {
    CatalogData data;
    // One snapshot: the version and the rows are consistent.
    Transaction tx(c, TxKind::Snapshot);
    data.version = read_config_version(c);
    data.providers = read_providers(c, sealer.get());
    data.models = read_models(c);
    data.aliases = read_aliases(c);
    {
      Query r = c.query(
          "SELECT name, litellm_provider, mode, max_input_tokens, max_output_tokens"
          " FROM price_models ORDER BY name");
      while (r.step()) {
        const Query& q = r;
        data.price_models.push_back(PriceModelRecord{q.text(0), q.text(1), q.text(2),
                                                     q.optional_integer(3), q.optional_integer(4)});
      }
    }
    {
      Query r = c.query(
          "SELECT model_name, direction, modality, unit, tier, price, source"
          " FROM pricing_components ORDER BY model_name, direction, modality, unit, tier,"
          " source");
      while (r.step()) {
        const Query& q = r;
        data.prices.push_back(PriceComponentRecord{q.text(0), q.text(1), q.text(2), q.text(3),
                                                   q.text(4), q.text(5), q.text(6)});
      }
    }
    tx.commit();
    return data;
  });
}

// --- providers, models and aliases written through the admin API

void SqlStore::insert_provider(ProviderRecord& p, const AuditRecord* audit) {
  const std::int64_t now = core::unix_seconds();
  if (p.id.empty()) {
    p.id = core::new_id("prov_");
  }
  check_settings(p.config);
  const auto sealer = codec();
  const StoredCredential secrets = seal_secrets(sealer.get(), p.id, p.config);
  const std::string settings = detail::provider_settings_document(p.config);
  const core::ProviderConfig& cfg = p.config;
  call([&](Connection& c) {
    Transaction tx(c, TxKind::Write);
    const std::int64_t next = lock_config_version(c) + 1;
    write_unique(
        [&] {
          c.run(
              "INSERT INTO providers (id, name, type, settings, secrets, secrets_encrypted,"
              " secrets_format, enabled, source, created_at, updated_at, version)"
              " VALUES ($1, $2, $3, $4, $5, $6, 'document', $7, 'admin', $8, $8, $9)",
              p.id, cfg.name, core::to_string(cfg.type), settings, secrets.value,
              secrets.encrypted, p.enabled, now, next);
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

bool SqlStore::update_provider(ProviderRecord& p, const AuditRecord* audit) {
  const std::int64_t now = core::unix_seconds();
  check_settings(p.config);
  const auto sealer = codec();
  const StoredCredential secrets = seal_secrets(sealer.get(), p.id, p.config);
  const std::string settings = detail::provider_settings_document(p.config);
  const core::ProviderConfig& cfg = p.config;
  const auto row = call([&](Connection& c) -> std::optional<ExistingRow> {
    Transaction tx(c, TxKind::Write);
    const std::int64_t next = lock_config_version(c) + 1;
    auto existing =
        existing_row(c, "SELECT source, name, created_at FROM providers WHERE id = $1", p.id);
    if (!existing) {
      return std::nullopt;
    }
    detail::refuse_config_row(*existing, "provider");
    if (existing->name != cfg.name) {
      Query r = c.query(
          "SELECT name FROM models WHERE provider_id = $1 AND source = 'config' ORDER BY name"
          " LIMIT 1",
          p.id);
      if (!r.empty()) {
        throw ConflictError("provider '" + existing->name + "' is named by model '" +
                            r.first().text(0) +
                            "' of the configuration file: renaming it would break the file");
      }
    }
    write_unique(
        [&] {
          c.run(
              "UPDATE providers SET name = $2, type = $3, settings = $4, secrets = $5,"
              " secrets_encrypted = $6, secrets_format = 'document', enabled = $7,"
              " updated_at = $8, version = $9 WHERE id = $1",
              p.id, cfg.name, core::to_string(cfg.type), settings, secrets.value,
              secrets.encrypted, p.enabled, now, next);
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

bool SqlStore::delete_provider(const std::string& id, const AuditRecord* audit) {
  return call([&](Connection& c) {
    Transaction tx(c, TxKind::Write);
    const std::int64_t next = lock_config_version(c) + 1;
    const auto row =
        existing_row(c, "SELECT source, name, created_at FROM providers WHERE id = $1", id);
    if (!row) {
      return false;
    }
    detail::refuse_config_row(*row, "provider");
    {
      Query r =
          c.query("SELECT name FROM models WHERE provider_id = $1 ORDER BY name LIMIT 1", id);
      if (!r.empty()) {
        throw ConflictError("provider '" + row->name + "' is used by model '" + r.first().text(0) +
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

std::optional<ProviderRecord> SqlStore::find_provider(const std::string& id) {
  static const std::string kSql = std::string(kProviderColumns) + "WHERE id = $1";
  const auto sealer = codec();
  return call([&](Connection& c) -> std::optional<ProviderRecord> {
    Query r = c.query(kSql, id);
    if (r.empty()) {
      return std::nullopt;
    }
    return read_provider(r.first(), sealer.get());
  });
}

std::vector<ProviderRecord> SqlStore::list_providers() {
  const auto sealer = codec();
  return call([&](Connection& c) { return read_providers(c, sealer.get()); });
}

void SqlStore::insert_model(ModelRecord& m, const AuditRecord* audit) {
  const std::int64_t now = core::unix_seconds();
  if (m.id.empty()) {
    m.id = core::new_id("model_");
  }
  if (m.config.upstream_model.empty()) {
    m.config.upstream_model = m.config.name;
  }
  call([&](Connection& c) {
    Transaction tx(c, TxKind::Write);
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

bool SqlStore::update_model(ModelRecord& m, const AuditRecord* audit) {
  const std::int64_t now = core::unix_seconds();
  if (m.config.upstream_model.empty()) {
    m.config.upstream_model = m.config.name;
  }
  const auto row = call([&](Connection& c) -> std::optional<ExistingRow> {
    Transaction tx(c, TxKind::Write);
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
      Query r = c.query(
          "SELECT alias FROM model_aliases WHERE model_id = $1 AND source = 'config'"
          " ORDER BY alias LIMIT 1",
          m.id);
      if (!r.empty()) {
        throw ConflictError("model '" + existing->name + "' is named by alias '" +
                            r.first().text(0) +
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

bool SqlStore::delete_model(const std::string& id, const AuditRecord* audit) {
  return call([&](Connection& c) {
    Transaction tx(c, TxKind::Write);
    const std::int64_t next = lock_config_version(c) + 1;
    const auto row =
        existing_row(c, "SELECT source, name, created_at FROM models WHERE id = $1", id);
    if (!row) {
      return false;
    }
    detail::refuse_config_row(*row, "model");
    {
      Query r =
          c.query("SELECT alias FROM model_aliases WHERE model_id = $1 ORDER BY alias LIMIT 1", id);
      if (!r.empty()) {
        throw ConflictError("model '" + row->name + "' is the target of alias '" +
                            r.first().text(0) + "'");
      }
    }
    c.run("DELETE FROM models WHERE id = $1", id);
    write_config_version(c, next);
    append_audit(c, audit);
    tx.commit();
    return true;
  });
}

std::optional<ModelRecord> SqlStore::find_model(const std::string& id) {
  static const std::string kSql = std::string(kModelColumns) + "WHERE m.id = $1";
  return call([&](Connection& c) -> std::optional<ModelRecord> {
    Query r = c.query(kSql, id);
    if (r.empty()) {
      return std::nullopt;
    }
    return read_model(r.first());
  });
}

std::vector<ModelRecord> SqlStore::list_models() {
  return call([](Connection& c) { return read_models(c); });
}

void SqlStore::insert_alias(AliasRecord& a, const AuditRecord* audit) {
  const std::int64_t now = core::unix_seconds();
  call([&](Connection& c) {
    Transaction tx(c, TxKind::Write);
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

bool SqlStore::update_alias(AliasRecord& a, const AuditRecord* audit) {
  const std::int64_t now = core::unix_seconds();
  const auto row = call([&](Connection& c) -> std::optional<ExistingRow> {
    Transaction tx(c, TxKind::Write);
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

bool SqlStore::delete_alias(const std::string& alias, const AuditRecord* audit) {
  return call([&](Connection& c) {
    Transaction tx(c, TxKind::Write);
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

std::optional<AliasRecord> SqlStore::find_alias(const std::string& alias) {
  static const std::string kSql = std::string(kAliasColumns) + "WHERE a.alias = $1";
  return call([&](Connection& c) -> std::optional<AliasRecord> {
    Query r = c.query(kSql, alias);
    if (r.empty()) {
      return std::nullopt;
    }
    return read_alias(r.first());
  });
}

std::vector<AliasRecord> SqlStore::list_aliases() {
  return call([](Connection& c) { return read_aliases(c); });
}
}  // namespace llmgw::store

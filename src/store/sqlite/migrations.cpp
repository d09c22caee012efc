#include "store/sqlite/migrations.hpp"

#include <array>

namespace llmgw::store::sqlite {
namespace {

// Conventions of the schema:
// - STRICT tables, so a wrong type is an error instead of a silent conversion.
// - Times are INTEGER unix seconds (`*_at`), or unix microseconds where the name says `_us`.
// - Money is TEXT holding an exact non-negative decimal ("25.00", "0.0000025"): binary
//   floating point cannot represent prices such as $0.15 per million tokens exactly. SQLite
//   never adds, multiplies or compares it (its arithmetic is binary floating point): sums
//   are made in C++ with core::Money.
// - Rows of keys, providers, models, aliases, price models and prices carry `version`, the
//   value of config_version.version written by the transaction that last changed them, so a
//   reader can ask "what changed since version N".
// - `source` tells rows written from the YAML file ('config'), which start-up rewrites, from
//   rows written through the admin API ('admin'), which start-up leaves alone.
// - Enumerations are CHECK constraints. SQLite cannot alter a CHECK in place, so the lists
//   already include values the design names but the code does not use yet.
constexpr std::string_view kInitialSchema = R"sql(
CREATE TABLE config_version (
  id      INTEGER PRIMARY KEY CHECK (id = 1),
  version INTEGER NOT NULL DEFAULT 0 CHECK (version >= 0)
) STRICT;
INSERT INTO config_version (id, version) VALUES (1, 0);

CREATE TABLE api_keys (
  id             TEXT PRIMARY KEY NOT NULL,
  key_hash       TEXT NOT NULL UNIQUE,
  prefix         TEXT NOT NULL,
  name           TEXT NOT NULL DEFAULT '',
  enabled        INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
  expires_at     INTEGER,
  rpm_limit      INTEGER CHECK (rpm_limit IS NULL OR rpm_limit >= 0),
  tpm_limit      INTEGER CHECK (tpm_limit IS NULL OR tpm_limit >= 0),
  budget_usd     TEXT CHECK (budget_usd IS NULL OR (budget_usd GLOB '[0-9]*'
                   AND budget_usd NOT GLOB '*[^0-9.]*' AND budget_usd NOT GLOB '*.*.*'
                   AND budget_usd NOT GLOB '*.')),
  budget_period  TEXT NOT NULL DEFAULT 'monthly'
                   CHECK (budget_period IN ('daily', 'weekly', 'monthly')),
  allowed_models TEXT NOT NULL DEFAULT '[]'
                   CHECK (json_valid(allowed_models) AND json_type(allowed_models) = 'array'),
  created_at     INTEGER NOT NULL,
  updated_at     INTEGER NOT NULL,
  version        INTEGER NOT NULL
) STRICT;
CREATE INDEX api_keys_by_version ON api_keys (version);

-- Free-form tags on a key (team, owner, ...).
CREATE TABLE key_metadata (
  key_id TEXT NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
  name   TEXT NOT NULL,
  value  TEXT NOT NULL,
  PRIMARY KEY (key_id, name)
) STRICT, WITHOUT ROWID;

-- `credentials` holds the upstream API key. Until encryption at rest lands it is plain text
-- and credentials_encrypted = 0; afterwards it holds the AES-256-GCM envelope and the flag
-- is 1, so both kinds of row can coexist while a database is being upgraded.
CREATE TABLE providers (
  id                    TEXT PRIMARY KEY NOT NULL,
  name                  TEXT NOT NULL UNIQUE,
  type                  TEXT NOT NULL CHECK (type IN ('openai', 'openai_compatible', 'echo',
                          'azure', 'anthropic', 'vertex', 'bedrock')),
  base_url              TEXT NOT NULL DEFAULT '',
  credentials           TEXT NOT NULL DEFAULT '',
  credentials_encrypted INTEGER NOT NULL DEFAULT 0 CHECK (credentials_encrypted IN (0, 1)),
  connect_timeout_ms    INTEGER NOT NULL CHECK (connect_timeout_ms > 0),
  first_byte_timeout_ms INTEGER NOT NULL CHECK (first_byte_timeout_ms > 0),
  idle_timeout_ms       INTEGER NOT NULL CHECK (idle_timeout_ms > 0),
  enabled               INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
  source                TEXT NOT NULL CHECK (source IN ('config', 'admin')),
  created_at            INTEGER NOT NULL,
  updated_at            INTEGER NOT NULL,
  version               INTEGER NOT NULL
) STRICT;

CREATE TABLE models (
  id                TEXT PRIMARY KEY NOT NULL,
  name              TEXT NOT NULL UNIQUE,
  provider_id       TEXT NOT NULL REFERENCES providers (id),
  upstream_model    TEXT NOT NULL,
  -- The price-list name the model is billed by; NULL: its upstream_model.
  pricing_model     TEXT CHECK (pricing_model IS NULL OR pricing_model <> ''),
  capabilities      TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(capabilities)),
  context_window    INTEGER CHECK (context_window IS NULL OR context_window > 0),
  max_output_tokens INTEGER CHECK (max_output_tokens IS NULL OR max_output_tokens > 0),
  enabled           INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
  source            TEXT NOT NULL CHECK (source IN ('config', 'admin')),
  created_at        INTEGER NOT NULL,
  updated_at        INTEGER NOT NULL,
  version           INTEGER NOT NULL
) STRICT;
-- Without it, deleting a provider scans every model to check the foreign key.
CREATE INDEX models_by_provider ON models (provider_id);

-- The price list, independent of routing: models as the LiteLLM catalog names them (or as an
-- operator names a model of their own). A routed model is priced by models.pricing_model,
-- else by its upstream_model.
CREATE TABLE price_models (
  name              TEXT PRIMARY KEY NOT NULL,
  litellm_provider  TEXT NOT NULL DEFAULT '',
  mode              TEXT NOT NULL DEFAULT '',
  max_input_tokens  INTEGER CHECK (max_input_tokens IS NULL OR max_input_tokens >= 0),
  max_output_tokens INTEGER CHECK (max_output_tokens IS NULL OR max_output_tokens >= 0),
  created_at        INTEGER NOT NULL,
  updated_at        INTEGER NOT NULL,
  version           INTEGER NOT NULL
) STRICT;

-- One price per (model, direction, modality, unit, tier): USD per unit. A row with source
-- 'override' (set by an operator) wins over the 'catalog' row (imported from the LiteLLM
-- price list) for the same component, and an import never touches it. No foreign key to
-- price_models: an override may price a model the catalog lacks. `tier` is open-ended:
-- 'default', 'priority', 'flex', 'batch', 'above_128k', 'above_200k', ...
CREATE TABLE pricing_components (
  model_name TEXT NOT NULL,
  direction  TEXT NOT NULL CHECK (direction IN ('input', 'output', 'cache_read',
               'cache_write_5m', 'cache_write_1h', 'reasoning', 'tool')),
  modality   TEXT NOT NULL DEFAULT 'text' CHECK (modality IN ('text', 'image', 'audio',
               'video')),
  unit       TEXT NOT NULL DEFAULT 'token' CHECK (unit IN ('token', '1k_tokens', '1m_tokens',
               'character', 'image', 'pixel', 'second', 'minute', 'hour', 'request', 'query')),
  tier       TEXT NOT NULL DEFAULT 'default',
  price      TEXT NOT NULL CHECK (price GLOB '[0-9]*' AND price NOT GLOB '*[^0-9.]*'
               AND price NOT GLOB '*.*.*' AND price NOT GLOB '*.'),
  source     TEXT NOT NULL CHECK (source IN ('catalog', 'override')),
  updated_at INTEGER NOT NULL,
  version    INTEGER NOT NULL,
  PRIMARY KEY (model_name, direction, modality, unit, tier, source)
) STRICT, WITHOUT ROWID;

CREATE TABLE model_aliases (
  alias      TEXT PRIMARY KEY NOT NULL,
  model_id   TEXT NOT NULL REFERENCES models (id),
  source     TEXT NOT NULL CHECK (source IN ('config', 'admin')),
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  version    INTEGER NOT NULL
) STRICT;
CREATE INDEX model_aliases_by_model ON model_aliases (model_id);

-- One row per proxied request. No foreign key to api_keys: usage outlives a deleted key,
-- and a batch must never fail because of one row. request_id is the gateway's own random id;
-- it has no index: a unique index on random keys costs a random B-tree page per insert, the
-- largest part of writing a row (replay idempotence belongs to the spool, by sequence).
-- client_request_id is the x-request-id a client sent. cost_usd is NULL when the cost is
-- unknown; `prices` is the JSON array of the prices the request was billed at.
CREATE TABLE usage_records (
  id                INTEGER PRIMARY KEY,
  request_id        TEXT NOT NULL,
  client_request_id TEXT,
  key_id            TEXT NOT NULL,
  model             TEXT NOT NULL,
  upstream_model    TEXT NOT NULL,
  provider          TEXT NOT NULL,
  endpoint          TEXT NOT NULL,
  pricing_model     TEXT,
  service_tier      TEXT,
  status            INTEGER NOT NULL,
  prompt_tokens     INTEGER NOT NULL DEFAULT 0,
  completion_tokens INTEGER NOT NULL DEFAULT 0,
  cached_tokens     INTEGER NOT NULL DEFAULT 0,
  reasoning_tokens  INTEGER NOT NULL DEFAULT 0,
  cache_write_tokens INTEGER NOT NULL DEFAULT 0,
  overhead_us       INTEGER NOT NULL DEFAULT 0,
  upstream_us       INTEGER NOT NULL DEFAULT 0,
  stream            INTEGER NOT NULL DEFAULT 0 CHECK (stream IN (0, 1)),
  usage_reported    INTEGER NOT NULL DEFAULT 0 CHECK (usage_reported IN (0, 1)),
  cost_usd          TEXT CHECK (cost_usd IS NULL OR (cost_usd GLOB '[0-9]*'
                      AND cost_usd NOT GLOB '*[^0-9.]*' AND cost_usd NOT GLOB '*.*.*'
                      AND cost_usd NOT GLOB '*.')),
  -- Not `IN (...)`: SQLite builds an ephemeral table for a list of more than two values on
  -- every execution of the INSERT, which more than doubled the cost of a row.
  cost_status       TEXT CHECK (cost_status IS NULL OR cost_status = 'exact'
                      OR cost_status = 'estimated' OR cost_status = 'partial'
                      OR cost_status = 'unpriced'),
  prices            TEXT CHECK (prices IS NULL OR json_valid(prices)),
  created_at_us     INTEGER NOT NULL
) STRICT;
CREATE INDEX usage_records_by_key_time ON usage_records (key_id, created_at_us);
CREATE INDEX usage_records_by_time ON usage_records (created_at_us);

-- Settled spend per key, UTC day ("2026-11-27") and model (as the client named it), kept
-- equal to the usage rows by the transaction that inserts them. Budgets of any period sum
-- days. cost_usd is the exact sum of the known costs, added in C++ (never by SQLite, whose
-- arithmetic is binary floating point); unpriced_requests counts requests whose cost is
-- unknown. No foreign key to api_keys: spend outlives a deleted key.
CREATE TABLE spend_daily (
  key_id            TEXT NOT NULL,
  day               TEXT NOT NULL CHECK (day GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]'),
  model             TEXT NOT NULL,
  cost_usd          TEXT NOT NULL DEFAULT '0' CHECK (cost_usd GLOB '[0-9]*'
                      AND cost_usd NOT GLOB '*[^0-9.]*' AND cost_usd NOT GLOB '*.*.*'
                      AND cost_usd NOT GLOB '*.'),
  requests          INTEGER NOT NULL DEFAULT 0 CHECK (requests >= 0),
  unpriced_requests INTEGER NOT NULL DEFAULT 0 CHECK (unpriced_requests >= 0),
  prompt_tokens     INTEGER NOT NULL DEFAULT 0,
  completion_tokens INTEGER NOT NULL DEFAULT 0,
  updated_at        INTEGER NOT NULL,
  PRIMARY KEY (key_id, day, model)
) STRICT, WITHOUT ROWID;

-- How far each usage spool (a crash-safe ring per I/O thread) has been applied: written in
-- the same transaction as the usage rows, so a replay after a crash skips what is stored.
CREATE TABLE spool_marks (
  spool TEXT PRIMARY KEY NOT NULL,
  seq   INTEGER NOT NULL
) STRICT;

-- Budget alerts, recorded once per key, budget period ("2026-11", "2026-W48", "2026-11-27")
-- and kind.
CREATE TABLE budget_events (
  id         INTEGER PRIMARY KEY,
  key_id     TEXT NOT NULL,
  period     TEXT NOT NULL,
  kind       TEXT NOT NULL CHECK (kind IN ('soft_threshold')),
  spent_usd  TEXT NOT NULL CHECK (spent_usd GLOB '[0-9]*' AND spent_usd NOT GLOB '*[^0-9.]*'
               AND spent_usd NOT GLOB '*.*.*' AND spent_usd NOT GLOB '*.'),
  budget_usd TEXT NOT NULL CHECK (budget_usd GLOB '[0-9]*' AND budget_usd NOT GLOB '*[^0-9.]*'
               AND budget_usd NOT GLOB '*.*.*' AND budget_usd NOT GLOB '*.'),
  at_us      INTEGER NOT NULL,
  UNIQUE (key_id, period, kind)
) STRICT;

CREATE TABLE admin_users (
  id            TEXT PRIMARY KEY NOT NULL,
  email         TEXT NOT NULL UNIQUE COLLATE NOCASE,
  password_hash TEXT NOT NULL,
  role          TEXT NOT NULL CHECK (role IN ('admin', 'editor', 'viewer')),
  enabled       INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
  created_at    INTEGER NOT NULL,
  updated_at    INTEGER NOT NULL
) STRICT;

CREATE TABLE admin_tokens (
  id           TEXT PRIMARY KEY NOT NULL,
  service_name TEXT NOT NULL UNIQUE,
  token_hash   TEXT NOT NULL,
  role         TEXT NOT NULL CHECK (role IN ('admin', 'editor', 'viewer')),
  enabled      INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
  created_at   INTEGER NOT NULL,
  updated_at   INTEGER NOT NULL
) STRICT;
)sql";

// The admin API: key limits, tags and metadata; retired key hashes; admin prices; the audit
// trail. admin_users and admin_tokens already fit it (migration 1).
constexpr std::string_view kAdminApi = R"sql(
ALTER TABLE api_keys ADD COLUMN max_concurrent INTEGER
  CHECK (max_concurrent IS NULL OR max_concurrent > 0);
ALTER TABLE api_keys ADD COLUMN tags TEXT NOT NULL DEFAULT '[]'
  CHECK (json_valid(tags) AND json_type(tags) = 'array');
ALTER TABLE api_keys ADD COLUMN metadata TEXT NOT NULL DEFAULT '{}'
  CHECK (json_valid(metadata) AND json_type(metadata) = 'object');
-- Never used: tags and metadata live on the key row, read with it in one go.
DROP TABLE key_metadata;

-- Hashes that stopped opening a key: the old hash of a regenerated key, the hash of a
-- deleted one, with the config version of that change. key_hashes_changed_since reports them
-- so that every process drops the hash from its key cache at its next poll, although no
-- api_keys row carries it any more. One row per regeneration or deletion; not pruned (a row
-- is a few dozen bytes).
CREATE TABLE retired_key_hashes (
  key_hash   TEXT PRIMARY KEY NOT NULL,
  key_id     TEXT NOT NULL,
  retired_at INTEGER NOT NULL,
  version    INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX retired_key_hashes_by_version ON retired_key_hashes (version);

-- pricing_components gains source 'admin' (prices set through the admin API). Precedence for
-- one (model, direction, modality, unit, tier): admin > override > catalog. An import writes
-- only 'catalog' rows, the configuration file only 'override' rows. SQLite cannot alter a
-- CHECK, so the table is rebuilt (it has no index besides its primary key).
CREATE TABLE pricing_components_v2 (
  model_name TEXT NOT NULL,
  direction  TEXT NOT NULL CHECK (direction IN ('input', 'output', 'cache_read',
               'cache_write_5m', 'cache_write_1h', 'reasoning', 'tool')),
  modality   TEXT NOT NULL DEFAULT 'text' CHECK (modality IN ('text', 'image', 'audio',
               'video')),
  unit       TEXT NOT NULL DEFAULT 'token' CHECK (unit IN ('token', '1k_tokens', '1m_tokens',
               'character', 'image', 'pixel', 'second', 'minute', 'hour', 'request', 'query')),
  tier       TEXT NOT NULL DEFAULT 'default',
  price      TEXT NOT NULL CHECK (price GLOB '[0-9]*' AND price NOT GLOB '*[^0-9.]*'
               AND price NOT GLOB '*.*.*' AND price NOT GLOB '*.'),
  source     TEXT NOT NULL CHECK (source IN ('catalog', 'override', 'admin')),
  updated_at INTEGER NOT NULL,
  version    INTEGER NOT NULL,
  PRIMARY KEY (model_name, direction, modality, unit, tier, source)
) STRICT, WITHOUT ROWID;
INSERT INTO pricing_components_v2 (model_name, direction, modality, unit, tier, price, source,
  updated_at, version)
  SELECT model_name, direction, modality, unit, tier, price, source, updated_at, version
  FROM pricing_components;
DROP TABLE pricing_components;
ALTER TABLE pricing_components_v2 RENAME TO pricing_components;

-- One row per admin write (and sign-in), inserted by the transaction of the write itself, so
-- the trail never misses a change nor records one that rolled back. Rows are only ever
-- appended, so the rowid `id` increases and serves as the cursor of the newest-first list.
-- before_json/after_json: the row before and after (secrets masked), NULL for none.
CREATE TABLE admin_audit (
  id            INTEGER PRIMARY KEY,
  at_us         INTEGER NOT NULL,
  actor_type    TEXT NOT NULL CHECK (actor_type IN ('user', 'token', 'cli', 'system')),
  actor_id      TEXT NOT NULL DEFAULT '',
  actor_name    TEXT NOT NULL DEFAULT '',
  action        TEXT NOT NULL,
  resource_type TEXT NOT NULL,
  resource_id   TEXT NOT NULL DEFAULT '',
  before_json   TEXT CHECK (before_json IS NULL OR json_valid(before_json)),
  after_json    TEXT CHECK (after_json IS NULL OR json_valid(after_json)),
  request_id    TEXT NOT NULL DEFAULT '',
  client_ip     TEXT NOT NULL DEFAULT ''
) STRICT;
-- The history of one resource, newest first; and the trail by time.
CREATE INDEX admin_audit_by_resource ON admin_audit (resource_type, resource_id, id);
CREATE INDEX admin_audit_by_time ON admin_audit (at_us);
)sql";

// Per-model rate limits: requests and tokens per minute shared by every key calling the
// model, to stay within the provider's quota. NULL: no limit. Existing models get none.
constexpr std::string_view kModelLimits = R"sql(
ALTER TABLE models ADD COLUMN rpm_limit INTEGER CHECK (rpm_limit IS NULL OR rpm_limit > 0);
ALTER TABLE models ADD COLUMN tpm_limit INTEGER CHECK (tpm_limit IS NULL OR tpm_limit > 0);
)sql";

// One usage row per request: the gateway's request id (time-ordered, 80 random bits) is
// unique, and the usage insert skips a record already stored. Delivery may then repeat
// safely: a spool replayed after a crash, or a batch of the Redis usage queue that a dead
// replica had taken and another one writes again.
// An earlier build could store a record twice (a batch retried after its commit's answer was
// lost): the first row stays. The store rebuilds spend_daily afterwards when any went.
constexpr std::string_view kUsageRequestIds = R"sql(
DELETE FROM usage_records WHERE id NOT IN (SELECT min(id) FROM usage_records GROUP BY request_id);
CREATE UNIQUE INDEX usage_records_by_request ON usage_records (request_id);
)sql";

// A check value of each secret the processes on this database must share (the master key
// that seals provider credentials, the admin JWT secret): an HMAC of a fixed text under the
// secret, written by the first process that uses it. A process whose secret gives another
// value refuses to start instead of sealing what the others cannot open.
constexpr std::string_view kSecretChecks = R"sql(
CREATE TABLE secret_checks (
  name       TEXT PRIMARY KEY,
  value      TEXT NOT NULL,
  updated_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
)sql";

// A provider row keeps its identity (id, name, type, enabled, source, times, version) and two
// documents: `settings`, a JSON object of base_url, the timeouts and whatever its type takes
// (core/provider_settings.hpp), and `secrets`, a JSON object of api_key and the type's
// secrets, sealed under the master key (`secrets_encrypted`) or in clear without one. A new
// provider type then adds no column. Existing rows move their columns into the documents; a
// credential sealed before stays a bare api_key (`secrets_format` 'api_key') until its next
// write or re-seal, since SQL cannot open it.
constexpr std::string_view kProviderDocuments = R"sql(
ALTER TABLE providers ADD COLUMN settings TEXT NOT NULL DEFAULT '{}'
  CHECK (json_valid(settings) AND json_type(settings) = 'object');
UPDATE providers SET settings = json_object('base_url', base_url,
  'connect_timeout_ms', connect_timeout_ms, 'first_byte_timeout_ms', first_byte_timeout_ms,
  'idle_timeout_ms', idle_timeout_ms);
ALTER TABLE providers RENAME COLUMN credentials TO secrets;
ALTER TABLE providers RENAME COLUMN credentials_encrypted TO secrets_encrypted;
ALTER TABLE providers ADD COLUMN secrets_format TEXT NOT NULL DEFAULT 'document'
  CHECK (secrets_format IN ('api_key', 'document'));
UPDATE providers SET secrets_format = 'api_key' WHERE secrets_encrypted = 1;
UPDATE providers SET secrets = json_object('api_key', secrets)
  WHERE secrets_encrypted = 0 AND secrets <> '';
ALTER TABLE providers DROP COLUMN base_url;
ALTER TABLE providers DROP COLUMN connect_timeout_ms;
ALTER TABLE providers DROP COLUMN first_byte_timeout_ms;
ALTER TABLE providers DROP COLUMN idle_timeout_ms;
)sql";

// Provider types are the ones core/provider_settings.cpp knows: `gemini` joins the list the
// first schema reserved. SQLite cannot change a CHECK in place; a column's own CHECK goes
// with the column, so the type moves to a new column with the new CHECK (no table rebuild,
// which the foreign keys of models would refuse inside the migration's transaction).
constexpr std::string_view kProviderTypes = R"sql(
ALTER TABLE providers ADD COLUMN type_v7 TEXT NOT NULL DEFAULT 'openai'
  CHECK (type_v7 IN ('openai', 'openai_compatible', 'echo', 'anthropic', 'azure', 'gemini', 'vertex',
                          'bedrock'));
UPDATE providers SET type_v7 = type;
ALTER TABLE providers DROP COLUMN type;
ALTER TABLE providers RENAME COLUMN type_v7 TO type;
)sql";

// A key's own audit body mode (issue 13); NULL: the gateway's LOGGING_BODIES.
constexpr std::string_view kKeyAuditBodies = R"sql(
ALTER TABLE api_keys ADD COLUMN audit_bodies TEXT
  CHECK (audit_bodies IS NULL OR audit_bodies IN ('full', 'metadata', 'redacted'));
)sql";

constexpr std::array kMigrations{
    Migration{1, "initial_schema", kInitialSchema},
    Migration{2, "admin_api", kAdminApi},
    Migration{3, "model_limits", kModelLimits},
    Migration{4, "usage_request_ids", kUsageRequestIds},
    Migration{5, "secret_checks", kSecretChecks},
    Migration{6, "provider_documents", kProviderDocuments},
    Migration{7, "provider_types", kProviderTypes},
    Migration{8, "key_audit_bodies", kKeyAuditBodies},
};

}  // namespace

std::span<const Migration> migrations() noexcept {
  return kMigrations;
}

int latest_migration_version() noexcept {
  return kMigrations.back().version;
}

}  // namespace llmgw::store::sqlite

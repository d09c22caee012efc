#include "store/postgres/migrations.hpp"

#include <array>

namespace llmgw::store::postgres {
namespace {

// Conventions of the schema (the SQLite schema's, in PostgreSQL types):
// - Times are BIGINT unix seconds (`*_at`), or unix microseconds where the name says `_us`.
// - Flags are BOOLEAN. Lists and maps the store reads whole are JSONB; JSON the store hands
//   back byte for byte (a usage row's prices, an audit row's before/after) is JSON, which
//   keeps the text as written.
// - Text that is compared, ordered or paged on is COLLATE "C": bytewise, as in SQLite and
//   C++, whatever the database's locale (a locale collation would page keys in another
//   order than `id > after` and std::map agree on).
// - Money is TEXT holding an exact non-negative decimal ("25.00", "0.0000025"), CHECKed by
//   a regular expression, as in SQLite: it round-trips exactly as written and is summed in
//   C++ with core::Money. The one exception is spend_daily.cost_usd, NUMERIC: several
//   replicas add to the same row, and `cost_usd = cost_usd + excluded.cost_usd` in one
//   INSERT ... ON CONFLICT is atomic where a read-modify-write would need a lock. NUMERIC
//   arithmetic is exact decimal (never binary floating point), and the sum of amounts of at
//   most 24 decimals (core::Money's) has at most 24 decimals, so what the store reads back
//   parses into core::Money exactly.
// - Rows of keys, providers, models, aliases, price models and prices carry `version`, the
//   value of config_version.version written by the transaction that last changed them.
// - Enumerations are named CHECK constraints, so that a later migration can replace one.
constexpr std::string_view kInitialSchema = R"sql(
CREATE TABLE config_version (
  id      INTEGER PRIMARY KEY CHECK (id = 1),
  version BIGINT NOT NULL DEFAULT 0 CHECK (version >= 0)
);
INSERT INTO config_version (id, version) VALUES (1, 0);

CREATE TABLE api_keys (
  id             TEXT COLLATE "C" PRIMARY KEY,
  key_hash       TEXT COLLATE "C" NOT NULL UNIQUE,
  prefix         TEXT NOT NULL,
  name           TEXT COLLATE "C" NOT NULL DEFAULT '',
  enabled        BOOLEAN NOT NULL DEFAULT TRUE,
  expires_at     BIGINT,
  rpm_limit      BIGINT CHECK (rpm_limit IS NULL OR rpm_limit >= 0),
  tpm_limit      BIGINT CHECK (tpm_limit IS NULL OR tpm_limit >= 0),
  budget_usd     TEXT CHECK (budget_usd IS NULL OR budget_usd ~ '^[0-9]+([.][0-9]+)?$'),
  budget_period  TEXT NOT NULL DEFAULT 'monthly'
                   CHECK (budget_period IN ('daily', 'weekly', 'monthly')),
  allowed_models JSONB NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(allowed_models) = 'array'),
  created_at     BIGINT NOT NULL,
  updated_at     BIGINT NOT NULL,
  version        BIGINT NOT NULL
);
CREATE INDEX api_keys_by_version ON api_keys (version);

CREATE TABLE key_metadata (
  key_id TEXT COLLATE "C" NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
  name   TEXT COLLATE "C" NOT NULL,
  value  TEXT NOT NULL,
  PRIMARY KEY (key_id, name)
);

-- `credentials` holds the upstream API key: in clear with credentials_encrypted false, or
-- the AES-256-GCM envelope with it true.
CREATE TABLE providers (
  id                    TEXT COLLATE "C" PRIMARY KEY,
  name                  TEXT COLLATE "C" NOT NULL UNIQUE,
  type                  TEXT NOT NULL CHECK (type IN ('openai', 'openai_compatible', 'echo',
                          'azure', 'anthropic', 'vertex', 'bedrock')),
  base_url              TEXT NOT NULL DEFAULT '',
  credentials           TEXT NOT NULL DEFAULT '',
  credentials_encrypted BOOLEAN NOT NULL DEFAULT FALSE,
  connect_timeout_ms    BIGINT NOT NULL CHECK (connect_timeout_ms > 0),
  first_byte_timeout_ms BIGINT NOT NULL CHECK (first_byte_timeout_ms > 0),
  idle_timeout_ms       BIGINT NOT NULL CHECK (idle_timeout_ms > 0),
  enabled               BOOLEAN NOT NULL DEFAULT TRUE,
  source                TEXT NOT NULL CHECK (source IN ('config', 'admin')),
  created_at            BIGINT NOT NULL,
  updated_at            BIGINT NOT NULL,
  version               BIGINT NOT NULL
);

CREATE TABLE models (
  id                TEXT COLLATE "C" PRIMARY KEY,
  name              TEXT COLLATE "C" NOT NULL UNIQUE,
  provider_id       TEXT COLLATE "C" NOT NULL REFERENCES providers (id),
  upstream_model    TEXT NOT NULL,
  -- The price-list name the model is billed by; NULL: its upstream_model.
  pricing_model     TEXT CHECK (pricing_model IS NULL OR pricing_model <> ''),
  capabilities      JSONB NOT NULL DEFAULT '[]',
  context_window    BIGINT CHECK (context_window IS NULL OR context_window > 0),
  max_output_tokens BIGINT CHECK (max_output_tokens IS NULL OR max_output_tokens > 0),
  enabled           BOOLEAN NOT NULL DEFAULT TRUE,
  source            TEXT NOT NULL CHECK (source IN ('config', 'admin')),
  created_at        BIGINT NOT NULL,
  updated_at        BIGINT NOT NULL,
  version           BIGINT NOT NULL
);
CREATE INDEX models_by_provider ON models (provider_id);

CREATE TABLE price_models (
  name              TEXT COLLATE "C" PRIMARY KEY,
  litellm_provider  TEXT NOT NULL DEFAULT '',
  mode              TEXT NOT NULL DEFAULT '',
  max_input_tokens  BIGINT CHECK (max_input_tokens IS NULL OR max_input_tokens >= 0),
  max_output_tokens BIGINT CHECK (max_output_tokens IS NULL OR max_output_tokens >= 0),
  created_at        BIGINT NOT NULL,
  updated_at        BIGINT NOT NULL,
  version           BIGINT NOT NULL
);

-- One price per (model, direction, modality, unit, tier, source): USD per unit.
CREATE TABLE pricing_components (
  model_name TEXT COLLATE "C" NOT NULL,
  direction  TEXT COLLATE "C" NOT NULL CHECK (direction IN ('input', 'output', 'cache_read',
               'cache_write_5m', 'cache_write_1h', 'reasoning', 'tool')),
  modality   TEXT COLLATE "C" NOT NULL DEFAULT 'text' CHECK (modality IN ('text', 'image',
               'audio', 'video')),
  unit       TEXT COLLATE "C" NOT NULL DEFAULT 'token' CHECK (unit IN ('token', '1k_tokens',
               '1m_tokens', 'character', 'image', 'pixel', 'second', 'minute', 'hour',
               'request', 'query')),
  tier       TEXT COLLATE "C" NOT NULL DEFAULT 'default',
  price      TEXT NOT NULL CHECK (price ~ '^[0-9]+([.][0-9]+)?$'),
  source     TEXT COLLATE "C" NOT NULL
               CONSTRAINT pricing_components_source_check
               CHECK (source IN ('catalog', 'override')),
  updated_at BIGINT NOT NULL,
  version    BIGINT NOT NULL,
  PRIMARY KEY (model_name, direction, modality, unit, tier, source)
);

CREATE TABLE model_aliases (
  alias      TEXT COLLATE "C" PRIMARY KEY,
  model_id   TEXT COLLATE "C" NOT NULL REFERENCES models (id),
  source     TEXT NOT NULL CHECK (source IN ('config', 'admin')),
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  version    BIGINT NOT NULL
);
CREATE INDEX model_aliases_by_model ON model_aliases (model_id);

-- One row per proxied request; no foreign key to api_keys (usage outlives a deleted key) and
-- no index on request_id (see the SQLite schema).
CREATE TABLE usage_records (
  id                 BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  request_id         TEXT NOT NULL,
  client_request_id  TEXT,
  key_id             TEXT COLLATE "C" NOT NULL,
  model              TEXT COLLATE "C" NOT NULL,
  upstream_model     TEXT NOT NULL,
  provider           TEXT COLLATE "C" NOT NULL,
  endpoint           TEXT NOT NULL,
  pricing_model      TEXT,
  service_tier       TEXT,
  status             INTEGER NOT NULL,
  prompt_tokens      BIGINT NOT NULL DEFAULT 0,
  completion_tokens  BIGINT NOT NULL DEFAULT 0,
  cached_tokens      BIGINT NOT NULL DEFAULT 0,
  reasoning_tokens   BIGINT NOT NULL DEFAULT 0,
  cache_write_tokens BIGINT NOT NULL DEFAULT 0,
  overhead_us        BIGINT NOT NULL DEFAULT 0,
  upstream_us        BIGINT NOT NULL DEFAULT 0,
  stream             BOOLEAN NOT NULL DEFAULT FALSE,
  usage_reported     BOOLEAN NOT NULL DEFAULT FALSE,
  cost_usd           TEXT CHECK (cost_usd IS NULL OR cost_usd ~ '^[0-9]+([.][0-9]+)?$'),
  cost_status        TEXT CHECK (cost_status IS NULL OR cost_status IN ('exact', 'estimated',
                       'partial', 'unpriced')),
  prices             JSON,
  created_at_us      BIGINT NOT NULL
);
CREATE INDEX usage_records_by_key_time ON usage_records (key_id, created_at_us);
CREATE INDEX usage_records_by_time ON usage_records (created_at_us);

-- Settled spend per key, UTC day and model, kept equal to the usage rows by the transaction
-- that inserts them. cost_usd is NUMERIC (exact decimal) so that concurrent writers add to
-- it atomically (see the conventions above).
CREATE TABLE spend_daily (
  key_id            TEXT COLLATE "C" NOT NULL,
  day               TEXT COLLATE "C" NOT NULL CHECK (day ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}$'),
  model             TEXT COLLATE "C" NOT NULL,
  cost_usd          NUMERIC NOT NULL DEFAULT 0 CHECK (cost_usd >= 0),
  requests          BIGINT NOT NULL DEFAULT 0 CHECK (requests >= 0),
  unpriced_requests BIGINT NOT NULL DEFAULT 0 CHECK (unpriced_requests >= 0),
  prompt_tokens     BIGINT NOT NULL DEFAULT 0,
  completion_tokens BIGINT NOT NULL DEFAULT 0,
  updated_at        BIGINT NOT NULL,
  PRIMARY KEY (key_id, day, model)
);

CREATE TABLE spool_marks (
  spool TEXT COLLATE "C" PRIMARY KEY,
  seq   BIGINT NOT NULL
);

CREATE TABLE budget_events (
  id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  key_id     TEXT COLLATE "C" NOT NULL,
  period     TEXT COLLATE "C" NOT NULL,
  kind       TEXT COLLATE "C" NOT NULL CHECK (kind IN ('soft_threshold')),
  spent_usd  TEXT NOT NULL CHECK (spent_usd ~ '^[0-9]+([.][0-9]+)?$'),
  budget_usd TEXT NOT NULL CHECK (budget_usd ~ '^[0-9]+([.][0-9]+)?$'),
  at_us      BIGINT NOT NULL,
  UNIQUE (key_id, period, kind)
);

-- Emails are unique without regard to ASCII case, like SQLite's COLLATE NOCASE: lower() of
-- a "C" collated column folds ASCII letters only.
CREATE TABLE admin_users (
  id            TEXT COLLATE "C" PRIMARY KEY,
  email         TEXT COLLATE "C" NOT NULL,
  password_hash TEXT NOT NULL,
  role          TEXT NOT NULL CHECK (role IN ('admin', 'editor', 'viewer')),
  enabled       BOOLEAN NOT NULL DEFAULT TRUE,
  created_at    BIGINT NOT NULL,
  updated_at    BIGINT NOT NULL
);
CREATE UNIQUE INDEX admin_users_by_email ON admin_users (lower(email));

CREATE TABLE admin_tokens (
  id           TEXT COLLATE "C" PRIMARY KEY,
  service_name TEXT COLLATE "C" NOT NULL UNIQUE,
  token_hash   TEXT NOT NULL,
  role         TEXT NOT NULL CHECK (role IN ('admin', 'editor', 'viewer')),
  enabled      BOOLEAN NOT NULL DEFAULT TRUE,
  created_at   BIGINT NOT NULL,
  updated_at   BIGINT NOT NULL
);
)sql";

// The admin API (see the SQLite migration of the same version): key limits, tags and
// metadata; retired key hashes; admin prices; the audit trail.
constexpr std::string_view kAdminApi = R"sql(
ALTER TABLE api_keys
  ADD COLUMN max_concurrent BIGINT CHECK (max_concurrent IS NULL OR max_concurrent > 0),
  ADD COLUMN tags JSONB NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(tags) = 'array'),
  ADD COLUMN metadata JSONB NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object');
DROP TABLE key_metadata;

CREATE TABLE retired_key_hashes (
  key_hash   TEXT COLLATE "C" PRIMARY KEY,
  key_id     TEXT COLLATE "C" NOT NULL,
  retired_at BIGINT NOT NULL,
  version    BIGINT NOT NULL
);
CREATE INDEX retired_key_hashes_by_version ON retired_key_hashes (version);

ALTER TABLE pricing_components
  DROP CONSTRAINT pricing_components_source_check,
  ADD CONSTRAINT pricing_components_source_check
    CHECK (source IN ('catalog', 'override', 'admin'));

-- Identity ids are drawn in insertion order; the newest-first list pages on them.
CREATE TABLE admin_audit (
  id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  at_us         BIGINT NOT NULL,
  actor_type    TEXT NOT NULL CHECK (actor_type IN ('user', 'token', 'cli', 'system')),
  actor_id      TEXT COLLATE "C" NOT NULL DEFAULT '',
  actor_name    TEXT NOT NULL DEFAULT '',
  action        TEXT NOT NULL,
  resource_type TEXT COLLATE "C" NOT NULL,
  resource_id   TEXT COLLATE "C" NOT NULL DEFAULT '',
  before_json   JSON,
  after_json    JSON,
  request_id    TEXT NOT NULL DEFAULT '',
  client_ip     TEXT NOT NULL DEFAULT ''
);
CREATE INDEX admin_audit_by_resource ON admin_audit (resource_type, resource_id, id);
CREATE INDEX admin_audit_by_time ON admin_audit (at_us);
)sql";

// Per-model rate limits (see the SQLite migration of the same version). NULL: no limit.
constexpr std::string_view kModelLimits = R"sql(
ALTER TABLE models
  ADD COLUMN rpm_limit BIGINT CHECK (rpm_limit IS NULL OR rpm_limit > 0),
  ADD COLUMN tpm_limit BIGINT CHECK (tpm_limit IS NULL OR tpm_limit > 0);
)sql";

// One usage row per request (see the SQLite migration of the same version). The index build
// holds off usage inserts until it ends (about a second per million rows).
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
  updated_at BIGINT NOT NULL
);
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
  CHECK (json_typeof(settings::json) = 'object');
UPDATE providers SET settings = json_build_object('base_url', base_url,
  'connect_timeout_ms', connect_timeout_ms, 'first_byte_timeout_ms', first_byte_timeout_ms,
  'idle_timeout_ms', idle_timeout_ms)::text;
ALTER TABLE providers RENAME COLUMN credentials TO secrets;
ALTER TABLE providers RENAME COLUMN credentials_encrypted TO secrets_encrypted;
ALTER TABLE providers ADD COLUMN secrets_format TEXT NOT NULL DEFAULT 'document'
  CHECK (secrets_format IN ('api_key', 'document'));
UPDATE providers SET secrets_format = 'api_key' WHERE secrets_encrypted;
UPDATE providers SET secrets = json_build_object('api_key', secrets)::text
  WHERE NOT secrets_encrypted AND secrets <> '';
ALTER TABLE providers DROP COLUMN base_url, DROP COLUMN connect_timeout_ms,
  DROP COLUMN first_byte_timeout_ms, DROP COLUMN idle_timeout_ms;
)sql";

// Provider types are the ones core/provider_settings.cpp knows: `gemini` joins the list the
// first schema reserved.
constexpr std::string_view kProviderTypes = R"sql(
ALTER TABLE providers DROP CONSTRAINT providers_type_check;
ALTER TABLE providers ADD CONSTRAINT providers_type_check
  CHECK (type IN ('openai', 'openai_compatible', 'echo', 'anthropic', 'azure', 'gemini', 'vertex',
                          'bedrock'));
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

}  // namespace llmgw::store::postgres

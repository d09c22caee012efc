CREATE TABLE admin_audit (
    id bigint NOT NULL,
    at_us bigint NOT NULL,
    actor_type text NOT NULL,
    actor_id text DEFAULT ''::text NOT NULL COLLATE pg_catalog."C",
    actor_name text DEFAULT ''::text NOT NULL,
    action text NOT NULL,
    resource_type text NOT NULL COLLATE pg_catalog."C",
    resource_id text DEFAULT ''::text NOT NULL COLLATE pg_catalog."C",
    before_json json,
    after_json json,
    request_id text DEFAULT ''::text NOT NULL,
    client_ip text DEFAULT ''::text NOT NULL,
    CONSTRAINT admin_audit_actor_type_check CHECK ((actor_type = ANY (ARRAY['user'::text, 'token'::text, 'cli'::text, 'system'::text])))
);
ALTER TABLE admin_audit ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME admin_audit_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);
CREATE TABLE admin_tokens (
    id text NOT NULL COLLATE pg_catalog."C",
    service_name text NOT NULL COLLATE pg_catalog."C",
    token_hash text NOT NULL,
    role text NOT NULL,
    enabled boolean DEFAULT true NOT NULL,
    created_at bigint NOT NULL,
    updated_at bigint NOT NULL,
    CONSTRAINT admin_tokens_role_check CHECK ((role = ANY (ARRAY['admin'::text, 'editor'::text, 'viewer'::text])))
);
CREATE TABLE admin_users (
    id text NOT NULL COLLATE pg_catalog."C",
    email text NOT NULL COLLATE pg_catalog."C",
    password_hash text NOT NULL,
    role text NOT NULL,
    enabled boolean DEFAULT true NOT NULL,
    created_at bigint NOT NULL,
    updated_at bigint NOT NULL,
    CONSTRAINT admin_users_role_check CHECK ((role = ANY (ARRAY['admin'::text, 'editor'::text, 'viewer'::text])))
);
CREATE TABLE api_keys (
    id text NOT NULL COLLATE pg_catalog."C",
    key_hash text NOT NULL COLLATE pg_catalog."C",
    prefix text NOT NULL,
    name text DEFAULT ''::text NOT NULL COLLATE pg_catalog."C",
    enabled boolean DEFAULT true NOT NULL,
    expires_at bigint,
    rpm_limit bigint,
    tpm_limit bigint,
    budget_usd text,
    budget_period text DEFAULT 'monthly'::text NOT NULL,
    allowed_models jsonb DEFAULT '[]'::jsonb NOT NULL,
    created_at bigint NOT NULL,
    updated_at bigint NOT NULL,
    version bigint NOT NULL,
    max_concurrent bigint,
    tags jsonb DEFAULT '[]'::jsonb NOT NULL,
    metadata jsonb DEFAULT '{}'::jsonb NOT NULL,
    CONSTRAINT api_keys_allowed_models_check CHECK ((jsonb_typeof(allowed_models) = 'array'::text)),
    CONSTRAINT api_keys_budget_period_check CHECK ((budget_period = ANY (ARRAY['daily'::text, 'weekly'::text, 'monthly'::text]))),
    CONSTRAINT api_keys_budget_usd_check CHECK (((budget_usd IS NULL) OR (budget_usd ~ '^[0-9]+([.][0-9]+)?$'::text))),
    CONSTRAINT api_keys_max_concurrent_check CHECK (((max_concurrent IS NULL) OR (max_concurrent > 0))),
    CONSTRAINT api_keys_metadata_check CHECK ((jsonb_typeof(metadata) = 'object'::text)),
    CONSTRAINT api_keys_rpm_limit_check CHECK (((rpm_limit IS NULL) OR (rpm_limit >= 0))),
    CONSTRAINT api_keys_tags_check CHECK ((jsonb_typeof(tags) = 'array'::text)),
    CONSTRAINT api_keys_tpm_limit_check CHECK (((tpm_limit IS NULL) OR (tpm_limit >= 0)))
);
CREATE TABLE budget_events (
    id bigint NOT NULL,
    key_id text NOT NULL COLLATE pg_catalog."C",
    period text NOT NULL COLLATE pg_catalog."C",
    kind text NOT NULL COLLATE pg_catalog."C",
    spent_usd text NOT NULL,
    budget_usd text NOT NULL,
    at_us bigint NOT NULL,
    CONSTRAINT budget_events_budget_usd_check CHECK ((budget_usd ~ '^[0-9]+([.][0-9]+)?$'::text)),
    CONSTRAINT budget_events_kind_check CHECK ((kind = 'soft_threshold'::text)),
    CONSTRAINT budget_events_spent_usd_check CHECK ((spent_usd ~ '^[0-9]+([.][0-9]+)?$'::text))
);
ALTER TABLE budget_events ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME budget_events_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);
CREATE TABLE config_version (
    id integer NOT NULL,
    version bigint DEFAULT 0 NOT NULL,
    CONSTRAINT config_version_id_check CHECK ((id = 1)),
    CONSTRAINT config_version_version_check CHECK ((version >= 0))
);
CREATE TABLE model_aliases (
    alias text NOT NULL COLLATE pg_catalog."C",
    model_id text NOT NULL COLLATE pg_catalog."C",
    source text NOT NULL,
    created_at bigint NOT NULL,
    updated_at bigint NOT NULL,
    version bigint NOT NULL,
    CONSTRAINT model_aliases_source_check CHECK ((source = ANY (ARRAY['config'::text, 'admin'::text])))
);
CREATE TABLE models (
    id text NOT NULL COLLATE pg_catalog."C",
    name text NOT NULL COLLATE pg_catalog."C",
    provider_id text NOT NULL COLLATE pg_catalog."C",
    upstream_model text NOT NULL,
    pricing_model text,
    capabilities jsonb DEFAULT '[]'::jsonb NOT NULL,
    context_window bigint,
    max_output_tokens bigint,
    enabled boolean DEFAULT true NOT NULL,
    source text NOT NULL,
    created_at bigint NOT NULL,
    updated_at bigint NOT NULL,
    version bigint NOT NULL,
    rpm_limit bigint,
    tpm_limit bigint,
    CONSTRAINT models_context_window_check CHECK (((context_window IS NULL) OR (context_window > 0))),
    CONSTRAINT models_max_output_tokens_check CHECK (((max_output_tokens IS NULL) OR (max_output_tokens > 0))),
    CONSTRAINT models_pricing_model_check CHECK (((pricing_model IS NULL) OR (pricing_model <> ''::text))),
    CONSTRAINT models_rpm_limit_check CHECK (((rpm_limit IS NULL) OR (rpm_limit > 0))),
    CONSTRAINT models_source_check CHECK ((source = ANY (ARRAY['config'::text, 'admin'::text]))),
    CONSTRAINT models_tpm_limit_check CHECK (((tpm_limit IS NULL) OR (tpm_limit > 0)))
);
CREATE TABLE price_models (
    name text NOT NULL COLLATE pg_catalog."C",
    litellm_provider text DEFAULT ''::text NOT NULL,
    mode text DEFAULT ''::text NOT NULL,
    max_input_tokens bigint,
    max_output_tokens bigint,
    created_at bigint NOT NULL,
    updated_at bigint NOT NULL,
    version bigint NOT NULL,
    CONSTRAINT price_models_max_input_tokens_check CHECK (((max_input_tokens IS NULL) OR (max_input_tokens >= 0))),
    CONSTRAINT price_models_max_output_tokens_check CHECK (((max_output_tokens IS NULL) OR (max_output_tokens >= 0)))
);
CREATE TABLE pricing_components (
    model_name text NOT NULL COLLATE pg_catalog."C",
    direction text NOT NULL COLLATE pg_catalog."C",
    modality text DEFAULT 'text'::text NOT NULL COLLATE pg_catalog."C",
    unit text DEFAULT 'token'::text NOT NULL COLLATE pg_catalog."C",
    tier text DEFAULT 'default'::text NOT NULL COLLATE pg_catalog."C",
    price text NOT NULL,
    source text NOT NULL COLLATE pg_catalog."C",
    updated_at bigint NOT NULL,
    version bigint NOT NULL,
    CONSTRAINT pricing_components_direction_check CHECK ((direction = ANY (ARRAY['input'::text, 'output'::text, 'cache_read'::text, 'cache_write_5m'::text, 'cache_write_1h'::text, 'reasoning'::text, 'tool'::text]))),
    CONSTRAINT pricing_components_modality_check CHECK ((modality = ANY (ARRAY['text'::text, 'image'::text, 'audio'::text, 'video'::text]))),
    CONSTRAINT pricing_components_price_check CHECK ((price ~ '^[0-9]+([.][0-9]+)?$'::text)),
    CONSTRAINT pricing_components_source_check CHECK ((source = ANY (ARRAY['catalog'::text, 'override'::text, 'admin'::text]))),
    CONSTRAINT pricing_components_unit_check CHECK ((unit = ANY (ARRAY['token'::text, '1k_tokens'::text, '1m_tokens'::text, 'character'::text, 'image'::text, 'pixel'::text, 'second'::text, 'minute'::text, 'hour'::text, 'request'::text, 'query'::text])))
);
CREATE TABLE providers (
    id text NOT NULL COLLATE pg_catalog."C",
    name text NOT NULL COLLATE pg_catalog."C",
    type text NOT NULL,
    base_url text DEFAULT ''::text NOT NULL,
    credentials text DEFAULT ''::text NOT NULL,
    credentials_encrypted boolean DEFAULT false NOT NULL,
    connect_timeout_ms bigint NOT NULL,
    first_byte_timeout_ms bigint NOT NULL,
    idle_timeout_ms bigint NOT NULL,
    enabled boolean DEFAULT true NOT NULL,
    source text NOT NULL,
    created_at bigint NOT NULL,
    updated_at bigint NOT NULL,
    version bigint NOT NULL,
    CONSTRAINT providers_connect_timeout_ms_check CHECK ((connect_timeout_ms > 0)),
    CONSTRAINT providers_first_byte_timeout_ms_check CHECK ((first_byte_timeout_ms > 0)),
    CONSTRAINT providers_idle_timeout_ms_check CHECK ((idle_timeout_ms > 0)),
    CONSTRAINT providers_source_check CHECK ((source = ANY (ARRAY['config'::text, 'admin'::text]))),
    CONSTRAINT providers_type_check CHECK ((type = ANY (ARRAY['openai'::text, 'openai_compatible'::text, 'echo'::text, 'azure'::text, 'anthropic'::text, 'vertex'::text, 'bedrock'::text])))
);
CREATE TABLE retired_key_hashes (
    key_hash text NOT NULL COLLATE pg_catalog."C",
    key_id text NOT NULL COLLATE pg_catalog."C",
    retired_at bigint NOT NULL,
    version bigint NOT NULL
);
CREATE TABLE schema_migrations (
    version integer NOT NULL,
    name text NOT NULL,
    applied_at bigint NOT NULL
);
CREATE TABLE secret_checks (
    name text NOT NULL,
    value text NOT NULL,
    updated_at bigint NOT NULL
);
CREATE TABLE spend_daily (
    key_id text NOT NULL COLLATE pg_catalog."C",
    day text NOT NULL COLLATE pg_catalog."C",
    model text NOT NULL COLLATE pg_catalog."C",
    cost_usd numeric DEFAULT 0 NOT NULL,
    requests bigint DEFAULT 0 NOT NULL,
    unpriced_requests bigint DEFAULT 0 NOT NULL,
    prompt_tokens bigint DEFAULT 0 NOT NULL,
    completion_tokens bigint DEFAULT 0 NOT NULL,
    updated_at bigint NOT NULL,
    CONSTRAINT spend_daily_cost_usd_check CHECK ((cost_usd >= (0)::numeric)),
    CONSTRAINT spend_daily_day_check CHECK ((day ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}$'::text)),
    CONSTRAINT spend_daily_requests_check CHECK ((requests >= 0)),
    CONSTRAINT spend_daily_unpriced_requests_check CHECK ((unpriced_requests >= 0))
);
CREATE TABLE spool_marks (
    spool text NOT NULL COLLATE pg_catalog."C",
    seq bigint NOT NULL
);
CREATE TABLE usage_records (
    id bigint NOT NULL,
    request_id text NOT NULL,
    client_request_id text,
    key_id text NOT NULL COLLATE pg_catalog."C",
    model text NOT NULL COLLATE pg_catalog."C",
    upstream_model text NOT NULL,
    provider text NOT NULL COLLATE pg_catalog."C",
    endpoint text NOT NULL,
    pricing_model text,
    service_tier text,
    status integer NOT NULL,
    prompt_tokens bigint DEFAULT 0 NOT NULL,
    completion_tokens bigint DEFAULT 0 NOT NULL,
    cached_tokens bigint DEFAULT 0 NOT NULL,
    reasoning_tokens bigint DEFAULT 0 NOT NULL,
    cache_write_tokens bigint DEFAULT 0 NOT NULL,
    overhead_us bigint DEFAULT 0 NOT NULL,
    upstream_us bigint DEFAULT 0 NOT NULL,
    stream boolean DEFAULT false NOT NULL,
    usage_reported boolean DEFAULT false NOT NULL,
    cost_usd text,
    cost_status text,
    prices json,
    created_at_us bigint NOT NULL,
    CONSTRAINT usage_records_cost_status_check CHECK (((cost_status IS NULL) OR (cost_status = ANY (ARRAY['exact'::text, 'estimated'::text, 'partial'::text, 'unpriced'::text])))),
    CONSTRAINT usage_records_cost_usd_check CHECK (((cost_usd IS NULL) OR (cost_usd ~ '^[0-9]+([.][0-9]+)?$'::text)))
);
ALTER TABLE usage_records ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME usage_records_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);
INSERT INTO api_keys VALUES ('key_fixture00000001', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 'sk-llmgw-Fixt', 'fixture key', true, NULL, 120, NULL, '25.00', 'monthly', '[]', 1796645014, 1796645014, 4, NULL, '["team-a"]', '{"owner": "fixtures"}');
INSERT INTO config_version VALUES (1, 4);
INSERT INTO model_aliases VALUES ('fast', 'model_3bcfc81b7e375cbd', 'config', 1796645014, 1796645014, 1);
INSERT INTO models VALUES ('model_3bcfc81b7e375cbd', 'gpt-4o-mini', 'prov_b4d1de11ddbccd3e', 'gpt-4o-mini', NULL, '[]', NULL, NULL, true, 'config', 1796645014, 1796645014, 1, NULL, NULL);
INSERT INTO models VALUES ('model_1aeb916037845313', 'llama', 'prov_b725ff4504a9b7c4', 'meta-llama/Llama-3.1-8B-Instruct', NULL, '[]', NULL, NULL, true, 'config', 1796645014, 1796645014, 1, 60, 100000);
INSERT INTO models VALUES ('model_0c71888e5593b603', 'echo-model', 'prov_86cf9cd4ba81b339', 'echo-model', NULL, '[]', NULL, NULL, true, 'config', 1796645014, 1796645014, 1, NULL, NULL);
INSERT INTO providers VALUES ('prov_b4d1de11ddbccd3e', 'openai-main', 'openai', 'https://api.openai.com/v1', 'sk-fixture-openai-clear', false, 10000, 120000, 120000, true, 'config', 1796645014, 1796645014, 1);
INSERT INTO providers VALUES ('prov_b725ff4504a9b7c4', 'local-vllm', 'openai_compatible', 'http://127.0.0.1:8000/v1', 'fixture-compat-key-clear', false, 2500, 30000, 45000, true, 'config', 1796645014, 1796645014, 1);
INSERT INTO providers VALUES ('prov_86cf9cd4ba81b339', 'echo', 'echo', '', '', false, 10000, 120000, 120000, true, 'config', 1796645014, 1796645014, 1);
INSERT INTO providers VALUES ('prov_fixture0000000a', 'sealed-admin', 'openai_compatible', 'https://llm.internal.example/v1', 'yABiK-2_dYEKZZIYXAyOMQZvw-q-9vSlWcLOZvKs3_ODPWnwd0-szqvGmE-epNCMwllr', true, 1000, 60000, 90000, true, 'admin', 1796645014, 1796645014, 2);
INSERT INTO providers VALUES ('prov_fixture0000000b', 'disabled-admin', 'openai', 'https://api.openai.com/v1', '', false, 10000, 120000, 120000, false, 'admin', 1796645014, 1796645014, 3);
INSERT INTO schema_migrations VALUES (1, 'initial_schema', 1796645014);
INSERT INTO schema_migrations VALUES (2, 'admin_api', 1796645014);
INSERT INTO schema_migrations VALUES (3, 'model_limits', 1796645014);
INSERT INTO schema_migrations VALUES (4, 'usage_request_ids', 1796645014);
INSERT INTO schema_migrations VALUES (5, 'secret_checks', 1796645014);
INSERT INTO spend_daily VALUES ('key_fixture00000001', '2026-05-28', 'fast', 0.000081, 3, 0, 303, 60, 1796645014);
INSERT INTO usage_records OVERRIDING SYSTEM VALUE VALUES (1, 'req_fixture0', NULL, 'key_fixture00000001', 'fast', 'gpt-4o-mini', 'openai-main', 'chat.completions', NULL, NULL, 200, 100, 20, 0, 0, 0, 0, 0, false, false, '0.000027', 'exact', NULL, 1780000000000000);
INSERT INTO usage_records OVERRIDING SYSTEM VALUE VALUES (2, 'req_fixture1', NULL, 'key_fixture00000001', 'fast', 'gpt-4o-mini', 'openai-main', 'chat.completions', NULL, NULL, 200, 101, 20, 0, 0, 0, 0, 0, false, false, '0.000027', 'exact', NULL, 1780000000000001);
INSERT INTO usage_records OVERRIDING SYSTEM VALUE VALUES (3, 'req_fixture2', NULL, 'key_fixture00000001', 'fast', 'gpt-4o-mini', 'openai-main', 'chat.completions', NULL, NULL, 200, 102, 20, 0, 0, 0, 0, 0, false, false, '0.000027', 'exact', NULL, 1780000000000002);
SELECT pg_catalog.setval('admin_audit_id_seq', 1, false);
SELECT pg_catalog.setval('budget_events_id_seq', 1, false);
SELECT pg_catalog.setval('usage_records_id_seq', 3, true);
ALTER TABLE ONLY admin_audit
    ADD CONSTRAINT admin_audit_pkey PRIMARY KEY (id);
ALTER TABLE ONLY admin_tokens
    ADD CONSTRAINT admin_tokens_pkey PRIMARY KEY (id);
ALTER TABLE ONLY admin_tokens
    ADD CONSTRAINT admin_tokens_service_name_key UNIQUE (service_name);
ALTER TABLE ONLY admin_users
    ADD CONSTRAINT admin_users_pkey PRIMARY KEY (id);
ALTER TABLE ONLY api_keys
    ADD CONSTRAINT api_keys_key_hash_key UNIQUE (key_hash);
ALTER TABLE ONLY api_keys
    ADD CONSTRAINT api_keys_pkey PRIMARY KEY (id);
ALTER TABLE ONLY budget_events
    ADD CONSTRAINT budget_events_key_id_period_kind_key UNIQUE (key_id, period, kind);
ALTER TABLE ONLY budget_events
    ADD CONSTRAINT budget_events_pkey PRIMARY KEY (id);
ALTER TABLE ONLY config_version
    ADD CONSTRAINT config_version_pkey PRIMARY KEY (id);
ALTER TABLE ONLY model_aliases
    ADD CONSTRAINT model_aliases_pkey PRIMARY KEY (alias);
ALTER TABLE ONLY models
    ADD CONSTRAINT models_name_key UNIQUE (name);
ALTER TABLE ONLY models
    ADD CONSTRAINT models_pkey PRIMARY KEY (id);
ALTER TABLE ONLY price_models
    ADD CONSTRAINT price_models_pkey PRIMARY KEY (name);
ALTER TABLE ONLY pricing_components
    ADD CONSTRAINT pricing_components_pkey PRIMARY KEY (model_name, direction, modality, unit, tier, source);
ALTER TABLE ONLY providers
    ADD CONSTRAINT providers_name_key UNIQUE (name);
ALTER TABLE ONLY providers
    ADD CONSTRAINT providers_pkey PRIMARY KEY (id);
ALTER TABLE ONLY retired_key_hashes
    ADD CONSTRAINT retired_key_hashes_pkey PRIMARY KEY (key_hash);
ALTER TABLE ONLY schema_migrations
    ADD CONSTRAINT schema_migrations_pkey PRIMARY KEY (version);
ALTER TABLE ONLY secret_checks
    ADD CONSTRAINT secret_checks_pkey PRIMARY KEY (name);
ALTER TABLE ONLY spend_daily
    ADD CONSTRAINT spend_daily_pkey PRIMARY KEY (key_id, day, model);
ALTER TABLE ONLY spool_marks
    ADD CONSTRAINT spool_marks_pkey PRIMARY KEY (spool);
ALTER TABLE ONLY usage_records
    ADD CONSTRAINT usage_records_pkey PRIMARY KEY (id);
CREATE INDEX admin_audit_by_resource ON admin_audit USING btree (resource_type, resource_id, id);
CREATE INDEX admin_audit_by_time ON admin_audit USING btree (at_us);
CREATE UNIQUE INDEX admin_users_by_email ON admin_users USING btree (lower(email));
CREATE INDEX api_keys_by_version ON api_keys USING btree (version);
CREATE INDEX model_aliases_by_model ON model_aliases USING btree (model_id);
CREATE INDEX models_by_provider ON models USING btree (provider_id);
CREATE INDEX retired_key_hashes_by_version ON retired_key_hashes USING btree (version);
CREATE INDEX usage_records_by_key_time ON usage_records USING btree (key_id, created_at_us);
CREATE UNIQUE INDEX usage_records_by_request ON usage_records USING btree (request_id);
CREATE INDEX usage_records_by_time ON usage_records USING btree (created_at_us);
ALTER TABLE ONLY model_aliases
    ADD CONSTRAINT model_aliases_model_id_fkey FOREIGN KEY (model_id) REFERENCES models(id);
ALTER TABLE ONLY models
    ADD CONSTRAINT models_provider_id_fkey FOREIGN KEY (provider_id) REFERENCES providers(id);

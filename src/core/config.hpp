#pragma once
/// Start-up configuration: process settings from the environment (the seed's names kept) and
/// the declarative YAML file of providers, models and aliases (a public contract, see
/// docs/configuration.md). The control plane may throw: `ConfigError` names file, field and
/// problem.

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace llmgw::core {

class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// What an audit record keeps of the bodies (LOGGING_BODIES; a key's own setting wins).
enum class AuditBodies : std::uint8_t {
  Full,      ///< "full": request and response bodies, cut at max_body_bytes
  Metadata,  ///< "metadata": no bodies
  Redacted,  ///< "redacted": bodies with the configured JSON paths masked
};
std::string_view to_string(AuditBodies b) noexcept;
bool parse_audit_bodies(std::string_view s, AuditBodies& out) noexcept;

/// The audit archive (issue 13): where batches of audit records go, as gzip JSON Lines objects
/// named PREFIX/YYYY/MM/DD/<pod>-<timestamp>-<nanos>.jsonl.gz. The sink is S3 (or any
/// S3-compatible store) when LOGGING_SINK_S3_BUCKET is set, else the local directory.
struct ArchiveSettings {
  /// LOGGING_AUDIT: false = no audit record is made (what earlier runs spooled is still
  /// archived).
  bool audit = true;
  bool enabled = false;  ///< LOGGING_SINK_ENABLED
  /// LOGGING_SINK_DIR; empty: DATA_DIR/audit (Settings::archive_dir()).
  std::string dir;
  std::string s3_bucket;          ///< LOGGING_SINK_S3_BUCKET; set: the sink is S3
  std::string s3_region = "us-east-1";  ///< LOGGING_SINK_S3_REGION, else AWS_REGION
  std::string s3_prefix = "logs/";      ///< LOGGING_SINK_S3_PREFIX ("" allowed)
  /// LOGGING_SINK_S3_ENDPOINT: an http(s) origin of an S3-compatible store (MinIO, s3rver),
  /// addressed path-style (ORIGIN/bucket/key); empty: AWS, virtual-host style.
  std::string s3_endpoint;
  std::string aws_access_key_id;      ///< AWS_ACCESS_KEY_ID
  std::string aws_secret_access_key;  ///< AWS_SECRET_ACCESS_KEY: secret, never logged
  std::string aws_session_token;      ///< AWS_SESSION_TOKEN: secret, never logged
  std::size_t flush_size = 1'000;     ///< LOGGING_SINK_FLUSH_SIZE (records per object)
  /// LOGGING_SINK_FLUSH_INTERVAL, a Go-style duration ("30s", "5m", "1h"; 1s to 24h).
  std::chrono::milliseconds flush_interval{5 * 60 * 1000};
  std::size_t max_body_bytes = 1u << 20;  ///< LOGGING_MAX_BODY_BYTES: longer bodies are cut
  AuditBodies bodies = AuditBodies::Full;  ///< LOGGING_BODIES: full, metadata or redacted
  /// LOGGING_REDACT_PATHS: the JSON paths redacted mode masks, comma-separated (syntax in
  /// src/events/audit/redact.hpp); empty: the message and answer contents of every format.
  std::string redact_paths;
  /// POD_NAME: the first part of an object's file name, so replicas never collide; default
  /// the host name.
  std::string pod_name;

  [[nodiscard]] bool s3() const noexcept { return !s3_bucket.empty(); }
  /// Reads the environment over the defaults. Throws ConfigError naming the variable (never
  /// quoting a secret) on a bad value.
  static ArchiveSettings from_environment();
};

/// Process settings. Defaults, then environment, then command-line flags (applied by `app`).
struct Settings {
  std::string host = "0.0.0.0";                  ///< GATEWAY_HTTP_HOST
  std::uint16_t port = 8080;                     ///< GATEWAY_HTTP_PORT (0: any free port)
  unsigned threads = 0;                          ///< LLMGW_THREADS (0: number of cores)
  std::string data_dir = "./data";               ///< LLMGW_DATA_DIR
  /// DATABASE_URL: postgres://… or postgresql://… stores configuration, keys and usage in
  /// PostgreSQL (several replicas may share it); empty: the SQLite file in data_dir. A secret
  /// (it may hold a password): never logged.
  std::string database_url;
  /// REDIS_ADDRESS ("host:port"): limits shared by every replica through Redis; empty: in
  /// process. REDIS_PASSWORD (a secret, never logged) and REDIS_DB (0-15) go with it.
  std::string redis_address;
  std::string redis_password;
  int redis_db = 0;
  /// LLMGW_RATE_LIMIT_FAILURE_POLICY: what a call gets while Redis does not answer:
  /// "fail_open" (served without limits, counted and logged) or "fail_closed" (503).
  std::string rate_limit_failure_policy = "fail_open";
  /// LLMGW_BUDGET_FAILURE_POLICY: the same for budgets held in Redis; "fail_closed" (503) by
  /// default, since a call that cannot be checked could overrun the budget.
  std::string budget_failure_policy = "fail_closed";
  /// LLMGW_USAGE_QUEUE: where a replica's usage records go from its spool. "redis" (the
  /// default when REDIS_ADDRESS is set): a list in Redis that every replica's worker drains
  /// into the store, so what a replica acknowledged outlives the replica and its disk;
  /// "direct": straight into the store.
  std::string usage_queue;
  std::size_t max_body_bytes = 10u << 20;        ///< LLMGW_MAX_BODY_BYTES
  std::size_t max_header_bytes = 16u << 10;      ///< LLMGW_MAX_HEADER_BYTES
  std::chrono::milliseconds header_timeout{10'000};   ///< LLMGW_HEADER_TIMEOUT_MS
  std::chrono::milliseconds body_timeout{30'000};     ///< LLMGW_BODY_TIMEOUT_MS
  std::chrono::milliseconds idle_timeout{75'000};     ///< LLMGW_IDLE_TIMEOUT_MS (keep-alive)
  std::chrono::milliseconds shutdown_grace{30'000};   ///< LLMGW_SHUTDOWN_GRACE_MS
  std::chrono::milliseconds reload_interval{200};     ///< LLMGW_RELOAD_INTERVAL_MS
  std::size_t api_key_cache_size = 100'000;      ///< CACHE_API_KEY_SIZE (entries, all threads)
  /// CACHE_MODEL_SIZE: read and checked for compatibility with the seed's settings; it has no
  /// effect, since the catalog snapshot holds every model, alias and provider in memory.
  std::size_t model_cache_size = 10'000;
  std::size_t usage_batch_size = 1'000;          ///< LLMGW_USAGE_BATCH
  std::chrono::milliseconds usage_flush_interval{200};  ///< LLMGW_USAGE_FLUSH_MS
  /// LLMGW_USAGE_LEASE_MS: how long a batch taken from the Redis usage queue stays with its
  /// worker before another replica puts it back (the worker died, or its store write hangs).
  std::chrono::milliseconds usage_lease{15'000};
  /// LLMGW_TEST_FAULT_AFTER (tests only): a stage of the request path (proxy::Stage, e.g.
  /// "reserved") after which the next LLMGW_TEST_FAULT_COUNT (default 1) inference calls throw.
  std::string test_fault_after;
  unsigned test_fault_count = 1;
  std::size_t usage_queue_limit = 1'000'000;     ///< LLMGW_USAGE_QUEUE_LIMIT
  std::size_t usage_spool_bytes = 4u << 20;      ///< LLMGW_USAGE_SPOOL_BYTES per I/O thread; 0: none
  bool access_log = true;                        ///< LLMGW_ACCESS_LOG (0/1)
  unsigned budget_soft_threshold_percent = 80;   ///< LLMGW_BUDGET_SOFT_THRESHOLD_PERCENT
  std::string log_level = "info";                ///< LOG_LEVEL
  /// METRICS_TOKEN: the bearer token GET /metrics asks for; empty: open. A secret: never
  /// logged.
  std::string metrics_token;
  ArchiveSettings archive;                       ///< LOGGING_SINK_*, LOGGING_BODIES, POD_NAME

  /// Reads the environment over the defaults. Throws ConfigError on a bad value.
  static Settings from_environment();
  [[nodiscard]] unsigned effective_threads() const noexcept;
  [[nodiscard]] std::string database_path() const { return data_dir + "/llmgw.db"; }
  /// The local archive directory: LOGGING_SINK_DIR, else DATA_DIR/audit.
  [[nodiscard]] std::string archive_dir() const {
    return archive.dir.empty() ? data_dir + "/audit" : archive.dir;
  }
};

enum class ProviderType : std::uint8_t {
  OpenAI,
  OpenAICompatible,
  Echo,
  Anthropic,
  Azure,
  Gemini,
  Vertex,
  Bedrock,
};
inline constexpr std::array kProviderTypes{
    ProviderType::OpenAI, ProviderType::OpenAICompatible, ProviderType::Echo,
    ProviderType::Anthropic, ProviderType::Azure, ProviderType::Gemini,
    ProviderType::Vertex, ProviderType::Bedrock};
std::string_view to_string(ProviderType t) noexcept;
bool parse_provider_type(std::string_view s, ProviderType& out) noexcept;

struct ProviderConfig {
  std::string name;
  ProviderType type = ProviderType::OpenAI;
  std::string base_url;   ///< e.g. https://api.openai.com/v1 (empty for echo)
  std::string api_key;    ///< secret: never logged
  std::chrono::milliseconds connect_timeout{10'000};
  std::chrono::milliseconds first_byte_timeout{120'000};
  std::chrono::milliseconds idle_timeout{120'000};
  /// What a provider type takes beyond the fields above (core/provider_settings.hpp lists
  /// them per type): settings (an API version, a project, a region) and secrets (a secret
  /// key, a session token), by name. Secrets are never logged.
  std::map<std::string, std::string> settings{};
  std::map<std::string, std::string> secrets{};
  bool operator==(const ProviderConfig&) const = default;
};

struct ModelConfig {
  std::string name;
  std::string provider;
  std::string upstream_model;  ///< defaults to name
  std::string pricing_model;   ///< price-list name; empty: the upstream model's name
  /// Requests and tokens per minute for the model, shared by every key that calls it (an
  /// alias counts against its model): protects the provider's quota. None: no limit (the
  /// initializers let `{name, provider, upstream, pricing}` leave them out).
  std::optional<std::int64_t> rpm_limit = std::nullopt;
  std::optional<std::int64_t> tpm_limit = std::nullopt;
  bool operator==(const ModelConfig&) const = default;
};

/// An operator's price for one component of a priced model (wins over the catalog).
struct PriceOverrideConfig {
  std::string direction = "input";
  std::string modality = "text";
  std::string unit = "1m_tokens";
  std::string tier = "default";
  std::string price;  ///< decimal USD per unit
  bool operator==(const PriceOverrideConfig&) const = default;
};

struct PriceConfig {
  std::string model;  ///< price-list name (a catalog name, or a name of your own)
  std::vector<PriceOverrideConfig> components;
  bool operator==(const PriceConfig&) const = default;
};

struct AliasConfig {
  std::string alias;
  std::string model;
  bool operator==(const AliasConfig&) const = default;
};

/// The declarative file: providers, models, aliases and price overrides written into the
/// store at start.
struct GatewayConfig {
  std::vector<ProviderConfig> providers;
  std::vector<ModelConfig> models;
  std::vector<AliasConfig> aliases;
  std::vector<PriceConfig> prices;
};

/// Expands `${VAR}` and `${VAR:-default}` from the environment. Throws ConfigError
/// (mentioning `where`) for an unset variable without default or an unclosed `${`.
std::string expand_env(const std::string& text, const std::string& where);

/// Parses and validates a YAML config file. Throws ConfigError "FILE: FIELD: problem".
GatewayConfig load_config_file(const std::string& path);
/// Same, from text (`origin` names the source in messages).
GatewayConfig parse_config(const std::string& yaml_text, const std::string& origin);

}  // namespace llmgw::core

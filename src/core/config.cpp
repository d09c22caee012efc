#include "core/config.hpp"

#include "core/duration.hpp"
#include "core/provider_settings.hpp"

#include <boost/url/parse.hpp>
#include <yaml-cpp/yaml.h>

#include <charconv>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include <unistd.h>

namespace llmgw::core {

namespace {

const char* env(const char* name) {
  const char* v = std::getenv(name);
  return (v != nullptr && *v != '\0') ? v : nullptr;
}

template <class T>
void env_number(const char* name, T& out, T min_value, T max_value) {
  const char* v = env(name);
  if (v == nullptr) {
    return;
  }
  const std::string_view s(v);
  T value{};
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc{} || p != s.data() + s.size() || value < min_value || value > max_value) {
    throw ConfigError(std::string("environment: ") + name + ": '" + v +
                      "' is not a number between " + std::to_string(min_value) + " and " +
                      std::to_string(max_value));
  }
  out = value;
}

void env_ms(const char* name, std::chrono::milliseconds& out, std::int64_t min_value = 1) {
  std::int64_t ms = out.count();
  env_number<std::int64_t>(name, ms, min_value, 24LL * 3600 * 1000);
  out = std::chrono::milliseconds(ms);
}

void env_bool(const char* name, bool& out) {
  const char* v = env(name);
  if (v == nullptr) {
    return;
  }
  const std::string_view s(v);
  if (s == "1" || s == "true" || s == "yes" || s == "on") {
    out = true;
  } else if (s == "0" || s == "false" || s == "no" || s == "off") {
    out = false;
  } else {
    throw ConfigError(std::string("environment: ") + name + ": '" + v + "' is not a boolean");
  }
}

}  // namespace

Settings Settings::from_environment() {
  Settings s;
  if (const char* v = env("GATEWAY_HTTP_HOST")) {
    s.host = v;
  }
  env_number<std::uint16_t>("GATEWAY_HTTP_PORT", s.port, 0, 65535);
  env_number<unsigned>("LLMGW_THREADS", s.threads, 0, 1024);
  if (const char* v = env("LLMGW_DATA_DIR")) {
    s.data_dir = v;
  }
  if (const char* v = env("DATABASE_URL")) {
    // Refused rather than ignored: a replica falling back to its own SQLite file would split
    // the shared state without a word. The message never quotes the URL (its password).
    const std::string_view url(v);
    if (!url.starts_with("postgres://") && !url.starts_with("postgresql://")) {
      throw ConfigError(
          "environment: DATABASE_URL: not a postgres:// or postgresql:// URL (unset it to use "
          "the SQLite file in LLMGW_DATA_DIR)");
    }
    s.database_url = v;
  }
  if (const char* v = env("REDIS_ADDRESS")) {
    const std::string_view addr(v);
    const auto colon = addr.rfind(':');
    if (colon == std::string_view::npos || colon == 0 || colon + 1 == addr.size()) {
      throw ConfigError("environment: REDIS_ADDRESS: expected host:port");
    }
    s.redis_address = v;
  }
  if (const char* v = env("REDIS_PASSWORD")) {
    s.redis_password = v;
  }
  if (const char* v = env("METRICS_TOKEN")) {
    s.metrics_token = v;
  }
  env_number<int>("REDIS_DB", s.redis_db, 0, 15);
  if (const char* v = env("LLMGW_RATE_LIMIT_FAILURE_POLICY")) {
    if (std::string_view(v) != "fail_open" && std::string_view(v) != "fail_closed") {
      throw ConfigError("environment: LLMGW_RATE_LIMIT_FAILURE_POLICY: fail_open or fail_closed");
    }
    s.rate_limit_failure_policy = v;
  }
  if (const char* v = env("LLMGW_BUDGET_FAILURE_POLICY")) {
    if (std::string_view(v) != "fail_open" && std::string_view(v) != "fail_closed") {
      throw ConfigError("environment: LLMGW_BUDGET_FAILURE_POLICY: fail_open or fail_closed");
    }
    s.budget_failure_policy = v;
  }
  s.usage_queue = s.redis_address.empty() ? "direct" : "redis";
  if (const char* v = env("LLMGW_USAGE_QUEUE")) {
    if (std::string_view(v) != "redis" && std::string_view(v) != "direct") {
      throw ConfigError("environment: LLMGW_USAGE_QUEUE: redis or direct");
    }
    if (std::string_view(v) == "redis" && s.redis_address.empty()) {
      throw ConfigError("environment: LLMGW_USAGE_QUEUE=redis needs REDIS_ADDRESS");
    }
    s.usage_queue = v;
  }
  env_number<std::size_t>("LLMGW_MAX_BODY_BYTES", s.max_body_bytes, 1024, std::size_t(1) << 32);
  env_number<std::size_t>("LLMGW_MAX_HEADER_BYTES", s.max_header_bytes, 1024, 1u << 20);
  env_ms("LLMGW_HEADER_TIMEOUT_MS", s.header_timeout);
  env_ms("LLMGW_BODY_TIMEOUT_MS", s.body_timeout);
  env_ms("LLMGW_IDLE_TIMEOUT_MS", s.idle_timeout);
  env_ms("LLMGW_SHUTDOWN_GRACE_MS", s.shutdown_grace, 0);
  env_ms("LLMGW_RELOAD_INTERVAL_MS", s.reload_interval, 10);
  env_number<std::size_t>("CACHE_API_KEY_SIZE", s.api_key_cache_size, 1, std::size_t(1) << 32);
  env_number<std::size_t>("CACHE_MODEL_SIZE", s.model_cache_size, 1, std::size_t(1) << 32);
  env_number<std::size_t>("LLMGW_USAGE_BATCH", s.usage_batch_size, 1, 1'000'000);
  env_ms("LLMGW_USAGE_FLUSH_MS", s.usage_flush_interval);
  env_ms("LLMGW_USAGE_LEASE_MS", s.usage_lease, 2'000);
  if (const char* v = env("LLMGW_TEST_FAULT_AFTER")) {
    s.test_fault_after = v;
  }
  env_number<unsigned>("LLMGW_TEST_FAULT_COUNT", s.test_fault_count, 0, 1'000'000);
  env_number<std::size_t>("LLMGW_USAGE_QUEUE_LIMIT", s.usage_queue_limit, 1, std::size_t(1) << 32);
  env_number<std::size_t>("LLMGW_USAGE_SPOOL_BYTES", s.usage_spool_bytes, 0, std::size_t(1) << 34);
  if (s.usage_spool_bytes != 0 && s.usage_spool_bytes < (64u << 10)) {
    throw ConfigError("environment: LLMGW_USAGE_SPOOL_BYTES: at least 65536 (or 0 for none)");
  }
  env_bool("LLMGW_ACCESS_LOG", s.access_log);
  env_number<unsigned>("LLMGW_BUDGET_SOFT_THRESHOLD_PERCENT", s.budget_soft_threshold_percent, 1,
                       100);
  if (const char* v = env("LOG_LEVEL")) {
    s.log_level = v;
  }
  s.archive = ArchiveSettings::from_environment();
  return s;
}

std::string_view to_string(AuditBodies b) noexcept {
  switch (b) {
    case AuditBodies::Full: return "full";
    case AuditBodies::Metadata: return "metadata";
    case AuditBodies::Redacted: return "redacted";
  }
  return "full";
}

bool parse_audit_bodies(std::string_view s, AuditBodies& out) noexcept {
  for (const auto b : {AuditBodies::Full, AuditBodies::Metadata, AuditBodies::Redacted}) {
    if (to_string(b) == s) {
      out = b;
      return true;
    }
  }
  return false;
}

namespace {

/// S3's bucket naming rules (3-63 characters, lower-case letters, digits, '.', '-', starting
/// and ending with a letter or digit), which every S3-compatible store accepts.
bool valid_bucket(std::string_view b) {
  if (b.size() < 3 || b.size() > 63) {
    return false;
  }
  const auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!alnum(b.front()) || !alnum(b.back())) {
    return false;
  }
  for (const char c : b) {
    if (!alnum(c) && c != '.' && c != '-') {
      return false;
    }
  }
  return true;
}

bool valid_region(std::string_view r) {
  if (r.empty() || r.size() > 64) {
    return false;
  }
  for (const char c : r) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) {
      return false;
    }
  }
  return true;
}

std::string default_pod_name() {
  if (const char* h = env("HOSTNAME")) {
    return h;
  }
  std::array<char, 256> buf{};
  if (gethostname(buf.data(), buf.size() - 1) == 0 && buf[0] != '\0') {
    return buf.data();
  }
  return "llmgw";
}

}  // namespace

ArchiveSettings ArchiveSettings::from_environment() {
  ArchiveSettings a;
  env_bool("LOGGING_AUDIT", a.audit);
  env_bool("LOGGING_SINK_ENABLED", a.enabled);
  if (const char* v = env("LOGGING_SINK_DIR")) {
    a.dir = v;
  }
  if (const char* v = env("LOGGING_SINK_S3_BUCKET")) {
    if (!valid_bucket(v)) {
      throw ConfigError(std::string("environment: LOGGING_SINK_S3_BUCKET: '") + v +
                        "' is not a bucket name (3-63 of a-z 0-9 . -)");
    }
    a.s3_bucket = v;
  }
  if (const char* v = env("LOGGING_SINK_S3_REGION")) {
    a.s3_region = v;
  } else if (const char* r = env("AWS_REGION")) {
    a.s3_region = r;
  }
  if (!valid_region(a.s3_region)) {
    throw ConfigError("environment: LOGGING_SINK_S3_REGION: '" + a.s3_region +
                      "' is not a region name (a-z 0-9 -)");
  }
  if (const char* v = std::getenv("LOGGING_SINK_S3_PREFIX")) {
    // Set but empty is allowed: objects at the bucket's root.
    std::string_view p(v);
    if (p.starts_with('/') || p.find("//") != std::string_view::npos ||
        p.find_first_of("\r\n") != std::string_view::npos || p.size() > 512) {
      throw ConfigError(std::string("environment: LOGGING_SINK_S3_PREFIX: '") + v +
                        "' must not start with '/' nor hold '//'");
    }
    a.s3_prefix = v;
    if (!a.s3_prefix.empty() && a.s3_prefix.back() != '/') {
      a.s3_prefix += '/';
    }
  }
  if (const char* v = env("LOGGING_SINK_S3_ENDPOINT")) {
    const auto u = boost::urls::parse_absolute_uri(v);
    if (!u || (u->scheme() != "http" && u->scheme() != "https") || u->host().empty() ||
        u->has_query() || u->has_userinfo()) {
      throw ConfigError(
          "environment: LOGGING_SINK_S3_ENDPOINT: not an http:// or https:// origin without "
          "query or credentials");
    }
    a.s3_endpoint = v;
    while (!a.s3_endpoint.empty() && a.s3_endpoint.back() == '/') {
      a.s3_endpoint.pop_back();
    }
  }
  if (const char* v = env("AWS_ACCESS_KEY_ID")) {
    a.aws_access_key_id = v;
  }
  if (const char* v = env("AWS_SECRET_ACCESS_KEY")) {
    a.aws_secret_access_key = v;
  }
  if (const char* v = env("AWS_SESSION_TOKEN")) {
    a.aws_session_token = v;
  }
  env_number<std::size_t>("LOGGING_SINK_FLUSH_SIZE", a.flush_size, 1, 1'000'000);
  if (const char* v = env("LOGGING_SINK_FLUSH_INTERVAL")) {
    const auto d = parse_duration(v);
    if (!d || *d < std::chrono::seconds(1) || *d > std::chrono::hours(24)) {
      throw ConfigError(std::string("environment: LOGGING_SINK_FLUSH_INTERVAL: '") + v +
                        "' is not a duration between 1s and 24h (e.g. 30s, 5m, 1h30m)");
    }
    a.flush_interval = std::chrono::duration_cast<std::chrono::milliseconds>(*d);
  }
  env_number<std::size_t>("LOGGING_MAX_BODY_BYTES", a.max_body_bytes, 0, std::size_t(1) << 30);
  if (const char* v = env("LOGGING_BODIES")) {
    if (!parse_audit_bodies(v, a.bodies)) {
      throw ConfigError(std::string("environment: LOGGING_BODIES: '") + v +
                        "' is not full, metadata or redacted");
    }
  }
  if (const char* v = env("LOGGING_REDACT_PATHS")) {
    a.redact_paths = v;
  }
  a.pod_name = env("POD_NAME") != nullptr ? env("POD_NAME") : default_pod_name();
  if (a.enabled && a.s3() &&
      (a.aws_access_key_id.empty() || a.aws_secret_access_key.empty())) {
    throw ConfigError(
        "environment: LOGGING_SINK_S3_BUCKET needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY");
  }
  return a;
}

unsigned Settings::effective_threads() const noexcept {
  if (threads != 0) {
    return threads;
  }
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : n;
}

std::string_view to_string(ProviderType t) noexcept {
  switch (t) {
    case ProviderType::OpenAI: return "openai";
    case ProviderType::OpenAICompatible: return "openai_compatible";
    case ProviderType::Echo: return "echo";
    case ProviderType::Anthropic: return "anthropic";
    case ProviderType::Azure: return "azure";
    case ProviderType::Gemini: return "gemini";
    case ProviderType::Vertex: return "vertex";
    case ProviderType::Bedrock: return "bedrock";
  }
  return "unknown";
}

bool parse_provider_type(std::string_view s, ProviderType& out) noexcept {
  for (auto t : kProviderTypes) {
    if (to_string(t) == s) {
      out = t;
      return true;
    }
  }
  return false;
}

std::string expand_env(const std::string& text, const std::string& where) {
  std::string out;
  out.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    const std::size_t start = text.find("${", i);
    if (start == std::string::npos) {
      out.append(text, i);
      break;
    }
    out.append(text, i, start - i);
    const std::size_t end = text.find('}', start + 2);
    if (end == std::string::npos) {
      throw ConfigError(where + ": unclosed '${' in value");
    }
    std::string expr = text.substr(start + 2, end - start - 2);
    std::string fallback;
    bool has_fallback = false;
    if (const auto d = expr.find(":-"); d != std::string::npos) {
      fallback = expr.substr(d + 2);
      expr.resize(d);
      has_fallback = true;
    }
    if (expr.empty()) {
      throw ConfigError(where + ": empty variable name in '${}'");
    }
    // As in the shell: a variable set to "" expands to ""; `:-` also replaces the empty value.
    const char* v = std::getenv(expr.c_str());
    if (v != nullptr && (*v != '\0' || !has_fallback)) {
      out += v;
    } else if (has_fallback) {
      out += fallback;
    } else {
      throw ConfigError(where + ": environment variable " + expr + " is not set");
    }
    i = end + 1;
  }
  return out;
}

namespace {

/// The largest per-minute limit a model accepts: the admin API's bound for limits too.
constexpr std::int64_t kMaxLimit = 1'000'000'000'000;

class Parser {
 public:
  explicit Parser(std::string origin) : origin_(std::move(origin)) {}

  GatewayConfig parse(const YAML::Node& root) {
    GatewayConfig cfg;
    if (!root || root.IsNull()) {
      return cfg;
    }
    if (!root.IsMap()) {
      fail("(top level)", "must be a mapping with providers, models and aliases");
    }
    check_keys(root, "(top level)", {"providers", "models", "aliases", "prices"});
    for_each(root, "providers", [&](const YAML::Node& n, const std::string& at) {
      cfg.providers.push_back(provider(n, at));
    });
    for_each(root, "models", [&](const YAML::Node& n, const std::string& at) {
      cfg.models.push_back(model(n, at));
    });
    for_each(root, "aliases", [&](const YAML::Node& n, const std::string& at) {
      cfg.aliases.push_back(alias(n, at));
    });
    for_each(root, "prices", [&](const YAML::Node& n, const std::string& at) {
      cfg.prices.push_back(price(n, at));
    });
    cross_check(cfg);
    return cfg;
  }

 private:
  [[noreturn]] void fail(const std::string& field, const std::string& problem) const {
    throw ConfigError(origin_ + ": " + field + ": " + problem);
  }

  template <class F>
  void for_each(const YAML::Node& root, const char* name, F&& f) {
    const YAML::Node list = root[name];
    if (!list || list.IsNull()) {
      return;
    }
    if (!list.IsSequence()) {
      fail(name, "must be a list");
    }
    for (std::size_t i = 0; i < list.size(); ++i) {
      const std::string at = std::string(name) + "[" + std::to_string(i) + "]";
      if (!list[i].IsMap()) {
        fail(at, "must be a mapping");
      }
      f(list[i], at);
    }
  }

  template <class Names = std::initializer_list<std::string_view>>
  void check_keys(const YAML::Node& n, const std::string& at, const Names& allowed) const {
    for (const auto& kv : n) {
      const std::string key = kv.first.Scalar();
      bool ok = false;
      for (auto a : allowed) {
        ok = ok || a == key;
      }
      if (!ok) {
        std::string list;
        for (auto a : allowed) {
          list += list.empty() ? "" : ", ";
          list += a;
        }
        fail(at + "." + key, "unknown field (expected one of: " + list + ")");
      }
    }
  }

  std::string scalar(const YAML::Node& n, const std::string& at, const char* key,
                     bool required) const {
    const YAML::Node v = n[key];
    const std::string field = at + "." + key;
    if (!v || v.IsNull()) {
      if (required) {
        fail(field, "is required");
      }
      return {};
    }
    if (!v.IsScalar()) {
      fail(field, "must be a string");
    }
    std::string s = expand_env(v.Scalar(), origin_ + ": " + field);
    if (required && s.empty()) {
      fail(field, "must not be empty");
    }
    return s;
  }

  std::chrono::milliseconds millis(const YAML::Node& n, const std::string& at, const char* key,
                                   std::chrono::milliseconds dflt) const {
    const std::string s = scalar(n, at, key, false);
    if (s.empty()) {
      return dflt;
    }
    std::int64_t v = 0;
    const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || p != s.data() + s.size() || v < 1 || v > 86'400'000) {
      fail(at + "." + key, "'" + s + "' is not a number of milliseconds between 1 and 86400000");
    }
    return std::chrono::milliseconds(v);
  }

  /// An optional positive count (a per-minute limit); absent or null: none.
  std::optional<std::int64_t> limit(const YAML::Node& n, const std::string& at,
                                    const char* key) const {
    const std::string range = "a whole number between 1 and " + std::to_string(kMaxLimit);
    if (const YAML::Node v = n[key]; v && !v.IsNull() && !v.IsScalar()) {
      fail(at + "." + key, "must be " + range);
    }
    const std::string s = scalar(n, at, key, false);
    if (s.empty()) {
      return std::nullopt;
    }
    std::int64_t v = 0;
    const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || p != s.data() + s.size() || v < 1 || v > kMaxLimit) {
      fail(at + "." + key, "'" + s + "' is not " + range);
    }
    return v;
  }

  void check_name(const std::string& field, const std::string& v) const {
    if (v.size() > 200) {
      fail(field, "is longer than 200 characters");
    }
    for (unsigned char c : v) {
      if (c < 0x21 || c == 0x7f) {
        fail(field, "'" + v + "' contains whitespace or control characters");
      }
    }
  }

  ProviderConfig provider(const YAML::Node& n, const std::string& at) {
    ProviderConfig p;
    p.name = scalar(n, at, "name", true);
    check_name(at + ".name", p.name);
    const std::string type = scalar(n, at, "type", true);
    if (!parse_provider_type(type, p.type)) {
      std::string known;
      for (auto t : kProviderTypes) {
        known += known.empty() ? "" : ", ";
        known += to_string(t);
      }
      fail(at + ".type", "unknown provider type '" + type + "' (expected one of: " + known + ")");
    }
    const ProviderTypeRules& rules = provider_type_rules(p.type);
    // A secret may also come from a file (`api_key_file`, `aws_secret_access_key_file`):
    // the way container platforms mount them.
    std::vector<std::string> allowed{"name", "type", "base_url", "api_key", "api_key_file",
                                     "connect_timeout_ms", "first_byte_timeout_ms",
                                     "idle_timeout_ms"};
    for (const auto& s : rules.settings) {
      allowed.emplace_back(s.name);
      if (s.secret) {
        allowed.push_back(std::string(s.name) + "_file");
      }
    }
    check_keys(n, at, allowed);
    p.base_url = scalar(n, at, "base_url", false);
    p.api_key = secret(n, at, "api_key");
    if (p.type == ProviderType::OpenAI && p.base_url.empty()) {
      p.base_url = "https://api.openai.com/v1";
    }
    if (rules.base_url != ProviderTypeRules::BaseUrl::Unused && !p.base_url.empty()) {
      auto u = boost::urls::parse_absolute_uri(p.base_url);
      if (!u || (u->scheme() != "http" && u->scheme() != "https") || u->host().empty() ||
          u->has_query() || u->has_fragment() || u->has_userinfo()) {
        fail(at + ".base_url",
             "'" + p.base_url + "' is not an http:// or https:// URL without query or userinfo");
      }
      while (!p.base_url.empty() && p.base_url.back() == '/') {
        p.base_url.pop_back();
      }
    }
    for (const auto& s : rules.settings) {
      const std::string name(s.name);
      std::string value = s.secret ? secret(n, at, name) : scalar(n, at, name.c_str(), false);
      if (!value.empty()) {
        (s.secret ? p.secrets : p.settings)[name] = std::move(value);
      }
    }
    p.connect_timeout = millis(n, at, "connect_timeout_ms", p.connect_timeout);
    p.first_byte_timeout = millis(n, at, "first_byte_timeout_ms", p.first_byte_timeout);
    p.idle_timeout = millis(n, at, "idle_timeout_ms", p.idle_timeout);
    if (auto problem = check_provider_settings(p)) {
      fail(at + "." + problem->field, problem->message);
    }
    return p;
  }

  /// A secret given inline (`name`, `${VAR}` expanded) or read from the file `name_file`
  /// (one trailing newline dropped); not both.
  std::string secret(const YAML::Node& n, const std::string& at, const std::string& name) {
    std::string value = scalar(n, at, name.c_str(), false);
    const std::string file_key = name + "_file";
    const std::string file = scalar(n, at, file_key.c_str(), false);
    if (file.empty()) {
      return value;
    }
    if (!value.empty()) {
      fail(at + "." + file_key, "give either " + name + " or " + file_key + ", not both");
    }
    std::ifstream in(file, std::ios::binary);
    if (!in) {
      fail(at + "." + file_key, "cannot read '" + file + "'");
    }
    std::ostringstream ss;
    ss << in.rdbuf();
    value = ss.str();
    if (value.ends_with("\r\n")) {
      value.resize(value.size() - 2);
    } else if (value.ends_with('\n')) {
      value.pop_back();
    }
    return value;
  }

  ModelConfig model(const YAML::Node& n, const std::string& at) {
    check_keys(n, at,
               {"name", "provider", "upstream_model", "pricing_model", "rpm_limit", "tpm_limit"});
    ModelConfig m;
    m.name = scalar(n, at, "name", true);
    check_name(at + ".name", m.name);
    m.provider = scalar(n, at, "provider", true);
    m.upstream_model = scalar(n, at, "upstream_model", false);
    if (m.upstream_model.empty()) {
      m.upstream_model = m.name;
    }
    m.pricing_model = scalar(n, at, "pricing_model", false);
    if (!m.pricing_model.empty()) {
      check_name(at + ".pricing_model", m.pricing_model);
    }
    m.rpm_limit = limit(n, at, "rpm_limit");
    m.tpm_limit = limit(n, at, "tpm_limit");
    return m;
  }

  PriceConfig price(const YAML::Node& n, const std::string& at) {
    check_keys(n, at, {"model", "components"});
    PriceConfig p;
    p.model = scalar(n, at, "model", true);
    check_name(at + ".model", p.model);
    const YAML::Node list = n["components"];
    if (!list || !list.IsSequence() || list.size() == 0) {
      fail(at + ".components", "must be a non-empty list");
    }
    for (std::size_t i = 0; i < list.size(); ++i) {
      const std::string cat = at + ".components[" + std::to_string(i) + "]";
      if (!list[i].IsMap()) {
        fail(cat, "must be a mapping");
      }
      check_keys(list[i], cat, {"direction", "modality", "unit", "tier", "price"});
      PriceOverrideConfig c;
      c.direction = scalar(list[i], cat, "direction", true);
      if (auto v = scalar(list[i], cat, "modality", false); !v.empty()) {
        c.modality = v;
      }
      if (auto v = scalar(list[i], cat, "unit", false); !v.empty()) {
        c.unit = v;
      }
      if (auto v = scalar(list[i], cat, "tier", false); !v.empty()) {
        c.tier = v;
      }
      c.price = scalar(list[i], cat, "price", true);
      p.components.push_back(std::move(c));
    }
    return p;
  }

  AliasConfig alias(const YAML::Node& n, const std::string& at) {
    check_keys(n, at, {"alias", "model"});
    AliasConfig a;
    a.alias = scalar(n, at, "alias", true);
    check_name(at + ".alias", a.alias);
    a.model = scalar(n, at, "model", true);
    return a;
  }

  void cross_check(const GatewayConfig& cfg) const {
    std::set<std::string> providers;
    for (std::size_t i = 0; i < cfg.providers.size(); ++i) {
      if (!providers.insert(cfg.providers[i].name).second) {
        fail("providers[" + std::to_string(i) + "].name",
             "duplicate provider '" + cfg.providers[i].name + "'");
      }
    }
    std::set<std::string> models;
    for (std::size_t i = 0; i < cfg.models.size(); ++i) {
      const auto& m = cfg.models[i];
      const std::string at = "models[" + std::to_string(i) + "]";
      if (!models.insert(m.name).second) {
        fail(at + ".name", "duplicate model '" + m.name + "'");
      }
      if (!providers.contains(m.provider)) {
        fail(at + ".provider", "unknown provider '" + m.provider + "'");
      }
    }
    std::set<std::string> priced;
    for (std::size_t i = 0; i < cfg.prices.size(); ++i) {
      if (!priced.insert(cfg.prices[i].model).second) {
        fail("prices[" + std::to_string(i) + "].model",
             "duplicate price entry for '" + cfg.prices[i].model + "'");
      }
    }
    std::set<std::string> aliases;
    for (std::size_t i = 0; i < cfg.aliases.size(); ++i) {
      const auto& a = cfg.aliases[i];
      const std::string at = "aliases[" + std::to_string(i) + "]";
      if (!aliases.insert(a.alias).second) {
        fail(at + ".alias", "duplicate alias '" + a.alias + "'");
      }
      if (models.contains(a.alias)) {
        fail(at + ".alias", "'" + a.alias + "' is already a model name");
      }
      if (!models.contains(a.model)) {
        fail(at + ".model", "unknown model '" + a.model + "'");
      }
    }
  }

  std::string origin_;
};

}  // namespace

GatewayConfig parse_config(const std::string& yaml_text, const std::string& origin) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    throw ConfigError(origin + ": line " + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  return Parser(origin).parse(root);
}

GatewayConfig load_config_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw ConfigError(path + ": cannot be read");
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return parse_config(ss.str(), path);
}

}  // namespace llmgw::core

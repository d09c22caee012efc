#include "core/config.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

namespace llmgw::core {
namespace {

std::string error_of(const std::string& yaml) {
  try {
    parse_config(yaml, "cfg.yaml");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return {};
}

TEST(ParseConfig, ReadsProvidersModelsAndAliases) {
  ::setenv("LLMGW_TEST_KEY", "sk-secret", 1);
  const auto cfg = parse_config(R"(
providers:
  - name: openai-main
    type: openai
    base_url: https://api.openai.com/v1/
    api_key: ${LLMGW_TEST_KEY}
    first_byte_timeout_ms: 5000
  - name: local
    type: echo
models:
  - name: gpt-4o-mini
    provider: openai-main
    upstream_model: gpt-4o-mini-2024-07-18
  - name: demo
    provider: local
aliases:
  - alias: fast
    model: gpt-4o-mini
)",
                                "cfg.yaml");
  ASSERT_EQ(cfg.providers.size(), 2u);
  EXPECT_EQ(cfg.providers[0].api_key, "sk-secret");
  EXPECT_EQ(cfg.providers[0].base_url, "https://api.openai.com/v1");
  EXPECT_EQ(cfg.providers[0].first_byte_timeout.count(), 5000);
  EXPECT_EQ(cfg.providers[1].type, ProviderType::Echo);
  ASSERT_EQ(cfg.models.size(), 2u);
  EXPECT_EQ(cfg.models[0].upstream_model, "gpt-4o-mini-2024-07-18");
  EXPECT_EQ(cfg.models[1].upstream_model, "demo");
  ASSERT_EQ(cfg.aliases.size(), 1u);
  EXPECT_EQ(cfg.aliases[0].model, "gpt-4o-mini");
}

TEST(ParseConfig, ReadsEachProviderTypesOwnSettingsAndSecrets) {
  const std::string secret_file = ::testing::TempDir() + "llmgw-config-secret";
  {
    std::ofstream(secret_file) << "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n";
  }
  const auto cfg = parse_config(R"(
providers:
  - {name: claude, type: anthropic, api_key: sk-ant, anthropic_version: "2023-06-01"}
  - {name: azure-east, type: azure, base_url: https://r.openai.azure.com, api_key: k,
     api_version: "2024-10-21"}
  - {name: gemini, type: gemini, api_key: g}
  - {name: vertex, type: vertex, project: my-project, location: us-central1,
     access_token: ya29.token}
  - name: bedrock
    type: bedrock
    region: us-east-1
    aws_access_key_id: AKIDEXAMPLE
    aws_secret_access_key_file: )" + secret_file + R"(
)",
                                "cfg.yaml");
  ASSERT_EQ(cfg.providers.size(), 5u);
  EXPECT_EQ(cfg.providers[0].type, ProviderType::Anthropic);
  EXPECT_TRUE(cfg.providers[0].base_url.empty()) << "the adapter's public endpoint applies";
  EXPECT_EQ(cfg.providers[0].settings.at("anthropic_version"), "2023-06-01");
  EXPECT_EQ(cfg.providers[1].settings.at("api_version"), "2024-10-21");
  EXPECT_EQ(cfg.providers[3].settings.at("project"), "my-project");
  EXPECT_EQ(cfg.providers[3].secrets.at("access_token"), "ya29.token");
  EXPECT_FALSE(cfg.providers[3].settings.contains("access_token")) << "a secret is no setting";
  EXPECT_EQ(cfg.providers[4].settings.at("region"), "us-east-1");
  EXPECT_EQ(cfg.providers[4].secrets.at("aws_secret_access_key"),
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");

  EXPECT_EQ(error_of("providers:\n  - {name: b, type: bedrock}\n"),
            "cfg.yaml: providers[0].region: 'region' is required for provider type bedrock.");
  EXPECT_EQ(error_of("providers:\n  - {name: a, type: anthropic, api_key: k, region: x}\n")
                .substr(0, 44),
            "cfg.yaml: providers[0].region: unknown field");
  EXPECT_EQ(error_of("providers:\n  - {name: a, type: anthropic, api_key: k, api_key_file: f}\n"),
            "cfg.yaml: providers[0].api_key_file: give either api_key or api_key_file, not both");
  EXPECT_EQ(error_of("providers:\n  - {name: a, type: anthropic, api_key_file: /nonexistent/k}\n"),
            "cfg.yaml: providers[0].api_key_file: cannot read '/nonexistent/k'");
}

TEST(ParseConfig, ErrorsNameFileFieldAndProblem) {
  EXPECT_EQ(error_of("providers:\n  - name: a\n    type: openai\n    colour: red\n"),
            "cfg.yaml: providers[0].colour: unknown field (expected one of: name, type, base_url, "
            "api_key, api_key_file, connect_timeout_ms, first_byte_timeout_ms, idle_timeout_ms)");
  EXPECT_EQ(error_of("models:\n  - name: m\n    provider: nope\n"),
            "cfg.yaml: models[0].provider: unknown provider 'nope'");
  EXPECT_EQ(error_of("providers:\n  - name: a\n    type: grpc\n"),
            "cfg.yaml: providers[0].type: unknown provider type 'grpc' (expected one of: openai, "
            "openai_compatible, echo, anthropic, azure, gemini, vertex, bedrock)");
  EXPECT_EQ(error_of("providers:\n  - name: a\n    type: openai_compatible\n"),
            "cfg.yaml: providers[0].base_url: 'base_url' is required for provider type "
            "openai_compatible.");
  EXPECT_EQ(error_of("providers:\n  - name: a\n    type: openai\n    base_url: ftp://x\n"),
            "cfg.yaml: providers[0].base_url: 'ftp://x' is not an http:// or https:// URL "
            "without query or userinfo");
  EXPECT_EQ(error_of("aliases:\n  - alias: f\n    model: none\n"),
            "cfg.yaml: aliases[0].model: unknown model 'none'");
  EXPECT_EQ(error_of("providers: 3\n"), "cfg.yaml: providers: must be a list");
  EXPECT_EQ(error_of("providers:\n  - name: a\n    type: echo\n    first_byte_timeout_ms: soon\n"),
            "cfg.yaml: providers[0].first_byte_timeout_ms: 'soon' is not a number of "
            "milliseconds between 1 and 86400000");
  EXPECT_NE(error_of("providers: [").find("cfg.yaml: line"), std::string::npos);
  ::unsetenv("LLMGW_UNSET_VAR");
  EXPECT_EQ(error_of("providers:\n  - name: a\n    type: openai\n    api_key: ${LLMGW_UNSET_VAR}\n"),
            "cfg.yaml: providers[0].api_key: environment variable LLMGW_UNSET_VAR is not set");
}

TEST(ParseConfig, RejectsDuplicatesAndAliasShadowingModel) {
  EXPECT_EQ(error_of("providers:\n  - {name: a, type: echo}\n  - {name: a, type: echo}\n"),
            "cfg.yaml: providers[1].name: duplicate provider 'a'");
  EXPECT_EQ(error_of("providers:\n  - {name: a, type: echo}\nmodels:\n  - {name: m, provider: a}\n"
                     "aliases:\n  - {alias: m, model: m}\n"),
            "cfg.yaml: aliases[0].alias: 'm' is already a model name");
}

TEST(ParseConfig, ReadsModelRateLimits) {
  ::setenv("LLMGW_TEST_TPM", "200000", 1);
  const auto cfg = parse_config(R"(
providers:
  - {name: a, type: echo}
models:
  - {name: limited, provider: a, rpm_limit: 500, tpm_limit: "${LLMGW_TEST_TPM}"}
  - {name: rpm-only, provider: a, rpm_limit: 1}
  - {name: free, provider: a, rpm_limit: null, tpm_limit: "${LLMGW_TEST_UNSET_TPM:-}"}
)",
                                "cfg.yaml");
  ASSERT_EQ(cfg.models.size(), 3u);
  EXPECT_EQ(cfg.models[0].rpm_limit, 500);
  EXPECT_EQ(cfg.models[0].tpm_limit, 200'000);
  EXPECT_EQ(cfg.models[1].rpm_limit, 1);
  EXPECT_EQ(cfg.models[1].tpm_limit, std::nullopt);
  EXPECT_EQ(cfg.models[2].rpm_limit, std::nullopt);
  EXPECT_EQ(cfg.models[2].tpm_limit, std::nullopt);
  // Only the limits differ: the models are not equal, so applying the file writes them.
  ModelConfig unlimited = cfg.models[0];
  unlimited.tpm_limit.reset();
  EXPECT_NE(unlimited, cfg.models[0]);
}

TEST(ParseConfig, RejectsModelRateLimitsThatAreNotPositiveWholeNumbers) {
  const std::string head =
      "providers:\n  - {name: a, type: echo}\nmodels:\n  - {name: m, provider: a}\n"
      "  - {name: n, provider: a, ";
  const std::string range = "a whole number between 1 and 1000000000000";
  EXPECT_EQ(error_of(head + "rpm_limit: 0}\n"),
            "cfg.yaml: models[1].rpm_limit: '0' is not " + range);
  EXPECT_EQ(error_of(head + "tpm_limit: -5}\n"),
            "cfg.yaml: models[1].tpm_limit: '-5' is not " + range);
  EXPECT_EQ(error_of(head + "rpm_limit: 1.5}\n"),
            "cfg.yaml: models[1].rpm_limit: '1.5' is not " + range);
  EXPECT_EQ(error_of(head + "rpm_limit: lots}\n"),
            "cfg.yaml: models[1].rpm_limit: 'lots' is not " + range);
  EXPECT_EQ(error_of(head + "tpm_limit: 1000000000001}\n"),
            "cfg.yaml: models[1].tpm_limit: '1000000000001' is not " + range);
  EXPECT_EQ(error_of(head + "tpm_limit: 99999999999999999999}\n"),
            "cfg.yaml: models[1].tpm_limit: '99999999999999999999' is not " + range);
  EXPECT_EQ(error_of(head + "rpm_limit: [1]}\n"),
            "cfg.yaml: models[1].rpm_limit: must be " + range);
  EXPECT_EQ(error_of(head + "rpm_minute: 3}\n"),
            "cfg.yaml: models[1].rpm_minute: unknown field (expected one of: name, provider, "
            "upstream_model, pricing_model, rpm_limit, tpm_limit)");
}

TEST(ExpandEnv, UsesDefaultsAndRejectsUnclosed) {
  ::unsetenv("LLMGW_NOPE");
  EXPECT_EQ(expand_env("a${LLMGW_NOPE:-b}c", "x"), "abc");
  EXPECT_THROW(expand_env("${LLMGW_NOPE", "x"), ConfigError);
}

TEST(Settings, ReadsSeedEnvironmentNamesAndRejectsBadNumbers) {
  ::setenv("GATEWAY_HTTP_PORT", "9090", 1);
  ::setenv("CACHE_API_KEY_SIZE", "42", 1);
  auto s = Settings::from_environment();
  EXPECT_EQ(s.port, 9090);
  EXPECT_EQ(s.api_key_cache_size, 42u);
  ::setenv("GATEWAY_HTTP_PORT", "70000", 1);
  EXPECT_THROW(Settings::from_environment(), ConfigError);
  ::unsetenv("GATEWAY_HTTP_PORT");
  ::unsetenv("CACHE_API_KEY_SIZE");
}

TEST(Settings, DatabaseUrlSelectsPostgresAndAnythingElseIsRefused) {
  ::unsetenv("DATABASE_URL");
  EXPECT_EQ(Settings::from_environment().database_url, "");
  ::setenv("DATABASE_URL", "postgres://gw:pw@db:5432/llmgw", 1);
  EXPECT_EQ(Settings::from_environment().database_url, "postgres://gw:pw@db:5432/llmgw");
  ::setenv("DATABASE_URL", "postgresql://gw@db/llmgw?sslmode=require", 1);
  EXPECT_EQ(Settings::from_environment().database_url, "postgresql://gw@db/llmgw?sslmode=require");
  ::setenv("DATABASE_URL", "mysql://gw:secret-pw@db/llmgw", 1);
  try {
    (void)Settings::from_environment();
    FAIL() << "a mysql URL was accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("DATABASE_URL"), std::string::npos);
    EXPECT_EQ(std::string(e.what()).find("secret-pw"), std::string::npos);
  }
  ::unsetenv("DATABASE_URL");
}

TEST(Settings, UsageQueueIsRedisWhenRedisIsConfiguredUnlessSetDirect) {
  ::unsetenv("REDIS_ADDRESS");
  ::unsetenv("LLMGW_USAGE_QUEUE");
  ::unsetenv("LLMGW_USAGE_LEASE_MS");
  EXPECT_EQ(Settings::from_environment().usage_queue, "direct");
  EXPECT_EQ(Settings::from_environment().usage_lease, std::chrono::milliseconds(15'000));
  ::setenv("LLMGW_USAGE_QUEUE", "redis", 1);
  EXPECT_THROW(Settings::from_environment(), ConfigError);  // no Redis to queue in
  ::setenv("REDIS_ADDRESS", "127.0.0.1:6379", 1);
  EXPECT_EQ(Settings::from_environment().usage_queue, "redis");
  ::unsetenv("LLMGW_USAGE_QUEUE");
  EXPECT_EQ(Settings::from_environment().usage_queue, "redis");
  ::setenv("LLMGW_USAGE_QUEUE", "direct", 1);
  EXPECT_EQ(Settings::from_environment().usage_queue, "direct");
  ::setenv("LLMGW_USAGE_QUEUE", "kafka", 1);
  EXPECT_THROW(Settings::from_environment(), ConfigError);
  ::unsetenv("LLMGW_USAGE_QUEUE");
  ::setenv("LLMGW_USAGE_LEASE_MS", "3000", 1);
  EXPECT_EQ(Settings::from_environment().usage_lease, std::chrono::milliseconds(3'000));
  ::setenv("LLMGW_USAGE_LEASE_MS", "10", 1);
  EXPECT_THROW(Settings::from_environment(), ConfigError);
  ::unsetenv("LLMGW_USAGE_LEASE_MS");
  ::unsetenv("REDIS_ADDRESS");
}

}  // namespace
}  // namespace llmgw::core

namespace llmgw::core {
namespace {

/// Sets the archive's variables for one test and clears them after.
class ArchiveEnv : public ::testing::Test {
 protected:
  static constexpr const char* kNames[] = {
      "LOGGING_SINK_ENABLED", "LOGGING_SINK_DIR", "LOGGING_SINK_S3_BUCKET",
      "LOGGING_SINK_S3_REGION", "LOGGING_SINK_S3_PREFIX", "LOGGING_SINK_S3_ENDPOINT",
      "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION",
      "LOGGING_SINK_FLUSH_SIZE", "LOGGING_SINK_FLUSH_INTERVAL", "LOGGING_MAX_BODY_BYTES",
      "LOGGING_BODIES", "POD_NAME"};
  void SetUp() override { clear(); }
  void TearDown() override { clear(); }
  static void clear() {
    for (const char* n : kNames) {
      ::unsetenv(n);
    }
  }
  static std::string error() {
    try {
      ArchiveSettings::from_environment();
    } catch (const ConfigError& e) {
      return e.what();
    }
    return {};
  }
};

TEST_F(ArchiveEnv, DefaultsToTheLocalDirectoryInTheDataDir) {
  ::setenv("POD_NAME", "gw-1", 1);
  const auto a = ArchiveSettings::from_environment();
  EXPECT_FALSE(a.enabled);
  EXPECT_FALSE(a.s3());
  EXPECT_EQ(a.s3_prefix, "logs/");
  EXPECT_EQ(a.s3_region, "us-east-1");
  EXPECT_EQ(a.flush_size, 1000u);
  EXPECT_EQ(a.flush_interval, std::chrono::minutes(5));
  EXPECT_EQ(a.max_body_bytes, 1u << 20);
  EXPECT_EQ(a.bodies, AuditBodies::Full);
  EXPECT_EQ(a.pod_name, "gw-1");
  Settings s;
  s.data_dir = "/var/lib/llmgw";
  EXPECT_EQ(s.archive_dir(), "/var/lib/llmgw/audit");
  s.archive.dir = "/srv/audit";
  EXPECT_EQ(s.archive_dir(), "/srv/audit");
}

TEST_F(ArchiveEnv, ReadsTheS3Settings) {
  ::setenv("LOGGING_SINK_ENABLED", "true", 1);
  ::setenv("LOGGING_SINK_S3_BUCKET", "audit-bucket", 1);
  ::setenv("AWS_REGION", "eu-west-1", 1);
  ::setenv("LOGGING_SINK_S3_PREFIX", "gw/audit", 1);
  ::setenv("LOGGING_SINK_S3_ENDPOINT", "http://127.0.0.1:9000/", 1);
  ::setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1);
  ::setenv("AWS_SECRET_ACCESS_KEY", "secret-key-value", 1);
  ::setenv("LOGGING_SINK_FLUSH_SIZE", "50", 1);
  ::setenv("LOGGING_SINK_FLUSH_INTERVAL", "1h30m", 1);
  ::setenv("LOGGING_MAX_BODY_BYTES", "4096", 1);
  ::setenv("LOGGING_BODIES", "redacted", 1);
  const auto a = ArchiveSettings::from_environment();
  EXPECT_TRUE(a.enabled);
  EXPECT_TRUE(a.s3());
  EXPECT_EQ(a.s3_region, "eu-west-1");
  EXPECT_EQ(a.s3_prefix, "gw/audit/");
  EXPECT_EQ(a.s3_endpoint, "http://127.0.0.1:9000");
  EXPECT_EQ(a.flush_size, 50u);
  EXPECT_EQ(a.flush_interval, std::chrono::minutes(90));
  EXPECT_EQ(a.max_body_bytes, 4096u);
  EXPECT_EQ(a.bodies, AuditBodies::Redacted);
  ::setenv("LOGGING_SINK_S3_REGION", "us-west-2", 1);
  EXPECT_EQ(ArchiveSettings::from_environment().s3_region, "us-west-2");
  ::setenv("LOGGING_SINK_S3_PREFIX", "", 1);
  EXPECT_EQ(ArchiveSettings::from_environment().s3_prefix, "");
}

TEST_F(ArchiveEnv, RefusesBadValuesNamingTheVariableNeverTheSecret) {
  ::setenv("LOGGING_SINK_FLUSH_INTERVAL", "5 minutes", 1);
  EXPECT_NE(error().find("LOGGING_SINK_FLUSH_INTERVAL"), std::string::npos) << error();
  ::setenv("LOGGING_SINK_FLUSH_INTERVAL", "100ms", 1);
  EXPECT_NE(error().find("between 1s and 24h"), std::string::npos) << error();
  ::unsetenv("LOGGING_SINK_FLUSH_INTERVAL");
  ::setenv("LOGGING_BODIES", "all", 1);
  EXPECT_NE(error().find("LOGGING_BODIES"), std::string::npos);
  ::unsetenv("LOGGING_BODIES");
  ::setenv("LOGGING_SINK_FLUSH_SIZE", "0", 1);
  EXPECT_NE(error().find("LOGGING_SINK_FLUSH_SIZE"), std::string::npos);
  ::unsetenv("LOGGING_SINK_FLUSH_SIZE");
  ::setenv("LOGGING_SINK_S3_BUCKET", "Not_A_Bucket", 1);
  EXPECT_NE(error().find("LOGGING_SINK_S3_BUCKET"), std::string::npos);
  ::setenv("LOGGING_SINK_S3_BUCKET", "audit", 1);
  ::setenv("LOGGING_SINK_S3_ENDPOINT", "ftp://store", 1);
  EXPECT_NE(error().find("LOGGING_SINK_S3_ENDPOINT"), std::string::npos);
  ::setenv("LOGGING_SINK_S3_ENDPOINT", "http://user:pw@store", 1);
  EXPECT_EQ(error().find("pw"), std::string::npos);
  ::unsetenv("LOGGING_SINK_S3_ENDPOINT");
  ::setenv("LOGGING_SINK_ENABLED", "maybe", 1);
  EXPECT_NE(error().find("LOGGING_SINK_ENABLED"), std::string::npos);
  ::setenv("LOGGING_SINK_ENABLED", "1", 1);
  ::setenv("AWS_SECRET_ACCESS_KEY", "very-secret", 1);
  const std::string e = error();
  EXPECT_NE(e.find("AWS_ACCESS_KEY_ID"), std::string::npos) << e;
  EXPECT_EQ(e.find("very-secret"), std::string::npos);
}

}  // namespace
}  // namespace llmgw::core

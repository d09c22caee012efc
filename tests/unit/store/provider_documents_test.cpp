// Provider rows as two documents (issue 20, item 2): the settings of every provider type round
// trip on both backends, settings a type refuses change nothing and name the field, a secret
// never reaches the settings, and a database written by the previous release (schema 5, the
// fixtures under tests/data/store-v5) upgrades with its rows intact.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "admin/secrets.hpp"
#include "core/provider_settings.hpp"
#include "store/sqlite/sqlite_store.hpp"
#include "store/store.hpp"
#include "test_db.hpp"

namespace llmgw::store {
namespace {

using test_db::Kind;
using ::testing::HasSubstr;
using ::testing::Not;

namespace fs = std::filesystem;

const fs::path kFixtures = fs::path(LLMGW_TEST_DATA_DIR) / "store-v5";
/// The master key the fixtures' sealed credential is sealed under (tests/data/store-v5).
constexpr std::string_view kFixtureKey =
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

std::shared_ptr<const SecretCodec> fixture_codec() {
  auto key = admin::parse_key_text(kFixtureKey);
  return std::make_shared<admin::MasterKeyCodec>(std::vector<auth::Bytes>{*key});
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

class ProviderDocumentsTest : public ::testing::TestWithParam<Kind> {
 protected:
  ProviderDocumentsTest() : db_(test_db::make_database(GetParam())), store_(db_->open()) {
    store_->migrate();
    raw_ = db_->raw();
  }

  std::unique_ptr<test_db::Database> db_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<test_db::RawSql> raw_;
};

INSTANTIATE_TEST_SUITE_P(Backends, ProviderDocumentsTest, test_db::all_kinds(),
                         test_db::kind_name);

ProviderRecord provider(std::string name, core::ProviderType type, std::string base_url,
                        std::string api_key) {
  ProviderRecord p;
  p.config.name = std::move(name);
  p.config.type = type;
  p.config.base_url = std::move(base_url);
  p.config.api_key = std::move(api_key);
  return p;
}

TEST_P(ProviderDocumentsTest, EveryProviderTypeRoundTripsThroughItsDocuments) {
  store_->set_secret_codec(fixture_codec());
  std::vector<ProviderRecord> written = {
      provider("openai", core::ProviderType::OpenAI, "https://api.openai.com/v1", "sk-rt-openai"),
      provider("compat", core::ProviderType::OpenAICompatible, "http://127.0.0.1:8000/v1",
               "sk-rt-compat"),
      provider("echo", core::ProviderType::Echo, "", ""),
  };
  written[1].config.connect_timeout = std::chrono::milliseconds(1234);
  written[1].config.first_byte_timeout = std::chrono::milliseconds(5678);
  written[1].config.idle_timeout = std::chrono::milliseconds(91011);
  written[2].enabled = false;
  for (auto& p : written) {
    store_->insert_provider(p, nullptr);
  }
  for (const auto& p : written) {
    const auto read = store_->find_provider(p.id);
    ASSERT_TRUE(read.has_value()) << p.config.name;
    EXPECT_EQ(read->config, p.config) << p.config.name;
    EXPECT_EQ(read->enabled, p.enabled) << p.config.name;
    const std::string where = " FROM providers WHERE id = '" + p.id + "'";
    const std::string settings = raw_->value("SELECT settings" + where);
    EXPECT_THAT(settings, HasSubstr("\"connect_timeout_ms\":" +
                                    std::to_string(p.config.connect_timeout.count())));
    if (!p.config.api_key.empty()) {
      EXPECT_THAT(settings, Not(HasSubstr(p.config.api_key)));
      EXPECT_THAT(raw_->value("SELECT secrets" + where), Not(HasSubstr(p.config.api_key)));
      EXPECT_EQ(raw_->value("SELECT secrets_encrypted" + where), "1");
    } else {
      EXPECT_EQ(raw_->value("SELECT secrets" + where), "");  // nothing to seal
    }
  }
  // An update rewrites both documents.
  ProviderRecord changed = written[1];
  changed.config.base_url = "https://llm.example/v2";
  changed.config.api_key = "sk-rt-rotated";
  changed.config.idle_timeout = std::chrono::milliseconds(7);
  ASSERT_TRUE(store_->update_provider(changed, nullptr));
  EXPECT_EQ(store_->find_provider(changed.id)->config, changed.config);
  EXPECT_EQ(store_->load_catalog().providers.size(), written.size());
}

TEST_P(ProviderDocumentsTest, SettingsTheTypeRefusesChangeNothingAndNameTheField) {
  struct Case {
    ProviderRecord provider;
    std::string field;
  };
  std::vector<Case> cases;
  cases.push_back({provider("no-url", core::ProviderType::OpenAICompatible, "", "k"), "base_url"});
  cases.push_back({provider("ftp", core::ProviderType::OpenAI, "ftp://example.com", "k"),
                   "base_url"});
  cases.push_back({provider("userinfo", core::ProviderType::OpenAI, "https://u:p@example.com",
                            "k"),
                   "base_url"});
  cases.push_back({provider("echo-url", core::ProviderType::Echo, "http://127.0.0.1:1", ""),
                   "base_url"});
  cases.push_back({provider("slow", core::ProviderType::OpenAI, "https://a.example", "k"),
                   "connect_timeout_ms"});
  cases.back().provider.config.connect_timeout = std::chrono::milliseconds(0);
  cases.push_back({provider("idle", core::ProviderType::OpenAI, "https://a.example", "k"),
                   "idle_timeout_ms"});
  cases.back().provider.config.idle_timeout = std::chrono::milliseconds(3'600'001);
  cases.push_back({provider("region", core::ProviderType::OpenAI, "https://a.example", "k"),
                   "region"});
  cases.back().provider.config.settings["region"] = "us-east-1";
  cases.push_back({provider("token", core::ProviderType::OpenAI, "https://a.example", "k"),
                   "aws_session_token"});
  cases.back().provider.config.secrets["aws_session_token"] = "tok-secret-value";

  for (auto& c : cases) {
    try {
      store_->insert_provider(c.provider, nullptr);
      ADD_FAILURE() << c.provider.config.name << ": accepted";
    } catch (const InvalidSettingError& e) {
      EXPECT_EQ(e.field(), c.field) << c.provider.config.name;
      EXPECT_THAT(e.what(), HasSubstr(c.field)) << c.provider.config.name;
      EXPECT_THAT(e.what(), Not(HasSubstr("tok-secret-value")));
    }
  }
  EXPECT_TRUE(store_->list_providers().empty());
  EXPECT_EQ(store_->config_version(), 0);

  // An update is checked the same way and leaves the row as it was.
  ProviderRecord ok = provider("ok", core::ProviderType::OpenAI, "https://a.example", "k");
  store_->insert_provider(ok, nullptr);
  ProviderRecord bad = ok;
  bad.config.base_url.clear();
  EXPECT_THROW(store_->update_provider(bad, nullptr), InvalidSettingError);
  EXPECT_EQ(store_->find_provider(ok.id)->config, ok.config);

  // And so is the configuration file.
  core::GatewayConfig cfg;
  cfg.providers = {provider("file", core::ProviderType::OpenAICompatible, "", "k").config};
  EXPECT_THROW(store_->apply_config(cfg), InvalidSettingError);
  EXPECT_EQ(store_->list_providers().size(), 1u);
}

/// The rows tests/data/store-v5/make_fixture.cpp wrote, as this build must read them.
void expect_fixture_rows(Store& store) {
  const auto providers = store.list_providers();
  ASSERT_EQ(providers.size(), 5u);
  const auto named = [&](const std::string& name) -> const ProviderRecord& {
    for (const auto& p : providers) {
      if (p.config.name == name) {
        return p;
      }
    }
    throw std::runtime_error("no provider " + name);
  };
  const ProviderRecord& openai = named("openai-main");
  EXPECT_EQ(openai.source, "config");
  EXPECT_EQ(openai.config.type, core::ProviderType::OpenAI);
  EXPECT_EQ(openai.config.base_url, "https://api.openai.com/v1");
  EXPECT_EQ(openai.config.api_key, "sk-fixture-openai-clear");
  EXPECT_EQ(openai.config.connect_timeout, std::chrono::milliseconds(10'000));
  const ProviderRecord& compat = named("local-vllm");
  EXPECT_EQ(compat.config.base_url, "http://127.0.0.1:8000/v1");
  EXPECT_EQ(compat.config.api_key, "fixture-compat-key-clear");
  EXPECT_EQ(compat.config.connect_timeout, std::chrono::milliseconds(2500));
  EXPECT_EQ(compat.config.first_byte_timeout, std::chrono::milliseconds(30'000));
  EXPECT_EQ(compat.config.idle_timeout, std::chrono::milliseconds(45'000));
  const ProviderRecord& echo = named("echo");
  EXPECT_EQ(echo.config.type, core::ProviderType::Echo);
  EXPECT_EQ(echo.config.base_url, "");
  const ProviderRecord& sealed = named("sealed-admin");
  EXPECT_EQ(sealed.id, "prov_fixture0000000a");
  EXPECT_EQ(sealed.source, "admin");
  EXPECT_FALSE(sealed.credential_unreadable);
  EXPECT_EQ(sealed.config.api_key, "sk-fixture-sealed-admin");
  EXPECT_EQ(sealed.config.base_url, "https://llm.internal.example/v1");
  EXPECT_EQ(sealed.config.idle_timeout, std::chrono::milliseconds(90'000));
  EXPECT_FALSE(named("disabled-admin").enabled);

  const CatalogData catalog = store.load_catalog();
  EXPECT_EQ(catalog.models.size(), 3u);
  EXPECT_EQ(catalog.aliases.size(), 1u);
  const auto key = store.find_key_by_id("key_fixture00000001");
  ASSERT_TRUE(key.has_value());
  EXPECT_EQ(key->budget_usd, "25.00");
  EXPECT_EQ(key->tags, std::vector<std::string>{"team-a"});
  EXPECT_EQ(store.count_usage(), 3);
  const auto spend = store.spend("key_fixture00000001", "2026-01-01", "2026-12-31");
  ASSERT_EQ(spend.size(), 1u);
  EXPECT_EQ(spend[0].cost_usd, "0.000081");
  EXPECT_EQ(spend[0].requests, 3);
}

/// Opens the schema-5 database (`open`, `raw`), migrates it and checks its rows, before and
/// after a re-seal, and again after a second start.
void upgrade_and_check(const std::function<std::unique_ptr<Store>()>& open,
                       test_db::RawSql& raw, int latest) {
  auto store = open();
  EXPECT_EQ(store->schema_version(), 5);
  EXPECT_EQ(store->migrate(), latest);
  const std::int64_t version = store->config_version();
  const auto codec = fixture_codec();
  store->set_secret_codec(codec);
  expect_fixture_rows(*store);

  // The sealed credential stays a bare api_key until a write or a re-seal makes it a
  // document; either way it reads the same, and nothing visible changed.
  EXPECT_EQ(raw.value("SELECT secrets_format FROM providers WHERE name = 'sealed-admin'"),
            "api_key");
  EXPECT_EQ(store->reseal_credentials(codec.get(), *codec), 3u);
  EXPECT_EQ(raw.value("SELECT COUNT(*) FROM providers WHERE secrets_format = 'document'"), "5");
  EXPECT_EQ(store->config_version(), version);
  expect_fixture_rows(*store);

  auto again = open();  // a second start changes nothing
  EXPECT_EQ(again->migrate(), latest);
  again->set_secret_codec(codec);
  expect_fixture_rows(*again);
  EXPECT_EQ(again->config_version(), version);
}

TEST(ProviderDocumentsUpgrade, ASqliteDatabaseOfSchemaFiveKeepsItsRows) {
  test_db::TempDir dir;
  const std::string path = dir.file("v5.db");
  fs::copy_file(kFixtures / "llmgw-v5.db", path);  // a copy: migrating changes it
  test_db::RawDb raw(path);
  upgrade_and_check([&] { return std::make_unique<SqliteStore>(path); }, raw,
                    test_db::make_database(Kind::Sqlite)->latest_migration_version());
}

TEST(ProviderDocumentsUpgrade, APostgresDatabaseOfSchemaFiveKeepsItsRows) {
  auto db = test_db::make_database(Kind::Postgres);
  // pg_dump of the schema the fixture program wrote, its schema name taken out: it loads
  // into this test's own schema.
  auto raw = db->raw();
  raw->exec(read_text(kFixtures / "llmgw-v5-postgres.sql"));
  upgrade_and_check([&] { return db->open(); }, *raw, db->latest_migration_version());
}

}  // namespace
}  // namespace llmgw::store

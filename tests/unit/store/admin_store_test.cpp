// The Store methods the admin API stands on, on both backends: key updates and their cache
// invalidation, pages and filters, sealed provider credentials, rows owned by the
// configuration file, name and reference rules, admin prices, usage reports, admin
// identities and the audit trail.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <ostream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "store/store.hpp"
#include "test_db.hpp"

namespace llmgw::store {

void PrintTo(const UsageTotals& t, std::ostream* os) {
  *os << '"' << t.group << "\": " << t.requests << " requests (" << t.unpriced_requests
      << " unpriced), $" << t.cost_usd << ", tokens " << t.prompt_tokens << '/'
      << t.completion_tokens << '/' << t.cached_tokens << '/' << t.reasoning_tokens;
}

namespace {

using test_db::Kind;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::StartsWith;
using ::testing::UnorderedElementsAre;

/// A reversible stand-in for the AES-256-GCM codec of auth: "xor:<key>:<n>:<aad>:" and the
/// plaintext XOR-ed with the key, in hex. Only the same key opens it, only for the same aad,
/// and sealing the same text twice gives two values, as a random nonce does.
class TestCodec final : public SecretCodec {
 public:
  explicit TestCodec(char key) : key_(key) {}

  [[nodiscard]] std::string seal(std::string_view plaintext, std::string_view aad) const override {
    std::string out = prefix() + std::to_string(nonce_.fetch_add(1)) + ":" + std::string(aad) + ":";
    for (const char ch : plaintext) {
      char hex[3];
      std::snprintf(hex, sizeof hex, "%02x", static_cast<unsigned char>(ch ^ key_));
      out += hex;
    }
    return out;
  }

  [[nodiscard]] std::optional<std::string> open(std::string_view sealed,
                                                std::string_view aad) const override {
    if (!sealed.starts_with(prefix())) {
      return std::nullopt;
    }
    sealed.remove_prefix(prefix().size());
    const auto nonce_end = sealed.find(':');
    if (nonce_end == std::string_view::npos) {
      return std::nullopt;
    }
    sealed.remove_prefix(nonce_end + 1);
    const std::string bound = std::string(aad) + ":";
    if (!sealed.starts_with(bound) || (sealed.size() - bound.size()) % 2 != 0) {
      return std::nullopt;
    }
    sealed.remove_prefix(bound.size());
    std::string out;
    for (std::size_t i = 0; i < sealed.size(); i += 2) {
      out += static_cast<char>(std::stoi(std::string(sealed.substr(i, 2)), nullptr, 16) ^ key_);
    }
    return out;
  }

 private:
  [[nodiscard]] std::string prefix() const { return std::string("xor:") + key_ + ":"; }

  char key_;
  mutable std::atomic<int> nonce_{0};
};

/// Each test gets its own database of the parameter's kind and a migrated store on it.
class AdminStoreTest : public ::testing::TestWithParam<Kind> {
 protected:
  AdminStoreTest() : db_(test_db::make_database(GetParam())), owned_(db_->open()), store_(*owned_) {
    store_.migrate();
    raw_ = db_->raw();
  }

  std::int64_t audit_rows() { return std::stoll(raw_->value("SELECT COUNT(*) FROM admin_audit")); }

  std::unique_ptr<test_db::Database> db_;
  std::unique_ptr<Store> owned_;
  Store& store_;
  std::unique_ptr<test_db::RawSql> raw_;
};

/// A fresh database of the parameter's kind, nothing migrated.
class AdminApiMigration : public ::testing::TestWithParam<Kind> {
 protected:
  AdminApiMigration() : db_(test_db::make_database(GetParam())) {}

  std::unique_ptr<test_db::Database> db_;
};

INSTANTIATE_TEST_SUITE_P(Backends, AdminStoreTest, test_db::all_kinds(), test_db::kind_name);
INSTANTIATE_TEST_SUITE_P(Backends, AdminApiMigration, test_db::all_kinds(), test_db::kind_name);

/// What `call` throws as `Error` (another exception fails the test); "(nothing thrown)"
/// when it returns.
template <typename Error, typename Call>
std::string error_of(Call&& call) {
  try {
    call();
  } catch (const Error& e) {
    return e.what();
  }
  return "(nothing thrown)";
}

ApiKeyRecord make_key(int n) {
  ApiKeyRecord key;
  key.id = "key_" + std::to_string(1000 + n);
  key.key_hash = "hash" + std::to_string(n);
  key.prefix = "sk-llmgw-" + std::to_string(n);
  key.name = "key number " + std::to_string(n);
  return key;
}

AuditRecord make_audit(std::string action, std::string resource_type, std::string resource_id) {
  AuditRecord a;
  a.at_us = 1'764'201'600'000'000;
  a.actor_type = "user";
  a.actor_id = "usr_00000000000000aa";
  a.actor_name = "ops@example.com";
  a.action = std::move(action);
  a.resource_type = std::move(resource_type);
  a.after_json = R"({"id":")" + resource_id + R"("})";
  a.resource_id = std::move(resource_id);
  a.request_id = "req-1";
  a.client_ip = "127.0.0.1";
  return a;
}

core::ProviderConfig provider_config(const std::string& name, const std::string& api_key) {
  core::ProviderConfig p;
  p.name = name;
  p.type = core::ProviderType::OpenAICompatible;
  p.base_url = "http://127.0.0.1:9/v1";
  p.api_key = api_key;
  return p;
}

ProviderRecord admin_provider(const std::string& name, const std::string& api_key) {
  ProviderRecord p;
  p.config = provider_config(name, api_key);
  return p;
}

ModelRecord admin_model(const std::string& name, const std::string& provider) {
  ModelRecord m;
  m.config = {name, provider, "", ""};
  return m;
}

AliasRecord admin_alias(const std::string& alias, const std::string& model) {
  AliasRecord a;
  a.config = {alias, model};
  return a;
}

/// The configuration file of these tests: one provider, one model, one alias.
core::GatewayConfig file_config() {
  core::GatewayConfig cfg;
  core::ProviderConfig openai = provider_config("openai", "sk-secret-openai");
  openai.type = core::ProviderType::OpenAI;
  openai.base_url = "https://api.openai.com/v1";
  cfg.providers = {openai};
  cfg.models = {{"gpt-4o", "openai", "gpt-4o-2024-08-06", ""}};
  cfg.aliases = {{"smart", "gpt-4o"}};
  return cfg;
}

const ProviderRecord* provider_named(const std::vector<ProviderRecord>& providers,
                                     const std::string& name) {
  for (const auto& p : providers) {
    if (p.config.name == name) {
      return &p;
    }
  }
  return nullptr;
}

PriceComponentRecord price(const std::string& model, const std::string& direction,
                           const std::string& amount, const std::string& source) {
  return {model, direction, "text", "1m_tokens", "default", amount, source};
}

std::vector<std::string> ids_of(const std::vector<ApiKeyRecord>& keys) {
  std::vector<std::string> out;
  for (const auto& k : keys) {
    out.push_back(k.id);
  }
  return out;
}

std::vector<std::int64_t> ids_of(const std::vector<AuditRecord>& records) {
  std::vector<std::int64_t> out;
  for (const auto& r : records) {
    out.push_back(r.id);
  }
  return out;
}

// --- migration

TEST_P(AdminApiMigration, KeepsTheKeysAndPricesOfAVersionOneDatabase) {
  // A database as the previous build left it: migration 1 only, with data.
  db_->migrate_raw_to_version_one();
  db_->raw()->exec(
      "UPDATE config_version SET version = 3;"
      "INSERT INTO api_keys (id, key_hash, prefix, name, enabled, rpm_limit, budget_usd,"
      " allowed_models, created_at, updated_at, version)"
      " VALUES ('key_1', 'hash1', 'sk-llmgw-1', 'one', '0', 60, '25.00', '[\"gpt-4o\"]', 100,"
      " 200, 1);"
      "INSERT INTO key_metadata VALUES ('key_1', 'team', 'a');"
      "INSERT INTO price_models (name, created_at, updated_at, version)"
      " VALUES ('gpt-4o', 0, 0, 2);"
      "INSERT INTO pricing_components VALUES ('gpt-4o', 'input', 'text', '1m_tokens',"
      " 'default', '2.5', 'catalog', 0, 2);"
      "INSERT INTO pricing_components VALUES ('gpt-4o', 'input', 'text', '1m_tokens',"
      " 'default', '2', 'override', 0, 3);");
  auto owned = db_->open();
  Store& store = *owned;
  EXPECT_EQ(store.schema_version(), 1);
  EXPECT_EQ(store.migrate(), db_->latest_migration_version());
  EXPECT_EQ(store.config_version(), 3);

  const auto key = store.find_key_by_hash("hash1");
  ASSERT_TRUE(key.has_value());
  EXPECT_EQ(key->id, "key_1");
  EXPECT_EQ(key->name, "one");
  EXPECT_FALSE(key->enabled);
  EXPECT_EQ(key->rpm_limit, 60);
  EXPECT_EQ(key->budget_usd, "25.00");
  EXPECT_THAT(key->allowed_models, ElementsAre("gpt-4o"));
  EXPECT_EQ(key->created_at, 100);
  EXPECT_EQ(key->updated_at, 200);
  EXPECT_EQ(key->version, 1);
  EXPECT_FALSE(key->max_concurrent.has_value());
  EXPECT_THAT(key->tags, IsEmpty());
  EXPECT_THAT(key->metadata, IsEmpty());
  EXPECT_THAT(store.prices_of("gpt-4o"), ElementsAre(price("gpt-4o", "input", "2.5", "catalog"),
                                                     price("gpt-4o", "input", "2", "override")));

  auto raw = db_->raw();
  EXPECT_EQ(raw->value("SELECT name FROM schema_migrations WHERE version = 2"), "admin_api");
  if (db_->is_sqlite()) {
    EXPECT_EQ(raw->value("SELECT COUNT(*) FROM sqlite_master WHERE name = 'key_metadata'"), "0");
    EXPECT_EQ(raw->value("PRAGMA integrity_check"), "ok");
    EXPECT_EQ(raw->value("PRAGMA foreign_key_check"), "");
  } else {
    EXPECT_EQ(raw->value("SELECT to_regclass('key_metadata') IS NULL"), "1");
  }

  // The new columns and sources are usable on the migrated database.
  ApiKeyRecord changed = *key;
  changed.tags = {"team-a"};
  changed.max_concurrent = 2;
  ASSERT_TRUE(store.update_key(changed, nullptr));
  EXPECT_EQ(store.find_key_by_id("key_1"), changed);
  store.set_admin_prices("gpt-4o", {price("gpt-4o", "input", "1", "admin")}, nullptr);
  EXPECT_THAT(store.prices_of("gpt-4o"), Contains(price("gpt-4o", "input", "1", "admin")));
}

// --- keys

TEST_P(AdminStoreTest, UpdateKeyWritesEveryMutableField) {
  ApiKeyRecord key = make_key(1);
  store_.insert_key(key, nullptr);  // version 1
  ApiKeyRecord changed = key;
  changed.prefix = "sk-llmgw-X";
  changed.name = "renamed";
  changed.enabled = false;
  changed.expires_at = 2'000'000'000;
  changed.rpm_limit = 10;
  changed.tpm_limit = 1'000;
  changed.budget_usd = "5.50";
  changed.budget_period = "daily";
  changed.allowed_models = {"gpt-4o", "fast"};
  changed.max_concurrent = 4;
  changed.tags = {"team-a", "prod"};
  changed.metadata = {{"owner", "ops"}, {"cost center", "42"}};
  ASSERT_TRUE(store_.update_key(changed, nullptr));
  EXPECT_EQ(changed.version, 2);
  EXPECT_EQ(changed.created_at, key.created_at);
  EXPECT_GE(changed.updated_at, key.updated_at);
  EXPECT_EQ(store_.config_version(), 2);
  EXPECT_EQ(store_.find_key_by_id(key.id), changed);
  EXPECT_EQ(store_.find_key_by_hash(key.key_hash), changed);

  ApiKeyRecord unknown = make_key(2);
  EXPECT_FALSE(store_.update_key(unknown, nullptr));
  EXPECT_EQ(unknown.version, 0);
  EXPECT_EQ(store_.config_version(), 2);
}

TEST_P(AdminStoreTest, UpdateKeyRefusesAVersionThatIsNoLongerCurrent) {
  ApiKeyRecord key = make_key(1);
  store_.insert_key(key, nullptr);  // version 1
  ApiKeyRecord first = key;         // both read at version 1
  ApiKeyRecord second = key;
  first.name = "first";
  ASSERT_TRUE(store_.update_key(first, nullptr));  // 2
  second.name = "second";
  EXPECT_THROW(store_.update_key(second, nullptr), ConflictError);
  EXPECT_EQ(store_.find_key_by_id(key.id)->name, "first");
  EXPECT_EQ(store_.config_version(), 2);
  second.version = 0;  // no check
  ASSERT_TRUE(store_.update_key(second, nullptr));
  EXPECT_EQ(store_.find_key_by_id(key.id)->name, "second");
}

TEST_P(AdminStoreTest, TagsMetadataAndMaxConcurrentRoundTrip) {
  ApiKeyRecord key = make_key(1);
  key.tags = {"team-a", "quote\"d", "\xc3\xbcnicode"};
  key.metadata = {{"owner", "ops"}, {"empty", ""}, {"back\\slash", "new\nline"}};
  key.max_concurrent = 8;
  store_.insert_key(key, nullptr);
  EXPECT_EQ(store_.find_key_by_id(key.id), key);
  EXPECT_EQ(store_.find_key_by_hash(key.key_hash), key);
  EXPECT_THAT(store_.list_keys(), ElementsAre(key));
  const std::string json_type(db_->json_type_function());
  EXPECT_EQ(raw_->value("SELECT " + json_type + "(tags) || ' ' || " + json_type +
                        "(metadata) FROM api_keys"),
            "array object");

  ApiKeyRecord none = make_key(2);
  none.max_concurrent = 0;  // "no limit" is an absent value, never 0
  EXPECT_THROW(store_.insert_key(none, nullptr), std::runtime_error);
  EXPECT_EQ(store_.list_keys().size(), 1u);
  EXPECT_EQ(store_.config_version(), 1);
}

TEST_P(AdminStoreTest, RegeneratedKeysOldHashIsReportedAndOpensNothing) {
  ApiKeyRecord key = make_key(1);
  store_.insert_key(key, nullptr);  // version 1
  const std::string old_hash = key.key_hash;
  key.key_hash = "hash1-regenerated";
  key.prefix = "sk-llmgw-R";
  ASSERT_TRUE(store_.update_key(key, nullptr));  // 2
  EXPECT_THAT(store_.key_hashes_changed_since(1), ElementsAre(old_hash, "hash1-regenerated"));
  EXPECT_FALSE(store_.find_key_by_hash(old_hash).has_value());
  EXPECT_EQ(store_.find_key_by_hash("hash1-regenerated"), key);
  EXPECT_THAT(store_.key_hashes_changed_since(2), IsEmpty());

  // A later change reports only what changed then.
  ASSERT_TRUE(store_.set_key_enabled(key.id, false, nullptr));  // 3
  EXPECT_THAT(store_.key_hashes_changed_since(2), ElementsAre("hash1-regenerated"));
  // Seen from before the key existed, each hash once.
  EXPECT_THAT(store_.key_hashes_changed_since(0), ElementsAre(old_hash, "hash1-regenerated"));
}

TEST_P(AdminStoreTest, DeletedKeysHashIsReportedAndItsUsageStays) {
  ApiKeyRecord a = make_key(1);
  ApiKeyRecord b = make_key(2);
  store_.insert_key(a, nullptr);  // version 1
  store_.insert_key(b, nullptr);  // 2
  UsageRecord usage;
  usage.request_id = "req-1";
  usage.key_id = a.id;
  usage.model = "gpt-4o";
  usage.cost_usd = "0.5";
  usage.created_at_us = 1'764'201'600'000'000;
  store_.insert_usage(std::vector{usage});

  ASSERT_TRUE(store_.delete_key(a.id, nullptr));  // 3
  EXPECT_EQ(store_.config_version(), 3);
  EXPECT_FALSE(store_.find_key_by_id(a.id).has_value());
  EXPECT_FALSE(store_.find_key_by_hash(a.key_hash).has_value());
  EXPECT_THAT(store_.key_hashes_changed_since(2), ElementsAre(a.key_hash));
  EXPECT_THAT(store_.key_hashes_changed_since(0), ElementsAre(b.key_hash, a.key_hash));
  EXPECT_EQ(store_.count_usage(), 1);
  EXPECT_EQ(store_.spend(a.id, "0000-01-01", "9999-12-31").size(), 1u);

  EXPECT_FALSE(store_.delete_key(a.id, nullptr));
  EXPECT_EQ(store_.config_version(), 3);
}

TEST_P(AdminStoreTest, AKeyHashTakenByAnotherKeyIsAConflict) {
  ApiKeyRecord a = make_key(1);
  ApiKeyRecord b = make_key(2);
  store_.insert_key(a, nullptr);
  store_.insert_key(b, nullptr);
  ApiKeyRecord clash = b;
  clash.key_hash = a.key_hash;
  EXPECT_THAT(error_of<ConflictError>([&] { store_.update_key(clash, nullptr); }),
              Not(HasSubstr(a.key_hash)));
  ApiKeyRecord twice = make_key(3);
  twice.id = a.id;
  EXPECT_THAT(error_of<ConflictError>([&] { store_.insert_key(twice, nullptr); }),
              HasSubstr("already exists"));
  EXPECT_EQ(store_.config_version(), 2);
  EXPECT_EQ(store_.find_key_by_id(b.id), b);
  EXPECT_EQ(raw_->value("SELECT COUNT(*) FROM retired_key_hashes"), "0");
}

TEST_P(AdminStoreTest, ListKeysPagesInIdOrderAndReturnsOneRowMore) {
  std::vector<ApiKeyRecord> keys(6);
  for (const int n : {5, 3, 1, 4, 2}) {  // inserted out of id order
    keys[n] = make_key(n);
    store_.insert_key(keys[n], nullptr);
  }
  KeyQuery q;
  q.page.limit = 2;
  auto page = store_.list_keys(q);
  EXPECT_THAT(page, ElementsAre(keys[1], keys[2], keys[3]));  // the third: there is more
  q.page.after = page[1].id;
  EXPECT_THAT(store_.list_keys(q), ElementsAre(keys[3], keys[4], keys[5]));
  q.page.after = keys[4].id;
  EXPECT_THAT(store_.list_keys(q), ElementsAre(keys[5]));  // the last page
  q.page.after = keys[5].id;
  EXPECT_THAT(store_.list_keys(q), IsEmpty());

  q.page = {};
  EXPECT_THAT(store_.list_keys(q), ElementsAre(keys[1], keys[2], keys[3], keys[4], keys[5]));
  EXPECT_EQ(store_.list_keys(), store_.list_keys(q));
}

TEST_P(AdminStoreTest, ListKeysFiltersByEnabledNameAndTag) {
  const auto add = [&](int n, std::string name, std::vector<std::string> tags, bool enabled) {
    ApiKeyRecord key = make_key(n);
    key.name = std::move(name);
    key.tags = std::move(tags);
    key.enabled = enabled;
    store_.insert_key(key, nullptr);
    return key.id;
  };
  const auto k1 = add(1, "billing prod", {"prod", "team-a"}, true);
  const auto k2 = add(2, "Billing staging", {"staging"}, false);
  const auto k3 = add(3, "search", {"production"}, true);
  const auto k4 = add(4, "search-prod", {}, true);

  KeyQuery q;
  q.tag = "prod";  // a whole tag, not a part of one
  EXPECT_THAT(ids_of(store_.list_keys(q)), ElementsAre(k1));
  q = {};
  q.enabled = false;
  EXPECT_THAT(ids_of(store_.list_keys(q)), ElementsAre(k2));
  q.enabled = true;
  EXPECT_THAT(ids_of(store_.list_keys(q)), ElementsAre(k1, k3, k4));
  q = {};
  q.name_contains = "illing";
  EXPECT_THAT(ids_of(store_.list_keys(q)), ElementsAre(k1, k2));
  q.name_contains = "Billing";  // case-sensitive
  EXPECT_THAT(ids_of(store_.list_keys(q)), ElementsAre(k2));
  q.name_contains = "%";  // no wildcard
  EXPECT_THAT(ids_of(store_.list_keys(q)), IsEmpty());

  // Filters combine, and a page counts only matching rows.
  q = {};
  q.enabled = true;
  q.name_contains = "s";
  q.page.limit = 1;
  EXPECT_THAT(ids_of(store_.list_keys(q)), ElementsAre(k3, k4));
  q.page.after = k3;
  EXPECT_THAT(ids_of(store_.list_keys(q)), ElementsAre(k4));
}

// --- provider credentials

TEST_P(AdminStoreTest, ProviderCredentialsAreSealedAtRest) {
  const auto codec = std::make_shared<TestCodec>('k');
  store_.set_secret_codec(codec);
  store_.apply_config(file_config());
  ProviderRecord admin = admin_provider("admin-llm", "sk-admin-secret");
  store_.insert_provider(admin, nullptr);

  for (const auto& [name, secret] :
       {std::pair{"openai", "sk-secret-openai"}, std::pair{"admin-llm", "sk-admin-secret"}}) {
    const std::string where = std::string(" FROM providers WHERE name = '") + name + "'";
    const std::string stored = raw_->value("SELECT secrets" + where);
    EXPECT_THAT(stored, Not(HasSubstr(secret))) << name;
    EXPECT_THAT(raw_->value("SELECT settings" + where), Not(HasSubstr(secret))) << name;
    EXPECT_EQ(raw_->value("SELECT secrets_encrypted" + where), "1") << name;
    EXPECT_EQ(codec->open(stored, raw_->value("SELECT id" + where)),
              std::string(R"({"api_key":")") + secret + R"("})")
        << name;
  }
  const CatalogData catalog = store_.load_catalog();
  ASSERT_NE(provider_named(catalog.providers, "openai"), nullptr);
  EXPECT_EQ(provider_named(catalog.providers, "openai")->config, file_config().providers[0]);
  EXPECT_TRUE(provider_named(catalog.providers, "openai")->enabled);
  EXPECT_EQ(store_.find_provider(admin.id)->config, admin.config);
  EXPECT_EQ(provider_named(store_.list_providers(), "admin-llm")->config.api_key,
            "sk-admin-secret");
}

TEST_P(AdminStoreTest, ApplyConfigDoesNotRewriteAnUnchangedSealedCredential) {
  const auto codec = std::make_shared<TestCodec>('k');
  store_.set_secret_codec(codec);
  store_.apply_config(file_config());  // version 1
  const std::string sealed = raw_->value("SELECT secrets FROM providers");
  store_.apply_config(file_config());
  auto restarted = db_->open();
  restarted->set_secret_codec(codec);
  restarted->apply_config(file_config());
  EXPECT_EQ(store_.config_version(), 1);
  EXPECT_EQ(raw_->value("SELECT secrets FROM providers"), sealed);

  auto rotated = file_config();
  rotated.providers[0].api_key = "sk-rotated";
  store_.apply_config(rotated);
  EXPECT_EQ(store_.config_version(), 2);
  EXPECT_NE(raw_->value("SELECT secrets FROM providers"), sealed);
  EXPECT_EQ(raw_->value("SELECT secrets_encrypted FROM providers"), "1");
  EXPECT_EQ(store_.load_catalog().providers[0].config.api_key, "sk-rotated");
}

TEST_P(AdminStoreTest, CredentialsThatDoNotOpenReadAsUnreadable) {
  store_.set_secret_codec(std::make_shared<TestCodec>('k'));
  ProviderRecord one = admin_provider("one", "sk-one");
  ProviderRecord two = admin_provider("two", "sk-two");
  store_.insert_provider(one, nullptr);
  store_.insert_provider(two, nullptr);
  // A sealed value copied to another row is bound to the first row's id: it does not open.
  raw_->exec(
      "UPDATE providers SET secrets = (SELECT secrets FROM providers WHERE name = 'one')"
      " WHERE name = 'two'");
  const CatalogData catalog = store_.load_catalog();
  EXPECT_FALSE(provider_named(catalog.providers, "one")->credential_unreadable);
  EXPECT_EQ(provider_named(catalog.providers, "one")->config.api_key, "sk-one");
  EXPECT_TRUE(provider_named(catalog.providers, "two")->credential_unreadable);
  EXPECT_EQ(provider_named(catalog.providers, "two")->config.api_key, "");
  // `enabled` stays as stored, so writing the record back cannot disable it by accident.
  EXPECT_TRUE(store_.find_provider(two.id)->enabled);
  EXPECT_TRUE(store_.find_provider(two.id)->credential_unreadable);

  // Another key, or none at all, opens nothing.
  auto other_key = db_->open();
  other_key->set_secret_codec(std::make_shared<TestCodec>('x'));
  auto no_key = db_->open();
  for (Store* store : {other_key.get(), no_key.get()}) {
    for (const auto& p : store->list_providers()) {
      EXPECT_TRUE(p.credential_unreadable) << p.config.name;
      EXPECT_EQ(p.config.api_key, "") << p.config.name;
    }
  }

  // A row written in clear stays readable under a codec.
  raw_->exec(
      "UPDATE providers SET secrets = '{\"api_key\":\"sk-clear\"}', secrets_encrypted = '0'"
      " WHERE name = 'two'");
  EXPECT_TRUE(store_.find_provider(two.id)->enabled);
  EXPECT_EQ(store_.find_provider(two.id)->config.api_key, "sk-clear");
}

TEST_P(AdminStoreTest, AnEmptyCredentialIsStoredInClear) {
  store_.set_secret_codec(std::make_shared<TestCodec>('k'));
  ProviderRecord local = admin_provider("local", "");
  store_.insert_provider(local, nullptr);
  EXPECT_EQ(raw_->value("SELECT CAST(secrets_encrypted AS INTEGER) || '[' || secrets || ']'"
                        " FROM providers"),
            "0[]");
  EXPECT_TRUE(store_.find_provider(local.id)->enabled);
}

TEST_P(AdminStoreTest, ResealMovesEveryCredentialToTheNewKeyInOneTransaction) {
  const auto old_key = std::make_shared<TestCodec>('a');
  const auto new_key = std::make_shared<TestCodec>('b');
  ProviderRecord clear = admin_provider("clear", "sk-clear");  // from before encryption
  store_.insert_provider(clear, nullptr);
  store_.set_secret_codec(old_key);
  ProviderRecord one = admin_provider("one", "sk-one");
  ProviderRecord two = admin_provider("two", "sk-two");
  ProviderRecord empty = admin_provider("empty", "");
  store_.insert_provider(one, nullptr);
  store_.insert_provider(two, nullptr);
  store_.insert_provider(empty, nullptr);
  const std::int64_t version = store_.config_version();

  // A `from` that opens nothing fails the whole call, which then changes nothing.
  const auto before = raw_->column("SELECT secrets FROM providers ORDER BY name");
  EXPECT_THAT(error_of<std::runtime_error>(
                  [&] { (void)store_.reseal_credentials(new_key.get(), *new_key); }),
              Not(HasSubstr("sk-")));
  EXPECT_THROW((void)store_.reseal_credentials(nullptr, *new_key), std::runtime_error);
  EXPECT_EQ(raw_->column("SELECT secrets FROM providers ORDER BY name"), before);

  EXPECT_EQ(store_.reseal_credentials(old_key.get(), *new_key), 3u);
  EXPECT_EQ(store_.config_version(), version);  // nothing visible changed
  EXPECT_EQ(raw_->value("SELECT " + db_->ordered_group_concat("name") +
                        " FROM providers WHERE secrets_encrypted = '1'"),
            "clear,one,two");
  store_.set_secret_codec(new_key);
  const auto providers = store_.list_providers();
  for (const auto* p : {&clear, &one, &two, &empty}) {
    const ProviderRecord* read = provider_named(providers, p->config.name);
    ASSERT_NE(read, nullptr);
    EXPECT_FALSE(read->credential_unreadable) << p->config.name;
    EXPECT_EQ(read->config.api_key, p->config.api_key);
  }
  store_.set_secret_codec(old_key);
  EXPECT_TRUE(store_.find_provider(one.id)->credential_unreadable);
}

// --- catalog rows through the admin API

TEST_P(AdminStoreTest, AdminProvidersModelsAndAliasesRoundTrip) {
  const auto audit = make_audit("create", "provider", "local");
  ProviderRecord p = admin_provider("local", "sk-local");
  p.config.connect_timeout = std::chrono::milliseconds(250);
  store_.insert_provider(p, &audit);  // version 1
  EXPECT_THAT(p.id, StartsWith("prov_"));
  EXPECT_EQ(p.source, "admin");
  EXPECT_GT(p.created_at, 0);
  EXPECT_EQ(p.updated_at, p.created_at);
  const auto found = store_.find_provider(p.id);
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->config, p.config);
  EXPECT_EQ(found->source, "admin");
  EXPECT_EQ(found->created_at, p.created_at);

  ModelRecord m = admin_model("local-llm", "local");
  m.config.pricing_model = "llama-3";
  store_.insert_model(m, nullptr);                  // 2
  EXPECT_EQ(m.config.upstream_model, "local-llm");  // defaults to the name
  EXPECT_THAT(m.id, StartsWith("model_"));
  EXPECT_EQ(store_.find_model(m.id)->config, m.config);
  EXPECT_EQ(store_.find_model(m.id)->source, "admin");

  AliasRecord a = admin_alias("fast", "local-llm");
  store_.insert_alias(a, nullptr);  // 3
  EXPECT_EQ(a.source, "admin");
  EXPECT_EQ(store_.find_alias("fast")->config, a.config);
  EXPECT_EQ(store_.config_version(), 3);

  p.config.base_url = "http://127.0.0.1:10/v1";
  p.config.api_key = "sk-rotated";
  p.enabled = false;
  ASSERT_TRUE(store_.update_provider(p, nullptr));  // 4
  EXPECT_EQ(store_.find_provider(p.id)->config, p.config);
  EXPECT_FALSE(store_.find_provider(p.id)->enabled);

  // An admin alias follows its model through a rename (it refers to the row, not the name).
  m.config.name = "local-llm-2";
  m.config.pricing_model.clear();
  m.enabled = false;
  ASSERT_TRUE(store_.update_model(m, nullptr));  // 5
  EXPECT_EQ(store_.find_model(m.id)->config, m.config);
  EXPECT_FALSE(store_.find_model(m.id)->enabled);
  EXPECT_EQ(raw_->value("SELECT pricing_model FROM models"), "NULL");
  EXPECT_EQ(store_.find_alias("fast")->config.model, "local-llm-2");

  ModelRecord other = admin_model("other", "local");
  store_.insert_model(other, nullptr);  // 6
  a.config.model = "other";
  ASSERT_TRUE(store_.update_alias(a, nullptr));  // 7
  EXPECT_EQ(store_.find_alias("fast")->config.model, "other");
  EXPECT_EQ(store_.config_version(), 7);

  const CatalogData catalog = store_.load_catalog();
  EXPECT_EQ(catalog.version, 7);
  ASSERT_EQ(catalog.models.size(), 2u);
  EXPECT_EQ(catalog.models[0].config.name, "local-llm-2");  // by name
  ASSERT_EQ(catalog.aliases.size(), 1u);
  EXPECT_EQ(catalog.aliases[0].created_at, a.created_at);
  EXPECT_EQ(store_.list_models().size(), 2u);
  EXPECT_EQ(store_.list_aliases().size(), 1u);

  ModelRecord unknown_model = admin_model("ghost", "local");
  unknown_model.id = "model_missing";
  AliasRecord unknown_alias = admin_alias("ghost", "other");
  ProviderRecord unknown_provider = admin_provider("ghost", "");
  unknown_provider.id = "prov_missing";
  EXPECT_FALSE(store_.update_model(unknown_model, nullptr));
  EXPECT_FALSE(store_.update_alias(unknown_alias, nullptr));
  EXPECT_FALSE(store_.update_provider(unknown_provider, nullptr));
  EXPECT_FALSE(store_.delete_alias("ghost", nullptr));
  EXPECT_FALSE(store_.delete_model("model_missing", nullptr));
  EXPECT_FALSE(store_.delete_provider("prov_missing", nullptr));
  EXPECT_EQ(store_.config_version(), 7);

  ASSERT_TRUE(store_.delete_alias("fast", nullptr));
  ASSERT_TRUE(store_.delete_model(m.id, nullptr));
  ASSERT_TRUE(store_.delete_model(other.id, nullptr));
  ASSERT_TRUE(store_.delete_provider(p.id, nullptr));
  EXPECT_EQ(store_.config_version(), 11);
  const CatalogData empty = store_.load_catalog();
  EXPECT_THAT(empty.providers, IsEmpty());
  EXPECT_THAT(empty.models, IsEmpty());
  EXPECT_THAT(empty.aliases, IsEmpty());
  EXPECT_EQ(audit_rows(), 1);
}

TEST_P(AdminStoreTest, AdminModelLimitsRoundTrip) {
  ProviderRecord p = admin_provider("local", "sk-local");
  store_.insert_provider(p, nullptr);  // version 1
  ModelRecord limited = admin_model("limited", "local");
  limited.config.rpm_limit = 100;
  limited.config.tpm_limit = 50'000;
  store_.insert_model(limited, nullptr);  // 2
  ModelRecord unlimited = admin_model("unlimited", "local");
  store_.insert_model(unlimited, nullptr);  // 3
  EXPECT_EQ(store_.find_model(limited.id)->config, limited.config);
  EXPECT_EQ(store_.find_model(unlimited.id)->config, unlimited.config);
  EXPECT_EQ(raw_->value("SELECT rpm_limit FROM models WHERE name = 'limited'"), "100");
  EXPECT_EQ(raw_->value("SELECT tpm_limit FROM models WHERE name = 'limited'"), "50000");
  EXPECT_EQ(raw_->value("SELECT rpm_limit FROM models WHERE name = 'unlimited'"), "NULL");

  // Changing only the limits is a write like any other: a new config version.
  limited.config.rpm_limit.reset();
  limited.config.tpm_limit = 75'000;
  ASSERT_TRUE(store_.update_model(limited, nullptr));  // 4
  unlimited.config.rpm_limit = 7;
  ASSERT_TRUE(store_.update_model(unlimited, nullptr));  // 5
  EXPECT_EQ(store_.config_version(), 5);
  EXPECT_EQ(raw_->value("SELECT version FROM models WHERE name = 'limited'"), "4");
  EXPECT_EQ(raw_->value("SELECT rpm_limit FROM models WHERE name = 'limited'"), "NULL");

  const auto listed = store_.list_models();
  ASSERT_EQ(listed.size(), 2u);
  EXPECT_EQ(listed[0].config, limited.config);  // by name
  EXPECT_EQ(listed[1].config, unlimited.config);
  const CatalogData catalog = store_.load_catalog();
  ASSERT_EQ(catalog.models.size(), 2u);
  EXPECT_EQ(catalog.models[0].config, limited.config);
  EXPECT_EQ(catalog.models[1].config, unlimited.config);

  // The schema refuses a limit that is not a positive count; nothing is changed.
  ModelRecord zero = limited;
  zero.config.rpm_limit = 0;
  EXPECT_THAT(error_of<std::runtime_error>([&] { store_.update_model(zero, nullptr); }),
              HasSubstr(std::string(db_->check_violation())));
  EXPECT_EQ(store_.find_model(limited.id)->config, limited.config);
  EXPECT_EQ(store_.config_version(), 5);
}

TEST_P(AdminStoreTest, RowsOfTheConfigurationFileRefuseAdminWrites) {
  store_.apply_config(file_config());  // version 1
  const CatalogData catalog = store_.load_catalog();
  const auto audit = make_audit("update", "provider", catalog.providers[0].id);
  ProviderRecord p = catalog.providers[0];
  p.config.base_url = "http://127.0.0.1:9/v1";
  ModelRecord m = catalog.models[0];
  m.config.upstream_model = "gpt-4o-mini";
  AliasRecord a = catalog.aliases[0];
  a.config.model = "gpt-4o";
  constexpr std::string_view kOwned = "is defined in the configuration file";
  EXPECT_THAT(error_of<ConflictError>([&] { store_.update_provider(p, &audit); }),
              HasSubstr(kOwned));
  EXPECT_THAT(error_of<ConflictError>([&] { store_.delete_provider(p.id, &audit); }),
              HasSubstr(kOwned));
  EXPECT_THAT(error_of<ConflictError>([&] { store_.update_model(m, &audit); }),
              HasSubstr("model 'gpt-4o' is defined in the configuration file"));
  EXPECT_THAT(error_of<ConflictError>([&] { store_.delete_model(m.id, &audit); }),
              HasSubstr(kOwned));
  EXPECT_THAT(error_of<ConflictError>([&] { store_.update_alias(a, &audit); }),
              HasSubstr("alias 'smart' is defined in the configuration file"));
  EXPECT_THAT(error_of<ConflictError>([&] { store_.delete_alias("smart", &audit); }),
              HasSubstr(kOwned));
  EXPECT_EQ(store_.config_version(), 1);
  EXPECT_EQ(audit_rows(), 0);
  const CatalogData after = store_.load_catalog();
  EXPECT_EQ(after.providers[0].config, catalog.providers[0].config);
  EXPECT_EQ(after.models[0].config, catalog.models[0].config);
  EXPECT_EQ(after.aliases.size(), 1u);
}

TEST_P(AdminStoreTest, NamesAndReferencesAreChecked) {
  ProviderRecord p = admin_provider("local", "");
  ModelRecord m1 = admin_model("m1", "local");
  AliasRecord a1 = admin_alias("a1", "m1");
  store_.insert_provider(p, nullptr);
  store_.insert_model(m1, nullptr);
  store_.insert_alias(a1, nullptr);  // version 3

  ModelRecord lost_model = admin_model("m2", "nope");
  EXPECT_THAT(error_of<ReferenceError>([&] { store_.insert_model(lost_model, nullptr); }),
              HasSubstr("'nope'"));
  AliasRecord lost_alias = admin_alias("a2", "nope");
  EXPECT_THROW(store_.insert_alias(lost_alias, nullptr), ReferenceError);

  ProviderRecord same_provider = admin_provider("local", "");
  EXPECT_THROW(store_.insert_provider(same_provider, nullptr), ConflictError);
  ModelRecord same_model = admin_model("m1", "local");
  EXPECT_THROW(store_.insert_model(same_model, nullptr), ConflictError);
  ModelRecord named_like_alias = admin_model("a1", "local");
  EXPECT_THAT(error_of<ConflictError>([&] { store_.insert_model(named_like_alias, nullptr); }),
              HasSubstr("alias named 'a1'"));
  AliasRecord named_like_model = admin_alias("m1", "m1");
  EXPECT_THAT(error_of<ConflictError>([&] { store_.insert_alias(named_like_model, nullptr); }),
              HasSubstr("model named 'm1'"));
  AliasRecord same_alias = admin_alias("a1", "m1");
  EXPECT_THROW(store_.insert_alias(same_alias, nullptr), ConflictError);

  EXPECT_THAT(error_of<ConflictError>([&] { store_.delete_provider(p.id, nullptr); }),
              HasSubstr("used by model 'm1'"));
  EXPECT_THAT(error_of<ConflictError>([&] { store_.delete_model(m1.id, nullptr); }),
              HasSubstr("alias 'a1'"));
  AliasRecord repointed = admin_alias("a1", "nope");
  EXPECT_THROW(store_.update_alias(repointed, nullptr), ReferenceError);
  ModelRecord renamed = m1;
  renamed.config.name = "a1";
  EXPECT_THROW(store_.update_model(renamed, nullptr), ConflictError);
  ModelRecord moved = m1;
  moved.config.provider = "nope";
  EXPECT_THROW(store_.update_model(moved, nullptr), ReferenceError);
  ProviderRecord second = admin_provider("second", "");
  store_.insert_provider(second, nullptr);  // 4
  second.config.name = "local";
  EXPECT_THROW(store_.update_provider(second, nullptr), ConflictError);
  EXPECT_EQ(store_.config_version(), 4);
  EXPECT_EQ(store_.list_models().size(), 1u);
  EXPECT_EQ(store_.list_aliases().size(), 1u);

  // A name is free again once its row is gone.
  ASSERT_TRUE(store_.delete_alias("a1", nullptr));
  store_.insert_model(named_like_alias, nullptr);
  EXPECT_EQ(store_.find_model(named_like_alias.id)->config.name, "a1");
}

TEST_P(AdminStoreTest, ApplyConfigRefusesAModelOrAliasNameAnAdminRowHolds) {
  ProviderRecord p = admin_provider("local", "");
  ModelRecord m = admin_model("admin-model", "local");
  AliasRecord a = admin_alias("admin-alias", "admin-model");
  store_.insert_provider(p, nullptr);
  store_.insert_model(m, nullptr);
  store_.insert_alias(a, nullptr);  // version 3

  auto model_named_like_alias = file_config();
  model_named_like_alias.models.push_back({"admin-alias", "openai", "x", ""});
  EXPECT_THAT(error_of<std::runtime_error>([&] { store_.apply_config(model_named_like_alias); }),
              HasSubstr("'admin-alias'"));
  auto alias_named_like_model = file_config();
  alias_named_like_model.aliases.push_back({"admin-model", "gpt-4o"});
  EXPECT_THAT(error_of<std::runtime_error>([&] { store_.apply_config(alias_named_like_model); }),
              HasSubstr("'admin-model'"));
  auto alias_named_like_its_model = file_config();
  alias_named_like_its_model.aliases.push_back({"gpt-4o", "gpt-4o"});
  EXPECT_THROW(store_.apply_config(alias_named_like_its_model), std::runtime_error);
  EXPECT_EQ(store_.config_version(), 3);
  EXPECT_EQ(store_.load_catalog().providers.size(), 1u);

  // A name the file used to hold as a model may become an alias.
  store_.apply_config(file_config());
  core::GatewayConfig swapped = file_config();
  swapped.models[0].name = "gpt-4o-new";
  swapped.aliases = {{"gpt-4o", "gpt-4o-new"}};
  store_.apply_config(swapped);
  EXPECT_EQ(store_.find_alias("gpt-4o")->config.model, "gpt-4o-new");
}

TEST_P(AdminStoreTest, RenamingARowTheFileNamesIsRefused) {
  ProviderRecord p = admin_provider("local", "");
  ModelRecord m = admin_model("admin-model", "local");
  store_.insert_provider(p, nullptr);
  store_.insert_model(m, nullptr);
  core::GatewayConfig cfg;
  cfg.models = {{"via-local", "local", "x", ""}};
  cfg.aliases = {{"pinned", "admin-model"}};
  store_.apply_config(cfg);  // version 3

  ProviderRecord renamed_provider = p;
  renamed_provider.config.name = "renamed";
  EXPECT_THAT(error_of<ConflictError>([&] { store_.update_provider(renamed_provider, nullptr); }),
              HasSubstr("'via-local'"));
  ModelRecord renamed_model = m;
  renamed_model.config.name = "renamed";
  EXPECT_THAT(error_of<ConflictError>([&] { store_.update_model(renamed_model, nullptr); }),
              HasSubstr("'pinned'"));
  EXPECT_EQ(store_.config_version(), 3);

  // Changes that keep the name are fine, and the file still loads.
  p.config.base_url = "http://127.0.0.1:10/v1";
  EXPECT_TRUE(store_.update_provider(p, nullptr));
  m.config.upstream_model = "y";
  EXPECT_TRUE(store_.update_model(m, nullptr));
  store_.apply_config(cfg);
  EXPECT_EQ(store_.config_version(), 5);
}

// --- prices

TEST_P(AdminStoreTest, AdminPricesSurviveImportsAndTheConfigurationFile) {
  const std::vector<PriceModelRecord> models{{"gpt-4o", "openai", "chat", 128'000, 16'384}};
  store_.import_prices(models, {price("gpt-4o", "input", "2.5", "catalog"),
                                price("gpt-4o", "output", "10", "catalog")});   // version 1
  store_.replace_price_overrides({price("gpt-4o", "input", "2", "override")});  // 2
  const auto audit = make_audit("update", "prices", "gpt-4o");
  store_.set_admin_prices(
      "gpt-4o", {price("gpt-4o", "input", "1.50", ""), price("", "output", "8e0", "admin")},
      &audit);  // 3
  EXPECT_EQ(store_.config_version(), 3);
  EXPECT_EQ(audit_rows(), 1);
  // Ordered by direction, modality, unit, tier, then source; prices in canonical form.
  EXPECT_THAT(store_.prices_of("gpt-4o"), ElementsAre(price("gpt-4o", "input", "1.5", "admin"),
                                                      price("gpt-4o", "input", "2.5", "catalog"),
                                                      price("gpt-4o", "input", "2", "override"),
                                                      price("gpt-4o", "output", "8", "admin"),
                                                      price("gpt-4o", "output", "10", "catalog")));

  // A re-import with other prices and a file without overrides leave the admin rows alone.
  store_.import_prices(models, {price("gpt-4o", "input", "3", "catalog"),
                                price("gpt-4o", "output", "12", "catalog")});
  store_.replace_price_overrides({});
  EXPECT_THAT(store_.prices_of("gpt-4o"), ElementsAre(price("gpt-4o", "input", "1.5", "admin"),
                                                      price("gpt-4o", "input", "3", "catalog"),
                                                      price("gpt-4o", "output", "8", "admin"),
                                                      price("gpt-4o", "output", "12", "catalog")));
  const auto loaded = store_.load_catalog().prices;
  EXPECT_THAT(loaded, Contains(price("gpt-4o", "input", "1.5", "admin")));
  EXPECT_THAT(loaded, Contains(price("gpt-4o", "output", "8", "admin")));

  // An admin price may name a model the catalog lacks; an empty list removes them.
  store_.set_admin_prices("my-finetune", {price("my-finetune", "input", "4", "admin")}, nullptr);
  EXPECT_THAT(store_.prices_of("my-finetune"),
              ElementsAre(price("my-finetune", "input", "4", "admin")));
  const std::int64_t version = store_.config_version();
  store_.set_admin_prices("gpt-4o", {}, nullptr);
  EXPECT_EQ(store_.config_version(), version + 1);
  EXPECT_THAT(store_.prices_of("gpt-4o"), ElementsAre(price("gpt-4o", "input", "3", "catalog"),
                                                      price("gpt-4o", "output", "12", "catalog")));
  EXPECT_THAT(store_.prices_of("unknown"), IsEmpty());
}

TEST_P(AdminStoreTest, SetAdminPricesValidatesEveryRowAndChangesNothingOnError) {
  store_.set_admin_prices("m", {price("m", "input", "1", "admin")}, nullptr);  // version 1
  const auto audit = make_audit("update", "prices", "m");
  const auto with = [](PriceComponentRecord extra) {
    return std::vector{price("m", "input", "2", "admin"), std::move(extra)};
  };
  EXPECT_THROW(store_.set_admin_prices("m", with(price("m", "output", "x", "admin")), &audit),
               std::runtime_error);
  EXPECT_THROW(store_.set_admin_prices("m", with(price("m", "output", "-1", "admin")), &audit),
               std::runtime_error);
  EXPECT_THROW(store_.set_admin_prices("m", with(price("m", "output", "1", "override")), &audit),
               std::runtime_error);
  EXPECT_THROW(store_.set_admin_prices("m", with(price("other", "output", "1", "")), &audit),
               std::runtime_error);
  EXPECT_THROW(store_.set_admin_prices("m", with(price("m", "input", "3", "")), &audit),
               std::runtime_error);  // the same component twice
  EXPECT_THROW(store_.set_admin_prices("m", with(price("m", "sideways", "1", "")), &audit),
               std::runtime_error);  // the schema's CHECK
  EXPECT_THROW(store_.set_admin_prices("", {}, &audit), std::runtime_error);
  EXPECT_EQ(store_.config_version(), 1);
  EXPECT_THAT(store_.prices_of("m"), ElementsAre(price("m", "input", "1", "admin")));
  EXPECT_EQ(audit_rows(), 0);
}

// --- usage report

/// 2025-11-27T00:00:00Z in unix microseconds.
constexpr std::int64_t kMidnightUs = 1'764'201'600'000'000;

UsageRecord usage(int n, const std::string& key_id, const std::string& model,
                  const std::string& provider, const std::string& cost, std::int64_t at_us) {
  UsageRecord r;
  r.request_id = "req-" + std::to_string(n);
  r.key_id = key_id;
  r.model = model;
  r.upstream_model = model;
  r.provider = provider;
  r.endpoint = "chat.completions";
  r.status = 200;
  r.prompt_tokens = 10;
  r.completion_tokens = 5;
  r.cached_tokens = 2;
  r.reasoning_tokens = 1;
  r.cost_usd = cost;
  r.cost_status = cost.empty() ? "unpriced" : "exact";
  r.created_at_us = at_us;
  return r;
}

UsageTotals totals(std::string group, std::int64_t requests, std::int64_t unpriced,
                   std::string cost) {
  return {std::move(group), requests,     unpriced,     10 * requests,
          5 * requests,     2 * requests, 1 * requests, std::move(cost)};
}

TEST_P(AdminStoreTest, UsageReportSumsExactMoneyPerGroup) {
  store_.insert_usage(std::vector{
      usage(1, "key_a", "gpt-4o", "openai", "0.1", kMidnightUs + 1),
      usage(2, "key_a", "gpt-4o", "openai", "0.1", kMidnightUs + 2),
      usage(3, "key_b", "gpt-4o", "openai", "0.1", kMidnightUs + 3),
      usage(4, "key_b", "claude", "anthropic", "", kMidnightUs - 1),  // unpriced
      usage(5, "key_a", "claude", "anthropic", "0.25", kMidnightUs - 10),
  });
  UsageQuery q;
  // In binary floating point 0.1 + 0.1 + 0.1 is not 0.3.
  EXPECT_THAT(store_.usage_report(q), ElementsAre(totals("", 5, 1, "0.55")));
  q.group_by = "day";
  EXPECT_THAT(store_.usage_report(q),
              ElementsAre(totals("2025-11-26", 2, 1, "0.25"), totals("2025-11-27", 3, 0, "0.3")));
  q.group_by = "model";
  EXPECT_THAT(store_.usage_report(q),
              ElementsAre(totals("claude", 2, 1, "0.25"), totals("gpt-4o", 3, 0, "0.3")));
  q.group_by = "key";
  EXPECT_THAT(store_.usage_report(q),
              ElementsAre(totals("key_a", 3, 0, "0.45"), totals("key_b", 2, 1, "0.1")));
  q.group_by = "provider";
  EXPECT_THAT(store_.usage_report(q),
              ElementsAre(totals("anthropic", 2, 1, "0.25"), totals("openai", 3, 0, "0.3")));

  // Filters combine; the end of the time range is exclusive.
  q = {};
  q.key_id = "key_a";
  q.group_by = "model";
  EXPECT_THAT(store_.usage_report(q),
              ElementsAre(totals("claude", 1, 0, "0.25"), totals("gpt-4o", 2, 0, "0.2")));
  q = {};
  q.model = "gpt-4o";
  q.provider = "openai";
  EXPECT_THAT(store_.usage_report(q), ElementsAre(totals("", 3, 0, "0.3")));
  q = {};
  q.from_us = kMidnightUs;
  q.to_us = kMidnightUs + 3;
  EXPECT_THAT(store_.usage_report(q), ElementsAre(totals("", 2, 0, "0.2")));

  // Nothing matches: one zero total, or no group at all.
  q = {};
  q.key_id = "key_z";
  EXPECT_THAT(store_.usage_report(q), ElementsAre(totals("", 0, 0, "0")));
  q.group_by = "day";
  EXPECT_THAT(store_.usage_report(q), IsEmpty());
  q.group_by = "week";
  EXPECT_THROW(store_.usage_report(q), std::invalid_argument);
}

// --- admin users and tokens

TEST_P(AdminStoreTest, AdminUserEmailIsUniqueWhateverItsCase) {
  const auto audit = make_audit("create", "user", "");
  AdminUserRecord ops{"", "Ops@Example.com", "$argon2id$v=19$m=65536,t=1,p=4$c2FsdA$aGFzaA",
                      "admin"};
  store_.insert_admin_user(ops, &audit);
  EXPECT_THAT(ops.id, StartsWith("usr_"));
  EXPECT_GT(ops.created_at, 0);
  EXPECT_EQ(store_.find_admin_user(ops.id), ops);
  EXPECT_EQ(store_.find_admin_user_by_email("OPS@example.COM"), ops);
  EXPECT_FALSE(store_.find_admin_user_by_email("ops@example.org").has_value());

  AdminUserRecord clash{"", "ops@EXAMPLE.com", "h", "viewer"};
  EXPECT_THAT(error_of<ConflictError>([&] { store_.insert_admin_user(clash, &audit); }),
              HasSubstr("ops@EXAMPLE.com"));
  AdminUserRecord dev{"", "dev@example.com", "h", "editor"};
  store_.insert_admin_user(dev, nullptr);
  AdminUserRecord taken = dev;
  taken.email = "OPS@EXAMPLE.COM";
  EXPECT_THROW(store_.update_admin_user(taken, nullptr), ConflictError);
  AdminUserRecord root = dev;
  root.role = "root";
  EXPECT_THROW(store_.update_admin_user(root, nullptr), std::runtime_error);
  EXPECT_EQ(store_.find_admin_user(dev.id), dev);

  EXPECT_EQ(store_.count_enabled_admins(), 1);
  dev.role = "admin";
  dev.password_hash = "h2";
  ASSERT_TRUE(store_.update_admin_user(dev, nullptr));
  EXPECT_EQ(store_.find_admin_user(dev.id), dev);
  EXPECT_EQ(store_.count_enabled_admins(), 2);
  ops.enabled = false;
  ASSERT_TRUE(store_.update_admin_user(ops, nullptr));
  EXPECT_EQ(store_.count_enabled_admins(), 1);

  const auto first = ops.id < dev.id ? ops : dev;
  const auto second = ops.id < dev.id ? dev : ops;
  EXPECT_THAT(store_.list_admin_users({}), ElementsAre(first, second));
  EXPECT_THAT(store_.list_admin_users({"", 1}), ElementsAre(first, second));
  EXPECT_THAT(store_.list_admin_users({first.id, 1}), ElementsAre(second));

  ASSERT_TRUE(store_.delete_admin_user(dev.id, nullptr));
  EXPECT_FALSE(store_.delete_admin_user(dev.id, nullptr));
  AdminUserRecord gone = dev;
  EXPECT_FALSE(store_.update_admin_user(gone, nullptr));
  EXPECT_FALSE(store_.find_admin_user(dev.id).has_value());
  EXPECT_EQ(store_.count_enabled_admins(), 0);
  EXPECT_EQ(store_.config_version(), 0);  // identities are not gateway configuration
  EXPECT_EQ(audit_rows(), 1);
}

TEST_P(AdminStoreTest, ServiceTokenNamesAreUnique) {
  AdminTokenRecord ci{"", "ci", "$argon2id$v=19$m=65536,t=1,p=4$c2FsdA$aGFzaA", "editor"};
  store_.insert_admin_token(ci, nullptr);
  EXPECT_THAT(ci.id, StartsWith("tok_"));
  EXPECT_EQ(store_.find_admin_token(ci.id), ci);
  EXPECT_EQ(store_.find_admin_token_by_service("ci"), ci);
  EXPECT_FALSE(store_.find_admin_token_by_service("CI").has_value());

  AdminTokenRecord clash{"", "ci", "h", "viewer"};
  EXPECT_THROW(store_.insert_admin_token(clash, nullptr), ConflictError);
  AdminTokenRecord deploy{"", "deploy", "h", "viewer"};
  store_.insert_admin_token(deploy, nullptr);
  deploy.service_name = "ci";
  EXPECT_THROW(store_.update_admin_token(deploy, nullptr), ConflictError);
  deploy.service_name = "deploy";
  deploy.token_hash = "regenerated";
  deploy.enabled = false;
  ASSERT_TRUE(store_.update_admin_token(deploy, nullptr));
  EXPECT_EQ(store_.find_admin_token(deploy.id), deploy);
  EXPECT_EQ(store_.list_admin_tokens({}).size(), 2u);
  EXPECT_EQ(store_.list_admin_tokens({"", 1}).size(), 2u);

  ASSERT_TRUE(store_.delete_admin_token(ci.id, nullptr));
  EXPECT_FALSE(store_.delete_admin_token(ci.id, nullptr));
  EXPECT_FALSE(store_.update_admin_token(ci, nullptr));
  EXPECT_THAT(store_.list_admin_tokens({}), ElementsAre(deploy));
  EXPECT_EQ(store_.config_version(), 0);
}

// --- audit

TEST_P(AdminStoreTest, AuditRecordCommitsOrRollsBackWithItsWrite) {
  ApiKeyRecord key = make_key(1);
  const auto created = make_audit("create", "key", key.id);
  store_.insert_key(key, &created);
  ASSERT_EQ(audit_rows(), 1);
  const auto stored = store_.list_audit({});
  ASSERT_EQ(stored.size(), 1u);
  EXPECT_GT(stored[0].id, 0);
  AuditRecord expected = created;
  expected.id = stored[0].id;
  EXPECT_EQ(stored[0], expected);  // before_json "" round-trips as none

  // The write fails: its audit record is not kept.
  ApiKeyRecord same_hash = make_key(2);
  same_hash.key_hash = key.key_hash;
  EXPECT_THROW(store_.insert_key(same_hash, &created), ConflictError);
  EXPECT_FALSE(store_.set_key_enabled("key_missing", false, &created));
  // The audit record fails: the write is not kept.
  AuditRecord invalid_json = make_audit("update", "key", key.id);
  invalid_json.before_json = "{not json";
  ApiKeyRecord renamed = key;
  renamed.name = "renamed";
  EXPECT_THROW(store_.update_key(renamed, &invalid_json), std::runtime_error);
  AuditRecord unknown_actor = make_audit("update", "key", key.id);
  unknown_actor.actor_type = "robot";
  EXPECT_THROW(store_.set_key_enabled(key.id, false, &unknown_actor), std::runtime_error);
  EXPECT_THROW(store_.set_admin_prices("m", {price("m", "input", "1", "")}, &unknown_actor),
               std::runtime_error);

  EXPECT_EQ(audit_rows(), 1);
  EXPECT_EQ(store_.find_key_by_id(key.id), key);
  EXPECT_EQ(store_.config_version(), 1);
  EXPECT_THAT(store_.prices_of("m"), IsEmpty());
}

TEST_P(AdminStoreTest, AuditListIsNewestFirstWithACursorAndFilters) {
  std::vector<AuditRecord> r;
  const auto add = [&](const std::string& type, const std::string& id, const std::string& actor,
                       std::int64_t at_us) {
    AuditRecord a = make_audit("update", type, id);
    a.actor_id = actor;
    a.at_us = at_us;
    store_.insert_audit(a);
    r.push_back(a);
  };
  add("key", "key_1", "usr_a", 100);
  add("key", "key_2", "usr_b", 200);
  add("provider", "prov_1", "usr_a", 300);
  add("key", "key_1", "tok_c", 400);
  add("key", "key_1", "usr_a", 500);
  for (std::size_t i = 1; i < r.size(); ++i) {
    EXPECT_GT(r[i].id, r[i - 1].id);
  }
  EXPECT_EQ(store_.list_audit({}), (std::vector{r[4], r[3], r[2], r[1], r[0]}));

  AuditQuery q;
  q.limit = 2;
  EXPECT_THAT(ids_of(store_.list_audit(q)), ElementsAre(r[4].id, r[3].id, r[2].id));
  q.before_id = r[3].id;
  EXPECT_THAT(ids_of(store_.list_audit(q)), ElementsAre(r[2].id, r[1].id, r[0].id));
  q.before_id = r[1].id;
  EXPECT_THAT(ids_of(store_.list_audit(q)), ElementsAre(r[0].id));

  q = {};
  q.resource_type = "key";
  q.resource_id = "key_1";
  EXPECT_THAT(ids_of(store_.list_audit(q)), ElementsAre(r[4].id, r[3].id, r[0].id));
  q.before_id = r[4].id;
  q.limit = 1;
  EXPECT_THAT(ids_of(store_.list_audit(q)), ElementsAre(r[3].id, r[0].id));
  q = {};
  q.resource_type = "provider";
  EXPECT_THAT(ids_of(store_.list_audit(q)), ElementsAre(r[2].id));
  q = {};
  q.actor_id = "usr_a";
  EXPECT_THAT(ids_of(store_.list_audit(q)), ElementsAre(r[4].id, r[2].id, r[0].id));
  q = {};
  q.from_us = 200;
  q.to_us = 400;
  EXPECT_THAT(ids_of(store_.list_audit(q)), ElementsAre(r[2].id, r[1].id));

  // A record without a time is stamped now.
  AuditRecord now = make_audit("login_failed", "session", "");
  now.at_us = 0;
  store_.insert_audit(now);
  EXPECT_GT(now.at_us, 1'700'000'000'000'000);
  EXPECT_EQ(store_.list_audit({}).front(), now);
  EXPECT_EQ(store_.config_version(), 0);
}

}  // namespace
}  // namespace llmgw::store

// The Store contract, run on both backends (SQLite and PostgreSQL): schema, keys, catalog,
// prices, usage and spend. What only one backend has (SQLite's file and WAL, PostgreSQL's
// pool and replicas) is tested in sqlite_store_test.cpp and pg_store_test.cpp.
#include "store/store.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <memory>
#include <ostream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "test_db.hpp"

namespace llmgw::store {

// Readable failures (GoogleTest finds these by argument-dependent lookup).
void PrintTo(const PriceComponentRecord& r, std::ostream* os) {
  *os << r.model_name << ' ' << r.direction << '/' << r.modality << '/' << r.unit << '/' << r.tier
      << " = " << r.price << " (" << r.source << ')';
}

void PrintTo(const SpendRow& r, std::ostream* os) {
  *os << r.key_id << ' ' << r.day << ' ' << r.model << ": $" << r.cost_usd << ", " << r.requests
      << " requests (" << r.unpriced_requests << " unpriced), " << r.prompt_tokens << '+'
      << r.completion_tokens << " tokens";
}

namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::UnorderedElementsAreArray;

using test_db::Kind;
using test_db::RawSql;

/// A fresh database of the parameter's kind, nothing migrated.
class FreshStoreTest : public ::testing::TestWithParam<Kind> {
 protected:
  FreshStoreTest() : db_(test_db::make_database(GetParam())) {}

  std::unique_ptr<test_db::Database> db_;
};

/// Each test gets its own database and a migrated store on it.
class StoreTest : public ::testing::TestWithParam<Kind> {
 protected:
  StoreTest() : db_(test_db::make_database(GetParam())), owned_(db_->open()), store_(*owned_) {
    store_.migrate();
  }

  std::unique_ptr<test_db::Database> db_;
  std::unique_ptr<Store> owned_;
  Store& store_;
};

INSTANTIATE_TEST_SUITE_P(Backends, FreshStoreTest, test_db::all_kinds(), test_db::kind_name);
INSTANTIATE_TEST_SUITE_P(Backends, StoreTest, test_db::all_kinds(), test_db::kind_name);

ApiKeyRecord make_key(int n) {
  ApiKeyRecord key;
  key.id = "key_" + std::to_string(1000 + n);
  key.key_hash = "hash" + std::to_string(n);
  key.prefix = "sk-llmgw-" + std::to_string(n);
  key.name = "key number " + std::to_string(n);
  return key;
}

UsageRecord make_usage(int n, std::int64_t created_at_us) {
  UsageRecord r;
  r.request_id = "req-" + std::to_string(n);
  r.client_request_id = n % 2 == 0 ? "client-" + std::to_string(n) : "";
  r.key_id = "key_" + std::to_string(n % 7);
  r.model = "gpt-4o-mini";
  r.upstream_model = "gpt-4o-mini-2024-07-18";
  r.provider = "openai";
  r.endpoint = n % 2 == 0 ? "chat.completions" : "embeddings";
  r.status = 200;
  r.prompt_tokens = n;
  r.completion_tokens = 2 * n;
  r.cached_tokens = n / 2;
  r.reasoning_tokens = n / 3;
  r.overhead_us = 17;
  r.upstream_us = 1'000 + n;
  r.stream = n % 3 == 0;
  r.usage_reported = n % 5 != 0;
  r.pricing_model = "gpt-4o-mini";
  r.service_tier = n % 4 == 1 ? "priority" : "default";
  r.cache_write_tokens = n / 4;
  // Every tenth cost unknown, as when a model has no price.
  r.cost_usd = n % 10 == 0 ? "" : "0.000" + std::to_string(100 + n % 900);
  r.cost_status = n % 10 == 0 ? "unpriced" : "exact";
  r.prices_json = n % 10 == 0 ? "" : R"([{"direction":"input","unit":"1m_tokens","price":"0.15"}])";
  r.created_at_us = created_at_us;
  return r;
}

core::GatewayConfig sample_config() {
  core::GatewayConfig cfg;
  core::ProviderConfig openai;
  openai.name = "openai";
  openai.type = core::ProviderType::OpenAI;
  openai.base_url = "https://api.openai.com/v1";
  openai.api_key = "sk-secret-openai";
  core::ProviderConfig echo;
  echo.name = "echo";
  echo.type = core::ProviderType::Echo;
  echo.connect_timeout = std::chrono::milliseconds(1'000);
  cfg.providers = {openai, echo};
  cfg.models = {{"gpt-4o", "openai", "gpt-4o-2024-08-06", "gpt-4o"},
                {"gpt-4o-mini", "openai", "gpt-4o-mini", ""},
                {"echo-1", "echo", "echo-1", ""}};
  cfg.aliases = {{"fast", "gpt-4o-mini"}, {"smart", "gpt-4o"}};
  return cfg;
}

std::vector<std::string> model_names(const CatalogData& catalog) {
  std::vector<std::string> out;
  for (const auto& m : catalog.models) {
    out.push_back(m.config.name);
  }
  return out;
}

const ProviderRecord* find_provider(const CatalogData& catalog, const std::string& name) {
  for (const auto& p : catalog.providers) {
    if (p.config.name == name) {
      return &p;
    }
  }
  return nullptr;
}

PriceComponentRecord component(const std::string& model, const std::string& direction,
                               const std::string& price, const std::string& source = "catalog") {
  return {model, direction, "text", "1m_tokens", "default", price, source};
}

std::vector<PriceModelRecord> sample_price_models() {
  return {{"gpt-4o", "openai", "chat", 128'000, 16'384},
          {"gpt-4o-mini", "openai", "chat", 128'000, std::nullopt}};
}

std::vector<PriceComponentRecord> sample_catalog_rows() {
  return {component("gpt-4o", "input", "2.5"), component("gpt-4o", "output", "10"),
          component("gpt-4o", "cache_read", "1.25"), component("gpt-4o-mini", "input", "0.15"),
          component("gpt-4o-mini", "output", "0.6")};
}

/// The prices load_catalog returns from one source.
std::vector<PriceComponentRecord> stored_prices(Store& store, const std::string& source) {
  std::vector<PriceComponentRecord> out;
  for (auto& row : store.load_catalog().prices) {
    if (row.source == source) {
      out.push_back(std::move(row));
    }
  }
  return out;
}

/// 2025-11-27T00:00:00Z in unix microseconds.
constexpr std::int64_t kMidnightUs = 1'764'201'600'000'000;

UsageRecord priced_usage(int n, const std::string& key_id, const std::string& model,
                         const std::string& cost, std::int64_t created_at_us) {
  UsageRecord r = make_usage(n, created_at_us);
  r.key_id = key_id;
  r.model = model;
  r.cost_usd = cost;
  r.cost_status = cost.empty() ? "unpriced" : "exact";
  return r;
}

/// Every spend row of a key.
std::vector<SpendRow> all_spend(Store& store, const std::string& key_id) {
  return store.spend(key_id, "0000-01-01", "9999-12-31");
}

// --- schema

TEST_P(FreshStoreTest, SchemaVersionIsZeroOnAnEmptyDatabase) {
  EXPECT_EQ(db_->open()->schema_version(), 0);
}

TEST_P(FreshStoreTest, MigrateIsIdempotent) {
  auto store = db_->open();
  const int latest = db_->latest_migration_version();
  EXPECT_EQ(store->migrate(), latest);
  EXPECT_EQ(store->migrate(), latest);
  EXPECT_EQ(store->schema_version(), latest);

  auto other = db_->open();
  EXPECT_EQ(other->migrate(), latest);
  auto raw = db_->raw();
  EXPECT_EQ(raw->value("SELECT COUNT(*) FROM schema_migrations"), std::to_string(latest));
  EXPECT_EQ(raw->value("SELECT name FROM schema_migrations WHERE version = 1"), "initial_schema");
  EXPECT_EQ(raw->value("SELECT name FROM schema_migrations WHERE version = 2"), "admin_api");
  EXPECT_EQ(raw->value("SELECT name FROM schema_migrations WHERE version = 3"), "model_limits");
  EXPECT_EQ(store->config_version(), 0);
}

TEST_P(FreshStoreTest, ModelLimitsMigrationKeepsTheModelsOfAVersionTwoDatabase) {
  // A database as the previous build left it: migrations 1 and 2, with a model and an alias.
  db_->migrate_raw_to_version(2);
  db_->raw()->exec(
      "UPDATE config_version SET version = 4;"
      "INSERT INTO providers (id, name, type, connect_timeout_ms, first_byte_timeout_ms,"
      " idle_timeout_ms, source, created_at, updated_at, version)"
      " VALUES ('prov_1', 'local', 'echo', 100, 200, 300, 'admin', 10, 20, 2);"
      "INSERT INTO models (id, name, provider_id, upstream_model, pricing_model, source,"
      " created_at, updated_at, version)"
      " VALUES ('model_1', 'echo-1', 'prov_1', 'echo-up', 'priced-as', 'admin', 30, 40, 3);"
      "INSERT INTO model_aliases (alias, model_id, source, created_at, updated_at, version)"
      " VALUES ('fast', 'model_1', 'admin', 50, 60, 4);");
  auto store = db_->open();
  EXPECT_EQ(store->schema_version(), 2);
  EXPECT_EQ(store->migrate(), db_->latest_migration_version());
  EXPECT_EQ(store->config_version(), 4);

  const CatalogData catalog = store->load_catalog();
  ASSERT_EQ(catalog.models.size(), 1u);
  const ModelRecord& m = catalog.models[0];
  EXPECT_EQ(m.id, "model_1");
  EXPECT_EQ(m.config.name, "echo-1");
  EXPECT_EQ(m.config.provider, "local");
  EXPECT_EQ(m.config.upstream_model, "echo-up");
  EXPECT_EQ(m.config.pricing_model, "priced-as");
  EXPECT_EQ(m.config.rpm_limit, std::nullopt);
  EXPECT_EQ(m.config.tpm_limit, std::nullopt);
  EXPECT_EQ(m.created_at, 30);
  EXPECT_EQ(m.updated_at, 40);
  ASSERT_EQ(catalog.aliases.size(), 1u);
  EXPECT_EQ(catalog.aliases[0].config.model, "echo-1");

  auto raw = db_->raw();
  EXPECT_EQ(raw->value("SELECT rpm_limit FROM models"), "NULL");
  EXPECT_EQ(raw->value("SELECT tpm_limit FROM models"), "NULL");
  // The new columns refuse what is not a positive count, and take a limit.
  EXPECT_THROW(raw->exec("UPDATE models SET rpm_limit = 0"), std::runtime_error);
  EXPECT_THROW(raw->exec("UPDATE models SET tpm_limit = -1"), std::runtime_error);
  ModelRecord limited = m;
  limited.config.rpm_limit = 60;
  ASSERT_TRUE(store->update_model(limited, nullptr));
  EXPECT_EQ(store->find_model("model_1")->config, limited.config);
  if (db_->is_sqlite()) {
    EXPECT_EQ(raw->value("PRAGMA integrity_check"), "ok");
    EXPECT_EQ(raw->value("PRAGMA foreign_key_check"), "");
  }
}

TEST_P(FreshStoreTest, UsageRequestIdsMigrationKeepsTheFirstOfRepeatedRowsAndTheirSpendOnce) {
  // A version-3 database where a retried batch stored one call twice, spend counted twice.
  db_->migrate_raw_to_version(3);
  const std::string row =
      " (request_id, key_id, model, upstream_model, provider, endpoint, status, prompt_tokens,"
      " cost_usd, cost_status, created_at_us) VALUES ";
  db_->raw()->exec(
      "INSERT INTO usage_records" + row + "('req-1', 'key_a', 'm', 'm', 'p', 'chat.completions',"
      " 200, 10, '0.5', 'exact', 1764201600000000);"
      "INSERT INTO usage_records" + row + "('req-1', 'key_a', 'm', 'm', 'p', 'chat.completions',"
      " 200, 10, '0.5', 'exact', 1764201600000000);"
      "INSERT INTO usage_records" + row + "('req-2', 'key_a', 'm', 'm', 'p', 'chat.completions',"
      " 200, 20, '0.25', 'exact', 1764201600000001);"
      "INSERT INTO spend_daily (key_id, day, model, cost_usd, requests, unpriced_requests,"
      " prompt_tokens, completion_tokens, updated_at)"
      " VALUES ('key_a', '2025-11-27', 'm', '1.25', 3, 0, 40, 0, 1);");
  auto store = db_->open();
  EXPECT_EQ(store->migrate(), db_->latest_migration_version());
  EXPECT_EQ(store->count_usage(), 2);
  const auto rows = store->spend("key_a", "0000-01-01", "9999-12-31");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].cost_usd, "0.75");
  EXPECT_EQ(rows[0].requests, 2);
  EXPECT_EQ(rows[0].prompt_tokens, 30);
}

TEST_P(StoreTest, SchemaRejectsValuesOutsideItsEnumerations) {
  auto raw = db_->raw();
  EXPECT_THROW(raw->exec("INSERT INTO admin_users VALUES ('u1', 'a@b.c', 'h', 'root', '1', 0, 0)"),
               std::runtime_error);
  EXPECT_THROW(raw->exec("INSERT INTO api_keys (id, key_hash, prefix, budget_usd, created_at,"
                         " updated_at, version) VALUES ('k', 'h', 'p', '1e3', 0, 0, 0)"),
               std::runtime_error);
  EXPECT_NO_THROW(
      raw->exec("INSERT INTO api_keys (id, key_hash, prefix, budget_usd, created_at,"
                " updated_at, version) VALUES ('k', 'h', 'p', '25.00', 0, 0, 0)"));
  EXPECT_EQ(raw->value("SELECT budget_period FROM api_keys WHERE id = 'k'"), "monthly");
}

TEST_P(StoreTest, SchemaRejectsAnUnknownPriceDirectionOrUnit) {
  auto raw = db_->raw();
  const std::string insert =
      "INSERT INTO pricing_components (model_name, direction, modality, unit, tier, price,"
      " source, updated_at, version) VALUES ";
  EXPECT_NO_THROW(raw->exec(insert +
                            "('m', 'cache_write_5m', 'text', '1m_tokens', 'default', '3.75',"
                            " 'catalog', 0, 0)"));
  EXPECT_THROW(
      raw->exec(insert + "('m', 'cache_write', 'text', '1m_tokens', 'default', '1', 'catalog',"
                         " 0, 0)"),
      std::runtime_error);
  EXPECT_THROW(
      raw->exec(insert + "('m', 'input', 'text', 'char', 'default', '1', 'catalog', 0, 0)"),
      std::runtime_error);
  EXPECT_THROW(
      raw->exec(insert + "('m', 'input', 'smell', 'token', 'default', '1', 'catalog', 0, 0)"),
      std::runtime_error);
  EXPECT_THROW(
      raw->exec(insert + "('m', 'input', 'text', 'token', 'default', '1e-7', 'catalog', 0, 0)"),
      std::runtime_error);
  EXPECT_THROW(
      raw->exec(insert + "('m', 'input', 'text', 'token', 'default', '1', 'manual', 0, 0)"),
      std::runtime_error);

  // Through the store: the whole call fails and nothing is kept.
  auto bad_direction = component("m", "cache_write", "1", "override");
  try {
    store_.replace_price_overrides({component("m", "input", "1", "override"), bad_direction});
    FAIL() << "unknown direction accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), HasSubstr(std::string(db_->check_violation())));
  }
  auto bad_unit = component("gpt-4o-mini", "input", "1");
  bad_unit.unit = "char";
  EXPECT_THROW(store_.import_prices(sample_price_models(),
                                    [&] {
                                      auto rows = sample_catalog_rows();
                                      rows.push_back(bad_unit);
                                      return rows;
                                    }()),
               std::runtime_error);
  EXPECT_EQ(store_.config_version(), 0);
  EXPECT_EQ(store_.count_price_models(), 0);
  EXPECT_EQ(raw->value("SELECT COUNT(*) FROM pricing_components"), "1");  // the raw insert
}

TEST_P(StoreTest, SchemaRejectsUnknownCostStatusAndInvalidPricesJson) {
  auto bad_status = make_usage(1, 100);
  bad_status.cost_status = "free";
  EXPECT_THROW(store_.insert_usage(std::vector{bad_status}), std::runtime_error);
  auto bad_json = make_usage(1, 100);
  bad_json.prices_json = "[{";
  EXPECT_THROW(store_.insert_usage(std::vector{bad_json}), std::runtime_error);
  EXPECT_EQ(store_.count_usage(), 0);
  EXPECT_TRUE(all_spend(store_, bad_json.key_id).empty());  // rolled back with the rows
}

TEST_P(FreshStoreTest, RefusesDatabaseFromNewerBuild) {
  db_->open()->migrate();
  const int future = db_->latest_migration_version() + 1;
  db_->raw()->exec("INSERT INTO schema_migrations VALUES (" + std::to_string(future) +
                   ", 'from_the_future', 0)");
  auto store = db_->open();
  EXPECT_EQ(store->schema_version(), future);
  try {
    store->migrate();
    FAIL() << "migrate() accepted a newer schema";
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), HasSubstr("newer"));
    EXPECT_THAT(e.what(), HasSubstr(std::to_string(future)));
  }
}

// --- keys

TEST_P(StoreTest, InsertedKeyIsFoundByIdAndHash) {
  ApiKeyRecord key = make_key(1);
  key.enabled = true;
  key.expires_at = 1'900'000'000;
  key.rpm_limit = 60;
  key.budget_usd = "25.00";
  key.allowed_models = {"gpt-4o", "fast", "quote\"d"};
  store_.insert_key(key, nullptr);

  EXPECT_GT(key.created_at, 0);
  EXPECT_EQ(key.updated_at, key.created_at);
  EXPECT_EQ(key.version, 1);
  EXPECT_EQ(store_.config_version(), 1);

  EXPECT_EQ(store_.find_key_by_id(key.id), key);
  EXPECT_EQ(store_.find_key_by_hash(key.key_hash), key);
  EXPECT_FALSE(store_.find_key_by_id("key_missing").has_value());
  EXPECT_FALSE(store_.find_key_by_hash("nope").has_value());
  EXPECT_FALSE(store_.find_key_by_id("").has_value());
}

TEST_P(StoreTest, OptionalKeyFieldsRoundTripAsAbsent) {
  ApiKeyRecord key = make_key(2);
  key.name.clear();
  store_.insert_key(key, nullptr);
  const auto found = store_.find_key_by_id(key.id);
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(*found, key);
  EXPECT_FALSE(found->expires_at.has_value());
  EXPECT_FALSE(found->budget_usd.has_value());
  EXPECT_TRUE(found->allowed_models.empty());
}

TEST_P(StoreTest, BudgetPeriodRoundTrips) {
  std::vector<ApiKeyRecord> keys;
  int n = 0;
  for (const char* period : {"daily", "weekly", "monthly"}) {
    ApiKeyRecord key = make_key(++n);
    key.budget_usd = "10";
    key.budget_period = period;
    store_.insert_key(key, nullptr);
    EXPECT_EQ(store_.find_key_by_id(key.id), key);
    EXPECT_EQ(store_.find_key_by_hash(key.key_hash), key);
    keys.push_back(key);
  }
  EXPECT_THAT(store_.list_keys(), ElementsAre(keys[0], keys[1], keys[2]));
  EXPECT_EQ(store_.find_key_by_id(keys[0].id)->budget_period, "daily");

  ApiKeyRecord total = make_key(++n);
  total.budget_period = "total";  // no longer a period
  EXPECT_THROW(store_.insert_key(total, nullptr), std::runtime_error);
  EXPECT_EQ(store_.config_version(), 3);
  EXPECT_EQ(store_.list_keys().size(), 3u);
}

TEST_P(StoreTest, ListKeysReturnsEveryKey) {
  std::vector<ApiKeyRecord> keys;
  for (int i = 0; i < 3; ++i) {
    keys.push_back(make_key(i));
    store_.insert_key(keys.back(), nullptr);
  }
  EXPECT_THAT(store_.list_keys(), ElementsAre(keys[0], keys[1], keys[2]));
  EXPECT_EQ(store_.config_version(), 3);
}

TEST_P(StoreTest, DuplicateHashOrIdThrowsAndChangesNothing) {
  ApiKeyRecord first = make_key(1);
  store_.insert_key(first, nullptr);

  ApiKeyRecord same_hash = make_key(2);
  same_hash.key_hash = first.key_hash;
  try {
    store_.insert_key(same_hash, nullptr);
    FAIL() << "duplicate hash accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), HasSubstr("already exists"));
    EXPECT_THAT(e.what(), Not(HasSubstr(first.key_hash)));
  }
  ApiKeyRecord same_id = make_key(3);
  same_id.id = first.id;
  EXPECT_THROW(store_.insert_key(same_id, nullptr), std::runtime_error);

  EXPECT_EQ(same_hash.version, 0);  // untouched on failure
  EXPECT_EQ(store_.config_version(), 1);
  EXPECT_EQ(store_.list_keys().size(), 1u);
}

TEST_P(StoreTest, SetKeyEnabledBumpsVersionAndReportsUnknownKeys) {
  ApiKeyRecord key = make_key(1);
  store_.insert_key(key, nullptr);

  EXPECT_TRUE(store_.set_key_enabled(key.id, false, nullptr));
  auto found = store_.find_key_by_id(key.id);
  ASSERT_TRUE(found.has_value());
  EXPECT_FALSE(found->enabled);
  EXPECT_EQ(found->version, 2);
  EXPECT_GE(found->updated_at, key.updated_at);
  EXPECT_EQ(store_.config_version(), 2);

  EXPECT_FALSE(store_.set_key_enabled("key_missing", true, nullptr));
  EXPECT_EQ(store_.config_version(), 2);

  EXPECT_TRUE(store_.set_key_enabled(key.id, true, nullptr));
  EXPECT_TRUE(store_.find_key_by_id(key.id)->enabled);
  EXPECT_EQ(store_.config_version(), 3);
}

TEST_P(StoreTest, KeyHashesChangedSinceListsOnlyNewerChanges) {
  ApiKeyRecord a = make_key(1);
  ApiKeyRecord b = make_key(2);
  ApiKeyRecord c = make_key(3);
  store_.insert_key(a, nullptr);  // version 1
  store_.insert_key(b, nullptr);  // 2
  store_.insert_key(c, nullptr);  // 3
  EXPECT_THAT(store_.key_hashes_changed_since(0), ElementsAre(a.key_hash, b.key_hash, c.key_hash));
  EXPECT_THAT(store_.key_hashes_changed_since(2), ElementsAre(c.key_hash));
  EXPECT_TRUE(store_.key_hashes_changed_since(3).empty());

  store_.set_key_enabled(a.id, false, nullptr);  // 4
  EXPECT_THAT(store_.key_hashes_changed_since(3), ElementsAre(a.key_hash));
}

TEST_P(StoreTest, SecondStoreOnTheSameFileSeesChangesAndVersionMoves) {
  // `cli` stands for the CLI writing the file the server has open (a second connection).
  auto cli = db_->open();
  EXPECT_EQ(cli->migrate(), db_->latest_migration_version());
  const std::int64_t before = store_.config_version();
  EXPECT_FALSE(store_.find_key_by_hash("hash7").has_value());

  ApiKeyRecord key = make_key(7);
  cli->insert_key(key, nullptr);
  EXPECT_GT(store_.config_version(), before);
  EXPECT_EQ(store_.find_key_by_hash("hash7"), key);
  EXPECT_THAT(store_.key_hashes_changed_since(before), ElementsAre(key.key_hash));

  ASSERT_TRUE(cli->set_key_enabled(key.id, false, nullptr));
  EXPECT_EQ(store_.config_version(), cli->config_version());
  EXPECT_FALSE(store_.find_key_by_hash("hash7")->enabled);

  // And the other way round, for the catalog.
  store_.apply_config(sample_config());
  EXPECT_EQ(cli->load_catalog().version, store_.config_version());
  EXPECT_EQ(cli->load_catalog().models.size(), 3u);
}

TEST_P(StoreTest, ChangesMadeByAnotherProcessAreSeen) {
  const std::int64_t before = store_.config_version();
  ASSERT_FALSE(store_.find_key_by_hash("hash9").has_value());  // warms the statement cache
  const pid_t child = fork();
  ASSERT_NE(child, -1);
  if (child == 0) {
    // A real second process, as the CLI is: its own connection and its own file locks.
    // _exit: the child must not run the parent's destructors or GoogleTest's teardown.
    try {
      auto cli = db_->open();
      ApiKeyRecord key = make_key(9);
      cli->insert_key(key, nullptr);
      _exit(cli->set_key_enabled(key.id, false, nullptr) ? 0 : 1);
    } catch (const std::exception&) {
      _exit(2);
    }
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0);
  EXPECT_EQ(store_.config_version(), before + 2);
  const auto key = store_.find_key_by_hash("hash9");
  ASSERT_TRUE(key.has_value());
  EXPECT_FALSE(key->enabled);
  EXPECT_EQ(key->version, before + 2);
}

// --- catalog

TEST_P(StoreTest, ApplyConfigInsertsProvidersModelsAndAliases) {
  const auto cfg = sample_config();
  store_.apply_config(cfg);
  EXPECT_EQ(store_.config_version(), 1);

  const CatalogData catalog = store_.load_catalog();
  EXPECT_EQ(catalog.version, 1);
  ASSERT_EQ(catalog.providers.size(), 2u);
  const ProviderRecord* openai = find_provider(catalog, "openai");
  ASSERT_NE(openai, nullptr);
  EXPECT_EQ(openai->config, cfg.providers[0]);
  EXPECT_EQ(openai->source, "config");
  EXPECT_TRUE(openai->enabled);
  EXPECT_THAT(openai->id, HasSubstr("prov_"));
  const ProviderRecord* echo = find_provider(catalog, "echo");
  ASSERT_NE(echo, nullptr);
  EXPECT_EQ(echo->config, cfg.providers[1]);

  EXPECT_THAT(model_names(catalog), ElementsAre("echo-1", "gpt-4o", "gpt-4o-mini"));
  EXPECT_EQ(catalog.models[1].config, cfg.models[0]);
  EXPECT_EQ(catalog.models[1].source, "config");
  ASSERT_EQ(catalog.aliases.size(), 2u);
  EXPECT_EQ(catalog.aliases[0].config, cfg.aliases[0]);
  EXPECT_EQ(catalog.aliases[1].config, cfg.aliases[1]);

  auto raw = db_->raw();
  EXPECT_EQ(raw->value("SELECT COUNT(*) FROM providers WHERE version = 1"), "2");
  EXPECT_EQ(raw->value("SELECT COUNT(*) FROM models WHERE version = 1"), "3");
}

TEST_P(StoreTest, ApplyConfigIsIdempotentAndKeepsVersion) {
  store_.apply_config(sample_config());
  const CatalogData first = store_.load_catalog();
  store_.apply_config(sample_config());
  store_.apply_config(sample_config());
  EXPECT_EQ(store_.config_version(), 1);
  const CatalogData again = store_.load_catalog();
  EXPECT_EQ(again.version, first.version);
  ASSERT_EQ(again.providers.size(), first.providers.size());
  EXPECT_EQ(again.providers[0].id, first.providers[0].id);
  EXPECT_EQ(model_names(again), model_names(first));

  // A restart: a new store on the same file, same config.
  auto restarted = db_->open();
  restarted->migrate();
  restarted->apply_config(sample_config());
  EXPECT_EQ(restarted->config_version(), 1);
}

TEST_P(StoreTest, ApplyConfigUpdatesChangedRowsAndStampsThem) {
  store_.apply_config(sample_config());
  auto cfg = sample_config();
  cfg.providers[0].api_key = "sk-rotated";
  cfg.providers[0].first_byte_timeout = std::chrono::milliseconds(5'000);
  cfg.models[0].upstream_model = "gpt-4o-2024-11-20";
  cfg.models[2].provider = "openai";  // echo-1 moves to another provider
  cfg.aliases[0].model = "gpt-4o";    // fast now points at gpt-4o
  store_.apply_config(cfg);
  EXPECT_EQ(store_.config_version(), 2);

  const CatalogData catalog = store_.load_catalog();
  EXPECT_EQ(find_provider(catalog, "openai")->config, cfg.providers[0]);
  EXPECT_EQ(catalog.models[0].config, cfg.models[2]);
  EXPECT_EQ(catalog.models[1].config, cfg.models[0]);
  EXPECT_EQ(catalog.aliases[0].config.model, "gpt-4o");

  auto raw = db_->raw();
  EXPECT_EQ(raw->value("SELECT version FROM providers WHERE name = 'openai'"), "2");
  EXPECT_EQ(raw->value("SELECT version FROM providers WHERE name = 'echo'"), "1");
  EXPECT_EQ(raw->value("SELECT version FROM models WHERE name = 'gpt-4o-mini'"), "1");
  EXPECT_EQ(raw->value("SELECT version FROM models WHERE name = 'echo-1'"), "2");
  EXPECT_EQ(raw->value("SELECT version FROM model_aliases WHERE alias = 'fast'"), "2");
  EXPECT_EQ(raw->value("SELECT version FROM model_aliases WHERE alias = 'smart'"), "1");
}

TEST_P(StoreTest, ApplyConfigStoresAndUpdatesPricingModel) {
  store_.apply_config(sample_config());
  auto raw = db_->raw();
  EXPECT_EQ(raw->value("SELECT pricing_model FROM models WHERE name = 'gpt-4o'"), "gpt-4o");
  EXPECT_EQ(raw->value("SELECT pricing_model FROM models WHERE name = 'echo-1'"), "NULL");

  auto cfg = sample_config();
  cfg.models[0].pricing_model.clear();
  cfg.models[1].pricing_model = "gpt-4o-mini-2024-07-18";
  store_.apply_config(cfg);
  EXPECT_EQ(store_.config_version(), 2);
  const CatalogData catalog = store_.load_catalog();
  EXPECT_EQ(catalog.models[1].config, cfg.models[0]);
  EXPECT_EQ(catalog.models[2].config, cfg.models[1]);
  EXPECT_EQ(raw->value("SELECT pricing_model FROM models WHERE name = 'gpt-4o'"), "NULL");
  EXPECT_EQ(raw->value("SELECT version FROM models WHERE name = 'gpt-4o-mini'"), "2");
  EXPECT_EQ(raw->value("SELECT version FROM models WHERE name = 'echo-1'"), "1");

  store_.apply_config(cfg);
  EXPECT_EQ(store_.config_version(), 2);
}

TEST_P(StoreTest, ApplyConfigStoresAndUpdatesModelLimits) {
  auto cfg = sample_config();
  cfg.models[0].rpm_limit = 500;
  cfg.models[0].tpm_limit = 2'000'000;
  cfg.models[1].tpm_limit = 90'000;
  store_.apply_config(cfg);
  EXPECT_EQ(store_.config_version(), 1);
  CatalogData catalog = store_.load_catalog();
  EXPECT_EQ(catalog.models[0].config, cfg.models[2]);  // echo-1: no limits
  EXPECT_EQ(catalog.models[1].config, cfg.models[0]);
  EXPECT_EQ(catalog.models[2].config, cfg.models[1]);
  auto raw = db_->raw();
  EXPECT_EQ(raw->value("SELECT rpm_limit FROM models WHERE name = 'gpt-4o'"), "500");
  EXPECT_EQ(raw->value("SELECT tpm_limit FROM models WHERE name = 'gpt-4o'"), "2000000");
  EXPECT_EQ(raw->value("SELECT rpm_limit FROM models WHERE name = 'gpt-4o-mini'"), "NULL");
  EXPECT_EQ(raw->value("SELECT rpm_limit FROM models WHERE name = 'echo-1'"), "NULL");
  EXPECT_EQ(raw->value("SELECT tpm_limit FROM models WHERE name = 'echo-1'"), "NULL");

  // The same file again changes nothing.
  store_.apply_config(cfg);
  EXPECT_EQ(store_.config_version(), 1);

  // A change of the limits alone is a change: the version moves, so gateways reload.
  cfg.models[0].rpm_limit = 600;
  store_.apply_config(cfg);
  EXPECT_EQ(store_.config_version(), 2);
  cfg.models[1].tpm_limit.reset();  // a limit removed
  cfg.models[2].rpm_limit = 1;      // a limit added
  store_.apply_config(cfg);
  EXPECT_EQ(store_.config_version(), 3);
  catalog = store_.load_catalog();
  EXPECT_EQ(catalog.models[0].config, cfg.models[2]);
  EXPECT_EQ(catalog.models[1].config, cfg.models[0]);
  EXPECT_EQ(catalog.models[2].config, cfg.models[1]);
  EXPECT_EQ(raw->value("SELECT version FROM models WHERE name = 'gpt-4o'"), "2");
  EXPECT_EQ(raw->value("SELECT version FROM models WHERE name = 'gpt-4o-mini'"), "3");
  EXPECT_EQ(raw->value("SELECT version FROM models WHERE name = 'echo-1'"), "3");
  EXPECT_EQ(raw->value("SELECT tpm_limit FROM models WHERE name = 'gpt-4o-mini'"), "NULL");

  // A restart with the same file: nothing changes.
  auto restarted = db_->open();
  restarted->migrate();
  restarted->apply_config(cfg);
  EXPECT_EQ(restarted->config_version(), 3);
}

TEST_P(StoreTest, ApplyConfigDeletesRowsTheFileNoLongerNames) {
  store_.apply_config(sample_config());
  core::GatewayConfig cfg;
  cfg.providers = {sample_config().providers[0]};
  cfg.models = {{"gpt-4o", "openai", "gpt-4o-2024-08-06", ""}};
  cfg.aliases = {{"smart", "gpt-4o"}};
  store_.apply_config(cfg);
  EXPECT_EQ(store_.config_version(), 2);

  const CatalogData catalog = store_.load_catalog();
  ASSERT_EQ(catalog.providers.size(), 1u);
  EXPECT_EQ(catalog.providers[0].config.name, "openai");
  EXPECT_THAT(model_names(catalog), ElementsAre("gpt-4o"));
  ASSERT_EQ(catalog.aliases.size(), 1u);
  EXPECT_EQ(catalog.aliases[0].config.alias, "smart");

  store_.apply_config(core::GatewayConfig{});
  EXPECT_EQ(store_.config_version(), 3);
  const CatalogData empty = store_.load_catalog();
  EXPECT_TRUE(empty.providers.empty());
  EXPECT_TRUE(empty.models.empty());
  EXPECT_TRUE(empty.aliases.empty());
}

/// Rows as the admin API writes them, written raw (with a credential in clear).
void insert_admin_rows(RawSql& raw) {
  raw.exec(
      "INSERT INTO providers (id, name, type, settings, secrets, source, created_at,"
      " updated_at, version)"
      " VALUES ('prov_admin', 'admin-llm', 'openai_compatible', '{\"base_url\":"
      " \"http://127.0.0.1:9/v1\", \"connect_timeout_ms\": 100, \"first_byte_timeout_ms\":"
      " 200, \"idle_timeout_ms\": 300}', '{\"api_key\": \"sk-admin\"}', 'admin', 0, 0, 0);"
      "INSERT INTO models (id, name, provider_id, upstream_model, source, created_at,"
      " updated_at, version) VALUES ('model_admin', 'admin-model', 'prov_admin', 'm', 'admin',"
      " 0, 0, 0);"
      "INSERT INTO model_aliases (alias, model_id, source, created_at, updated_at, version)"
      " VALUES ('admin-alias', 'model_admin', 'admin', 0, 0, 0);");
}

TEST_P(StoreTest, ApplyConfigLeavesAdminRowsAlone) {
  auto raw = db_->raw();
  insert_admin_rows(*raw);
  store_.apply_config(sample_config());
  store_.apply_config(core::GatewayConfig{});  // deletes every config row

  const CatalogData catalog = store_.load_catalog();
  ASSERT_EQ(catalog.providers.size(), 1u);
  EXPECT_EQ(catalog.providers[0].config.name, "admin-llm");
  EXPECT_EQ(catalog.providers[0].source, "admin");
  EXPECT_EQ(catalog.providers[0].config.api_key, "sk-admin");
  EXPECT_EQ(catalog.providers[0].config.connect_timeout, std::chrono::milliseconds(100));
  EXPECT_THAT(model_names(catalog), ElementsAre("admin-model"));
  ASSERT_EQ(catalog.aliases.size(), 1u);
  EXPECT_EQ(catalog.aliases[0].config.model, "admin-model");
  EXPECT_EQ(raw->value("SELECT version FROM providers WHERE id = 'prov_admin'"), "0");
}

TEST_P(StoreTest, ApplyConfigMayPointAtAdminRows) {
  auto raw = db_->raw();
  insert_admin_rows(*raw);
  core::GatewayConfig cfg;
  cfg.models = {{"via-admin", "admin-llm", "x", ""}};
  cfg.aliases = {{"a2", "admin-model"}};
  store_.apply_config(cfg);
  const CatalogData catalog = store_.load_catalog();
  EXPECT_THAT(model_names(catalog), ElementsAre("admin-model", "via-admin"));
  EXPECT_EQ(catalog.aliases.size(), 2u);
}

TEST_P(StoreTest, ApplyConfigRefusesNameOfAdminRowAndRollsBack) {
  auto raw = db_->raw();
  insert_admin_rows(*raw);
  auto cfg = sample_config();
  cfg.models.push_back({"admin-model", "openai", "x", ""});
  try {
    store_.apply_config(cfg);
    FAIL() << "collision accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), HasSubstr("'admin-model'"));
    EXPECT_THAT(e.what(), HasSubstr("admin"));
  }
  EXPECT_EQ(store_.config_version(), 0);
  EXPECT_EQ(store_.load_catalog().providers.size(), 1u);  // only the admin one

  auto provider_clash = sample_config();
  provider_clash.providers[1].name = "admin-llm";
  provider_clash.models[2].provider = "admin-llm";
  EXPECT_THROW(store_.apply_config(provider_clash), std::runtime_error);
  auto alias_clash = sample_config();
  alias_clash.aliases[0].alias = "admin-alias";
  EXPECT_THROW(store_.apply_config(alias_clash), std::runtime_error);
  EXPECT_EQ(store_.config_version(), 0);
}

TEST_P(StoreTest, ApplyConfigRefusesToDropModelAnAdminAliasUses) {
  store_.apply_config(sample_config());
  auto raw = db_->raw();
  raw->exec(
      "INSERT INTO model_aliases (alias, model_id, source, created_at, updated_at, version)"
      " SELECT 'pinned', id, 'admin', 0, 0, 0 FROM models WHERE name = 'echo-1'");
  auto cfg = sample_config();
  cfg.models.pop_back();  // drops echo-1
  try {
    store_.apply_config(cfg);
    FAIL() << "dangling admin alias accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), HasSubstr("'echo-1'"));
    EXPECT_THAT(e.what(), HasSubstr("'pinned'"));
  }
  EXPECT_EQ(store_.config_version(), 1);
  EXPECT_EQ(store_.load_catalog().models.size(), 3u);
}

TEST_P(StoreTest, ApplyConfigRejectsUnknownReferences) {
  auto cfg = sample_config();
  cfg.models.push_back({"lost", "no-such-provider", "lost", ""});
  EXPECT_THROW(store_.apply_config(cfg), std::runtime_error);
  auto cfg2 = sample_config();
  cfg2.aliases.push_back({"lost", "no-such-model"});
  EXPECT_THROW(store_.apply_config(cfg2), std::runtime_error);
  EXPECT_EQ(store_.config_version(), 0);
  EXPECT_TRUE(store_.load_catalog().providers.empty());
}

TEST_P(StoreTest, ErrorMessagesNeverContainCredentials) {
  // The database refuses a row of the transaction that writes the provider's credential.
  auto cfg = sample_config();
  cfg.models[0].rpm_limit = -1;  // violates a CHECK
  try {
    store_.apply_config(cfg);
    FAIL() << "negative limit accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), HasSubstr(std::string(db_->check_violation())));
    EXPECT_THAT(e.what(), Not(HasSubstr("sk-secret-openai")));
  }
  // The provider type refuses its settings before any write.
  cfg = sample_config();
  cfg.providers[0].connect_timeout = std::chrono::milliseconds(0);
  try {
    store_.apply_config(cfg);
    FAIL() << "invalid timeout accepted";
  } catch (const InvalidSettingError& e) {
    EXPECT_EQ(e.field(), "connect_timeout_ms");
    EXPECT_THAT(e.what(), Not(HasSubstr("sk-secret-openai")));
  }
  EXPECT_TRUE(store_.list_providers().empty());
}

// --- prices

TEST_P(StoreTest, ImportPricesTwiceChangesNothingTheSecondTime) {
  const ImportResult first = store_.import_prices(sample_price_models(), sample_catalog_rows());
  EXPECT_THAT(first.added, ElementsAre("gpt-4o", "gpt-4o-mini"));
  EXPECT_TRUE(first.changed.empty());
  EXPECT_EQ(first.unchanged, 0u);
  EXPECT_EQ(store_.config_version(), 1);
  EXPECT_EQ(store_.count_price_models(), 2);

  const ImportResult second = store_.import_prices(sample_price_models(), sample_catalog_rows());
  EXPECT_TRUE(second.added.empty());
  EXPECT_TRUE(second.changed.empty());
  EXPECT_EQ(second.unchanged, 2u);
  EXPECT_EQ(store_.config_version(), 1);

  // A restart importing the same list again.
  auto restarted = db_->open();
  const ImportResult third = restarted->import_prices(sample_price_models(), sample_catalog_rows());
  EXPECT_TRUE(third.changed.empty());
  EXPECT_EQ(restarted->config_version(), 1);
  EXPECT_EQ(stored_prices(store_, "catalog").size(), sample_catalog_rows().size());
}

TEST_P(StoreTest, ImportUpdatesChangedPriceAndDeletesVanishedRowButKeepsOverrides) {
  store_.import_prices(sample_price_models(), sample_catalog_rows());  // version 1
  const std::vector<PriceComponentRecord> overrides{
      component("gpt-4o", "cache_read", "1", "override"),
      component("gpt-4o", "input", "2", "override")};
  store_.replace_price_overrides(overrides);  // 2

  auto rows = sample_catalog_rows();
  rows[0].price = "3";           // gpt-4o input
  rows.erase(rows.begin() + 2);  // gpt-4o cache_read vanishes from the catalog
  const ImportResult result = store_.import_prices(sample_price_models(), rows);
  EXPECT_TRUE(result.added.empty());
  EXPECT_THAT(result.changed, ElementsAre("gpt-4o"));
  EXPECT_EQ(result.unchanged, 1u);
  EXPECT_EQ(store_.config_version(), 3);

  EXPECT_THAT(stored_prices(store_, "catalog"),
              ElementsAre(component("gpt-4o", "input", "3"), component("gpt-4o", "output", "10"),
                          component("gpt-4o-mini", "input", "0.15"),
                          component("gpt-4o-mini", "output", "0.6")));
  EXPECT_EQ(stored_prices(store_, "override"), overrides);

  auto raw = db_->raw();
  EXPECT_EQ(raw->value("SELECT version FROM pricing_components WHERE model_name = 'gpt-4o'"
                       " AND direction = 'input' AND source = 'catalog'"),
            "3");
  EXPECT_EQ(raw->value("SELECT version FROM pricing_components WHERE model_name = 'gpt-4o'"
                       " AND direction = 'output'"),
            "1");
  EXPECT_EQ(raw->value("SELECT DISTINCT version FROM pricing_components"
                       " WHERE model_name = 'gpt-4o-mini'"),
            "1");
}

TEST_P(StoreTest, ImportCountsAModelChangedWhenOnlyItsDescriptionChanges) {
  store_.import_prices(sample_price_models(), sample_catalog_rows());
  auto models = sample_price_models();
  models[1].max_output_tokens = 16'384;
  const ImportResult result = store_.import_prices(models, sample_catalog_rows());
  EXPECT_THAT(result.changed, ElementsAre("gpt-4o-mini"));
  EXPECT_EQ(result.unchanged, 1u);
  EXPECT_EQ(store_.config_version(), 2);
  EXPECT_EQ(store_.load_catalog().price_models, models);
}

TEST_P(StoreTest, OverridesSurviveAReimport) {
  store_.import_prices(sample_price_models(), sample_catalog_rows());
  // One override of a catalog price, one of a model the catalog does not know.
  const std::vector<PriceComponentRecord> overrides{
      component("gpt-4o", "input", "2", "override"),
      component("my-finetune", "output", "7.5", "override")};
  store_.replace_price_overrides(overrides);

  auto rows = sample_catalog_rows();
  rows[0].price = "2.75";
  store_.import_prices(sample_price_models(), rows);
  EXPECT_EQ(stored_prices(store_, "override"), overrides);

  // The catalog learns the model later: its rows join the override, which still wins.
  const ImportResult result =
      store_.import_prices({{"my-finetune", "openai", "chat", std::nullopt, std::nullopt}},
                           {component("my-finetune", "output", "8")});
  EXPECT_THAT(result.added, ElementsAre("my-finetune"));
  EXPECT_EQ(stored_prices(store_, "override"), overrides);
  EXPECT_THAT(stored_prices(store_, "catalog"), Contains(component("my-finetune", "output", "8")));
  EXPECT_THAT(stored_prices(store_, "catalog"), Contains(component("gpt-4o", "input", "2.75")));
}

TEST_P(StoreTest, ImportLeavesModelsItDoesNotNameAlone) {
  store_.import_prices(sample_price_models(), sample_catalog_rows());
  // An import filtered to one provider.
  const ImportResult result = store_.import_prices(
      {{"claude-sonnet-4", "anthropic", "chat", 200'000, 64'000}},
      {component("claude-sonnet-4", "input", "3"), component("claude-sonnet-4", "output", "15")});
  EXPECT_THAT(result.added, ElementsAre("claude-sonnet-4"));
  EXPECT_EQ(store_.count_price_models(), 3);
  EXPECT_EQ(stored_prices(store_, "catalog").size(), sample_catalog_rows().size() + 2);
}

TEST_P(StoreTest, ImportStoresPricesInCanonicalDecimal) {
  std::vector<PriceComponentRecord> rows{component("gpt-4o-mini", "input", "1.5e-07"),
                                         component("gpt-4o-mini", "output", "0.600")};
  rows[0].unit = "token";
  store_.import_prices({sample_price_models()[1]}, rows);
  auto stored = stored_prices(store_, "catalog");
  ASSERT_EQ(stored.size(), 2u);
  EXPECT_EQ(stored[0].price, "0.00000015");
  EXPECT_EQ(stored[1].price, "0.6");

  // The same amounts spelled differently are no change.
  rows[0].price = "0.000000150";
  rows[1].price = "6e-1";
  const ImportResult again = store_.import_prices({sample_price_models()[1]}, rows);
  EXPECT_TRUE(again.changed.empty());
  EXPECT_EQ(store_.config_version(), 1);
}

TEST_P(StoreTest, ImportRejectsInvalidInputAndChangesNothing) {
  const auto models = sample_price_models();
  const auto with = [](PriceComponentRecord extra) {
    auto rows = sample_catalog_rows();
    rows.push_back(std::move(extra));
    return rows;
  };
  EXPECT_THROW(store_.import_prices(models, with(component("gpt-4o", "reasoning", "abc"))),
               std::runtime_error);
  EXPECT_THROW(store_.import_prices(models, with(component("gpt-4o", "reasoning", "-1"))),
               std::runtime_error);
  EXPECT_THROW(store_.import_prices(models, with(component("unlisted", "input", "1"))),
               std::runtime_error);
  EXPECT_THROW(store_.import_prices(models, with(component("gpt-4o", "input", "2.6"))),
               std::runtime_error);
  EXPECT_THROW(store_.import_prices(models, with(component("gpt-4o", "tool", "1", "override"))),
               std::runtime_error);
  auto twice = models;
  twice.push_back(models[0]);
  EXPECT_THROW(store_.import_prices(twice, sample_catalog_rows()), std::runtime_error);
  EXPECT_EQ(store_.config_version(), 0);
  EXPECT_EQ(store_.count_price_models(), 0);
  EXPECT_TRUE(store_.load_catalog().prices.empty());
}

TEST_P(StoreTest, ReplacePriceOverridesMakesTheOverrideSetExactlyTheRowsGiven) {
  store_.import_prices(sample_price_models(), sample_catalog_rows());  // version 1
  const auto a = component("gpt-4o", "input", "2", "override");
  const auto b = component("my-model", "output", "5", "override");
  store_.replace_price_overrides({b, a});
  EXPECT_EQ(store_.config_version(), 2);
  EXPECT_THAT(stored_prices(store_, "override"), ElementsAre(a, b));

  store_.replace_price_overrides({a, b});  // same set: no change
  EXPECT_EQ(store_.config_version(), 2);

  auto a2 = a;
  a2.price = "2.2";
  auto c = component("gpt-4o-mini", "input", "0.1", "");  // an empty source means override
  store_.replace_price_overrides({a2, c});
  EXPECT_EQ(store_.config_version(), 3);
  c.source = "override";
  EXPECT_THAT(stored_prices(store_, "override"), ElementsAre(a2, c));
  EXPECT_THAT(stored_prices(store_, "catalog"), UnorderedElementsAreArray(sample_catalog_rows()));

  store_.replace_price_overrides({});
  EXPECT_EQ(store_.config_version(), 4);
  EXPECT_TRUE(stored_prices(store_, "override").empty());
  EXPECT_THAT(stored_prices(store_, "catalog"), UnorderedElementsAreArray(sample_catalog_rows()));
  store_.replace_price_overrides({});
  EXPECT_EQ(store_.config_version(), 4);

  EXPECT_THROW(store_.replace_price_overrides({a, a}), std::runtime_error);
  EXPECT_THROW(store_.replace_price_overrides({component("gpt-4o", "input", "x", "override")}),
               std::runtime_error);
  EXPECT_THROW(store_.replace_price_overrides({component("gpt-4o", "input", "1", "catalog")}),
               std::runtime_error);
  EXPECT_EQ(store_.config_version(), 4);
}

TEST_P(StoreTest, LoadCatalogReturnsPriceModelsAndEveryPrice) {
  store_.apply_config(sample_config());                                // version 1
  store_.import_prices(sample_price_models(), sample_catalog_rows());  // 2
  const auto override_row = component("gpt-4o", "input", "2", "override");
  store_.replace_price_overrides({override_row});  // 3

  const CatalogData catalog = store_.load_catalog();
  EXPECT_EQ(catalog.version, 3);
  EXPECT_EQ(catalog.price_models, sample_price_models());
  const auto rows = sample_catalog_rows();
  // Ordered by model, direction, modality, unit, tier, source.
  EXPECT_THAT(catalog.prices,
              ElementsAre(rows[2], rows[0], override_row, rows[1], rows[3], rows[4]));
  EXPECT_EQ(catalog.models[1].config.pricing_model, "gpt-4o");
  EXPECT_EQ(catalog.models[2].config.pricing_model, "");
}

// --- usage

TEST_P(StoreTest, InsertsAndCountsTenThousandUsageRowsInOneBatch) {
  constexpr int kRows = 10'000;
  std::vector<UsageRecord> batch;
  batch.reserve(kRows);
  for (int i = 0; i < kRows; ++i) {
    batch.push_back(make_usage(i, 1'700'000'000'000'000 + i));
  }
  store_.insert_usage(batch);
  EXPECT_EQ(store_.count_usage(), kRows);
  store_.insert_usage({});
  EXPECT_EQ(store_.count_usage(), kRows);

  std::int64_t requests = 0;
  std::int64_t unpriced = 0;
  for (int k = 0; k < 7; ++k) {
    for (const auto& row : all_spend(store_, "key_" + std::to_string(k))) {
      EXPECT_EQ(row.day, "2023-11-14");
      requests += row.requests;
      unpriced += row.unpriced_requests;
    }
  }
  EXPECT_EQ(requests, kRows);
  EXPECT_EQ(unpriced, kRows / 10);
}

TEST_P(StoreTest, RecentUsageIsNewestFirstAndRoundTripsEveryField) {
  const std::vector<UsageRecord> batch{make_usage(1, 300), make_usage(2, 100), make_usage(3, 500),
                                       make_usage(4, 200)};
  store_.insert_usage(batch);
  EXPECT_THAT(store_.recent_usage(10), ElementsAre(batch[2], batch[0], batch[3], batch[1]));
  EXPECT_THAT(store_.recent_usage(2), ElementsAre(batch[2], batch[0]));
  EXPECT_TRUE(store_.recent_usage(0).empty());
}

TEST_P(StoreTest, ConcurrentInsertUsageFromFourThreads) {
  constexpr int kThreads = 4;
  constexpr int kBatches = 25;
  constexpr int kBatchSize = 100;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([this, t] {
      for (int b = 0; b < kBatches; ++b) {
        std::vector<UsageRecord> batch;
        for (int i = 0; i < kBatchSize; ++i) {
          const int n = (t * kBatches + b) * kBatchSize + i;
          batch.push_back(make_usage(n, n));
        }
        store_.insert_usage(batch);
        store_.count_usage();  // readers interleave with writers
      }
    });
  }
  for (auto& thread : threads) {
    thread.join();
  }
  EXPECT_EQ(store_.count_usage(), kThreads * kBatches * kBatchSize);
  std::int64_t requests = 0;
  for (int k = 0; k < 7; ++k) {
    for (const auto& row : all_spend(store_, "key_" + std::to_string(k))) {
      requests += row.requests;
    }
  }
  EXPECT_EQ(requests, kThreads * kBatches * kBatchSize);
}

// --- spend

TEST_P(StoreTest, TenThousandEqualCostsAddUpExactly) {
  // In binary floating point 0.000075 has no exact value; 10,000 of them must be 0.75.
  constexpr int kRows = 10'000;
  constexpr int kSmallBatch = 100;
  std::vector<UsageRecord> batch;
  for (int i = 0; i < kRows / 2; ++i) {
    batch.push_back(priced_usage(i, "key_a", "gpt-4o-mini", "0.000075", kMidnightUs + i));
  }
  store_.insert_usage(batch);  // half in one batch
  for (int i = kRows / 2; i < kRows; i += kSmallBatch) {
    batch.clear();
    for (int j = i; j < i + kSmallBatch; ++j) {
      batch.push_back(priced_usage(j, "key_a", "gpt-4o-mini", "0.000075", kMidnightUs + j));
    }
    store_.insert_usage(batch);  // the other half added to the stored row 50 times
  }
  const auto rows = all_spend(store_, "key_a");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].cost_usd, "0.75");
  EXPECT_EQ(rows[0].requests, kRows);
  EXPECT_EQ(rows[0].unpriced_requests, 0);
  std::int64_t prompt = 0;
  std::int64_t completion = 0;
  for (int i = 0; i < kRows; ++i) {
    prompt += i;
    completion += 2 * i;
  }
  EXPECT_EQ(rows[0].prompt_tokens, prompt);
  EXPECT_EQ(rows[0].completion_tokens, completion);
}

TEST_P(StoreTest, UsageWithUnknownCostIsCountedAsUnpriced) {
  const std::vector<UsageRecord> batch{
      priced_usage(1, "key_a", "m", "0.5", kMidnightUs),
      priced_usage(2, "key_a", "m", "", kMidnightUs + 1),
      priced_usage(3, "key_a", "m", "2.5e-1", kMidnightUs + 2),  // stored as plain decimal
      priced_usage(4, "key_a", "m", "0.1.2", kMidnightUs + 3),   // not money: unknown
  };
  store_.insert_usage(batch);
  const auto rows = all_spend(store_, "key_a");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].cost_usd, "0.75");
  EXPECT_EQ(rows[0].requests, 4);
  EXPECT_EQ(rows[0].unpriced_requests, 2);

  auto raw = db_->raw();
  EXPECT_EQ(raw->column("SELECT cost_usd FROM usage_records ORDER BY id"),
            (std::vector<std::string>{"0.5", "NULL", "0.25", "NULL"}));
  const auto recent = store_.recent_usage(4);
  EXPECT_EQ(recent[2], batch[1]);  // an empty cost round-trips as empty
}

// A record may be delivered twice (a spool replayed after a crash, a Redis usage-queue batch
// written again after its worker's lease ended): one row per request id, its spend once.
TEST_P(StoreTest, ARepeatedDeliveryIsStoredOnceAndCountedOnce) {
  store_.insert_usage(std::vector{priced_usage(1, "key_a", "m", "0.5", kMidnightUs),
                                  priced_usage(2, "key_a", "m", "0.25", kMidnightUs + 1)});
  // Again, with a new record between them and a repeat inside the same batch.
  store_.insert_usage(std::vector{priced_usage(2, "key_a", "m", "0.25", kMidnightUs + 1),
                                  priced_usage(3, "key_a", "m", "0.125", kMidnightUs + 2),
                                  priced_usage(3, "key_a", "m", "0.125", kMidnightUs + 2),
                                  priced_usage(1, "key_a", "m", "0.5", kMidnightUs)});
  store_.insert_usage_marked(std::vector{priced_usage(1, "key_a", "m", "0.5", kMidnightUs)},
                             std::vector<SpoolMark>{{"usage-0.spool", 9}});
  EXPECT_EQ(store_.count_usage(), 3);
  EXPECT_EQ(store_.spool_mark("usage-0.spool"), 9u);  // the mark moves even when all repeat
  const auto rows = all_spend(store_, "key_a");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].cost_usd, "0.875");
  EXPECT_EQ(rows[0].requests, 3);
  store_.rebuild_spend();
  EXPECT_EQ(all_spend(store_, "key_a")[0].cost_usd, "0.875");
}

// A value the schema refuses is RefusedError (the usage-queue worker sets such a record aside
// instead of retrying it forever); nothing of the batch is stored.
TEST_P(StoreTest, ARecordTheSchemaRefusesIsARefusalAndChangesNothing) {
  UsageRecord bad = priced_usage(2, "key_a", "m", "0.25", kMidnightUs);
  bad.cost_status = "bogus";
  EXPECT_THROW(store_.insert_usage(std::vector{priced_usage(1, "key_a", "m", "0.5", kMidnightUs), bad}),
               RefusedError);
  EXPECT_EQ(store_.count_usage(), 0);
  EXPECT_TRUE(all_spend(store_, "key_a").empty());
}

TEST_P(StoreTest, SpendRowsSplitAtUtcMidnight) {
  store_.insert_usage(std::vector{
      priced_usage(1, "key_a", "gpt-4o", "1", kMidnightUs - 1),
      priced_usage(2, "key_a", "gpt-4o", "2", kMidnightUs),
      priced_usage(3, "key_a", "claude", "4", kMidnightUs + 1),
      priced_usage(4, "key_b", "gpt-4o", "8", kMidnightUs),
  });
  const auto rows = all_spend(store_, "key_a");
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].day, "2025-11-26");
  EXPECT_EQ(rows[0].model, "gpt-4o");
  EXPECT_EQ(rows[0].cost_usd, "1");
  EXPECT_EQ(rows[1].day, "2025-11-27");
  EXPECT_EQ(rows[1].model, "claude");  // ordered by day, then model
  EXPECT_EQ(rows[2].day, "2025-11-27");
  EXPECT_EQ(rows[2].model, "gpt-4o");
  EXPECT_EQ(rows[2].cost_usd, "2");
  EXPECT_EQ(rows[2].key_id, "key_a");

  EXPECT_EQ(store_.spend("key_a", "2025-11-26", "2025-11-26").size(), 1u);
  EXPECT_EQ(store_.spend("key_a", "2025-11-27", "2025-11-30").size(), 2u);
  EXPECT_TRUE(store_.spend("key_a", "2025-11-28", "2025-11-30").empty());
  EXPECT_TRUE(store_.spend("key_c", "0000-01-01", "9999-12-31").empty());
}

TEST_P(StoreTest, RebuildSpendReproducesTheSameRows) {
  for (int b = 0; b < 5; ++b) {
    std::vector<UsageRecord> batch;
    for (int i = 0; i < 200; ++i) {
      const int n = b * 200 + i;
      // Spread over three days, seven keys and two models.
      UsageRecord r = make_usage(n, kMidnightUs + (n % 3 - 1) * 86'400'000'000LL + n);
      r.model = n % 2 == 0 ? "gpt-4o" : "gpt-4o-mini";
      batch.push_back(r);
    }
    store_.insert_usage(batch);
  }
  std::vector<std::vector<SpendRow>> before;
  for (int k = 0; k < 7; ++k) {
    before.push_back(all_spend(store_, "key_" + std::to_string(k)));
    EXPECT_EQ(before.back().size(), 6u);
  }

  auto raw = db_->raw();
  raw->exec(
      "UPDATE spend_daily SET cost_usd = '999', requests = 1 WHERE key_id = 'key_1';"
      "DELETE FROM spend_daily WHERE key_id = 'key_2';"
      "INSERT INTO spend_daily VALUES ('key_gone', '2025-01-01', 'm', '1', 1, 0, 0, 0, 0)");
  store_.rebuild_spend();
  for (int k = 0; k < 7; ++k) {
    EXPECT_EQ(all_spend(store_, "key_" + std::to_string(k)), before[k]) << "key_" << k;
  }
  EXPECT_TRUE(all_spend(store_, "key_gone").empty());
  EXPECT_EQ(raw->value("SELECT COUNT(*) FROM spend_daily"), "42");

  // A cost a manual edit made unreadable stops the rebuild, which then changes nothing.
  raw->exec("UPDATE usage_records SET cost_usd = '0." + std::string(30, '1') + "' WHERE id = 2");
  EXPECT_THROW(store_.rebuild_spend(), std::runtime_error);
  EXPECT_EQ(all_spend(store_, "key_1"), before[1]);
}

TEST_P(StoreTest, BudgetEventIsRecordedOncePerKeyPeriodAndKind) {
  store_.insert_budget_event({"key_a", "2026-11", "soft_threshold", "8.01", "10", 300});
  store_.insert_budget_event({"key_a", "2026-11", "soft_threshold", "9.50", "10", 400});
  store_.insert_budget_event({"key_a", "2026-10", "soft_threshold", "8", "10", 100});
  store_.insert_budget_event({"key_b", "2026-11", "soft_threshold", "80", "100", 200});
  EXPECT_THROW(store_.insert_budget_event({"key_a", "2026-12", "panic", "1", "1", 500}),
               std::runtime_error);

  const auto events = store_.budget_events("key_a");
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].period, "2026-10");
  EXPECT_EQ(events[0].at_us, 100);
  EXPECT_EQ(events[1].key_id, "key_a");
  EXPECT_EQ(events[1].period, "2026-11");
  EXPECT_EQ(events[1].kind, "soft_threshold");
  EXPECT_EQ(events[1].spent_usd, "8.01");  // the first record stays
  EXPECT_EQ(events[1].budget_usd, "10");
  EXPECT_EQ(events[1].at_us, 300);
  EXPECT_EQ(store_.budget_events("key_b").size(), 1u);
  EXPECT_TRUE(store_.budget_events("key_c").empty());
}

}  // namespace
}  // namespace llmgw::store

namespace llmgw::store {
namespace {

TEST_P(StoreTest, TheFirstSecretCheckClaimedStaysUntilReplaced) {
  EXPECT_EQ(store_.secret_check("master_key"), std::nullopt);
  EXPECT_EQ(store_.claim_secret_check("master_key", "v1:first"), "v1:first");
  EXPECT_EQ(store_.claim_secret_check("master_key", "v1:second"), "v1:first");
  EXPECT_EQ(store_.secret_check("master_key"), "v1:first");
  EXPECT_EQ(store_.claim_secret_check("admin_jwt_secret", "v1:jwt"), "v1:jwt");
  store_.set_secret_check("master_key", "v1:rotated");
  EXPECT_EQ(store_.secret_check("master_key"), "v1:rotated");
  EXPECT_EQ(store_.secret_check("admin_jwt_secret"), "v1:jwt");
}

}  // namespace
}  // namespace llmgw::store

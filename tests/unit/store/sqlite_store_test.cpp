#include "store/sqlite/sqlite_store.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "store/sqlite/migrations.hpp"

namespace llmgw::store {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::UnorderedElementsAre;

/// A fresh directory under /tmp, removed with everything in it at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string pattern = "/tmp/llmgw_store_test_XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) {
      throw std::runtime_error("mkdtemp failed");
    }
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  [[nodiscard]] std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

/// A raw connection for looking under the store (and for writing what only later code
/// writes, such as admin-created rows).
class RawDb {
 public:
  explicit RawDb(const std::string& path) {
    if (sqlite3_open(path.c_str(), &db_) != SQLITE_OK) {
      throw std::runtime_error("open failed");
    }
    sqlite3_busy_timeout(db_, 5'000);
  }
  ~RawDb() { sqlite3_close(db_); }
  RawDb(const RawDb&) = delete;
  RawDb& operator=(const RawDb&) = delete;

  void exec(const std::string& sql) {
    char* error = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error) != SQLITE_OK) {
      std::string message = error != nullptr ? error : "?";
      sqlite3_free(error);
      throw std::runtime_error(message);
    }
  }

  /// The first column of every row, as text.
  std::vector<std::string> column(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) {
      throw std::runtime_error(sqlite3_errmsg(db_));
    }
    std::vector<std::string> out;
    while (sqlite3_step(stmt) == SQLITE_ROW) {
      const auto* text = sqlite3_column_text(stmt, 0);
      out.emplace_back(text != nullptr ? reinterpret_cast<const char*>(text) : "NULL");
    }
    sqlite3_finalize(stmt);
    return out;
  }

  std::string value(const std::string& sql) {
    auto rows = column(sql);
    return rows.empty() ? std::string() : rows.front();
  }

 private:
  sqlite3* db_ = nullptr;
};

/// Each test gets its own directory and a migrated store in it.
class SqliteStoreTest : public ::testing::Test {
 protected:
  SqliteStoreTest() : path_(dir_.file("data/llmgw.db")), store_(path_) { store_.migrate(); }

  TempDir dir_;
  std::string path_;
  SqliteStore store_;
};

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
  cfg.models = {{"gpt-4o", "openai", "gpt-4o-2024-08-06"},
                {"gpt-4o-mini", "openai", "gpt-4o-mini"},
                {"echo-1", "echo", "echo-1"}};
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

// --- schema

TEST(SqliteStore, SchemaVersionIsZeroOnAnEmptyFile) {
  TempDir dir;
  SqliteStore store(dir.file("empty.db"));
  EXPECT_EQ(store.schema_version(), 0);
}

TEST(SqliteStore, CreatesParentDirectoryAndUsesWal) {
  TempDir dir;
  const std::string path = dir.file("a/b/llmgw.db");
  SqliteStore store(path);
  EXPECT_EQ(store.path(), path);
  EXPECT_TRUE(std::filesystem::exists(path));
  RawDb raw(path);
  EXPECT_EQ(raw.value("PRAGMA journal_mode"), "wal");
}

TEST(SqliteStore, MigrateIsIdempotent) {
  TempDir dir;
  SqliteStore store(dir.file("llmgw.db"));
  const int latest = sqlite::latest_migration_version();
  EXPECT_EQ(store.migrate(), latest);
  EXPECT_EQ(store.migrate(), latest);
  EXPECT_EQ(store.schema_version(), latest);

  SqliteStore other(dir.file("llmgw.db"));
  EXPECT_EQ(other.migrate(), latest);
  RawDb raw(dir.file("llmgw.db"));
  EXPECT_EQ(raw.value("SELECT COUNT(*) FROM schema_migrations"),
            std::to_string(sqlite::migrations().size()));
  EXPECT_EQ(raw.value("SELECT name FROM schema_migrations WHERE version = 1"), "initial_schema");
}

TEST(SqliteStore, MigrationsHaveIncreasingVersionsFromOne) {
  int expected = 1;
  for (const auto& m : sqlite::migrations()) {
    EXPECT_EQ(m.version, expected++);
    EXPECT_FALSE(m.name.empty());
  }
}

TEST_F(SqliteStoreTest, MigrateCreatesEveryTableOfTheDataModel) {
  RawDb raw(path_);
  EXPECT_THAT(raw.column("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"),
              UnorderedElementsAre("admin_tokens", "admin_users", "api_keys", "config_version",
                                   "key_metadata", "model_aliases", "models", "monthly_spend",
                                   "pricing_components", "providers", "schema_migrations",
                                   "usage_records"));
  EXPECT_EQ(raw.value("PRAGMA foreign_key_check"), "");
  EXPECT_EQ(raw.value("PRAGMA integrity_check"), "ok");
  EXPECT_EQ(store_.config_version(), 0);
}

TEST_F(SqliteStoreTest, SchemaRejectsValuesOutsideItsEnumerations) {
  RawDb raw(path_);
  EXPECT_THROW(raw.exec("INSERT INTO admin_users VALUES ('u1', 'a@b.c', 'h', 'root', 1, 0, 0)"),
               std::runtime_error);
  EXPECT_THROW(raw.exec("INSERT INTO api_keys (id, key_hash, prefix, budget_usd, created_at,"
                        " updated_at, version) VALUES ('k', 'h', 'p', '1e3', 0, 0, 0)"),
               std::runtime_error);
  EXPECT_NO_THROW(
      raw.exec("INSERT INTO api_keys (id, key_hash, prefix, budget_usd, created_at,"
               " updated_at, version) VALUES ('k', 'h', 'p', '25.00', 0, 0, 0)"));
  EXPECT_EQ(raw.value("SELECT budget_period FROM api_keys WHERE id = 'k'"), "monthly");
}

TEST(SqliteStore, RefusesDatabaseFromNewerBuild) {
  TempDir dir;
  const std::string path = dir.file("llmgw.db");
  {
    SqliteStore store(path);
    store.migrate();
  }
  const int future = sqlite::latest_migration_version() + 1;
  {
    RawDb raw(path);
    raw.exec("INSERT INTO schema_migrations VALUES (" + std::to_string(future) +
             ", 'from_the_future', 0)");
  }
  SqliteStore store(path);
  EXPECT_EQ(store.schema_version(), future);
  try {
    store.migrate();
    FAIL() << "migrate() accepted a newer schema";
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), HasSubstr("newer"));
    EXPECT_THAT(e.what(), HasSubstr(std::to_string(future)));
  }
}

// --- keys

TEST_F(SqliteStoreTest, InsertedKeyIsFoundByIdAndHash) {
  ApiKeyRecord key = make_key(1);
  key.enabled = true;
  key.expires_at = 1'900'000'000;
  key.rpm_limit = 60;
  key.budget_usd = "25.00";
  key.allowed_models = {"gpt-4o", "fast", "quote\"d"};
  store_.insert_key(key);

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

TEST_F(SqliteStoreTest, OptionalKeyFieldsRoundTripAsAbsent) {
  ApiKeyRecord key = make_key(2);
  key.name.clear();
  store_.insert_key(key);
  const auto found = store_.find_key_by_id(key.id);
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(*found, key);
  EXPECT_FALSE(found->expires_at.has_value());
  EXPECT_FALSE(found->budget_usd.has_value());
  EXPECT_TRUE(found->allowed_models.empty());
}

TEST_F(SqliteStoreTest, ListKeysReturnsEveryKey) {
  std::vector<ApiKeyRecord> keys;
  for (int i = 0; i < 3; ++i) {
    keys.push_back(make_key(i));
    store_.insert_key(keys.back());
  }
  EXPECT_THAT(store_.list_keys(), ElementsAre(keys[0], keys[1], keys[2]));
  EXPECT_EQ(store_.config_version(), 3);
}

TEST_F(SqliteStoreTest, DuplicateHashOrIdThrowsAndChangesNothing) {
  ApiKeyRecord first = make_key(1);
  store_.insert_key(first);

  ApiKeyRecord same_hash = make_key(2);
  same_hash.key_hash = first.key_hash;
  try {
    store_.insert_key(same_hash);
    FAIL() << "duplicate hash accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), HasSubstr("already exists"));
    EXPECT_THAT(e.what(), Not(HasSubstr(first.key_hash)));
  }
  ApiKeyRecord same_id = make_key(3);
  same_id.id = first.id;
  EXPECT_THROW(store_.insert_key(same_id), std::runtime_error);

  EXPECT_EQ(same_hash.version, 0);  // untouched on failure
  EXPECT_EQ(store_.config_version(), 1);
  EXPECT_EQ(store_.list_keys().size(), 1u);
}

TEST_F(SqliteStoreTest, SetKeyEnabledBumpsVersionAndReportsUnknownKeys) {
  ApiKeyRecord key = make_key(1);
  store_.insert_key(key);

  EXPECT_TRUE(store_.set_key_enabled(key.id, false));
  auto found = store_.find_key_by_id(key.id);
  ASSERT_TRUE(found.has_value());
  EXPECT_FALSE(found->enabled);
  EXPECT_EQ(found->version, 2);
  EXPECT_GE(found->updated_at, key.updated_at);
  EXPECT_EQ(store_.config_version(), 2);

  EXPECT_FALSE(store_.set_key_enabled("key_missing", true));
  EXPECT_EQ(store_.config_version(), 2);

  EXPECT_TRUE(store_.set_key_enabled(key.id, true));
  EXPECT_TRUE(store_.find_key_by_id(key.id)->enabled);
  EXPECT_EQ(store_.config_version(), 3);
}

TEST_F(SqliteStoreTest, KeyHashesChangedSinceListsOnlyNewerChanges) {
  ApiKeyRecord a = make_key(1);
  ApiKeyRecord b = make_key(2);
  ApiKeyRecord c = make_key(3);
  store_.insert_key(a);  // version 1
  store_.insert_key(b);  // 2
  store_.insert_key(c);  // 3
  EXPECT_THAT(store_.key_hashes_changed_since(0), ElementsAre(a.key_hash, b.key_hash, c.key_hash));
  EXPECT_THAT(store_.key_hashes_changed_since(2), ElementsAre(c.key_hash));
  EXPECT_TRUE(store_.key_hashes_changed_since(3).empty());

  store_.set_key_enabled(a.id, false);  // 4
  EXPECT_THAT(store_.key_hashes_changed_since(3), ElementsAre(a.key_hash));
}

TEST_F(SqliteStoreTest, SecondStoreOnTheSameFileSeesChangesAndVersionMoves) {
  // `cli` stands for the CLI writing the file the server has open (a second connection).
  SqliteStore cli(path_);
  EXPECT_EQ(cli.migrate(), sqlite::latest_migration_version());
  const std::int64_t before = store_.config_version();
  EXPECT_FALSE(store_.find_key_by_hash("hash7").has_value());

  ApiKeyRecord key = make_key(7);
  cli.insert_key(key);
  EXPECT_GT(store_.config_version(), before);
  EXPECT_EQ(store_.find_key_by_hash("hash7"), key);
  EXPECT_THAT(store_.key_hashes_changed_since(before), ElementsAre(key.key_hash));

  ASSERT_TRUE(cli.set_key_enabled(key.id, false));
  EXPECT_EQ(store_.config_version(), cli.config_version());
  EXPECT_FALSE(store_.find_key_by_hash("hash7")->enabled);

  // And the other way round, for the catalog.
  store_.apply_config(sample_config());
  EXPECT_EQ(cli.load_catalog().version, store_.config_version());
  EXPECT_EQ(cli.load_catalog().models.size(), 3u);
}

TEST_F(SqliteStoreTest, ChangesMadeByAnotherProcessAreSeen) {
  const std::int64_t before = store_.config_version();
  ASSERT_FALSE(store_.find_key_by_hash("hash9").has_value());  // warms the statement cache
  const pid_t child = fork();
  ASSERT_NE(child, -1);
  if (child == 0) {
    // A real second process, as the CLI is: its own connection and its own file locks.
    // _exit: the child must not run the parent's destructors or GoogleTest's teardown.
    try {
      SqliteStore cli(path_);
      ApiKeyRecord key = make_key(9);
      cli.insert_key(key);
      _exit(cli.set_key_enabled(key.id, false) ? 0 : 1);
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

TEST_F(SqliteStoreTest, ApplyConfigInsertsProvidersModelsAndAliases) {
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

  RawDb raw(path_);
  EXPECT_EQ(raw.value("SELECT COUNT(*) FROM providers WHERE version = 1"), "2");
  EXPECT_EQ(raw.value("SELECT COUNT(*) FROM models WHERE version = 1"), "3");
}

TEST_F(SqliteStoreTest, ApplyConfigIsIdempotentAndKeepsVersion) {
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
  SqliteStore restarted(path_);
  restarted.migrate();
  restarted.apply_config(sample_config());
  EXPECT_EQ(restarted.config_version(), 1);
}

TEST_F(SqliteStoreTest, ApplyConfigUpdatesChangedRowsAndStampsThem) {
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

  RawDb raw(path_);
  EXPECT_EQ(raw.value("SELECT version FROM providers WHERE name = 'openai'"), "2");
  EXPECT_EQ(raw.value("SELECT version FROM providers WHERE name = 'echo'"), "1");
  EXPECT_EQ(raw.value("SELECT version FROM models WHERE name = 'gpt-4o-mini'"), "1");
  EXPECT_EQ(raw.value("SELECT version FROM models WHERE name = 'echo-1'"), "2");
  EXPECT_EQ(raw.value("SELECT version FROM model_aliases WHERE alias = 'fast'"), "2");
  EXPECT_EQ(raw.value("SELECT version FROM model_aliases WHERE alias = 'smart'"), "1");
}

TEST_F(SqliteStoreTest, ApplyConfigDeletesRowsTheFileNoLongerNames) {
  store_.apply_config(sample_config());
  core::GatewayConfig cfg;
  cfg.providers = {sample_config().providers[0]};
  cfg.models = {{"gpt-4o", "openai", "gpt-4o-2024-08-06"}};
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

/// Rows as the admin API will write them (that code does not exist yet).
void insert_admin_rows(RawDb& raw) {
  raw.exec(
      "INSERT INTO providers (id, name, type, base_url, credentials, connect_timeout_ms,"
      " first_byte_timeout_ms, idle_timeout_ms, source, created_at, updated_at, version)"
      " VALUES ('prov_admin', 'admin-llm', 'openai_compatible', 'http://127.0.0.1:9/v1',"
      " 'sk-admin', 100, 200, 300, 'admin', 0, 0, 0);"
      "INSERT INTO models (id, name, provider_id, upstream_model, source, created_at,"
      " updated_at, version) VALUES ('model_admin', 'admin-model', 'prov_admin', 'm', 'admin',"
      " 0, 0, 0);"
      "INSERT INTO model_aliases (alias, model_id, source, created_at, updated_at, version)"
      " VALUES ('admin-alias', 'model_admin', 'admin', 0, 0, 0);");
}

TEST_F(SqliteStoreTest, ApplyConfigLeavesAdminRowsAlone) {
  RawDb raw(path_);
  insert_admin_rows(raw);
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
  EXPECT_EQ(raw.value("SELECT version FROM providers WHERE id = 'prov_admin'"), "0");
}

TEST_F(SqliteStoreTest, ApplyConfigMayPointAtAdminRows) {
  RawDb raw(path_);
  insert_admin_rows(raw);
  core::GatewayConfig cfg;
  cfg.models = {{"via-admin", "admin-llm", "x"}};
  cfg.aliases = {{"a2", "admin-model"}};
  store_.apply_config(cfg);
  const CatalogData catalog = store_.load_catalog();
  EXPECT_THAT(model_names(catalog), ElementsAre("admin-model", "via-admin"));
  EXPECT_EQ(catalog.aliases.size(), 2u);
}

TEST_F(SqliteStoreTest, ApplyConfigRefusesNameOfAdminRowAndRollsBack) {
  RawDb raw(path_);
  insert_admin_rows(raw);
  auto cfg = sample_config();
  cfg.models.push_back({"admin-model", "openai", "x"});
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

TEST_F(SqliteStoreTest, ApplyConfigRefusesToDropModelAnAdminAliasUses) {
  store_.apply_config(sample_config());
  RawDb raw(path_);
  raw.exec(
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

TEST_F(SqliteStoreTest, ApplyConfigRejectsUnknownReferences) {
  auto cfg = sample_config();
  cfg.models.push_back({"lost", "no-such-provider", "lost"});
  EXPECT_THROW(store_.apply_config(cfg), std::runtime_error);
  auto cfg2 = sample_config();
  cfg2.aliases.push_back({"lost", "no-such-model"});
  EXPECT_THROW(store_.apply_config(cfg2), std::runtime_error);
  EXPECT_EQ(store_.config_version(), 0);
  EXPECT_TRUE(store_.load_catalog().providers.empty());
}

TEST_F(SqliteStoreTest, ErrorMessagesNeverContainCredentials) {
  auto cfg = sample_config();
  cfg.providers[0].connect_timeout = std::chrono::milliseconds(0);  // violates a CHECK
  try {
    store_.apply_config(cfg);
    FAIL() << "invalid timeout accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), HasSubstr("CHECK constraint failed"));
    EXPECT_THAT(e.what(), Not(HasSubstr("sk-secret-openai")));
  }
}

// --- usage

TEST_F(SqliteStoreTest, InsertsAndCountsTenThousandUsageRowsInOneBatch) {
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
}

TEST_F(SqliteStoreTest, RecentUsageIsNewestFirstAndRoundTripsEveryField) {
  const std::vector<UsageRecord> batch{make_usage(1, 300), make_usage(2, 100), make_usage(3, 500),
                                       make_usage(4, 200)};
  store_.insert_usage(batch);
  EXPECT_THAT(store_.recent_usage(10), ElementsAre(batch[2], batch[0], batch[3], batch[1]));
  EXPECT_THAT(store_.recent_usage(2), ElementsAre(batch[2], batch[0]));
  EXPECT_TRUE(store_.recent_usage(0).empty());
}

TEST_F(SqliteStoreTest, ConcurrentInsertUsageFromFourThreads) {
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
}

}  // namespace
}  // namespace llmgw::store

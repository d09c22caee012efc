// What only the PostgreSQL store has: a pool of connections that survives losing them, a
// URL, migrations several replicas race to apply, and replicas writing the same rows at
// once. The Store contract itself is tested on both backends in store_test.cpp and
// admin_store_test.cpp.
#include "store/postgres/pg_store.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "store/postgres/migrations.hpp"
#include "store/sqlite/migrations.hpp"
#include "test_db.hpp"

namespace llmgw::store {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::UnorderedElementsAre;

/// A fresh schema on the test server, nothing migrated.
class PgStoreTest : public ::testing::Test {
 protected:
  PgStoreTest() : db_(test_db::make_database(test_db::Kind::Postgres)) {}

  /// A store on this test's schema with `pool_size` connections.
  std::unique_ptr<PgStore> open(std::size_t pool_size = 4) {
    return std::make_unique<PgStore>(test_db::postgres_url(*db_),
                                     PgStoreOptions{.pool_size = pool_size});
  }

  std::unique_ptr<test_db::Database> db_;
};

/// 2025-11-27T00:00:00Z in unix microseconds.
constexpr std::int64_t kMidnightUs = 1'764'201'600'000'000;

UsageRecord usage(int n, const std::string& key_id, const std::string& cost) {
  UsageRecord r;
  r.request_id = "req-" + std::to_string(n);
  r.key_id = key_id;
  r.model = "gpt-4o-mini";
  r.upstream_model = "gpt-4o-mini";
  r.provider = "openai";
  r.endpoint = "chat.completions";
  r.status = 200;
  r.prompt_tokens = 3;
  r.completion_tokens = 4;
  r.cost_usd = cost;
  r.cost_status = cost.empty() ? "unpriced" : "exact";
  r.created_at_us = kMidnightUs + n;
  return r;
}

ApiKeyRecord make_key(int n) {
  ApiKeyRecord key;
  key.id = "key_" + std::to_string(1000 + n);
  key.key_hash = "hash" + std::to_string(n);
  key.prefix = "sk-llmgw-" + std::to_string(n);
  key.name = "key number " + std::to_string(n);
  return key;
}

TEST(PgStoreMigrations, MatchSqlitesVersionsAndNames) {
  const auto pg = postgres::migrations();
  const auto lite = sqlite::migrations();
  ASSERT_EQ(pg.size(), lite.size());
  for (std::size_t i = 0; i < pg.size(); ++i) {
    EXPECT_EQ(pg[i].version, static_cast<int>(i) + 1);
    EXPECT_EQ(pg[i].version, lite[i].version);
    EXPECT_EQ(pg[i].name, lite[i].name);
  }
  EXPECT_EQ(postgres::latest_migration_version(), sqlite::latest_migration_version());
}

TEST(PgStoreUrl, PostgresSchemesSelectPostgres) {
  EXPECT_TRUE(is_postgres_url("postgres://u@h/db"));
  EXPECT_TRUE(is_postgres_url("postgresql://u@h:5432/db?sslmode=disable"));
  EXPECT_FALSE(is_postgres_url(""));
  EXPECT_FALSE(is_postgres_url("./data"));
  EXPECT_FALSE(is_postgres_url("mysql://u@h/db"));
  EXPECT_FALSE(is_postgres_url("Postgres://u@h/db"));
}

TEST(PgStoreUrl, AnInvalidUrlIsRefusedWithoutQuotingIt) {
  try {
    PgStore store("postgresql://user:hunter2@[::1/db");
    FAIL() << "invalid URL accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), Not(HasSubstr("hunter2")));
  }
}

TEST(PgStoreUrl, AnUnreachableServerIsAnErrorNamingTheDatabaseButNotThePassword) {
  // Port 1 on the loopback: nothing listens, the connection is refused at once. The store
  // connects lazily: constructing it succeeds.
  PgStore store("postgresql://llmgw:hunter2@127.0.0.1:1/llmgw?connect_timeout=2");
  EXPECT_EQ(store.description(), "postgresql://127.0.0.1:1/llmgw");
  try {
    (void)store.config_version();
    FAIL() << "a call succeeded without a server";
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), HasSubstr("cannot connect to postgresql://127.0.0.1:1/llmgw: "));
    EXPECT_THAT(e.what(), Not(HasSubstr("hunter2")));
  }
}

TEST_F(PgStoreTest, MigrateCreatesEveryTableOfTheDataModel) {
  auto store = open();
  EXPECT_EQ(store->migrate(), postgres::latest_migration_version());
  auto raw = db_->raw();
  EXPECT_THAT(
      raw->column("SELECT table_name FROM information_schema.tables"
                  " WHERE table_schema = current_schema()"),
      UnorderedElementsAre("admin_audit", "admin_tokens", "admin_users", "api_keys",
                           "budget_events", "config_version", "model_aliases", "models",
                           "price_models", "pricing_components", "providers", "retired_key_hashes",
                           "schema_migrations", "secret_checks", "spend_daily", "spool_marks",
                           "usage_records"));
  EXPECT_THAT(raw->column("SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()"
                          " AND tablename IN ('admin_audit', 'retired_key_hashes',"
                          " 'usage_records') AND indexname NOT LIKE '%_pkey'"),
              UnorderedElementsAre("admin_audit_by_resource", "admin_audit_by_time",
                                   "retired_key_hashes_by_version", "usage_records_by_key_time",
                                   "usage_records_by_time", "usage_records_by_request"));
  // Money: exact decimal text everywhere, NUMERIC where replicas add to it.
  EXPECT_EQ(raw->value("SELECT data_type FROM information_schema.columns WHERE table_schema ="
                       " current_schema() AND table_name = 'spend_daily'"
                       " AND column_name = 'cost_usd'"),
            "numeric");
  EXPECT_EQ(raw->value("SELECT data_type FROM information_schema.columns WHERE table_schema ="
                       " current_schema() AND table_name = 'usage_records'"
                       " AND column_name = 'cost_usd'"),
            "text");
  EXPECT_EQ(store->config_version(), 0);
}

TEST_F(PgStoreTest, ReplicasStartingTogetherApplyEachMigrationOnce) {
  constexpr int kReplicas = 6;
  std::vector<std::unique_ptr<PgStore>> replicas;
  for (int i = 0; i < kReplicas; ++i) {
    replicas.push_back(open(1));
  }
  std::vector<int> reached(kReplicas, -1);
  std::vector<std::string> errors(kReplicas);
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int i = 0; i < kReplicas; ++i) {
    threads.emplace_back([&, i] {
      while (!go.load()) {
        std::this_thread::yield();
      }
      try {
        reached[i] = replicas[i]->migrate();
      } catch (const std::exception& e) {
        errors[i] = e.what();
      }
    });
  }
  go = true;
  for (auto& t : threads) {
    t.join();
  }
  for (int i = 0; i < kReplicas; ++i) {
    EXPECT_EQ(errors[i], "") << "replica " << i;
    EXPECT_EQ(reached[i], postgres::latest_migration_version()) << "replica " << i;
  }
  auto raw = db_->raw();
  EXPECT_EQ(raw->value("SELECT COUNT(*) FROM schema_migrations"),
            std::to_string(postgres::migrations().size()));
  EXPECT_EQ(raw->value("SELECT COUNT(*) FROM config_version"), "1");
}

TEST_F(PgStoreTest, ALostConnectionIsReopenedAndTheCallRunsAgain) {
  auto store = open(2);
  store->migrate();
  ApiKeyRecord key = make_key(1);
  store->insert_key(key, nullptr);
  // Kill every connection of the store from the server's side, as a restart or a failover
  // would.
  const auto terminate = [&] {
    auto admin = test_db::postgres_admin();
    return admin->column(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '" +
        test_db::postgres_schema(*db_) + "'");
  };
  EXPECT_FALSE(terminate().empty());
  EXPECT_EQ(store->config_version(), 1);
  EXPECT_EQ(store->find_key_by_hash(key.key_hash), key);

  // A write, too: it runs again on a new connection, once.
  terminate();
  ApiKeyRecord second = make_key(2);
  store->insert_key(second, nullptr);
  EXPECT_EQ(store->config_version(), 2);
  EXPECT_EQ(store->list_keys().size(), 2u);
  terminate();
  store->insert_usage(std::vector{usage(1, "key_a", "0.5")});
  EXPECT_EQ(store->count_usage(), 1);
  EXPECT_EQ(store->spend("key_a", "0000-01-01", "9999-12-31").at(0).cost_usd, "0.5");
}

TEST_F(PgStoreTest, APoolOfOneConnectionServesManyThreads) {
  auto store = open(1);
  store->migrate();
  constexpr int kThreads = 8;
  constexpr int kCalls = 20;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kCalls; ++i) {
        try {
          ApiKeyRecord key = make_key(t * kCalls + i);
          store->insert_key(key, nullptr);
          if (!store->find_key_by_id(key.id)) {
            ++failures;
          }
        } catch (const std::exception&) {
          ++failures;
        }
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(store->config_version(), kThreads * kCalls);
  EXPECT_EQ(store->list_keys().size(), static_cast<std::size_t>(kThreads * kCalls));
}

TEST_F(PgStoreTest, ReplicasAddToTheSameSpendRowExactly) {
  // Three replicas settle usage of one key, day and model at once: every cost lands in the
  // one spend row, exactly (0.000075 has no exact binary floating-point value).
  constexpr int kReplicas = 3;
  constexpr int kBatches = 20;
  constexpr int kBatchSize = 50;
  std::vector<std::unique_ptr<PgStore>> replicas;
  for (int i = 0; i < kReplicas; ++i) {
    replicas.push_back(open(2));
  }
  replicas[0]->migrate();
  std::vector<std::thread> threads;
  for (int r = 0; r < kReplicas; ++r) {
    threads.emplace_back([&, r] {
      for (int b = 0; b < kBatches; ++b) {
        std::vector<UsageRecord> batch;
        for (int i = 0; i < kBatchSize; ++i) {
          const int n = (r * kBatches + b) * kBatchSize + i;
          batch.push_back(usage(n, "key_a", n % 10 == 0 ? "" : "0.000075"));
        }
        replicas[r]->insert_usage_marked(
            batch, std::vector{SpoolMark{"replica-" + std::to_string(r),
                                         static_cast<std::uint64_t>(b + 1) * kBatchSize}});
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  constexpr int kRows = kReplicas * kBatches * kBatchSize;
  const auto rows = replicas[1]->spend("key_a", "0000-01-01", "9999-12-31");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].requests, kRows);
  EXPECT_EQ(rows[0].unpriced_requests, kRows / 10);
  EXPECT_EQ(rows[0].cost_usd, "0.2025");  // 2700 × 0.000075
  EXPECT_EQ(rows[0].prompt_tokens, 3 * kRows);
  EXPECT_EQ(replicas[2]->count_usage(), kRows);
  for (int r = 0; r < kReplicas; ++r) {
    EXPECT_EQ(replicas[0]->spool_mark("replica-" + std::to_string(r)),
              static_cast<std::uint64_t>(kBatches * kBatchSize));
  }
  // The report sums the same rows in C++ and agrees.
  UsageQuery q;
  q.key_id = "key_a";
  EXPECT_EQ(replicas[0]->usage_report(q).at(0).cost_usd, "0.2025");
  replicas[0]->rebuild_spend();
  EXPECT_EQ(replicas[0]->spend("key_a", "0000-01-01", "9999-12-31"), rows);
}

TEST_F(PgStoreTest, ConcurrentConfigurationWritesGetDistinctVersions) {
  // Two replicas write keys at once: the config_version row serialises them, so every write
  // has its own version and key_hashes_changed_since misses none.
  auto a = open(2);
  auto b = open(2);
  a->migrate();
  constexpr int kWrites = 25;
  std::vector<std::thread> threads;
  for (int r = 0; r < 2; ++r) {
    threads.emplace_back([&, r] {
      PgStore& store = r == 0 ? *a : *b;
      for (int i = 0; i < kWrites; ++i) {
        ApiKeyRecord key = make_key(r * kWrites + i);
        store.insert_key(key, nullptr);
        store.set_key_enabled(key.id, false, nullptr);
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  EXPECT_EQ(a->config_version(), 4 * kWrites);
  std::set<std::int64_t> versions;
  for (const auto& key : b->list_keys()) {
    EXPECT_FALSE(key.enabled);
    versions.insert(key.version);
  }
  EXPECT_EQ(versions.size(), static_cast<std::size_t>(2 * kWrites));
  EXPECT_EQ(a->key_hashes_changed_since(0).size(), static_cast<std::size_t>(2 * kWrites));
}

TEST_F(PgStoreTest, ATextValueWithANulByteIsRefusedNotCutShort) {
  auto store = open();
  store->migrate();
  ApiKeyRecord key = make_key(1);
  key.name = std::string("before\0after", 12);
  EXPECT_THROW(store->insert_key(key, nullptr), std::invalid_argument);
  EXPECT_TRUE(store->list_keys().empty());
  EXPECT_EQ(store->config_version(), 0);
}

TEST_F(PgStoreTest, UsageReportStreamsLargeResults) {
  auto store = open();
  store->migrate();
  constexpr int kRows = 5'000;
  std::vector<UsageRecord> batch;
  for (int i = 0; i < kRows; ++i) {
    batch.push_back(usage(i, "key_" + std::to_string(i % 3), "0.001"));
  }
  store->insert_usage(batch);
  UsageQuery q;
  q.group_by = "key";
  const auto report = store->usage_report(q);
  ASSERT_EQ(report.size(), 3u);
  EXPECT_EQ(report[0].group, "key_0");
  EXPECT_EQ(report[0].requests, 1'667);
  EXPECT_EQ(report[0].cost_usd, "1.667");
  EXPECT_EQ(report[1].requests + report[2].requests, kRows - 1'667);
  // The connection is usable after a streamed result.
  EXPECT_EQ(store->count_usage(), kRows);
}

}  // namespace
}  // namespace llmgw::store

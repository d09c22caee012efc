// The Redis usage queue against a real redis-server (started here on a free port) and a real
// SQLite store: records pushed by one replica's writer are written by any replica's worker;
// a worker that dies holding a batch has it put back when its lease ends; a batch delivered
// twice is stored once; a writer whose Redis is away writes to the store itself.

#include "core/money.hpp"
#include "events/usage_codec.hpp"
#include "events/usage_writer.hpp"
#include "redis/usage_queue.hpp"
#include "store/sqlite/sqlite_store.hpp"

#include "redis_server.hpp"
#include "../events/usage_records.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

namespace llmgw::redis {
namespace {

using namespace std::chrono_literals;

using events::decode_usage;
using events::test::record;

class UsageQueueTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string error = redis_.start();
    ASSERT_TRUE(error.empty()) << error;
    // TMPDIR if set (std::filesystem::temp_directory_path), else /tmp.
    std::string tmpl = (std::filesystem::temp_directory_path() / "llmgw-usageq-XXXXXX").string();
    dir_ = ::mkdtemp(tmpl.data());
    store_ = std::make_unique<store::SqliteStore>(dir_ + "/llmgw.db");
    store_->migrate();
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  [[nodiscard]] Options options() const { return redis_.client_options(); }
  std::unique_ptr<UsageQueue> queue(const std::string& worker, std::chrono::milliseconds lease = 15s) {
    return std::make_unique<UsageQueue>(options(), worker, lease);
  }
  static std::vector<store::UsageRecord> records(int from, int to) {
    std::vector<store::UsageRecord> out;
    for (int i = from; i < to; ++i) {
      out.push_back(record(i));
    }
    return out;
  }
  /// Waits (bounded) until the store holds `n` usage rows.
  bool store_reaches(std::int64_t n, std::chrono::milliseconds within = 10s) {
    const auto deadline = std::chrono::steady_clock::now() + within;
    while (std::chrono::steady_clock::now() < deadline) {
      if (store_->count_usage() >= n) {
        return store_->count_usage() == n;
      }
      std::this_thread::sleep_for(10ms);
    }
    return false;
  }
  std::string total_spend() {
    core::Money sum;
    for (int k = 0; k < 3; ++k) {
      for (const auto& row : store_->spend("key_" + std::to_string(k), "0000-01-01", "9999-12-31")) {
        sum += *core::Money::parse(row.cost_usd);
      }
    }
    return sum.to_string();
  }

  test::RedisServer redis_;
  std::string dir_;
  std::unique_ptr<store::SqliteStore> store_;
};

TEST_F(UsageQueueTest, WhatOneReplicaPushesAnotherWritesInOrderAndOnce) {
  auto producer = queue("rep_a");
  ASSERT_TRUE(producer->push(records(0, 1'500)));
  ASSERT_TRUE(producer->push(records(1'500, 2'500)));
  EXPECT_EQ(producer->length(), 2'500);

  UsageQueueWorker worker(*store_, queue("rep_b"), {.batch_size = 300});
  worker.start();
  EXPECT_TRUE(store_reaches(2'500));
  worker.stop();
  EXPECT_EQ(worker.written(), 2'500u);
  EXPECT_EQ(producer->length(), 0);
  // 2 250 priced calls at $0.001.
  EXPECT_EQ(total_spend(), "2.25");
  const auto newest = store_->recent_usage(1);
  ASSERT_EQ(newest.size(), 1u);
  EXPECT_EQ(newest[0], record(2'499));
}

TEST_F(UsageQueueTest, ABatchTakenByADeadWorkerIsPutBackWhenItsLeaseEnds) {
  ASSERT_TRUE(queue("rep_a")->push(records(0, 100)));
  auto dying = queue("rep_dead", 300ms);
  const auto taken = dying->take(60);
  ASSERT_TRUE(taken.has_value());
  ASSERT_EQ(taken->size(), 60u);
  // rep_dead never acknowledges. Before its lease ends nothing is reclaimed.
  auto other = queue("rep_b");
  EXPECT_EQ(other->reclaim(), 0);
  EXPECT_EQ(other->length(), 40);
  std::this_thread::sleep_for(400ms);
  EXPECT_EQ(other->reclaim(), 60);
  EXPECT_EQ(other->length(), 100);
  // Put back at the head, in their order.
  const auto again = other->take(1);
  ASSERT_TRUE(again && again->size() == 1u);
  EXPECT_EQ(decode_usage(again->front())->request_id, "req-0");
  ASSERT_TRUE(other->ack());

  UsageQueueWorker worker(*store_, queue("rep_c"), {.reclaim_every = 50ms});
  worker.start();
  EXPECT_TRUE(store_reaches(99));
  worker.stop();
}

TEST_F(UsageQueueTest, AWorkerThatDiedAfterWritingIsNotCountedTwice) {
  ASSERT_TRUE(queue("rep_a")->push(records(0, 50)));
  // The worker wrote its batch, then died before the acknowledgement.
  auto dying = queue("rep_dead", 100ms);
  const auto taken = dying->take(50);
  ASSERT_TRUE(taken && taken->size() == 50u);
  std::vector<store::UsageRecord> batch;
  for (const auto& t : *taken) {
    batch.push_back(*decode_usage(t));
  }
  store_->insert_usage(batch);
  std::this_thread::sleep_for(200ms);

  UsageQueueWorker worker(*store_, queue("rep_b"), {.reclaim_every = 50ms});
  worker.start();
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (worker.written() < 50 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  worker.stop();
  EXPECT_EQ(worker.written(), 50u);  // delivered again ...
  EXPECT_EQ(store_->count_usage(), 50);  // ... and stored once
  EXPECT_EQ(total_spend(), "0.045");
}

TEST_F(UsageQueueTest, ARestartedWorkerFinishesItsOwnBatchFirst) {
  ASSERT_TRUE(queue("rep_a")->push(records(0, 30)));
  ASSERT_EQ(queue("rep_b")->take(10)->size(), 10u);  // then rep_b is gone (no ack)
  auto again = queue("rep_b");
  const auto taken = again->take(25);
  ASSERT_TRUE(taken.has_value());
  ASSERT_EQ(taken->size(), 10u);
  EXPECT_EQ(decode_usage(taken->front())->request_id, "req-0");
  ASSERT_TRUE(again->ack());
  EXPECT_EQ(again->take(25)->size(), 20u);
}

TEST_F(UsageQueueTest, EntriesThatAreNotRecordsGoToTheDeadListAndTheRestIsWritten) {
  ASSERT_TRUE(queue("rep_a")->push(records(0, 10)));
  BlockingClient raw(options());
  ASSERT_TRUE(raw.command({"RPUSH", "llmgw:usage:queue", "not json", "{\"v\":2}"}));
  ASSERT_TRUE(queue("rep_a")->push(records(10, 20)));
  UsageQueueWorker worker(*store_, queue("rep_b"));
  worker.start();
  EXPECT_TRUE(store_reaches(20));
  worker.stop();
  EXPECT_EQ(worker.buried(), 2u);
  EXPECT_EQ(queue("rep_c")->length(), 0);
  const auto dead = raw.command({"LRANGE", "llmgw:usage:dead", "0", "-1"});
  ASSERT_TRUE(dead && dead->elements.size() == 2u);
  EXPECT_EQ(dead->elements[0].str, "not json");  // kept as they were, for an operator
  EXPECT_EQ(dead->elements[1].str, "{\"v\":2}");
}

TEST_F(UsageQueueTest, ARecordTheStoreRefusesGoesToTheDeadListAndTheOthersAreWritten) {
  // The store's schema refuses an unknown cost status: a record no retry can write.
  store::UsageRecord bad = record(5);
  bad.cost_status = "bogus";
  auto producer = queue("rep_a");
  ASSERT_TRUE(producer->push(records(0, 5)));
  ASSERT_TRUE(producer->push(std::vector{bad}));
  ASSERT_TRUE(producer->push(records(6, 12)));
  UsageQueueWorker worker(*store_, queue("rep_b"), {.retry_delay = 20ms});
  worker.start();
  EXPECT_TRUE(store_reaches(11));
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (worker.buried() < 1 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  worker.stop();
  EXPECT_EQ(worker.buried(), 1u);
  BlockingClient raw(options());
  const auto dead = raw.command({"LRANGE", "llmgw:usage:dead", "0", "-1"});
  ASSERT_TRUE(dead && dead->elements.size() == 1u);
  EXPECT_EQ(decode_usage(dead->elements[0].str), bad);  // kept whole for an operator
  EXPECT_EQ(producer->length(), 0);
}

TEST_F(UsageQueueTest, ARecordRefusedAloneIsBuriedAtOnce) {
  store::UsageRecord bad = record(1);
  bad.cost_status = "bogus";
  ASSERT_TRUE(queue("rep_a")->push(std::vector{bad}));
  UsageQueueWorker worker(*store_, queue("rep_b"), {.retry_delay = 20ms});
  worker.start();
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (worker.buried() < 1 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
  }
  worker.stop();
  EXPECT_EQ(worker.buried(), 1u);
  EXPECT_EQ(worker.failures(), 0u);  // the store said "these values": no retry could help
  EXPECT_EQ(store_->count_usage(), 0);
}

TEST_F(UsageQueueTest, AGivenBackBatchReturnsToTheHeadInOrderAndTheLeaseEnds) {
  ASSERT_TRUE(queue("rep_a")->push(records(0, 30)));
  auto cut_off = queue("rep_b");
  ASSERT_EQ(cut_off->take(10)->size(), 10u);
  EXPECT_EQ(cut_off->length(), 20);
  ASSERT_TRUE(cut_off->give_back());
  EXPECT_EQ(cut_off->length(), 30);
  BlockingClient raw(options());
  EXPECT_EQ(raw.command({"HEXISTS", "llmgw:usage:leases", "rep_b"})->integer, 0);
  const auto head = queue("rep_c")->take(30);
  ASSERT_TRUE(head && head->size() == 30u);
  for (int i = 0; i < 30; ++i) {
    EXPECT_EQ(decode_usage((*head)[static_cast<std::size_t>(i)])->request_id,
              "req-" + std::to_string(i));
  }
}

TEST_F(UsageQueueTest, AQueueThatFilledRedisToMaxmemoryStillDrains) {
  // Redis at its memory limit with noeviction, as docs/distributed.md asks: pushes are
  // refused (the writers then write to the store themselves), but taking, writing and
  // acknowledging must go on, or the queue could never empty.
  BlockingClient raw(options());
  const auto info = raw.command({"INFO", "memory"});
  ASSERT_TRUE(info.has_value());
  const auto at = info->str.find("used_memory:");
  ASSERT_NE(at, std::string::npos);
  const long long used = std::stoll(info->str.substr(at + 12));
  ASSERT_TRUE(raw.command({"CONFIG", "SET", "maxmemory-policy", "noeviction"}));
  ASSERT_TRUE(raw.command({"CONFIG", "SET", "maxmemory", std::to_string(used + (1 << 20))}));
  auto producer = queue("rep_a");
  int pushed = 0;
  while (pushed < 100'000 && producer->push(records(pushed, pushed + 100))) {
    pushed += 100;
  }
  ASSERT_GT(pushed, 0);
  ASSERT_LT(pushed, 100'000) << "Redis never refused a push";
  UsageQueueWorker worker(*store_, queue("rep_b"), {.batch_size = 200});
  worker.start();
  EXPECT_TRUE(store_reaches(pushed, 30s));
  worker.stop();
  EXPECT_EQ(producer->length(), 0);
  EXPECT_EQ(worker.failures(), 0u);
}

TEST_F(UsageQueueTest, ReportsRedisSettingsThatCanLoseRecords) {
  auto q = queue("rep_a");
  // The test server: no append-only file, noeviction by default.
  EXPECT_EQ(q->durability_problems(),
            "appendonly is no (a Redis restart loses the queued records)");
  BlockingClient raw(options());
  ASSERT_TRUE(raw.command({"CONFIG", "SET", "appendonly", "yes"}));
  ASSERT_TRUE(raw.command({"CONFIG", "SET", "maxmemory-policy", "allkeys-lru"}));
  EXPECT_EQ(q->durability_problems(),
            "maxmemory-policy is allkeys-lru (Redis may evict queued records)");
  ASSERT_TRUE(raw.command({"CONFIG", "SET", "maxmemory-policy", "noeviction"}));
  EXPECT_EQ(q->durability_problems(), "");
  redis_.kill();
  EXPECT_EQ(q->durability_problems(), std::nullopt);
}

TEST_F(UsageQueueTest, AWorkerWaitsOutARedisOutageAndResumes) {
  ASSERT_TRUE(queue("rep_a")->push(records(0, 10)));
  redis_.kill();
  UsageQueueWorker worker(*store_, queue("rep_b"), {.retry_delay = 50ms});
  worker.start();
  std::this_thread::sleep_for(300ms);
  EXPECT_GT(worker.failures(), 0u);
  EXPECT_EQ(store_->count_usage(), 0);
  ASSERT_EQ(redis_.start(), "");  // empty again: this test server keeps nothing on disk
  ASSERT_TRUE(queue("rep_a")->push(records(10, 15)));
  EXPECT_TRUE(store_reaches(5));
  worker.stop();
}

TEST_F(UsageQueueTest, StopReleasesTheLeaseOfAWorkerHoldingNothing) {
  UsageQueueWorker worker(*store_, queue("rep_b"));
  worker.start();
  std::this_thread::sleep_for(200ms);
  BlockingClient raw(options());
  EXPECT_EQ(raw.command({"HEXISTS", "llmgw:usage:leases", "rep_b"})->integer, 1);
  worker.stop();
  EXPECT_EQ(raw.command({"HEXISTS", "llmgw:usage:leases", "rep_b"})->integer, 0);
}

TEST_F(UsageQueueTest, TheWriterPushesToRedisAndFallsBackToTheStoreWhenRedisIsAway) {
  events::UsageWriter w(*store_, {.batch_size = 100, .flush_interval = 20ms});
  w.attach_sink(queue("rep_a"));
  w.start();
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(w.submit(record(i)));
  }
  auto probe = queue("rep_probe");
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  // The writer counts a batch as queued once Redis's answer reached it, which is
  // after the records show in the list: wait for both.
  while ((probe->length().value_or(0) < 100 || w.queued() < 100u) &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(probe->length(), 100);
  EXPECT_EQ(w.queued(), 100u);
  EXPECT_EQ(store_->count_usage(), 0);  // nothing written by the writer itself

  redis_.kill();
  for (int i = 100; i < 150; ++i) {
    ASSERT_TRUE(w.submit(record(i)));
  }
  w.stop();
  EXPECT_EQ(w.written(), 50u);
  EXPECT_EQ(store_->count_usage(), 50);
}

}  // namespace
}  // namespace llmgw::redis

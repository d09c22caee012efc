#include "events/usage_writer.hpp"

#include "events/usage_codec.hpp"
#include "store/sqlite/sqlite_store.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

namespace llmgw::events {
namespace {

class UsageWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // TMPDIR if set (std::filesystem::temp_directory_path), else /tmp.
    std::string tmpl = (std::filesystem::temp_directory_path() / "llmgw-usage-XXXXXX").string();
    dir_ = ::mkdtemp(tmpl.data());
    store_ = std::make_unique<store::SqliteStore>(dir_ + "/llmgw.db");
    store_->migrate();
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  static store::UsageRecord record(int i) {
    store::UsageRecord r;
    r.request_id = "req-" + std::to_string(i);
    r.key_id = "key_1";
    r.model = "m";
    r.upstream_model = "m";
    r.provider = "p";
    r.endpoint = "chat.completions";
    r.status = 200;
    r.prompt_tokens = i;
    r.created_at_us = 1'700'000'000'000'000 + i;
    return r;
  }
  std::string dir_;
  std::unique_ptr<store::SqliteStore> store_;
};

// A record the store refuses as values would hold up every later batch if retried: it goes
// to the dead-letter file (a JSON line), the others to the store.
TEST_F(UsageWriterTest, ARecordTheStoreRefusesGoesToTheDeadLetterFile) {
  const std::string dead = dir_ + "/dead-usage.jsonl";
  UsageWriter w(*store_, {.batch_size = 100, .flush_interval = std::chrono::hours(1),
                          .dead_letter_path = dead});
  w.start();
  store::UsageRecord bad = record(5);
  bad.cost_status = "bogus";  // the schema's CHECK refuses it
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(w.submit(i == 5 ? store::UsageRecord(bad) : record(i)));
  }
  w.stop();
  EXPECT_EQ(store_->count_usage(), 9);
  EXPECT_EQ(w.written(), 9u);
  EXPECT_EQ(w.dead_letters(), 1u);
  EXPECT_EQ(w.failed_batches(), 0u);
  std::ifstream in(dead);
  std::string line;
  ASSERT_TRUE(std::getline(in, line));
  EXPECT_EQ(decode_usage(line), bad);
  EXPECT_FALSE(std::getline(in, line));
}

TEST_F(UsageWriterTest, StopWritesEverythingQueued) {
  UsageWriter w(*store_, {.batch_size = 100, .flush_interval = std::chrono::hours(1)});
  w.start();
  for (int i = 0; i < 2'500; ++i) {
    ASSERT_TRUE(w.submit(record(i)));
  }
  w.stop();
  EXPECT_EQ(store_->count_usage(), 2'500);
  EXPECT_EQ(w.written(), 2'500u);
}

TEST_F(UsageWriterTest, ConcurrentProducersLoseNothing) {
  UsageWriter w(*store_, {.batch_size = 64, .flush_interval = std::chrono::milliseconds(5)});
  w.start();
  std::vector<std::thread> producers;
  for (int t = 0; t < 4; ++t) {
    producers.emplace_back([&w, t] {
      for (int i = 0; i < 1'000; ++i) {
        w.submit(record(t * 1'000 + i));
      }
    });
  }
  for (auto& p : producers) {
    p.join();
  }
  w.stop();
  EXPECT_EQ(store_->count_usage(), 4'000);
}

TEST_F(UsageWriterTest, FullQueueRefusesAndCounts) {
  UsageWriter w(*store_, {.batch_size = 1'000, .flush_interval = std::chrono::hours(1),
                          .queue_limit = 10});
  // Not started: nothing drains, so the 11th submission is refused.
  for (int i = 0; i < 10; ++i) {
    EXPECT_TRUE(w.submit(record(i)));
  }
  EXPECT_FALSE(w.submit(record(10)));
  EXPECT_EQ(w.dropped(), 1u);
  w.start();
  w.stop();
  EXPECT_EQ(store_->count_usage(), 10);
}

}  // namespace
}  // namespace llmgw::events

#include "events/usage_spool.hpp"
#include "events/usage_writer.hpp"
#include "store/sqlite/sqlite_store.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

namespace llmgw::events {
namespace {

class UsageSpoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // TMPDIR if set (std::filesystem::temp_directory_path), else /tmp.
    std::string tmpl = (std::filesystem::temp_directory_path() / "llmgw-spool-XXXXXX").string();
    dir_ = ::mkdtemp(tmpl.data());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  static store::UsageRecord record(int i) {
    store::UsageRecord r;
    r.request_id = "req-" + std::to_string(i);
    r.client_request_id = i % 2 ? "client-" + std::to_string(i) : "";
    r.key_id = "key_1";
    r.model = "m";
    r.upstream_model = "m-up";
    r.provider = "p";
    r.endpoint = "chat.completions";
    r.pricing_model = "m";
    r.service_tier = "default";
    r.status = 200;
    r.prompt_tokens = i;
    r.completion_tokens = 2 * i;
    r.cost_usd = "0.000075";
    r.cost_status = "exact";
    r.prices_json = R"([{"d":"input"}])";
    r.stream = i % 3 == 0;
    r.usage_reported = true;
    r.created_at_us = 1'700'000'000'000'000 + i;
    return r;
  }
  std::string path(const char* name = "usage-0.spool") const { return dir_ + "/" + name; }
  std::string dir_;
};

TEST_F(UsageSpoolTest, RecordsRoundTripInOrderAcrossTheRingsEnd) {
  auto s = UsageSpool::open(path(), 64 * 1024);
  std::size_t total = 0;
  for (int round = 0; round < 20; ++round) {  // ~20 x 64 KiB: wraps many times
    int appended = 0;
    while (s->append(record(appended))) {
      ++appended;
    }
    ASSERT_GT(appended, 10);
    std::vector<store::UsageRecord> out;
    std::vector<std::uint64_t> seqs;
    std::uint64_t next = 0;
    s->read(SIZE_MAX, out, seqs, next);
    ASSERT_EQ(out.size(), static_cast<std::size_t>(appended));
    for (int i = 0; i < appended; ++i) {
      EXPECT_EQ(out[i], record(i));
      EXPECT_EQ(seqs[i], total + i + 1);
    }
    s->consume(next);
    EXPECT_EQ(s->pending_bytes(), 0u);
    total += appended;
  }
}

TEST_F(UsageSpoolTest, WhatWasAppendedSurvivesTheProcessAndIsReplayedOnce) {
  const std::string db = dir_ + "/llmgw.db";
  {
    store::SqliteStore st(db);
    st.migrate();
  }
  {
    // A process that appended 2,500 records and died before writing any of them.
    auto s = UsageSpool::open(path(), 1 << 20);
    for (int i = 0; i < 2'500; ++i) {
      ASSERT_TRUE(s->append(record(i)));
    }
  }  // no stop, no consume
  {
    // The store committed the first 100 (and their mark), the process died before consume.
    auto s = UsageSpool::open(path(), 1 << 20);
    std::vector<store::UsageRecord> out;
    std::vector<std::uint64_t> seqs;
    std::uint64_t next = 0;
    s->read(100, out, seqs, next);
    store::SqliteStore st(db);
    const std::vector<store::SpoolMark> marks{{s->name(), seqs.back()}};
    st.insert_usage_marked(out, marks);
  }
  store::SqliteStore st(db);
  UsageWriter w(st, {.batch_size = 1000, .flush_interval = std::chrono::hours(1)});
  std::vector<std::unique_ptr<UsageSpool>> spools;
  spools.push_back(UsageSpool::open(path(), 1 << 20));
  w.attach_spools(std::move(spools), 1);
  EXPECT_EQ(w.start(), 2'400u);
  w.stop();
  EXPECT_EQ(st.count_usage(), 2'500);  // none lost, none twice
  const auto spend = st.spend("key_1", "2023-11-14", "2023-11-15");
  ASSERT_EQ(spend.size(), 1u);
  EXPECT_EQ(spend[0].cost_usd, "0.1875");  // 2,500 x 0.000075
}

TEST_F(UsageSpoolTest, SubmissionsGoToTheSpoolAndAFullSpoolFallsBackToTheQueue) {
  store::SqliteStore st(dir_ + "/llmgw.db");
  st.migrate();
  UsageWriter w(st, {.batch_size = 100, .flush_interval = std::chrono::milliseconds(10)});
  std::vector<std::unique_ptr<UsageSpool>> spools;
  spools.push_back(UsageSpool::open(path(), 64 * 1024));
  w.attach_spools(std::move(spools), 1);
  w.start();
  for (int i = 0; i < 5'000; ++i) {
    ASSERT_TRUE(w.submit(record(i), 0));
  }
  w.stop();
  EXPECT_EQ(st.count_usage(), 5'000);
}

TEST_F(UsageSpoolTest, OneSpoolServesOneProcessAtATime) {
  auto first = UsageSpool::open(path(), 64 * 1024);
  EXPECT_THROW(UsageSpool::open(path(), 64 * 1024), std::runtime_error);
  first.reset();
  EXPECT_NO_THROW(UsageSpool::open(path(), 64 * 1024));
}

TEST_F(UsageSpoolTest, ANewSpoolNumbersAfterWhatTheStoreAlreadyHas) {
  auto s = UsageSpool::open(path(), 64 * 1024);
  s->start_sequence_after(5'000'000);
  ASSERT_TRUE(s->append(record(1)));
  std::vector<store::UsageRecord> out;
  std::vector<std::uint64_t> seqs;
  std::uint64_t next = 0;
  s->read(10, out, seqs, next);
  ASSERT_EQ(seqs.size(), 1u);
  EXPECT_EQ(seqs[0], 5'000'001u);
}

TEST_F(UsageSpoolTest, AFileOfZerosIsAFreshSpool) {
  {
    auto s = UsageSpool::open(path(), 64 * 1024);
  }
  {
    std::FILE* f = std::fopen(path().c_str(), "r+b");
    const std::string zeros(64, '\0');
    std::fwrite(zeros.data(), 1, zeros.size(), f);  // the header as a crash left it
    std::fclose(f);
  }
  auto s = UsageSpool::open(path(), 64 * 1024);
  EXPECT_EQ(s->pending_bytes(), 0u);
  EXPECT_TRUE(s->append(record(1)));
}

TEST_F(UsageSpoolTest, RefusesAFileThatIsNotASpool) {
  {
    std::FILE* f = std::fopen(path().c_str(), "w");
    std::fputs("not a spool at all, but long enough to be read as a header", f);
    std::fclose(f);
  }
  EXPECT_THROW(UsageSpool::open(path(), 64 * 1024), std::runtime_error);
}

}  // namespace
}  // namespace llmgw::events

// The Redis audit queue against a real redis-server (started here on a free port): records
// pushed by one replica are archived by any replica's drain worker, each in exactly one
// object; a batch taken by a worker that dies is handed whole, with its name, to the next
// taker, and uploading it again writes the same name with the same bytes; a push made again
// under its id is not taken twice; a failing sink loses nothing.

#include "redis/audit_queue.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <thread>

#include "events/archive/batch_codec.hpp"
#include "events/archive/local_dir_sink.hpp"
#include "events/archive/object_name.hpp"
#include "redis_server.hpp"

namespace llmgw::redis {
namespace {

using namespace std::chrono_literals;

/// A sink in front of a LocalDirSink that fails its first `fail_first` puts.
class FlakySink final : public archive::ArchiveSink {
 public:
  FlakySink(std::string dir, int fail_first) : inner_(std::move(dir)), fail_(fail_first) {}
  archive::PutResult put(std::string_view name, std::string_view bytes) override {
    ++puts_;
    if (fail_.fetch_sub(1) > 0) {
      return archive::PutResult::failed("the test store is down");
    }
    return inner_.put(name, bytes);
  }
  std::optional<std::string> get(std::string_view name, std::string& error) override {
    return inner_.get(name, error);
  }
  std::optional<std::vector<std::string>> list(std::string_view prefix,
                                               std::string& error) override {
    return inner_.list(prefix, error);
  }
  [[nodiscard]] std::string describe() const override { return inner_.describe(); }
  [[nodiscard]] int puts() const { return puts_.load(); }

 private:
  archive::LocalDirSink inner_;
  std::atomic<int> fail_;
  std::atomic<int> puts_{0};
};

class AuditQueueTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string error = redis_.start();
    ASSERT_TRUE(error.empty()) << error;
    std::string tmpl = (std::filesystem::temp_directory_path() / "llmgw-auditq-XXXXXX").string();
    dir_ = ::mkdtemp(tmpl.data());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  [[nodiscard]] Options options() const { return redis_.client_options(); }
  std::unique_ptr<LeasedQueue> queue(const std::string& worker,
                                     std::chrono::milliseconds lease = 15s) {
    return make_audit_queue(options(), worker, lease);
  }
  static std::vector<std::string> records(int from, int to) {
    std::vector<std::string> out;
    for (int i = from; i < to; ++i) {
      out.push_back(R"({"request_id":"req-)" + std::to_string(i) + R"("})");
    }
    return out;
  }
  static std::function<std::string(std::chrono::system_clock::time_point)> names(std::string pod) {
    return [pod = std::move(pod)](std::chrono::system_clock::time_point t) {
      return archive::object_name("logs/", pod, t);
    };
  }
  std::unique_ptr<AuditQueueWorker> worker(const std::string& id,
                                           std::unique_ptr<archive::ArchiveSink> sink,
                                           AuditQueueWorkerOptions opts,
                                           std::chrono::milliseconds lease = 15s) {
    return std::make_unique<AuditQueueWorker>(std::move(sink), queue(id, lease), names(id), lease,
                                              opts);
  }
  /// Every object under the sink's directory: name → records.
  std::map<std::string, std::vector<std::string>> objects() const {
    std::map<std::string, std::vector<std::string>> out;
    archive::LocalDirSink sink(dir_ + "/archive");
    std::string error;
    for (const auto& name : sink.list("", error).value_or(std::vector<std::string>{})) {
      const auto bytes = sink.get(name, error);
      auto recs = bytes ? archive::decode_batch(*bytes, error) : std::nullopt;
      EXPECT_TRUE(recs.has_value()) << name << ": " << error;
      out[name] = recs.value_or(std::vector<std::string>{});
    }
    return out;
  }
  /// Record → how many objects hold it.
  std::map<std::string, int> copies() const {
    std::map<std::string, int> out;
    for (const auto& [name, recs] : objects()) {
      for (const auto& r : recs) {
        ++out[r];
      }
    }
    return out;
  }
  bool archived(std::size_t n, std::chrono::milliseconds within = 10s) const {
    const auto deadline = std::chrono::steady_clock::now() + within;
    while (std::chrono::steady_clock::now() < deadline) {
      if (copies().size() >= n) {
        return true;
      }
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }

  test::RedisServer redis_;
  std::string dir_;
};

TEST_F(AuditQueueTest, WhatOneReplicaPushesAnotherArchivesOnceInObjectsOfTheFlushSize) {
  auto pusher = queue("rep_a");
  ASSERT_TRUE(pusher->push(records(0, 250), "push-1"));
  ASSERT_TRUE(pusher->push(records(250, 500), "push-2"));
  auto w = worker("rep_b", std::make_unique<archive::LocalDirSink>(dir_ + "/archive"),
                  {.flush_size = 100, .flush_interval = 1h, .idle_poll = 10ms});
  w->start();
  ASSERT_TRUE(archived(500));
  w->stop();
  const auto objs = objects();
  EXPECT_EQ(objs.size(), 5u);
  for (const auto& [name, recs] : objs) {
    EXPECT_EQ(recs.size(), 100u) << name;
    EXPECT_TRUE(name.starts_with("logs/")) << name;
    EXPECT_NE(name.find("/rep_b-"), std::string::npos) << name;
  }
  for (const auto& [record, n] : copies()) {
    EXPECT_EQ(n, 1) << record;
  }
  EXPECT_EQ(w->archived_records(), 500u);
  EXPECT_EQ(pusher->length(), 0);
}

TEST_F(AuditQueueTest, APushMadeAgainUnderItsIdIsNotTakenTwice) {
  auto pusher = queue("rep_a");
  ASSERT_TRUE(pusher->push(records(0, 10), "logs/2026/12/07/rep_a-1.jsonl.gz"));
  // A crash after the push, before the spools were consumed: the same push at the next start.
  ASSERT_TRUE(pusher->push(records(0, 10), "logs/2026/12/07/rep_a-1.jsonl.gz"));
  EXPECT_EQ(pusher->length(), 10);
  ASSERT_TRUE(pusher->push(records(10, 12), "logs/2026/12/07/rep_a-2.jsonl.gz"));
  EXPECT_EQ(pusher->length(), 12);
}

TEST_F(AuditQueueTest, ABatchIsTakenBySizeOrWhenItsOldestRecordWaitedTheInterval) {
  auto pusher = queue("rep_a");
  ASSERT_TRUE(pusher->push(records(0, 3), "p1"));
  auto q = queue("rep_b");
  const TakeRule rule{.min_entries = 5, .max_wait = 300ms};
  auto none = q->take(5, rule, "logs/x-1.jsonl.gz");
  ASSERT_TRUE(none.has_value());
  EXPECT_TRUE(none->name.empty());
  EXPECT_TRUE(none->entries.empty());
  ASSERT_TRUE(pusher->push(records(3, 7), "p2"));
  const auto by_size = q->take(5, rule, "logs/x-2.jsonl.gz");
  ASSERT_TRUE(by_size.has_value());
  EXPECT_EQ(by_size->name, "logs/x-2.jsonl.gz");
  EXPECT_EQ(by_size->entries, records(0, 5));
  ASSERT_TRUE(q->ack());
  // Two left, taken anew: they wait one interval from that take.
  EXPECT_TRUE(q->take(5, rule, "logs/x-3.jsonl.gz")->entries.empty());
  std::this_thread::sleep_for(400ms);
  const auto by_time = q->take(5, rule, "logs/x-4.jsonl.gz");
  ASSERT_TRUE(by_time.has_value());
  EXPECT_EQ(by_time->name, "logs/x-4.jsonl.gz");
  EXPECT_EQ(by_time->entries, records(5, 7));
}

TEST_F(AuditQueueTest, ADeadWorkersBatchIsHandedOverWholeWithItsName) {
  ASSERT_TRUE(queue("rep_a")->push(records(0, 30), "p1"));
  auto dying = queue("rep_dead", 300ms);
  const auto taken =
      dying->take(20, {}, "logs/2026/12/07/rep_dead-20261207T000000Z-000000001.jsonl.gz");
  ASSERT_TRUE(taken.has_value());
  ASSERT_EQ(taken->entries.size(), 20u);
  // More records arrive behind it; the dead worker's batch must not be mixed with them.
  ASSERT_TRUE(queue("rep_a")->push(records(30, 40), "p2"));

  auto other = queue("rep_b");
  EXPECT_EQ(other->reclaim(), 0);  // the lease still runs
  std::this_thread::sleep_for(400ms);
  EXPECT_EQ(other->reclaim(), 20);
  EXPECT_EQ(other->length(), 20);  // not put back into the queue
  const auto adopted =
      other->take(100, {}, "logs/2026/12/07/rep_b-20261207T000001Z-000000002.jsonl.gz");
  ASSERT_TRUE(adopted.has_value());
  EXPECT_EQ(adopted->name, taken->name);
  EXPECT_EQ(adopted->entries, taken->entries);
  // Until acknowledged, the adopter's every take returns it again.
  const auto again = other->take(100, {}, "logs/other.jsonl.gz");
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->name, taken->name);
  ASSERT_TRUE(other->ack());
  const auto next = other->take(100, {}, "logs/2026/12/07/rep_b-3.jsonl.gz");
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(next->entries, records(20, 40));
}

TEST_F(AuditQueueTest, AWorkerThatDiedMidUploadLeavesOneObjectWithTheSameBytes) {
  ASSERT_TRUE(queue("rep_a")->push(records(0, 50), "p1"));
  // rep_dead took a batch and stored its object, then died before acknowledging it.
  auto dying = queue("rep_dead", 300ms);
  const std::string name = "logs/2026/12/07/rep_dead-20261207T000000Z-000000001.jsonl.gz";
  const auto taken = dying->take(50, {}, name);
  ASSERT_TRUE(taken && taken->entries.size() == 50u);
  std::string error;
  const auto bytes = archive::encode_batch(taken->entries, error);
  ASSERT_TRUE(bytes.has_value());
  archive::LocalDirSink sink(dir_ + "/archive");
  ASSERT_TRUE(sink.put(name, *bytes).ok());
  std::this_thread::sleep_for(400ms);

  auto w =
      worker("rep_b", std::make_unique<archive::LocalDirSink>(dir_ + "/archive"),
             {.flush_size = 50, .flush_interval = 1h, .idle_poll = 10ms, .reclaim_every = 20ms});
  w->start();
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (w->archived_records() < 50 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  w->stop();
  EXPECT_EQ(w->archived_records(), 50u);  // uploaded again: the sink answered Stored
  const auto objs = objects();
  ASSERT_EQ(objs.size(), 1u);
  EXPECT_EQ(objs.begin()->first, name);
  EXPECT_EQ(objs.begin()->second, records(0, 50));
}

TEST_F(AuditQueueTest, AFailingSinkIsRetriedAndNothingIsLostOrArchivedTwice) {
  ASSERT_TRUE(queue("rep_a")->push(records(0, 40), "p1"));
  auto flaky = std::make_unique<FlakySink>(dir_ + "/archive", 3);
  FlakySink& sink = *flaky;
  auto w = worker("rep_b", std::move(flaky),
                  {.flush_size = 20,
                   .flush_interval = 1h,
                   .idle_poll = 10ms,
                   .retry_min = 10ms,
                   .retry_max = 40ms});
  w->start();
  ASSERT_TRUE(archived(40));
  w->stop();
  EXPECT_EQ(w->failed_uploads(), 3u);
  EXPECT_EQ(sink.puts(), 5);
  EXPECT_TRUE(w->sink_healthy());
  const auto objs = objects();
  EXPECT_EQ(objs.size(), 2u);
  for (const auto& [record, n] : copies()) {
    EXPECT_EQ(n, 1) << record;
  }
}

TEST_F(AuditQueueTest, StopArchivesWhatIsQueuedWithoutWaitingForAFullObject) {
  ASSERT_TRUE(queue("rep_a")->push(records(0, 7), "p1"));
  auto w = worker("rep_b", std::make_unique<archive::LocalDirSink>(dir_ + "/archive"),
                  {.flush_size = 1'000, .flush_interval = 1h, .idle_poll = 10ms});
  w->start();
  w->stop();
  EXPECT_EQ(copies().size(), 7u);
  EXPECT_EQ(queue("rep_a")->length(), 0);
}

TEST_F(AuditQueueTest, TheSameRecordsUnderTheNameCompressedOtherwiseCountAsStored) {
  ASSERT_TRUE(queue("rep_a")->push(records(0, 5), "p1"));
  auto q = queue("rep_b");
  const std::string name = "logs/2026/12/07/rep_b-20261207T000000Z-000000001.jsonl.gz";
  ASSERT_TRUE(q->take(5, {}, name).has_value());
  // Another zlib made the object: two gzip members of the same lines (other bytes).
  std::string error;
  const auto recs = records(0, 5);
  std::string other = *archive::encode_batch(std::span(recs).first(2), error) +
                      *archive::encode_batch(std::span(recs).subspan(2), error);
  archive::LocalDirSink sink(dir_ + "/archive");
  ASSERT_TRUE(sink.put(name, other).ok());
  auto w = worker("rep_b", std::make_unique<archive::LocalDirSink>(dir_ + "/archive"),
                  {.flush_size = 5, .flush_interval = 1h, .idle_poll = 10ms});
  w->start();
  w->stop();
  EXPECT_EQ(w->archived_records(), 5u);
  EXPECT_EQ(w->failed_uploads(), 0u);
  EXPECT_EQ(objects().size(), 1u);
}

}  // namespace
}  // namespace llmgw::redis

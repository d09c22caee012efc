// The audit log with a buffer attached (the distributed shape): spooled records are pushed,
// and the spools consumed only once the buffer took them; a push that failed — or whose
// answer was lost — is made again under the same push id with the same records, within the
// run and at the next start, never as a second push of those records under another id.

#include "events/audit/audit_log.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <thread>

namespace llmgw::audit {
namespace {

using namespace std::chrono_literals;

struct Push {
  std::string id;
  std::vector<std::string> records;
};

/// Records every push; takes them while `accept` is set.
class FakeBuffer final : public AuditBuffer {
 public:
  struct State {
    std::mutex mu;
    std::vector<Push> pushes;
    std::atomic<bool> accept{true};
  };
  explicit FakeBuffer(std::shared_ptr<State> st) : st_(std::move(st)) {}
  bool push(std::span<const std::string> records, std::string_view push_id) override {
    const std::lock_guard lock(st_->mu);
    st_->pushes.push_back({std::string(push_id), {records.begin(), records.end()}});
    return st_->accept.load();
  }

 private:
  std::shared_ptr<State> st_;
};

class AuditLogBufferTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "llmgw-auditlog-XXXXXX").string();
    dir_ = ::mkdtemp(tmpl.data());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<AuditLog> log(std::shared_ptr<FakeBuffer::State> st) {
    auto l =
        std::make_unique<AuditLog>(AuditLogOptions{.spool_dir = dir_,
                                                   .spool_bytes = 1u << 20,
                                                   .producers = 1,
                                                   .flush_size = 100,
                                                   .flush_interval = 1h,
                                                   .stop_grace = 200ms,
                                                   .retry_min = 10ms,
                                                   .retry_max = 20ms},
                                   nullptr, [this](std::chrono::system_clock::time_point) {
                                     return "logs/push-" + std::to_string(++names_) + ".jsonl.gz";
                                   });
    l->attach_buffer(std::make_unique<FakeBuffer>(std::move(st)));
    l->start();
    return l;
  }
  static bool pushed(const std::shared_ptr<FakeBuffer::State>& st, std::size_t n) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < deadline) {
      {
        const std::lock_guard lock(st->mu);
        if (st->pushes.size() >= n) {
          return true;
        }
      }
      std::this_thread::sleep_for(10ms);
    }
    return false;
  }

  std::string dir_;
  std::atomic<int> names_{0};  ///< unique across the logs of a test, as time makes them
};

TEST_F(AuditLogBufferTest, PushesSpooledRecordsAndConsumesThemOnceTaken) {
  auto st = std::make_shared<FakeBuffer::State>();
  auto l = log(st);
  ASSERT_TRUE(l->submit(R"({"n":1})", 0));
  ASSERT_TRUE(l->submit(R"({"n":2})", 0));
  // Pushed within a second, whatever the flush size and interval (they shape the objects).
  ASSERT_TRUE(pushed(st, 1));
  l->stop();
  EXPECT_EQ(l->pending_bytes(), 0u);
  ASSERT_EQ(st->pushes.size(), 1u);
  EXPECT_EQ(st->pushes[0].records, (std::vector<std::string>{R"({"n":1})", R"({"n":2})"}));
  EXPECT_EQ(st->pushes[0].id, "logs/push-1.jsonl.gz");
  EXPECT_TRUE(l->sink_healthy());
}

TEST_F(AuditLogBufferTest, AFailedPushIsMadeAgainUnderItsIdWithinTheRunAndAtTheNextStart) {
  auto down = std::make_shared<FakeBuffer::State>();
  down->accept = false;
  {
    auto l = log(down);
    for (int i = 0; i < 3; ++i) {
      ASSERT_TRUE(l->submit(R"({"n":)" + std::to_string(i) + "}", 0));
    }
    ASSERT_TRUE(pushed(down, 2));
    EXPECT_FALSE(l->sink_healthy());
    l->stop();  // still refused: the records stay spooled, the marker names the push
    EXPECT_GT(l->pending_bytes(), 0u);
  }
  const Push first = down->pushes.front();
  for (const auto& p : down->pushes) {
    EXPECT_EQ(p.id, first.id);  // retries and the stop's last attempts alike
    EXPECT_EQ(p.records, first.records);
  }
  ASSERT_EQ(first.records.size(), 3u);

  // The next start: the marked push first, under its id (the buffer may have taken it with
  // the answer lost, and then does not take it twice); new records get a push of their own.
  auto up = std::make_shared<FakeBuffer::State>();
  auto l = log(up);
  ASSERT_TRUE(pushed(up, 1));
  EXPECT_EQ(up->pushes[0].id, first.id);
  EXPECT_EQ(up->pushes[0].records, first.records);
  ASSERT_TRUE(l->submit(R"({"n":3})", 0));
  ASSERT_TRUE(pushed(up, 2));
  l->stop();
  EXPECT_NE(up->pushes[1].id, first.id);
  EXPECT_EQ(up->pushes[1].records, std::vector<std::string>{R"({"n":3})"});
  EXPECT_EQ(l->pending_bytes(), 0u);
}

}  // namespace
}  // namespace llmgw::audit

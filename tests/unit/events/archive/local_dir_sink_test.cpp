#include "events/archive/local_dir_sink.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <thread>

namespace llmgw::archive {
namespace {

namespace fs = std::filesystem;

class LocalDirSinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) /
           ("archive_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(dir_);
  }
  void TearDown() override {
    fs::remove_all(dir_);
  }
  static std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
  }
  fs::path dir_;
};

TEST_F(LocalDirSinkTest, StoresAnObjectUnderItsNameCreatingDirectories) {
  LocalDirSink sink(dir_.string());
  const std::string name = "2026/12/07/gw-20261207T180102Z-000000001.jsonl.gz";
  const auto r = sink.put(name, "bytes of the batch");
  ASSERT_TRUE(r.ok()) << r.reason;
  EXPECT_EQ(slurp(dir_ / name), "bytes of the batch");
  std::string error;
  EXPECT_EQ(sink.get(name, error), "bytes of the batch");
  // Nothing but the object is left behind (no temporary file).
  std::size_t files = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir_)) {
    files += e.is_regular_file() ? 1 : 0;
  }
  EXPECT_EQ(files, 1u);
  EXPECT_EQ(sink.describe(), "file://" + dir_.lexically_normal().string());
}

TEST_F(LocalDirSinkTest, StoringTheSameBytesAgainSucceedsOtherBytesConflict) {
  LocalDirSink sink(dir_.string());
  ASSERT_TRUE(sink.put("a/x.jsonl.gz", "one").ok());
  EXPECT_TRUE(sink.put("a/x.jsonl.gz", "one").ok());  // a retry after a lost answer
  const auto r = sink.put("a/x.jsonl.gz", "two");
  EXPECT_EQ(r.status, PutStatus::Conflict);
  EXPECT_FALSE(r.reason.empty());
  EXPECT_EQ(slurp(dir_ / "a/x.jsonl.gz"), "one");  // never replaced
}

TEST_F(LocalDirSinkTest, ConcurrentWritersOfOneNameLeaveOneWholeObject) {
  const std::string big_a(1 << 20, 'a');
  const std::string big_b(1 << 20, 'b');
  for (int round = 0; round < 10; ++round) {
    const std::string name = "race/" + std::to_string(round) + ".jsonl.gz";
    LocalDirSink one(dir_.string());
    LocalDirSink two(dir_.string());
    PutResult ra;
    PutResult rb;
    std::thread ta([&] { ra = one.put(name, big_a); });
    std::thread tb([&] { rb = two.put(name, big_b); });
    ta.join();
    tb.join();
    const std::string stored = slurp(dir_ / name);
    ASSERT_TRUE(stored == big_a || stored == big_b);
    // Exactly one writer won; the other saw a conflict.
    EXPECT_NE(ra.ok(), rb.ok());
    EXPECT_EQ(ra.ok() ? rb.status : ra.status, PutStatus::Conflict) << ra.reason << rb.reason;
  }
}

TEST_F(LocalDirSinkTest, ListsObjectsByPrefixSkippingTemporaryFiles) {
  LocalDirSink sink(dir_.string());
  ASSERT_TRUE(sink.put("2026/12/08/b.jsonl.gz", "b").ok());
  ASSERT_TRUE(sink.put("2026/12/07/a.jsonl.gz", "a").ok());
  std::ofstream(dir_ / "2026/12/07/.a.jsonl.gz.1.0.tmp") << "half";
  std::string error;
  const auto all = sink.list("", error);
  ASSERT_TRUE(all) << error;
  EXPECT_EQ(*all, (std::vector<std::string>{"2026/12/07/a.jsonl.gz", "2026/12/08/b.jsonl.gz"}));
  EXPECT_EQ(sink.list("2026/12/08", error)->size(), 1u);
  // A directory not yet created lists nothing.
  LocalDirSink empty((dir_ / "none").string());
  EXPECT_TRUE(empty.list("", error)->empty());
}

TEST_F(LocalDirSinkTest, RefusesNamesThatEscapeTheDirectory) {
  LocalDirSink sink((dir_ / "inner").string());
  for (const char* bad : {"../escape.jsonl.gz", "/etc/passwd", "a/../../b", ".hidden", ""}) {
    const auto r = sink.put(bad, "x");
    EXPECT_EQ(r.status, PutStatus::Failed) << bad;
    std::string error;
    EXPECT_FALSE(sink.get(bad, error)) << bad;
  }
  EXPECT_FALSE(fs::exists(dir_ / "escape.jsonl.gz"));
}

TEST_F(LocalDirSinkTest, AnUnwritablePlaceIsAFailureToRetryNotACrash) {
  // A file where the object's directory must be (works as root too, unlike a chmod).
  fs::create_directories(dir_);
  std::ofstream(dir_ / "d") << "in the way";
  LocalDirSink sink(dir_.string());
  const auto r = sink.put("d/x.jsonl.gz", "x");
  EXPECT_EQ(r.status, PutStatus::Failed);
  EXPECT_FALSE(r.reason.empty());
  std::string error;
  EXPECT_FALSE(sink.get("d/missing.jsonl.gz", error));
  EXPECT_FALSE(error.empty());
}

}  // namespace
}  // namespace llmgw::archive

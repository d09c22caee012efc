#include "limits/spend_ledger.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace llmgw::limits {
namespace {

core::Money usd(std::string_view s) { return *core::Money::parse(s); }

TEST(LocalSpendLedger, RefusesReservationPastBudget) {
  LocalSpendLedger l;
  Reservation r;
  EXPECT_EQ(l.reserve("k", "2026-11", usd("1"), usd("0.1"), r), ReserveResult::NotLoaded);
  l.load("k", "2026-11", usd("0.75"));
  EXPECT_EQ(l.reserve("k", "2026-11", usd("1"), usd("0.3"), r), ReserveResult::OverBudget);
  EXPECT_EQ(l.reserve("k", "2026-11", usd("1"), usd("0.25"), r), ReserveResult::Ok);
  EXPECT_EQ(l.reserved("k", "2026-11"), usd("0.25"));
  Reservation r2;
  EXPECT_EQ(l.reserve("k", "2026-11", usd("1"), usd("0.000001"), r2), ReserveResult::OverBudget);
  l.settle(r, usd("0.05"));
  EXPECT_EQ(l.spent("k", "2026-11"), usd("0.8"));
  EXPECT_EQ(l.reserved("k", "2026-11"), core::Money{});
}

TEST(LocalSpendLedger, FreeCallsAreNeverBlocked) {
  LocalSpendLedger l;
  l.load("k", "p", usd("5"));
  Reservation r;
  EXPECT_EQ(l.reserve("k", "p", usd("1"), core::Money{}, r), ReserveResult::Ok);
}

TEST(LocalSpendLedger, LoadDoesNotOverwriteWhatTheLedgerKnowsButANewPeriodStartsFresh) {
  LocalSpendLedger l;
  l.load("k", "p", usd("1"));
  l.load("k", "p", usd("0"));
  EXPECT_EQ(l.spent("k", "p"), usd("1"));
  Reservation old;
  ASSERT_EQ(l.reserve("k", "p", usd("5"), usd("2"), old), ReserveResult::Ok);
  Reservation r;
  EXPECT_EQ(l.reserve("k", "p2", usd("5"), usd("1"), r), ReserveResult::NotLoaded);
  l.load("k", "p2", usd("0.5"));
  EXPECT_EQ(l.spent("k", "p2"), usd("0.5"));
  EXPECT_EQ(l.reserved("k", "p2"), core::Money{});  // the old period's hold is not carried
  l.settle(old, usd("2"));                           // settles into the finished period
  EXPECT_EQ(l.spent("k", "p2"), usd("0.5"));
}

TEST(LocalSpendLedger, ASlowLoadOfAnEndedPeriodChangesNothing) {
  LocalSpendLedger l;
  l.load("k", "2026-11-28", usd("0"));
  Reservation r;
  ASSERT_EQ(l.reserve("k", "2026-11-28", usd("1"), usd("0.5"), r), ReserveResult::Ok);
  l.load("k", "2026-11-27", usd("0.9"));  // yesterday's spend, read before midnight
  EXPECT_EQ(l.spent("k", "2026-11-28"), core::Money{});
  EXPECT_EQ(l.reserved("k", "2026-11-28"), usd("0.5"));
  l.settle(r, usd("0.1"));
  EXPECT_EQ(l.spent("k", "2026-11-28"), usd("0.1"));
  EXPECT_EQ(l.reserved("k", "2026-11-28"), core::Money{});
}

TEST(LocalSpendLedger, AHoldFromBeforeAReloadNeverDrivesTheReservedAmountNegative) {
  LocalSpendLedger l;
  l.load("k", "daily-id-1", {});
  Reservation r;
  ASSERT_EQ(l.reserve("k", "daily-id-1", usd("1"), usd("0.5"), r), ReserveResult::Ok);
  l.load("k", "2026-11", {});       // the key's period kind changed: a new entry
  l.load("k", "daily-id-1", {});    // and back again
  l.release(r);
  EXPECT_EQ(l.reserved("k", "daily-id-1"), core::Money{});
}

TEST(LocalSpendLedger, SoftThresholdIsReportedOncePerPeriod) {
  LocalSpendLedger l(80);
  l.load("k", "p", {});
  int crossings = 0;
  for (int i = 0; i < 10; ++i) {
    Reservation r;
    ASSERT_EQ(l.reserve("k", "p", usd("1"), usd("0.1"), r), ReserveResult::Ok);
    crossings += l.settle(r, usd("0.1")).crossed_soft_threshold ? 1 : 0;
  }
  EXPECT_EQ(crossings, 1);
  EXPECT_EQ(l.spent("k", "p"), usd("1"));
}

TEST(LocalSpendLedger, ConcurrentCallsNeverPassTheBudget) {
  // 200 concurrent calls, each reserving 0.01 and costing between 0.002 and 0.01, against a
  // budget of 0.1 (about 10 worst-case calls): spent + reserved never passes the budget.
  LocalSpendLedger l;
  l.load("k", "p", {});
  const core::Money budget = usd("0.1");
  std::atomic<int> granted{0};
  std::atomic<bool> overrun{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 200; ++t) {
    threads.emplace_back([&, t] {
      Reservation r;
      if (l.reserve("k", "p", budget, usd("0.01"), r) != ReserveResult::Ok) {
        return;
      }
      ++granted;
      if (l.spent("k", "p") + l.reserved("k", "p") > budget) {
        overrun = true;
      }
      l.settle(r, usd("0.002") * (1 + t % 5));
    });
  }
  for (auto& th : threads) {
    th.join();
  }
  EXPECT_FALSE(overrun);
  EXPECT_LE(l.spent("k", "p"), budget);
  EXPECT_GE(granted.load(), 10);
}

}  // namespace
}  // namespace llmgw::limits

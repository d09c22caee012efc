// The in-process rate limiter with an injected clock: exact counts over a sliding minute,
// window edges, clock steps, all-or-nothing checks, token reconciliation, concurrency slots.

#include "limits/rate_limiter.hpp"

#include <gtest/gtest.h>

#include <array>
#include <span>
#include <thread>
#include <vector>

namespace llmgw::limits {
namespace {

constexpr std::int64_t kT0 = 1'000'000;

struct Limiter : ::testing::Test {
  LocalRateLimiter rl;
  RateDecision take(const RateLimits& l, std::int64_t tokens, std::int64_t at, RateTicket* t = nullptr) {
    RateTicket local;
    return rl.acquire("key_a", l, tokens, at, t != nullptr ? *t : local);
  }
};

TEST_F(Limiter, ExactlyTheLimitPassesInAMinuteAndNoMore) {
  const RateLimits l{.rpm = 100};
  int accepted = 0;
  for (int i = 0; i < 300; ++i) {
    accepted += take(l, 0, kT0 + i * 10).verdict == RateVerdict::Ok;  // 300 calls within 3 s
  }
  EXPECT_EQ(accepted, 100);
}

TEST_F(Limiter, NoDoubleBurstAcrossAWindowEdge) {
  const RateLimits l{.rpm = 10};
  for (int i = 0; i < 10; ++i) {
    ASSERT_EQ(take(l, 0, kT0 + 59'000).verdict, RateVerdict::Ok);  // all at the end of a minute
  }
  // A fixed window would reset at the minute boundary and let 10 more through at once.
  const auto d = take(l, 0, kT0 + 60'500);
  EXPECT_EQ(d.verdict, RateVerdict::Requests);
  EXPECT_EQ(d.retry_after_ms, 58'500);
  // One millisecond before the first entries age out: still refused; at the edge: free.
  EXPECT_EQ(take(l, 0, kT0 + 118'999).verdict, RateVerdict::Requests);
  EXPECT_EQ(take(l, 0, kT0 + 119'000).verdict, RateVerdict::Ok);
}

TEST_F(Limiter, RetryAfterIsWhenEnoughHasAgedOut) {
  const RateLimits l{.tpm = 1000};
  ASSERT_EQ(take(l, 400, kT0).verdict, RateVerdict::Ok);
  ASSERT_EQ(take(l, 400, kT0 + 10'000).verdict, RateVerdict::Ok);
  // 700 more needs the first 400 (at T0) and the second (at T0+10 s) to go: 70 s after T0.
  const auto d = take(l, 700, kT0 + 20'000);
  EXPECT_EQ(d.verdict, RateVerdict::Tokens);
  EXPECT_EQ(d.retry_after_ms, 50'000);
  ASSERT_TRUE(d.tokens);
  EXPECT_EQ(d.tokens->remaining, 200);
  EXPECT_EQ(take(l, 700, kT0 + 70'000).verdict, RateVerdict::Ok);
}

TEST_F(Limiter, AClockSteppingBackFreesNothingAndAJumpForwardFreesAll) {
  const RateLimits l{.rpm = 2};
  ASSERT_EQ(take(l, 0, kT0).verdict, RateVerdict::Ok);
  ASSERT_EQ(take(l, 0, kT0).verdict, RateVerdict::Ok);
  EXPECT_EQ(take(l, 0, kT0 - 3'600'000).verdict, RateVerdict::Requests) << "held at the latest time";
  EXPECT_EQ(take(l, 0, kT0 + 3'600'000).verdict, RateVerdict::Ok);
  EXPECT_EQ(take(l, 0, kT0 + 3'600'000).verdict, RateVerdict::Ok);
  EXPECT_EQ(take(l, 0, kT0 + 3'600'000).verdict, RateVerdict::Requests);
}

TEST_F(Limiter, AllOrNothing) {
  const RateLimits l{.rpm = 10, .tpm = 100};
  ASSERT_EQ(take(l, 90, kT0).verdict, RateVerdict::Ok);
  // The request limit has room, the token limit does not: nothing is taken.
  EXPECT_EQ(take(l, 20, kT0 + 1).verdict, RateVerdict::Tokens);
  const auto d = take(l, 10, kT0 + 2);
  EXPECT_EQ(d.verdict, RateVerdict::Ok);
  EXPECT_EQ(d.requests->remaining, 8) << "the refused call took no request";
  EXPECT_EQ(d.tokens->remaining, 0);
}

TEST_F(Limiter, AnEstimateAboveTheLimitCanNeverPass) {
  const auto d = take({.tpm = 100}, 101, kT0);
  EXPECT_EQ(d.verdict, RateVerdict::TooLarge);
}

TEST_F(Limiter, ReconcileReplacesTheEstimate) {
  const RateLimits l{.tpm = 1000};
  RateTicket t;
  ASSERT_EQ(take(l, 900, kT0, &t).verdict, RateVerdict::Ok);
  EXPECT_EQ(take(l, 200, kT0 + 1).verdict, RateVerdict::Tokens);
  rl.reconcile(t, 300, kT0 + 2);  // the call used less than feared
  EXPECT_EQ(take(l, 200, kT0 + 3).verdict, RateVerdict::Ok);
  RateTicket big;
  ASSERT_EQ(take(l, 100, kT0 + 4, &big).verdict, RateVerdict::Ok);
  rl.reconcile(big, 2000, kT0 + 5);  // more than estimated: counted, later calls wait
  const auto d = take(l, 1, kT0 + 6);
  EXPECT_EQ(d.verdict, RateVerdict::Tokens);
  // The over-run entry was made at T0+4: everything is free once it ages out.
  EXPECT_EQ(d.retry_after_ms, 60'000 - 2);
}

TEST_F(Limiter, ConcurrencySlotsAreHeldUntilRelease) {
  const RateLimits l{.max_concurrent = 2};
  RateTicket a, b, c;
  ASSERT_EQ(take(l, 0, kT0, &a).verdict, RateVerdict::Ok);
  ASSERT_EQ(take(l, 0, kT0, &b).verdict, RateVerdict::Ok);
  EXPECT_EQ(take(l, 0, kT0, &c).verdict, RateVerdict::Concurrency);
  rl.release(a);
  rl.release(a);  // twice: harmless
  EXPECT_EQ(take(l, 0, kT0, &c).verdict, RateVerdict::Ok);
}

TEST_F(Limiter, CancelTakesBackTheRequestTheTokensAndTheSlot) {
  const RateLimits l{.rpm = 2, .tpm = 100, .max_concurrent = 1};
  RateTicket t;
  ASSERT_EQ(take(l, 60, kT0, &t).verdict, RateVerdict::Ok);
  EXPECT_EQ(take(l, 60, kT0 + 1).verdict, RateVerdict::Tokens);
  rl.cancel(t);  // e.g. the model's own limit refused the call
  EXPECT_FALSE(t.active);
  RateTicket u;
  const auto d = take(l, 60, kT0 + 2, &u);
  ASSERT_EQ(d.verdict, RateVerdict::Ok);
  EXPECT_EQ(d.requests->remaining, 1) << "the cancelled call no longer counts";
  EXPECT_EQ(d.tokens->remaining, 40);
}

TEST_F(Limiter, CallsOfOneMillisecondShareAnEntryAndEachIsTakenBackExactly) {
  // 3,000 calls in each of two milliseconds (they share one window entry per millisecond):
  // reconciling, cancelling and ageing out act on each call's own share, not the entry's.
  const RateLimits l{.rpm = 100'000, .tpm = 10'000'000};
  std::vector<RateTicket> t(6'000);
  for (std::size_t i = 0; i < t.size(); ++i) {
    ASSERT_EQ(take(l, 100, kT0 + static_cast<std::int64_t>(i / 3'000), &t[i]).verdict,
              RateVerdict::Ok);
  }
  std::int64_t calls = 6'000;
  std::int64_t tokens = 600'000;
  for (std::size_t i = 0; i < t.size(); i += 2) {
    rl.reconcile(t[i], 40 + static_cast<std::int64_t>(i % 7), kT0 + 2);
    tokens += 40 + static_cast<std::int64_t>(i % 7) - 100;
  }
  for (std::size_t i = 0; i < t.size(); i += 3) {
    tokens -= t[i].tokens;
    --calls;
    rl.cancel(t[i]);
  }
  auto d = take(l, 0, kT0 + 3);
  ASSERT_EQ(d.verdict, RateVerdict::Ok);
  EXPECT_EQ(d.requests->remaining, 100'000 - calls - 1);
  EXPECT_EQ(d.tokens->remaining, 10'000'000 - tokens);
  // The first millisecond's calls age out together, and only they.
  std::int64_t first_calls = 0;
  std::int64_t first_tokens = 0;
  for (std::size_t i = 0; i < 3'000; ++i) {
    if (i % 3 != 0) {
      ++first_calls;
      first_tokens += t[i].tokens;
    }
  }
  d = take(l, 0, kT0 + 60'000);
  ASSERT_EQ(d.verdict, RateVerdict::Ok);
  EXPECT_EQ(d.requests->remaining, 100'000 - (calls - first_calls) - 2);
  EXPECT_EQ(d.tokens->remaining, 10'000'000 - (tokens - first_tokens));
}

TEST_F(Limiter, KeysAreIndependentAndUnlimitedKeysAreFree) {
  RateTicket t;
  EXPECT_EQ(rl.acquire("key_a", {.rpm = 1}, 0, kT0, t).verdict, RateVerdict::Ok);
  EXPECT_EQ(rl.acquire("key_b", {.rpm = 1}, 0, kT0, t).verdict, RateVerdict::Ok);
  EXPECT_EQ(rl.acquire("key_a", {.rpm = 1}, 0, kT0, t).verdict, RateVerdict::Requests);
  const auto d = rl.acquire("key_c", {}, 0, kT0, t);
  EXPECT_EQ(d.verdict, RateVerdict::Ok);
  EXPECT_FALSE(d.requests);
}

TEST_F(Limiter, ExactUnderConcurrency) {
  const RateLimits l{.rpm = 1000};
  std::atomic<int> accepted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) {
        RateTicket ticket;
        if (rl.acquire("key_a", l, 0, kT0 + i, ticket).verdict == RateVerdict::Ok) ++accepted;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(accepted.load(), 1000);
}

// --- admission: every subject's limits and the budget hold, all or nothing

struct Admit : ::testing::Test {
  LocalSpendLedger ledger;
  LocalRateLimiter rl{&ledger};
  std::array<RateDecision, 2> decisions;
  std::array<RateTicket, 2> tickets;
  Reservation hold;
  Admission admit(std::span<const RateSubject> subjects, const BudgetRequest* budget,
                  std::int64_t at) {
    tickets = {};
    hold = {};
    const AdmitRequest rq{.subjects = subjects, .est_tokens = 0, .call_id = "", .budget = budget};
    return rl.admit_now(rq, std::span(decisions.data(), subjects.size()),
                        std::span(tickets.data(), subjects.size()), hold, at);
  }
  std::int64_t requests_left(std::string_view key, std::int64_t at) {
    RateTicket t;
    const auto d = rl.acquire(key, {.rpm = 10}, 0, at, t);
    rl.cancel(t);
    return d.requests->remaining;
  }
};

TEST_F(Admit, AModelRefusalTakesBackTheKeysCount) {
  const RateSubject subjects[] = {{"key_a", {.rpm = 10}}, {"model:m", {.rpm = 1}}};
  ASSERT_TRUE(admit(subjects, nullptr, kT0).admitted());
  const auto refused = admit(subjects, nullptr, kT0 + 1);
  EXPECT_EQ(refused.refused, 1u);
  EXPECT_EQ(decisions[1].verdict, RateVerdict::Requests);
  EXPECT_FALSE(tickets[0].active);
  EXPECT_EQ(requests_left("key_a", kT0 + 2), 8) << "the admitted call and this probe only";
}

TEST_F(Admit, ABudgetRefusalHoldsAndCountsNothing) {
  const auto usd = [](std::string_view s) { return *core::Money::parse(s); };
  const RateSubject subjects[] = {{"key_a", {.rpm = 10}}};
  BudgetRequest b{.key_id = "key_a", .period_id = "2026-11", .budget = usd("1"),
                  .amount = usd("0.6")};
  EXPECT_EQ(admit(subjects, &b, kT0).budget, BudgetStatus::NotLoaded);
  EXPECT_FALSE(tickets[0].active);
  b.seed = usd("0.25");
  const auto held = admit(subjects, &b, kT0 + 1);
  ASSERT_TRUE(held.admitted());
  EXPECT_EQ(held.budget, BudgetStatus::Held);
  EXPECT_TRUE(hold.active);
  EXPECT_EQ(hold.budget, usd("1"));
  b.seed = usd("0");  // a later seed changes nothing: the ledger knows more
  const auto over = admit(subjects, &b, kT0 + 2);
  EXPECT_EQ(over.budget, BudgetStatus::OverBudget);
  EXPECT_EQ(over.spent, usd("0.25"));
  EXPECT_FALSE(over.admitted());
  EXPECT_FALSE(tickets[0].active);
  EXPECT_FALSE(hold.active);
  EXPECT_EQ(requests_left("key_a", kT0 + 3), 8) << "the held call and this probe";
}

TEST_F(Admit, ARateRefusalLeavesTheBudgetUnasked) {
  const RateSubject subjects[] = {{"key_a", {.rpm = 0}}};
  const BudgetRequest b{.key_id = "key_a", .period_id = "p"};
  const auto a = admit(subjects, &b, kT0);
  EXPECT_EQ(a.refused, 0u);
  EXPECT_EQ(a.budget, BudgetStatus::NotAsked);
}

TEST(FormatReset, OpenAiShapes) {
  EXPECT_EQ(format_reset(250), "250ms");
  EXPECT_EQ(format_reset(1000), "1s");
  EXPECT_EQ(format_reset(1500), "1.5s");
  EXPECT_EQ(format_reset(360'000), "6m0s");
  EXPECT_EQ(format_reset(61'250), "1m1.25s");
}

}  // namespace
}  // namespace llmgw::limits

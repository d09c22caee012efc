#include "metrics/shard.hpp"

#include <algorithm>

namespace llmgw::metrics {

namespace {

constexpr std::uint64_t kUs = 1'000;
constexpr std::uint64_t kMs = 1'000'000;
constexpr std::uint64_t kS = 1'000'000'000;

constexpr Buckets make_buckets(std::initializer_list<std::uint64_t> le) {
  Buckets b;
  for (std::uint64_t v : le) {
    b.le_ns[b.size++] = v;
  }
  return b;
}

}  // namespace

const Buckets kRequestBuckets = make_buckets(
    {100 * kUs, 250 * kUs, 500 * kUs, 1 * kMs, 2500 * kUs, 5 * kMs, 10 * kMs, 25 * kMs, 50 * kMs,
     100 * kMs, 250 * kMs, 500 * kMs, 1 * kS, 2500 * kMs, 5 * kS, 10 * kS, 30 * kS, 60 * kS});
const Buckets kOverheadBuckets = make_buckets(
    {5 * kUs, 10 * kUs, 25 * kUs, 50 * kUs, 100 * kUs, 250 * kUs, 500 * kUs, 1 * kMs, 2500 * kUs,
     5 * kMs, 10 * kMs, 25 * kMs, 50 * kMs, 100 * kMs, 250 * kMs, 500 * kMs, 1 * kS});

const Buckets& buckets_of(Latency l) noexcept {
  return l == Latency::Overhead ? kOverheadBuckets : kRequestBuckets;
}

void MoneyCell::add(core::Money m) noexcept {
  const auto units = static_cast<core::Money::URep>(m.units());
  const auto old = static_cast<core::Money::URep>(lo_.load(std::memory_order_relaxed)) |
                   static_cast<core::Money::URep>(hi_.load(std::memory_order_relaxed)) << 64;
  const core::Money::URep sum = old + units;  // wraps like the signed sum would
  // A sequence lock without fences (GCC's TSan has none): the data stores are releases, so a
  // reader that sees either half of the new value also sees the odd sequence number before it.
  const std::uint64_t s = seq_.load(std::memory_order_relaxed);
  seq_.store(s + 1, std::memory_order_relaxed);
  lo_.store(static_cast<std::uint64_t>(sum), std::memory_order_release);
  hi_.store(static_cast<std::uint64_t>(sum >> 64), std::memory_order_release);
  seq_.store(s + 2, std::memory_order_release);
}

core::Money MoneyCell::load() const noexcept {
  for (;;) {
    const std::uint64_t s1 = seq_.load(std::memory_order_acquire);
    const std::uint64_t lo = lo_.load(std::memory_order_acquire);
    const std::uint64_t hi = hi_.load(std::memory_order_acquire);
    const std::uint64_t s2 = seq_.load(std::memory_order_relaxed);
    if (s1 == s2 && (s1 & 1) == 0) {
      const auto u = static_cast<core::Money::URep>(lo) | static_cast<core::Money::URep>(hi) << 64;
      return core::Money::from_units(static_cast<core::Money::Rep>(u));
    }
  }
}

void Histogram::observe(const Buckets& b, std::uint64_t ns) noexcept {
  const auto* end = b.le_ns.data() + b.size;
  const auto i =
      static_cast<std::size_t>(std::lower_bound(b.le_ns.data(), end, ns) - b.le_ns.data());
  counts[i].add(1);  // i == b.size: +Inf
  sum_ns.add(ns);
}

Shard::~Shard() {
  for (auto& b : blocks_) {
    delete b.load(std::memory_order_relaxed);
  }
}

TargetStats& Shard::stats(TargetId t) {
  if (t >= kMaxTargets) {
    t = kNoTarget;
  }
  auto& slot = blocks_[t / kBlock];
  Block* b = slot.load(std::memory_order_relaxed);  // this thread is the only writer
  if (b == nullptr) [[unlikely]] {
    b = new Block();
    slot.store(b, std::memory_order_release);
  }
  return b->targets[t % kBlock];
}

const TargetStats* Shard::find(TargetId t) const noexcept {
  if (t >= kMaxTargets) {
    return nullptr;
  }
  const Block* b = blocks_[t / kBlock].load(std::memory_order_acquire);
  return b == nullptr ? nullptr : &b->targets[t % kBlock];
}

void Shard::observe(const RequestRecord& r) {
  TargetStats& s = stats(r.target);
  s.requests[static_cast<std::size_t>(r.route)][static_cast<std::size_t>(status_class(r.status))]
      .add(1);
  const std::array<std::chrono::nanoseconds, kLatencies> lat{r.total, r.upstream, r.overhead,
                                                             r.first_token};
  for (std::size_t i = 0; i < kLatencies; ++i) {
    if (lat[i].count() >= 0) {
      s.latency[i].observe(buckets_of(static_cast<Latency>(i)),
                           static_cast<std::uint64_t>(lat[i].count()));
    }
  }
  for (std::size_t i = 0; i < kTokenKinds; ++i) {
    if (r.tokens[i] > 0) {
      s.tokens[i].add(static_cast<std::uint64_t>(r.tokens[i]));
    }
  }
  if (!r.cost.is_zero()) {
    s.cost.add(r.cost);
  }
}

}  // namespace llmgw::metrics

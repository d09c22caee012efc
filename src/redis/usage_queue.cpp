#include "redis/usage_queue.hpp"

#include "core/log.hpp"
#include "events/usage_codec.hpp"
#include "core/thread.hpp"

#include <algorithm>
#include <array>

namespace llmgw::redis {

namespace {

// Redis's clock in milliseconds, for the scripts.
constexpr std::string_view kLuaNow = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
)lua";

// The worker's unfinished batch if it has one (a restarted worker finishes its own first),
// else up to ARGV[2] records moved from the head of `queue` to `taken`; renews the lease on
// Redis's clock. The first write is LTRIM or HDEL, which need no memory (see the header).
// KEYS: queue, taken, leases. ARGV: worker id, max records, lease ms.
const std::string kTakeScript = std::string(kLuaNow) + R"lua(
local lease = now + tonumber(ARGV[3])
local mine = redis.call('LRANGE', KEYS[2], 0, -1)
if #mine > 0 then
  redis.call('HDEL', KEYS[3], ARGV[1])
  redis.call('HSET', KEYS[3], ARGV[1], lease)
  return mine
end
local items = redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[2]) - 1)
if #items == 0 then
  redis.call('HDEL', KEYS[3], ARGV[1])
  redis.call('HSET', KEYS[3], ARGV[1], lease)
  return items
end
redis.call('LTRIM', KEYS[1], #items, -1)
for i = 1, #items, 500 do
  redis.call('RPUSH', KEYS[2], unpack(items, i, math.min(i + 499, #items)))
end
redis.call('HSET', KEYS[3], ARGV[1], lease)
return items
)lua";

// Moves the list `taken` back to the head of `queue`, in its order; returns its length.
constexpr std::string_view kLuaPutBack = R"lua(
local function put_back(queue, taken)
  local items = redis.call('LRANGE', taken, 0, -1)
  if #items == 0 then
    return 0
  end
  redis.call('DEL', taken)
  for i = #items, 1, -500 do
    local chunk = {}
    for j = i, math.max(1, i - 499), -1 do
      chunk[#chunk + 1] = items[j]
    end
    redis.call('LPUSH', queue, unpack(chunk))
  end
  return #items
end
)lua";

// Puts the taken batch of every worker whose lease ended back at the head of the queue. A
// lease that is not a number counts as ended. KEYS: queue, leases. ARGV: taken-key prefix.
const std::string kReclaimScript = std::string(kLuaNow) + std::string(kLuaPutBack) + R"lua(
local leases = redis.call('HGETALL', KEYS[2])
local moved = 0
for i = 1, #leases, 2 do
  local ends = tonumber(leases[i + 1])
  if ends == nil or ends < now then
    moved = moved + put_back(KEYS[1], ARGV[1] .. leases[i])
    redis.call('HDEL', KEYS[2], leases[i])
  end
end
return moved
)lua";

// Gives the worker's batch back to the queue and ends its lease.
// KEYS: queue, taken, leases. ARGV: worker id.
const std::string kGiveBackScript = std::string(kLuaPutBack) + R"lua(
local n = put_back(KEYS[1], KEYS[2])
redis.call('HDEL', KEYS[3], ARGV[1])
return n
)lua";

// Ends the lease of a worker holding no batch. KEYS: taken, leases. ARGV: worker id.
const std::string kReleaseScript = R"lua(
if redis.call('LLEN', KEYS[1]) == 0 then
  redis.call('HDEL', KEYS[2], ARGV[1])
  return 1
end
return 0
)lua";

}  // namespace

// ---------------------------------------------------------------------------------------------
// UsageQueue

UsageQueue::UsageQueue(Options opts, std::string worker_id, std::chrono::milliseconds lease,
                       std::string prefix)
    : client_(std::move(opts)),
      worker_id_(std::move(worker_id)),
      lease_(lease),
      prefix_(std::move(prefix)),
      queue_key_(prefix_ + "queue"),
      taken_key_(prefix_ + "taken:" + worker_id_),
      leases_key_(prefix_ + "leases"),
      dead_key_(prefix_ + "dead") {}

bool UsageQueue::push(std::span<const store::UsageRecord> batch) {
  if (batch.empty()) {
    return true;
  }
  std::vector<std::string> args;
  args.reserve(batch.size() + 2);
  args.emplace_back("RPUSH");
  args.push_back(queue_key_);
  for (const auto& r : batch) {
    args.push_back(events::encode_usage(r));
  }
  const auto reply = client_.command(args);
  return reply && reply->type == Reply::Type::Integer;
}

std::optional<std::vector<std::string>> UsageQueue::take(std::size_t max) {
  const auto reply = client_.eval(kTakeScript, {queue_key_, taken_key_, leases_key_},
                                  {worker_id_, std::to_string(std::max<std::size_t>(1, max)),
                                   std::to_string(lease_.count())});
  if (!reply || reply->type != Reply::Type::Array) {
    if (reply && reply->is_error() && error_log_.allow()) {
      core::LogLine(core::LogLevel::Warn, "redis refused the usage queue's take script")
          .field("error", reply->str)
          .emit();
    }
    return std::nullopt;
  }
  std::vector<std::string> out;
  out.reserve(reply->elements.size());
  for (const auto& e : reply->elements) {
    out.push_back(e.str);
  }
  return out;
}

bool UsageQueue::ack() {
  const auto reply = client_.command({"DEL", taken_key_});
  return reply && reply->type == Reply::Type::Integer;
}

bool UsageQueue::give_back() {
  const auto reply = client_.eval(kGiveBackScript, {queue_key_, taken_key_, leases_key_},
                                  {worker_id_});
  return reply && reply->type == Reply::Type::Integer;
}

std::optional<long long> UsageQueue::reclaim() {
  const auto reply = client_.eval(kReclaimScript, {queue_key_, leases_key_}, {prefix_ + "taken:"});
  if (!reply || reply->type != Reply::Type::Integer) {
    if (reply && reply->is_error() && error_log_.allow()) {
      core::LogLine(core::LogLevel::Warn, "redis refused the usage queue's reclaim script")
          .field("error", reply->str)
          .emit();
    }
    return std::nullopt;
  }
  return reply->integer;
}

bool UsageQueue::bury(const std::vector<std::string>& entries) {
  if (entries.empty()) {
    return true;
  }
  std::vector<std::string> args{"RPUSH", dead_key_};
  args.insert(args.end(), entries.begin(), entries.end());
  const auto reply = client_.command(args);
  return reply && reply->type == Reply::Type::Integer;
}

bool UsageQueue::release() {
  const auto reply = client_.eval(kReleaseScript, {taken_key_, leases_key_}, {worker_id_});
  return reply && reply->type == Reply::Type::Integer && reply->integer == 1;
}

std::optional<long long> UsageQueue::length() {
  const auto reply = client_.command({"LLEN", queue_key_});
  if (!reply || reply->type != Reply::Type::Integer) {
    return std::nullopt;
  }
  return reply->integer;
}

std::optional<std::string> UsageQueue::durability_problems() {
  auto setting = [&](const std::string& name) -> std::optional<std::string> {
    const auto reply = client_.command({"CONFIG", "GET", name});
    if (!reply || reply->type != Reply::Type::Array || reply->elements.size() != 2) {
      return std::nullopt;  // unreachable, or CONFIG not allowed (a managed Redis, an ACL)
    }
    return reply->elements[1].str;
  };
  const auto aof = setting("appendonly");
  const auto policy = setting("maxmemory-policy");
  if (!aof || !policy) {
    return std::nullopt;
  }
  std::string problems;
  if (*aof != "yes") {
    problems = "appendonly is " + *aof + " (a Redis restart loses the queued records)";
  }
  if (*policy != "noeviction") {
    problems += (problems.empty() ? "" : "; ") + std::string("maxmemory-policy is ") + *policy +
                " (Redis may evict queued records)";
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------
// UsageQueueWorker

UsageQueueWorker::UsageQueueWorker(store::Store& store, std::unique_ptr<UsageQueue> queue,
                                   UsageQueueWorkerOptions opts)
    : store_(store), queue_(std::move(queue)), opts_(opts) {
  opts_.batch_size = std::clamp<std::size_t>(opts_.batch_size, 1, UsageQueueWorkerOptions::kMaxBatch);
}

UsageQueueWorker::~UsageQueueWorker() { stop(); }

void UsageQueueWorker::start() {
  thread_ = std::thread([this] {
    core::name_this_thread("llmgw-usage-q");
    run();
  });
}

void UsageQueueWorker::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
  }
}

bool UsageQueueWorker::wait(std::chrono::milliseconds d) {
  std::unique_lock lock(mutex_);
  return !cv_.wait_for(lock, d, [&] { return stopping_; });
}

void UsageQueueWorker::failed(std::string_view what, const std::string& error) {
  failures_.fetch_add(1, std::memory_order_relaxed);
  ++failures_in_a_row_;
  if (failure_log_.allow()) {
    core::LogLine line(core::LogLevel::Warn, what);
    line.field("failures", failures_.load());
    if (!error.empty()) {
      line.field("error", error);
    }
    line.emit();
  }
}

int UsageQueueWorker::step() {
  auto items = queue_->take(opts_.batch_size);
  if (!items) {
    failed("usage queue: redis unavailable; records wait there", {});
    return -1;
  }
  if (items->empty()) {
    failures_in_a_row_ = 0;
    return 0;
  }
  std::vector<store::UsageRecord> batch;
  std::vector<std::string> texts;  // of each decoded record, to bury it if refused
  std::vector<std::string> undecodable;
  batch.reserve(items->size());
  texts.reserve(items->size());
  for (auto& text : *items) {
    if (auto r = events::decode_usage(text)) {
      batch.push_back(std::move(*r));
      texts.push_back(std::move(text));
    } else {
      undecodable.push_back(std::move(text));
    }
  }
  if (!undecodable.empty()) {
    if (!queue_->bury(undecodable)) {
      failed("usage queue: redis unavailable; records wait there", {});
      return -1;
    }
    buried_.fetch_add(undecodable.size(), std::memory_order_relaxed);
    core::LogLine(core::LogLevel::Error, "usage queue: entries that are not records moved to the dead list")
        .field("entries", static_cast<std::uint64_t>(undecodable.size()))
        .field("list", queue_->dead_key())
        .emit();
  }
  try {
    store_.insert_usage(batch);
  } catch (const store::RefusedError&) {
    if (!write_singly(batch, texts)) {
      return -1;
    }
    queue_->ack();
    return 1;
  } catch (const std::exception& e) {
    failed("usage queue: the store did not take a batch; retrying", e.what());
    if (failures_in_a_row_ >= opts_.give_back_after && queue_->give_back()) {
      failures_in_a_row_ = 0;  // another replica may reach the store; this one waits
    }
    return -1;  // else the batch stays taken: the next take returns it again
  }
  failures_in_a_row_ = 0;
  written_.fetch_add(batch.size(), std::memory_order_relaxed);
  // Lost ack: the batch is taken again and the store skips its rows.
  queue_->ack();
  return 1;
}

bool UsageQueueWorker::write_singly(const std::vector<store::UsageRecord>& batch,
                                    const std::vector<std::string>& texts) {
  std::vector<std::string> refused;
  std::uint64_t written = 0;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    try {
      store_.insert_usage(std::span(&batch[i], 1));
      ++written;
    } catch (const store::RefusedError& e) {
      refused.push_back(texts[i]);
      core::LogLine(core::LogLevel::Error, "usage queue: the store refused a record; moved to the dead list")
          .field("request_id", batch[i].request_id)
          .field("error", e.what())
          .emit();
    } catch (const std::exception& e) {
      // Not the record: the store. What went in is skipped when the batch is written again.
      written_.fetch_add(written, std::memory_order_relaxed);
      failed("usage queue: the store did not take a batch; retrying", e.what());
      return false;
    }
  }
  written_.fetch_add(written, std::memory_order_relaxed);
  if (!queue_->bury(refused)) {
    failed("usage queue: redis unavailable; records wait there", {});
    return false;
  }
  buried_.fetch_add(refused.size(), std::memory_order_relaxed);
  failures_in_a_row_ = 0;
  return true;
}

void UsageQueueWorker::run() {
  if (const auto problems = queue_->durability_problems(); problems && !problems->empty()) {
    core::LogLine(core::LogLevel::Warn, "usage queue: redis settings can lose queued records")
        .field("problems", *problems)
        .emit();
  }
  auto next_reclaim = std::chrono::steady_clock::now();
  // One round; an exception (out of memory for a huge entry someone pushed) is a failed round.
  auto round = [&]() -> int {
    try {
      if (std::chrono::steady_clock::now() >= next_reclaim) {
        next_reclaim = std::chrono::steady_clock::now() + opts_.reclaim_every;
        if (const auto moved = queue_->reclaim(); moved && *moved > 0) {
          core::LogLine(core::LogLevel::Warn, "usage queue: batches of a lapsed worker put back")
              .field("records", static_cast<std::int64_t>(*moved))
              .emit();
        }
      }
      return step();
    } catch (const std::exception& e) {
      failed("usage queue: a round failed", e.what());
      return -1;
    }
  };
  while (true) {
    const int r = round();
    if (r > 0) {
      std::lock_guard lock(mutex_);
      if (!stopping_) {
        continue;
      }
      break;
    }
    if (!wait(r == 0 ? opts_.idle_poll : opts_.retry_delay)) {
      break;
    }
  }
  // Stopping: what the writers pushed last, while the queue and the store answer.
  const auto deadline = std::chrono::steady_clock::now() + opts_.stop_deadline;
  while (std::chrono::steady_clock::now() < deadline && round() > 0) {
  }
  queue_->release();
}

}  // namespace llmgw::redis

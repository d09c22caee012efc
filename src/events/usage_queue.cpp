#include "events/usage_queue.hpp"

#include "core/log.hpp"
#include "core/thread.hpp"

#include <boost/json.hpp>

#include <array>

namespace llmgw::events {

namespace json = boost::json;

namespace {

constexpr int kFormat = 1;
/// Consecutive rounds (a second apart) that every record of a batch is refused, while the
/// store answers reads, before the batch goes to the dead list.
constexpr int kRefusalsBeforeBurial = 10;

/// The text fields and the integer fields of a record, by their JSON names: encode and decode
/// walk the same tables, so a field added to one cannot be forgotten by the other.
using TextField = std::string store::UsageRecord::*;
using IntField = std::int64_t store::UsageRecord::*;
constexpr std::array<std::pair<std::string_view, TextField>, 12> kText{{
    {"request_id", &store::UsageRecord::request_id},
    {"client_request_id", &store::UsageRecord::client_request_id},
    {"key_id", &store::UsageRecord::key_id},
    {"model", &store::UsageRecord::model},
    {"upstream_model", &store::UsageRecord::upstream_model},
    {"provider", &store::UsageRecord::provider},
    {"endpoint", &store::UsageRecord::endpoint},
    {"pricing_model", &store::UsageRecord::pricing_model},
    {"service_tier", &store::UsageRecord::service_tier},
    {"cost_usd", &store::UsageRecord::cost_usd},
    {"cost_status", &store::UsageRecord::cost_status},
    {"prices_json", &store::UsageRecord::prices_json},
}};
constexpr std::array<std::pair<std::string_view, IntField>, 8> kInt{{
    {"prompt_tokens", &store::UsageRecord::prompt_tokens},
    {"completion_tokens", &store::UsageRecord::completion_tokens},
    {"cached_tokens", &store::UsageRecord::cached_tokens},
    {"reasoning_tokens", &store::UsageRecord::reasoning_tokens},
    {"cache_write_tokens", &store::UsageRecord::cache_write_tokens},
    {"overhead_us", &store::UsageRecord::overhead_us},
    {"upstream_us", &store::UsageRecord::upstream_us},
    {"created_at_us", &store::UsageRecord::created_at_us},
}};

// Moves the whole list of `queue` to `taken` unless `taken` already holds a batch (a restarted
// worker finishes its own first), and renews the worker's lease on Redis's clock.
// KEYS: queue, taken, leases. ARGV: worker id, max records, lease ms.
constexpr std::string_view kTakeScript = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[3], ARGV[1], now + tonumber(ARGV[3]))
local mine = redis.call('LRANGE', KEYS[2], 0, -1)
if #mine > 0 then
  return mine
end
local items = redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[2]) - 1)
if #items == 0 then
  return items
end
redis.call('LTRIM', KEYS[1], #items, -1)
for i = 1, #items, 500 do
  redis.call('RPUSH', KEYS[2], unpack(items, i, math.min(i + 499, #items)))
end
return items
)lua";

// Puts the taken batch of every worker whose lease ended back at the head of the queue, in
// its order. KEYS: queue, leases. ARGV: the taken-list key prefix.
constexpr std::string_view kReclaimScript = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local leases = redis.call('HGETALL', KEYS[2])
local moved = 0
for i = 1, #leases, 2 do
  if tonumber(leases[i + 1]) < now then
    local taken = ARGV[1] .. leases[i]
    local items = redis.call('LRANGE', taken, 0, -1)
    for j = #items, 1, -1 do
      redis.call('LPUSH', KEYS[1], items[j])
    end
    moved = moved + #items
    redis.call('DEL', taken)
    redis.call('HDEL', KEYS[2], leases[i])
  end
end
return moved
)lua";

// Ends the lease of a worker holding no batch. KEYS: taken, leases. ARGV: worker id.
constexpr std::string_view kReleaseScript = R"lua(
if redis.call('LLEN', KEYS[1]) == 0 then
  redis.call('HDEL', KEYS[2], ARGV[1])
  return 1
end
return 0
)lua";

}  // namespace

std::string encode_usage(const store::UsageRecord& r) {
  json::object o;
  o.reserve(kText.size() + kInt.size() + 4);
  o["v"] = kFormat;
  for (const auto& [name, field] : kText) {
    o[name] = r.*field;
  }
  for (const auto& [name, field] : kInt) {
    o[name] = r.*field;
  }
  o["status"] = r.status;
  o["stream"] = r.stream;
  o["usage_reported"] = r.usage_reported;
  return json::serialize(o);
}

std::optional<store::UsageRecord> decode_usage(std::string_view text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) {
    return std::nullopt;
  }
  const json::object& o = v.get_object();
  auto field = [&](std::string_view name) -> const json::value* { return o.if_contains(name); };
  const json::value* format = field("v");
  if (format == nullptr || !format->is_int64() || format->get_int64() != kFormat) {
    return std::nullopt;
  }
  store::UsageRecord r;
  for (const auto& [name, member] : kText) {
    const json::value* f = field(name);
    if (f == nullptr || !f->is_string()) {
      return std::nullopt;
    }
    r.*member = std::string(f->get_string());
  }
  for (const auto& [name, member] : kInt) {
    const json::value* f = field(name);
    if (f == nullptr || !f->is_int64()) {
      return std::nullopt;
    }
    r.*member = f->get_int64();
  }
  const json::value* status = field("status");
  const json::value* stream = field("stream");
  const json::value* reported = field("usage_reported");
  if (status == nullptr || !status->is_int64() || status->get_int64() < 0 ||
      status->get_int64() > 999 || stream == nullptr || !stream->is_bool() ||
      reported == nullptr || !reported->is_bool() || r.request_id.empty() || r.key_id.empty()) {
    return std::nullopt;
  }
  r.status = static_cast<int>(status->get_int64());
  r.stream = stream->get_bool();
  r.usage_reported = reported->get_bool();
  return r;
}

// ---------------------------------------------------------------------------------------------
// UsageQueue

UsageQueue::UsageQueue(redis::Options opts, std::string worker_id, std::chrono::milliseconds lease,
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
    args.push_back(encode_usage(r));
  }
  const auto reply = client_.command(args);
  return reply && reply->type == redis::Reply::Type::Integer;
}

std::optional<std::vector<std::string>> UsageQueue::take(std::size_t max) {
  static const std::string script(kTakeScript);
  const auto reply = client_.eval(script, {queue_key_, taken_key_, leases_key_},
                                  {worker_id_, std::to_string(std::max<std::size_t>(1, max)),
                                   std::to_string(lease_.count())});
  if (!reply || reply->type != redis::Reply::Type::Array) {
    if (reply && reply->is_error()) {
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
  return reply && reply->type == redis::Reply::Type::Integer;
}

bool UsageQueue::bury(const std::vector<std::string>& records) {
  if (records.empty()) {
    return true;
  }
  std::vector<std::string> args{"RPUSH", dead_key_};
  args.insert(args.end(), records.begin(), records.end());
  const auto reply = client_.command(args);
  return reply && reply->type == redis::Reply::Type::Integer;
}

std::optional<long long> UsageQueue::reclaim() {
  static const std::string script(kReclaimScript);
  const auto reply = client_.eval(script, {queue_key_, leases_key_}, {prefix_ + "taken:"});
  if (!reply || reply->type != redis::Reply::Type::Integer) {
    return std::nullopt;
  }
  return reply->integer;
}

bool UsageQueue::release() {
  static const std::string script(kReleaseScript);
  const auto reply = client_.eval(script, {taken_key_, leases_key_}, {worker_id_});
  return reply && reply->type == redis::Reply::Type::Integer && reply->integer == 1;
}

std::optional<long long> UsageQueue::length() {
  const auto reply = client_.command({"LLEN", queue_key_});
  if (!reply || reply->type != redis::Reply::Type::Integer) {
    return std::nullopt;
  }
  return reply->integer;
}

// ---------------------------------------------------------------------------------------------
// UsageQueueWorker

UsageQueueWorker::UsageQueueWorker(store::Store& store, std::unique_ptr<UsageQueue> queue,
                                   UsageQueueWorkerOptions opts)
    : store_(store), queue_(std::move(queue)), opts_(opts) {}

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

int UsageQueueWorker::step() {
  auto items = queue_->take(opts_.batch_size);
  if (!items) {
    failures_.fetch_add(1, std::memory_order_relaxed);
    const auto now = std::chrono::steady_clock::now();
    if (now - last_warning_ >= std::chrono::seconds(10)) {  // at most every 10 s
      last_warning_ = now;
      core::LogLine(core::LogLevel::Warn, "usage queue: redis unavailable; records wait there")
          .field("failures", failures_.load())
          .emit();
    }
    return -1;
  }
  if (items->empty()) {
    return 0;
  }
  std::vector<store::UsageRecord> batch;
  std::vector<std::string> texts;  // of each decoded record, to bury it if refused
  batch.reserve(items->size());
  for (auto& text : *items) {
    if (auto r = decode_usage(text)) {
      batch.push_back(std::move(*r));
      texts.push_back(std::move(text));
    } else {
      undecodable_.fetch_add(1, std::memory_order_relaxed);
      core::LogLine(core::LogLevel::Error, "usage queue: a record that is not one was dropped")
          .field("bytes", static_cast<std::uint64_t>(text.size()))
          .emit();
    }
  }
  try {
    store_.insert_usage(batch);
  } catch (const std::exception& e) {
    if (write_singly(batch, texts)) {
      queue_->ack();
      return 1;
    }
    failures_.fetch_add(1, std::memory_order_relaxed);
    const auto now = std::chrono::steady_clock::now();
    if (now - last_warning_ >= std::chrono::seconds(10)) {
      last_warning_ = now;
      core::LogLine(core::LogLevel::Warn, "usage queue: the store refused a batch; retrying")
          .field("records", static_cast<std::uint64_t>(batch.size()))
          .field("error", e.what())
          .emit();
    }
    return -1;  // the batch stays taken: the next take returns it again
  }
  refusals_ = 0;
  written_.fetch_add(batch.size(), std::memory_order_relaxed);
  // Lost ack: the batch is taken again and the store skips its rows.
  queue_->ack();
  return 1;
}

bool UsageQueueWorker::write_singly(const std::vector<store::UsageRecord>& batch,
                                    const std::vector<std::string>& texts) {
  try {
    (void)store_.config_version();  // the store answers: the batch, not the store, is at fault
  } catch (const std::exception&) {
    return false;
  }
  std::vector<std::string> refused;
  std::uint64_t written = 0;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    try {
      store_.insert_usage(std::span(&batch[i], 1));
      ++written;
    } catch (const std::exception& e) {
      core::LogLine(core::LogLevel::Error, "usage queue: the store refused a record; kept in the dead list")
          .field("request_id", batch[i].request_id)
          .field("error", e.what())
          .emit();
      refused.push_back(texts[i]);
    }
  }
  // None written: the store may be refusing every write (full, read-only after a failover)
  // rather than these records. Buried only once that has gone on for a while.
  if (written == 0 && ++refusals_ < kRefusalsBeforeBurial) {
    return false;
  }
  refusals_ = 0;
  if (!queue_->bury(refused)) {
    return false;  // written ones are skipped when the batch is written again
  }
  written_.fetch_add(written, std::memory_order_relaxed);
  buried_.fetch_add(refused.size(), std::memory_order_relaxed);
  return true;
}

void UsageQueueWorker::run() {
  auto next_reclaim = std::chrono::steady_clock::now();
  while (true) {
    if (std::chrono::steady_clock::now() >= next_reclaim) {
      next_reclaim = std::chrono::steady_clock::now() + opts_.reclaim_every;
      if (const auto moved = queue_->reclaim(); moved && *moved > 0) {
        core::LogLine(core::LogLevel::Warn, "usage queue: batches of a lapsed worker put back")
            .field("records", static_cast<std::int64_t>(*moved))
            .emit();
      }
    }
    const int r = step();
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
  while (std::chrono::steady_clock::now() < deadline && step() > 0) {
  }
  queue_->release();
}

}  // namespace llmgw::events

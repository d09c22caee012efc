#include "redis/leased_queue.hpp"

#include <algorithm>

namespace llmgw::redis {

namespace {

// Redis's clock in milliseconds, for the scripts.
constexpr std::string_view kLuaNow = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
)lua";

// Appends ARGV[4..] to `queue` and notes when the queue began to hold entries. With ARGV[1]
// '1', the hash KEYS[3] keeps ARGV[3] as worker ARGV[2]'s last push, and a push it already
// holds is not made again (a worker pushes one batch at a time and repeats only its last).
// The first write is RPUSH: a full Redis refuses the push.
// KEYS: queue, since, pushed. ARGV: idempotent ('1' or '0'), worker id, push id, entries...
const std::string kPushScript = std::string(kLuaNow) + R"lua(
if ARGV[1] == '1' and redis.call('HGET', KEYS[3], ARGV[2]) == ARGV[3] then
  return 0
end
for i = 4, #ARGV, 500 do
  redis.call('RPUSH', KEYS[1], unpack(ARGV, i, math.min(i + 499, #ARGV)))
end
redis.call('SET', KEYS[2], now, 'NX')
if ARGV[1] == '1' then
  redis.call('HSET', KEYS[3], ARGV[2], ARGV[3])
end
return #ARGV - 3
)lua";

// The worker's unfinished batch if it has one (a restarted worker finishes its own first);
// with whole batches (ARGV[7] not empty) else the oldest orphaned batch, renamed to the
// worker's; else, when the queue holds ARGV[5] entries or has held entries for ARGV[6] ms, up
// to ARGV[2] entries (and fewer than ARGV[4] bytes, 0: no limit) moved from the head of
// `queue` to `taken`, headed by the batch's name ARGV[7] with whole batches. Renews the lease
// on Redis's clock. The first write is LTRIM, LPOP or HDEL, which need no memory.
// KEYS: queue, taken, leases, since, orphans.
// ARGV: worker id, max entries, lease ms, max bytes, min entries, max wait ms, name.
const std::string kTakeScript = std::string(kLuaNow) + R"lua(
local lease = now + tonumber(ARGV[3])
local function renew()
  redis.call('HDEL', KEYS[3], ARGV[1])
  redis.call('HSET', KEYS[3], ARGV[1], lease)
end
local mine = redis.call('LRANGE', KEYS[2], 0, -1)
if #mine > 0 then
  renew()
  return mine
end
local whole = ARGV[7] ~= ''
if whole then
  local orphan = redis.call('LPOP', KEYS[5])
  if orphan and redis.call('EXISTS', orphan) == 1 then
    redis.call('RENAME', orphan, KEYS[2])
    renew()
    return redis.call('LRANGE', KEYS[2], 0, -1)
  end
end
local len = redis.call('LLEN', KEYS[1])
local due = len > 0 and len >= tonumber(ARGV[5])
if not due and len > 0 then
  local since = tonumber(redis.call('GET', KEYS[4]))
  due = since == nil or now - since >= tonumber(ARGV[6])
end
if not due then
  renew()
  return {}
end
local max = tonumber(ARGV[2])
local max_bytes = tonumber(ARGV[4])
local items = {}
local bytes = 0
local pos = 0
while #items < max do
  local chunk = redis.call('LRANGE', KEYS[1], pos, pos + math.min(99, max - #items - 1))
  if #chunk == 0 then
    break
  end
  for _, e in ipairs(chunk) do
    if max_bytes > 0 and #items > 0 and bytes + #e > max_bytes then
      max = #items
      break
    end
    items[#items + 1] = e
    bytes = bytes + #e
  end
  pos = pos + #chunk
end
redis.call('LTRIM', KEYS[1], #items, -1)
if whole then
  redis.call('RPUSH', KEYS[2], ARGV[7])
end
for i = 1, #items, 500 do
  redis.call('RPUSH', KEYS[2], unpack(items, i, math.min(i + 499, #items)))
end
if #items < len then
  redis.call('SET', KEYS[4], now)
else
  redis.call('DEL', KEYS[4])
end
redis.call('HSET', KEYS[3], ARGV[1], lease)
if whole then
  table.insert(items, 1, ARGV[7])
end
return items
)lua";

// Takes the list `taken` from a worker: put_back moves its entries back to the head of
// `queue`, in their order; orphan moves it whole (named by its first element) to an orphan
// key listed in `orphans`. Both return how many entries moved.
constexpr std::string_view kLuaTakeAway = R"lua(
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
local function orphan(orphans, taken, orphan_prefix)
  local n = redis.call('LLEN', taken)
  if n == 0 then
    return 0
  end
  local key = orphan_prefix .. redis.call('LINDEX', taken, 0)
  if redis.call('EXISTS', key) == 1 then
    key = key .. '#' .. taken
  end
  redis.call('RENAME', taken, key)
  redis.call('RPUSH', orphans, key)
  return n - 1
end
local function take_away(queue, orphans, taken, whole, orphan_prefix)
  if whole then
    return orphan(orphans, taken, orphan_prefix)
  end
  return put_back(queue, taken)
end
)lua";

// Takes the batch of every worker whose lease ended away from it. A lease that is not a
// number counts as ended. KEYS: queue, leases, orphans.
// ARGV: taken-key prefix, whole ('1' or '0'), orphan-key prefix.
const std::string kReclaimScript = std::string(kLuaNow) + std::string(kLuaTakeAway) + R"lua(
local leases = redis.call('HGETALL', KEYS[2])
local moved = 0
for i = 1, #leases, 2 do
  local ends = tonumber(leases[i + 1])
  if ends == nil or ends < now then
    moved = moved + take_away(KEYS[1], KEYS[3], ARGV[1] .. leases[i], ARGV[2] == '1', ARGV[3])
    redis.call('HDEL', KEYS[2], leases[i])
  end
end
return moved
)lua";

// Takes the worker's batch away from it and ends its lease.
// KEYS: queue, taken, leases, orphans. ARGV: worker id, whole ('1' or '0'), orphan-key prefix.
const std::string kGiveBackScript = std::string(kLuaTakeAway) + R"lua(
local n = take_away(KEYS[1], KEYS[4], KEYS[2], ARGV[2] == '1', ARGV[3])
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

bool is_integer(const std::optional<Reply>& r) {
  return r && r->type == Reply::Type::Integer;
}

}  // namespace

LeasedQueue::LeasedQueue(Options opts, std::string worker_id, std::chrono::milliseconds lease,
                         std::string prefix, Reclaim reclaim, std::string what)
    : client_(std::move(opts)),
      worker_id_(std::move(worker_id)),
      lease_(lease),
      prefix_(std::move(prefix)),
      reclaim_(reclaim),
      what_(std::move(what)),
      queue_key_(prefix_ + "queue"),
      since_key_(prefix_ + "since"),
      taken_key_(prefix_ + "taken:" + worker_id_),
      leases_key_(prefix_ + "leases"),
      dead_key_(prefix_ + "dead"),
      orphans_key_(prefix_ + "orphans"),
      pushed_key_(prefix_ + "pushed") {}

void LeasedQueue::refused(std::string_view script, const std::optional<Reply>& reply) {
  if (reply && reply->is_error() && error_log_.allow()) {
    core::LogLine(core::LogLevel::Warn, "redis refused a queue script")
        .field("queue", what_)
        .field("script", script)
        .field("error", reply->str)
        .emit();
  }
}

bool LeasedQueue::push(std::span<const std::string> entries, std::string_view push_id) {
  if (entries.empty()) {
    return true;
  }
  std::vector<std::string> argv;
  argv.reserve(entries.size() + 3);
  argv.emplace_back(push_id.empty() ? "0" : "1");
  argv.push_back(worker_id_);
  argv.emplace_back(push_id);
  argv.insert(argv.end(), entries.begin(), entries.end());
  const auto reply = client_.eval(kPushScript, {queue_key_, since_key_, pushed_key_}, argv);
  refused("push", reply);
  return is_integer(reply);
}

std::optional<TakenBatch> LeasedQueue::take(std::size_t max, const TakeRule& rule,
                                            std::string_view name) {
  // A whole batch always has a name: it is what the reclaim script files an orphan under.
  const std::string batch_name = !whole()       ? std::string()
                                 : name.empty() ? "batch"
                                                : std::string(name);
  const auto reply = client_.eval(
      kTakeScript, {queue_key_, taken_key_, leases_key_, since_key_, orphans_key_},
      {worker_id_, std::to_string(std::max<std::size_t>(1, max)), std::to_string(lease_.count()),
       std::to_string(rule.max_bytes), std::to_string(std::max<std::size_t>(1, rule.min_entries)),
       std::to_string(rule.max_wait.count()), batch_name});
  if (!reply || reply->type != Reply::Type::Array) {
    refused("take", reply);
    return std::nullopt;
  }
  TakenBatch out;
  auto it = reply->elements.begin();
  if (whole() && it != reply->elements.end()) {
    out.name = std::move(it->str);
    ++it;
  }
  out.entries.reserve(static_cast<std::size_t>(reply->elements.end() - it));
  for (; it != reply->elements.end(); ++it) {
    out.entries.push_back(std::move(it->str));
  }
  return out;
}

bool LeasedQueue::ack() {
  return is_integer(client_.command({"DEL", taken_key_}));
}

bool LeasedQueue::rename(std::string_view name) {
  const auto reply = client_.command({"LSET", taken_key_, "0", std::string(name)});
  return whole() && reply && reply->type == Reply::Type::Status;
}

bool LeasedQueue::give_back() {
  const auto reply =
      client_.eval(kGiveBackScript, {queue_key_, taken_key_, leases_key_, orphans_key_},
                   {worker_id_, whole() ? "1" : "0", prefix_ + "orphan:"});
  refused("give back", reply);
  return is_integer(reply);
}

std::optional<long long> LeasedQueue::reclaim() {
  const auto reply = client_.eval(kReclaimScript, {queue_key_, leases_key_, orphans_key_},
                                  {prefix_ + "taken:", whole() ? "1" : "0", prefix_ + "orphan:"});
  if (!is_integer(reply)) {
    refused("reclaim", reply);
    return std::nullopt;
  }
  return reply->integer;
}

bool LeasedQueue::bury(const std::vector<std::string>& entries) {
  if (entries.empty()) {
    return true;
  }
  std::vector<std::string> args{"RPUSH", dead_key_};
  args.insert(args.end(), entries.begin(), entries.end());
  return is_integer(client_.command(args));
}

bool LeasedQueue::release() {
  const auto reply = client_.eval(kReleaseScript, {taken_key_, leases_key_}, {worker_id_});
  return is_integer(reply) && reply->integer == 1;
}

std::optional<long long> LeasedQueue::length() {
  const auto reply = client_.command({"LLEN", queue_key_});
  if (!is_integer(reply)) {
    return std::nullopt;
  }
  return reply->integer;
}

std::optional<std::string> LeasedQueue::durability_problems() {
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

}  // namespace llmgw::redis

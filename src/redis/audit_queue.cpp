#include "redis/audit_queue.hpp"

#include <algorithm>

#include "events/archive/batch_codec.hpp"
#include "events/archive/object_name.hpp"

namespace llmgw::redis {

std::unique_ptr<LeasedQueue> make_audit_queue(Options opts, std::string worker_id,
                                              std::chrono::milliseconds lease, std::string prefix) {
  return std::make_unique<LeasedQueue>(std::move(opts), std::move(worker_id), lease,
                                       std::move(prefix), Reclaim::Whole, "audit queue");
}

AuditQueueWorker::AuditQueueWorker(
    std::unique_ptr<archive::ArchiveSink> sink, std::unique_ptr<LeasedQueue> queue,
    std::function<std::string(std::chrono::system_clock::time_point)> name_for,
    std::chrono::milliseconds lease, AuditQueueWorkerOptions opts)
    : QueueDrainer(*queue,
                   {.idle_poll = opts.idle_poll,
                    .reclaim_every = opts.reclaim_every,
                    .stop_deadline = opts.stop_deadline,
                    .retry_while_stopping = true},
                   "llmgw-audit-q"),
      sink_(std::move(sink)),
      queue_(std::move(queue)),
      name_for_(std::move(name_for)),
      opts_(opts),
      // Retries renew the lease (each is a take): spaced within it, the batch stays this
      // worker's while the worker lives.
      max_wait_(std::max(opts.retry_min, std::min(opts.retry_max, lease / 2))),
      wait_(opts.retry_min) {
  opts_.flush_size = std::max<std::size_t>(1, opts_.flush_size);
}

AuditQueueWorker::~AuditQueueWorker() {
  stop();
}

std::chrono::milliseconds AuditQueueWorker::retry_delay() {
  const auto d = wait_;
  wait_ = std::min(max_wait_, wait_ * 2);
  return d;
}

bool AuditQueueWorker::holds_records(const std::string& name,
                                     const std::vector<std::string>& records) {
  std::string error;
  const auto bytes = sink_->get(name, error);
  if (!bytes) {
    return false;
  }
  const auto stored = archive::decode_batch(*bytes, error);
  return stored && *stored == records;
}

Step AuditQueueWorker::step(bool draining) {
  // Stopping: whatever the queue holds, without waiting for a full object.
  const TakeRule rule{.min_entries = draining ? 1 : opts_.flush_size,
                      .max_wait = draining ? std::chrono::milliseconds(0) : opts_.flush_interval,
                      .max_bytes = opts_.max_object_bytes};
  auto batch = queue_->take(opts_.flush_size, rule, name_for_(std::chrono::system_clock::now()));
  if (!batch) {
    failed("audit queue: redis unavailable; records wait there", {});
    return Step::Unreachable;
  }
  if (batch->name.empty()) {
    clear_failures_in_a_row();
    return Step::Idle;
  }
  if (!archive::valid_object_name(batch->name)) {
    // Not a name this program makes (something else wrote to the queue's keys).
    const std::string name = name_for_(std::chrono::system_clock::now());
    core::LogLine(core::LogLevel::Error, "audit queue: a batch without a usable name renamed")
        .field("object", name)
        .emit();
    return queue_->rename(name) ? Step::Done : Step::Unreachable;
  }
  const std::size_t bad = archive::erase_invalid_records(batch->entries);
  std::string error;
  const auto bytes = archive::encode_batch(batch->entries, error);
  if (!bytes) {
    failed("audit queue: a batch could not be encoded", error);
    return Step::Failed;
  }
  const archive::PutResult r = sink_->put(batch->name, *bytes);
  bool stored = r.ok();
  if (r.status == archive::PutStatus::Conflict) {
    // Other bytes under the name: the same records compressed otherwise (another zlib) are
    // this batch; anything else keeps its object, and this batch takes a new name.
    stored = holds_records(batch->name, batch->entries);
    if (!stored) {
      const std::string name = name_for_(std::chrono::system_clock::now());
      core::LogLine(core::LogLevel::Error, "audit object name taken by other content; renamed")
          .field("object", batch->name)
          .field("new_name", name)
          .emit();
      queue_->rename(name);
    }
  }
  if (!stored) {
    healthy_.store(false);
    failed("audit queue: object not stored; retrying", r.reason);
    if (failures_in_a_row() >= opts_.give_back_after && queue_->give_back()) {
      clear_failures_in_a_row();  // another replica may reach the store; this one waits
    }
    return Step::Failed;  // else the batch stays taken: the next take returns it again
  }
  healthy_.store(true);
  clear_failures_in_a_row();
  wait_ = opts_.retry_min;
  archived_.fetch_add(batch->entries.size(), std::memory_order_relaxed);
  objects_.fetch_add(1, std::memory_order_relaxed);
  if (bad > 0) {
    dropped_.fetch_add(bad, std::memory_order_relaxed);
    core::LogLine(core::LogLevel::Error, "audit records left out: not one JSON line each")
        .field("object", batch->name)
        .field("records", static_cast<std::uint64_t>(bad))
        .emit();
  }
  // A lost acknowledgement: the batch is taken again and stored again, same name, same bytes.
  queue_->ack();
  return Step::Done;
}

}  // namespace llmgw::redis

#include "redis/usage_queue.hpp"

#include "core/log.hpp"
#include "events/usage_codec.hpp"

#include <algorithm>

namespace llmgw::redis {

// ---------------------------------------------------------------------------------------------
// UsageQueue

UsageQueue::UsageQueue(Options opts, std::string worker_id, std::chrono::milliseconds lease,
                       std::string prefix)
    : LeasedQueue(std::move(opts), std::move(worker_id), lease, std::move(prefix),
                  Reclaim::Requeue, "usage queue") {}

bool UsageQueue::push(std::span<const store::UsageRecord> batch) {
  std::vector<std::string> entries;
  entries.reserve(batch.size());
  for (const auto& r : batch) {
    entries.push_back(events::encode_usage(r));
  }
  return LeasedQueue::push(entries);
}

std::optional<std::vector<std::string>> UsageQueue::take(std::size_t max) {
  auto batch = LeasedQueue::take(max);
  if (!batch) {
    return std::nullopt;
  }
  return std::move(batch->entries);
}

// ---------------------------------------------------------------------------------------------
// UsageQueueWorker

UsageQueueWorker::UsageQueueWorker(store::Store& store, std::unique_ptr<UsageQueue> queue,
                                   UsageQueueWorkerOptions opts)
    : QueueDrainer(*queue,
                   {.idle_poll = opts.idle_poll,
                    .reclaim_every = opts.reclaim_every,
                    .stop_deadline = opts.stop_deadline},
                   "llmgw-usage-q"),
      store_(store),
      queue_(std::move(queue)),
      opts_(opts) {
  opts_.batch_size = std::clamp<std::size_t>(opts_.batch_size, 1, UsageQueueWorkerOptions::kMaxBatch);
}

UsageQueueWorker::~UsageQueueWorker() { stop(); }

Step UsageQueueWorker::step(bool) {
  auto items = queue_->take(opts_.batch_size);
  if (!items) {
    failed("usage queue: redis unavailable; records wait there", {});
    return Step::Unreachable;
  }
  if (items->empty()) {
    clear_failures_in_a_row();
    return Step::Idle;
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
      return Step::Unreachable;
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
      return Step::Failed;
    }
    queue_->ack();
    return Step::Done;
  } catch (const std::exception& e) {
    failed("usage queue: the store did not take a batch; retrying", e.what());
    if (failures_in_a_row() >= opts_.give_back_after && queue_->give_back()) {
      clear_failures_in_a_row();  // another replica may reach the store; this one waits
    }
    return Step::Failed;  // else the batch stays taken: the next take returns it again
  }
  clear_failures_in_a_row();
  written_.fetch_add(batch.size(), std::memory_order_relaxed);
  // Lost ack: the batch is taken again and the store skips its rows.
  queue_->ack();
  return Step::Done;
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
  clear_failures_in_a_row();
  return true;
}

}  // namespace llmgw::redis

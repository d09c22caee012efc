#include "events/usage_writer.hpp"

#include "core/log.hpp"
#include "events/usage_codec.hpp"
#include "core/thread.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>

namespace llmgw::events {

namespace {
constexpr int kMaxAttempts = 5;
constexpr std::chrono::milliseconds kRetryDelay{200};
}  // namespace

UsageWriter::UsageWriter(store::Store& store, UsageWriterOptions opts)
    : store_(store), opts_(opts) {}

UsageWriter::~UsageWriter() { stop(); }

void UsageWriter::attach_spools(std::vector<std::unique_ptr<UsageSpool>> spools,
                                std::size_t producers) {
  spools_ = std::move(spools);
  producers_ = std::min(producers, spools_.size());
}

void UsageWriter::attach_sink(std::unique_ptr<UsageSink> sink) {
  sink_ = std::move(sink);
}

std::size_t UsageWriter::start() {
  for (const auto& s : spools_) {
    s->start_sequence_after(store_.spool_mark(s->name()));
  }
  const std::uint64_t before = written_.load() + queued_.load();
  // Replay: whatever a previous process appended and the store had not recorded.
  while (true) {
    bool pending = false;
    for (const auto& s : spools_) {
      pending = pending || s->pending_bytes() > 0;
    }
    if (!pending) {
      break;
    }
    std::uint64_t pending_before = 0;
    for (const auto& s : spools_) {
      pending_before += s->pending_bytes();
    }
    if (!drain_once(true)) {
      throw std::runtime_error("the store refused the usage records of the spool");
    }
    std::uint64_t pending_after = 0;
    for (const auto& s : spools_) {
      pending_after += s->pending_bytes();
    }
    if (pending_after >= pending_before) {
      break;  // no progress: never loop on a spool that cannot drain
    }
  }
  const std::size_t replayed = static_cast<std::size_t>(written_.load() + queued_.load() - before);
  thread_ = std::thread([this] {
    core::name_this_thread("llmgw-usage");
    core::make_this_thread_background(0);  // it must keep up: a full share
    run();
  });
  return replayed;
}

bool UsageWriter::submit(store::UsageRecord&& r, std::size_t spool) {
  if (spool < producers_ && spools_[spool]->append(r)) {
    return true;  // crash-safe already; the writer picks it up on its next round
  }
  {
    std::lock_guard lock(mutex_);
    if (queue_.size() >= opts_.queue_limit) {
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    queue_.push_back(std::move(r));
    if (queue_.size() < opts_.batch_size) {
      return true;
    }
  }
  cv_.notify_one();
  return true;
}

void UsageWriter::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ && !thread_.joinable()) {
      return;
    }
    stopping_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) {
    thread_.join();
  }
}

bool UsageWriter::write_with_retry(std::vector<store::UsageRecord>& batch,
                                   const std::vector<store::SpoolMark>& marks) {
  for (int attempt = 1; attempt <= kMaxAttempts; ++attempt) {
    try {
      try {
        store_.insert_usage_marked(batch, marks);
      } catch (const store::RefusedError&) {
        if (!write_singly(batch, marks)) {
          throw;
        }
        return true;
      }
      written_.fetch_add(batch.size(), std::memory_order_relaxed);
      return true;
    } catch (const std::exception& e) {
      core::LogLine(core::LogLevel::Warn, "usage batch write failed")
          .field("attempt", attempt)
          .field("records", static_cast<std::uint64_t>(batch.size()))
          .field("error", e.what())
          .emit();
      std::this_thread::sleep_for(kRetryDelay * attempt);
    }
  }
  failed_batches_.fetch_add(1, std::memory_order_relaxed);
  return false;
}

bool UsageWriter::write_singly(const std::vector<store::UsageRecord>& batch,
                               const std::vector<store::SpoolMark>& marks) {
  if (opts_.dead_letter_path.empty()) {
    return false;
  }
  std::string dead;
  std::uint64_t refused = 0;
  std::uint64_t written = 0;
  const auto settle = [&](bool ok) {
    written_.fetch_add(written, std::memory_order_relaxed);  // a retry skips these rows
    return ok;
  };
  for (const auto& r : batch) {
    try {
      store_.insert_usage(std::span(&r, 1));
      ++written;
    } catch (const store::RefusedError& e) {
      core::LogLine(core::LogLevel::Error,
                    "the store refused a usage record; written to the dead-letter file")
          .field("request_id", r.request_id)
          .field("file", opts_.dead_letter_path)
          .field("error", e.what())
          .emit();
      dead += encode_usage(r);
      dead += '\n';
      ++refused;
    } catch (const std::exception&) {
      return settle(false);  // the store, not the record
    }
  }
  if (!dead.empty()) {
    const int fd = ::open(opts_.dead_letter_path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
                          0600);
    bool ok = fd >= 0;
    for (std::size_t done = 0; ok && done < dead.size();) {
      const ssize_t n = ::write(fd, dead.data() + done, dead.size() - done);
      ok = n > 0;
      done += ok ? static_cast<std::size_t>(n) : 0;
    }
    ok = ok && ::fsync(fd) == 0;
    if (fd >= 0) {
      ::close(fd);
    }
    if (!ok) {
      core::LogLine(core::LogLevel::Error, "usage dead-letter file cannot be written")
          .field("file", opts_.dead_letter_path)
          .emit();
      return settle(false);
    }
  }
  try {
    store_.insert_usage_marked({}, marks);
  } catch (const std::exception&) {
    return settle(false);
  }
  dead_letters_.fetch_add(refused, std::memory_order_relaxed);
  return settle(true);
}

bool UsageWriter::deliver(std::vector<store::UsageRecord>& batch,
                          const std::vector<store::SpoolMark>& marks) {
  if (sink_ && !batch.empty()) {
    if (sink_->push(batch)) {
      queued_.fetch_add(batch.size(), std::memory_order_relaxed);
      return true;
    }
    if (sink_warning_.allow()) {
      core::LogLine(core::LogLevel::Warn,
                    "usage queue: redis did not take a batch; writing it to the store")
          .field("records", static_cast<std::uint64_t>(batch.size()))
          .emit();
    }
  }
  return write_with_retry(batch, marks);
}

bool UsageWriter::drain_once(bool replay) {
  bool ok = true;
  // The spools: each read is applied with its mark, then consumed.
  for (const auto& s : spools_) {
    while (s->pending_bytes() > 0) {
      std::vector<store::UsageRecord> batch;
      std::vector<std::uint64_t> seqs;
      std::uint64_t next_tail = 0;
      bool damaged = false;
      s->read(opts_.batch_size, batch, seqs, next_tail, &damaged);
      if (damaged) {
        core::LogLine(core::LogLevel::Error, "usage spool damaged: unreadable bytes skipped")
            .field("spool", s->name())
            .emit();
      }
      if (seqs.empty() && batch.empty()) {
        s->consume(next_tail);  // only undecodable bytes: step over them
        break;
      }
      std::vector<store::UsageRecord> fresh;
      fresh.reserve(batch.size());
      // Outside a replay this process is the spool's only user (flock), so nothing can be
      // applied twice; the mark is read only when replaying.
      const std::uint64_t applied = replay ? store_.spool_mark(s->name()) : 0;
      for (std::size_t i = 0; i < batch.size(); ++i) {
        if (seqs[i] > applied) {
          fresh.push_back(std::move(batch[i]));
        }
      }
      const std::vector<store::SpoolMark> marks{{s->name(), seqs.empty() ? 0 : seqs.back()}};
      if (!deliver(fresh, marks)) {
        ok = false;
        break;  // stays in the spool: retried next round, and replayed after a restart
      }
      s->consume(next_tail);
    }
  }
  // The queue.
  std::vector<store::UsageRecord> taken;
  {
    std::lock_guard lock(mutex_);
    taken.swap(queue_);
  }
  for (std::size_t i = 0; i < taken.size(); i += opts_.batch_size) {
    const std::size_t n = std::min(opts_.batch_size, taken.size() - i);
    std::vector<store::UsageRecord> batch(std::make_move_iterator(taken.begin() + i),
                                          std::make_move_iterator(taken.begin() + i + n));
    if (!deliver(batch, {})) {
      ok = false;
      std::lock_guard lock(mutex_);
      queue_.insert(queue_.begin(), std::make_move_iterator(batch.begin()),
                    std::make_move_iterator(batch.end()));
    }
  }
  return ok;
}

void UsageWriter::run() {
  constexpr int kFinalRounds = 10;
  // A round that throws (out of memory) is a failed round: records stay spooled or queued.
  const auto drain = [this] {
    try {
      return drain_once(false);
    } catch (const std::exception& e) {
      core::LogLine(core::LogLevel::Error, "usage writer round failed").field("error", e.what()).emit();
      return false;
    }
  };
  while (true) {
    bool last = false;
    {
      std::unique_lock lock(mutex_);
      cv_.wait_for(lock, opts_.flush_interval,
                   [&] { return stopping_ || queue_.size() >= opts_.batch_size; });
      last = stopping_;
    }
    bool ok = drain();
    if (!last) {
      continue;
    }
    // Stopping: drain until empty, a bounded number of rounds. What a spool still holds then
    // is replayed at the next start; what the queue holds is reported.
    for (int round = 1; round < kFinalRounds && ok; ++round) {
      bool pending;
      {
        std::lock_guard lock(mutex_);
        pending = !queue_.empty();
      }
      for (const auto& s : spools_) {
        pending = pending || s->pending_bytes() > 0;
      }
      if (!pending) {
        break;
      }
      ok = drain();
    }
    std::lock_guard lock(mutex_);
    if (!queue_.empty()) {
      core::LogLine(core::LogLevel::Error, "usage records not written at shutdown")
          .field("queued", static_cast<std::uint64_t>(queue_.size()))
          .emit();
    }
    break;
  }
}

std::uint64_t UsageWriter::pending_bytes() const noexcept {
  std::uint64_t n = 0;
  for (const auto& s : spools_) {
    n += s->pending_bytes();
  }
  return n;
}

}  // namespace llmgw::events

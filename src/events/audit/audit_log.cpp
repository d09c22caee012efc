#include "events/audit/audit_log.hpp"

#include "core/ids.hpp"
#include "core/log.hpp"
#include "core/thread.hpp"
#include "events/archive/batch_codec.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace llmgw::audit {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view kMarker = "audit-batch.marker";
/// How often the archiver looks at the spools. In a second a loaded I/O thread writes more
/// than its spool holds (4 MiB: about 0.35 s of metadata records at 18,000 req/s).
constexpr auto kWake = std::chrono::milliseconds(100);
/// The archiver's nice value. At 19 (a weight of 15 against the I/O thread's 1,024) it got
/// about 1.5 % of a saturated core, less than the records it must compress (full bodies at
/// 20,000 req/s: about 15 %), and the spools filled and dropped records. At 5 (335) it gets
/// about a quarter; SCHED_BATCH keeps its wake-ups from preempting a request.
constexpr int kNice = 5;
/// At most one log line per this interval about dropped records (each names the total).
constexpr std::int64_t kDropLogIntervalUs = 1'000'000;
/// Records per push to the buffer: one Redis script, kept short.
constexpr std::size_t kMaxPushRecords = 1'000;
/// How long stop() retries a buffer that does not take a push (at most the stop grace).
constexpr std::chrono::milliseconds kBufferStopGrace{2'000};

void fsync_path(const std::string& path, int flags) {
  const int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

}  // namespace

AuditLog::AuditLog(AuditLogOptions opt, std::unique_ptr<archive::ArchiveSink> sink,
                   std::function<std::string(std::chrono::system_clock::time_point)> name_for)
    : opt_(std::move(opt)), sink_(std::move(sink)), name_for_(std::move(name_for)) {
  opt_.flush_size = std::max<std::size_t>(1, opt_.flush_size);
  submitted_ = std::make_unique<Counter[]>(std::max(1u, opt_.producers));
}

AuditLog::~AuditLog() { stop(); }

void AuditLog::attach_buffer(std::unique_ptr<AuditBuffer> buffer) { buffer_ = std::move(buffer); }

void AuditLog::start() {
  if (!sink_ && !buffer_) {
    throw std::invalid_argument("the audit log needs an archive sink or a buffer");
  }
  fs::create_directories(opt_.spool_dir);
  for (unsigned i = 0;; ++i) {
    const std::string path = opt_.spool_dir + "/audit-" + std::to_string(i) + ".spool";
    if (i >= opt_.producers && !fs::exists(path)) {
      break;
    }
    spools_.push_back(events::Spool::open(path, opt_.spool_bytes, {}, "audit spool"));
  }
  overflow_ = events::Spool::open(opt_.spool_dir + "/audit-overflow.spool", opt_.overflow_bytes, {},
                                  "audit spool");
  finish_marked();
  thread_ = std::thread([this] { run(); });
}

bool AuditLog::submit(std::string_view line, std::size_t producer) {
  if (producer < opt_.producers && producer < spools_.size() && spools_[producer]->append(line)) {
    auto& c = submitted_[producer].n;
    c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    return true;
  }
  {
    const std::lock_guard lock(overflow_mu_);
    if (overflow_ && overflow_->append(line)) {
      overflowed_.fetch_add(1, std::memory_order_relaxed);
      return true;
    }
  }
  const std::uint64_t total = dropped_.fetch_add(1, std::memory_order_relaxed) + 1;
  // A line per record would flood the log (and the I/O thread) exactly when the archive
  // falls behind: one a second, with the running total.
  const std::int64_t now = core::unix_micros();
  std::int64_t last = drop_logged_us_.load(std::memory_order_relaxed);
  if (now - last >= kDropLogIntervalUs &&
      drop_logged_us_.compare_exchange_strong(last, now, std::memory_order_relaxed)) {
    core::LogLine(core::LogLevel::Error, "audit records dropped: the audit spools are full")
        .field("dropped_total", total)
        .emit();
  }
  return false;
}

void AuditLog::stop() {
  {
    const std::lock_guard lock(mu_);
    if (stopping_ && !thread_.joinable()) {
      return;
    }
    stopping_ = true;
    // A buffer (Redis) that does not answer at stop is not waited for long: the records are
    // safe in the spools, and the next start pushes them.
    stop_deadline_ = std::chrono::steady_clock::now() +
                     (buffer_ ? std::min(opt_.stop_grace, kBufferStopGrace) : opt_.stop_grace);
  }
  cv_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
  }
}

std::uint64_t AuditLog::pending_bytes() const noexcept {
  std::uint64_t n = 0;
  for (const auto& s : spools_) {
    n += s->pending_bytes();
  }
  return overflow_ ? n + overflow_->pending_bytes() : n;
}

double AuditLog::lag_seconds() const noexcept {
  const std::int64_t since = waiting_since_us_.load(std::memory_order_relaxed);
  return since == 0 ? 0.0 : static_cast<double>(core::unix_micros() - since) / 1e6;
}

std::uint64_t AuditLog::submitted_total() const noexcept {
  std::uint64_t n = overflowed_.load(std::memory_order_relaxed);
  for (unsigned i = 0; i < opt_.producers; ++i) {
    n += submitted_[i].n.load(std::memory_order_relaxed);
  }
  return n;
}

void AuditLog::run() {
  // Background work yields to requests, but not so far that it falls behind them.
  core::name_this_thread("llmgw-audit");
  core::make_this_thread_background(kNice);
  auto last_flush = std::chrono::steady_clock::now();
  bool first = true;
  while (true) {
    bool stopping = false;
    {
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, kWake, [this] { return stopping_; });
      stopping = stopping_;
    }
    if (stopping) {
      flush(stop_deadline_, true);
      return;
    }
    const std::uint64_t submitted = submitted_total();
    const bool waiting = pending_bytes() > 0;
    if (waiting && waiting_since_us_.load() == 0) {
      waiting_since_us_.store(core::unix_micros());
    }
    const auto now = std::chrono::steady_clock::now();
    // At start what an earlier run left is archived at once; after that by size or time. A
    // buffer takes everything at once: the objects are made by its drain workers.
    if (waiting && (first || buffer_ || submitted - taken_ >= opt_.flush_size ||
                    now - last_flush >= opt_.flush_interval)) {
      const std::size_t left = flush(std::chrono::steady_clock::time_point::max(), first);
      // Counted from here: what the flush left spooled counts toward the next batch.
      const std::uint64_t now_submitted = submitted_total();
      taken_ = now_submitted - std::min<std::uint64_t>(left, now_submitted);
      last_flush = std::chrono::steady_clock::now();
    }
    first = false;
  }
}

bool AuditLog::take(Batch& b, std::size_t max) {
  b = {};
  std::vector<std::uint64_t> seqs;
  const auto from = [&](events::Spool& s, std::size_t index) {
    if (b.records.size() >= max || s.pending_bytes() == 0) {
      return;
    }
    std::uint64_t next = 0;
    bool damaged = false;
    const std::size_t before = b.records.size();
    s.read(max - before, b.records, seqs, next, &damaged);
    if (damaged) {
      core::LogLine(core::LogLevel::Error, "audit spool damaged: unreadable bytes skipped")
          .field("spool", s.name())
          .emit();
    }
    if (next != s.tail()) {
      b.ends.emplace_back(index, next);
    }
  };
  for (std::size_t i = 0; i < spools_.size(); ++i) {
    from(*spools_[i], i);
  }
  from(*overflow_, spools_.size());  // one consumer: reading needs no lock, as for the others
  if (b.ends.empty()) {
    return false;
  }
  b.name = name_for_(std::chrono::system_clock::now());
  return true;
}

std::size_t AuditLog::flush(std::chrono::steady_clock::time_point deadline, bool drain) {
  if (pending_) {
    if (!upload(*pending_, deadline)) {
      return 0;
    }
    pending_.reset();
  }
  const std::size_t max = buffer_ ? std::min(opt_.flush_size, kMaxPushRecords) : opt_.flush_size;
  Batch b;
  bool first_batch = true;
  while (take(b, max)) {
    if (!drain && !first_batch && b.records.size() < max) {
      // Records that came in while the batches before were uploaded. Taking them too chased
      // the spool's head under load: an object of a dozen records every few milliseconds,
      // each with its files and fsyncs. They were read, not consumed: they stay spooled.
      waiting_since_us_.store(core::unix_micros());
      return b.records.size();
    }
    first_batch = false;
    if (!upload(b, deadline)) {
      // Stopping with a failing sink: the rest stays spooled for the next start. This batch is
      // tried again first, as it is: its upload (or push) may have been carried out with the
      // answer lost, and the same records under another name would be archived twice.
      pending_ = std::move(b);
      return 0;
    }
  }
  waiting_since_us_.store(0);
  return 0;
}

void AuditLog::write_marker(const Batch& b) {
  const std::string path = opt_.spool_dir + "/" + std::string(kMarker);
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << b.name << '\n';
    for (const auto& [index, next] : b.ends) {
      out << index << ' ' << next << '\n';
    }
    if (!out) {
      throw std::runtime_error("cannot write " + tmp);
    }
  }
  fsync_path(tmp, O_RDONLY);
  fs::rename(tmp, path);
  fsync_path(opt_.spool_dir, O_RDONLY | O_DIRECTORY);
}

archive::PutResult AuditLog::send(const Batch& b, const std::string& bytes) {
  if (buffer_) {
    return buffer_->push(b.records, b.name)
               ? archive::PutResult::stored()
               : archive::PutResult::failed("the audit buffer (Redis) did not take the records");
  }
  return sink_->put(b.name, bytes);
}

bool AuditLog::upload(Batch& b, std::chrono::steady_clock::time_point deadline) {
  // A record that cannot be a JSON line (render() never makes one) must not hold up every
  // record behind it: it is left out, logged and counted.
  if (const std::size_t bad = archive::erase_invalid_records(b.records); bad > 0) {
    dropped_.fetch_add(bad);
    core::LogLine(core::LogLevel::Error, "audit records left out: not one JSON line each")
        .field("records", static_cast<std::uint64_t>(bad))
        .emit();
  }
  std::string bytes;  // a buffer's drain worker encodes the object
  if (!buffer_) {
    std::string error;
    auto encoded = archive::encode_batch(b.records, error);
    if (!encoded) {
      core::LogLine(core::LogLevel::Error, "audit batch not encoded").field("error", error).emit();
      return false;
    }
    bytes = std::move(*encoded);
  }
  try {
    write_marker(b);
  } catch (const std::exception& e) {
    core::LogLine(core::LogLevel::Error, "audit batch marker not written")
        .field("error", e.what())
        .emit();
    return false;
  }
  auto wait = opt_.retry_min;
  while (true) {
    const archive::PutResult r = send(b, bytes);
    if (r.status == archive::PutStatus::Stored) {
      break;
    }
    failures_.fetch_add(1);
    healthy_.store(false);
    core::LogLine(core::LogLevel::Warn, buffer_ ? "audit records not pushed to the buffer; retrying"
                                                : "audit object not stored; retrying")
        .field("object", b.name)
        .field("error", r.reason)
        .field("retry_in_ms", static_cast<std::int64_t>(wait.count()))
        .emit();
    if (r.status == archive::PutStatus::Conflict) {
      // The name holds other bytes (it cannot, unless two writers share a POD_NAME): a new
      // name, never an overwrite.
      b.name = name_for_(std::chrono::system_clock::now());
      write_marker(b);
    }
    {
      const std::lock_guard lock(mu_);
      if (stopping_) {
        deadline = std::min(deadline, stop_deadline_);
      }
    }
    if (std::chrono::steady_clock::now() + wait > deadline) {
      return false;
    }
    {
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, wait);  // stop() wakes it once; the deadline then bounds the retries
    }
    wait = std::min(opt_.retry_max, wait * 2);
  }
  healthy_.store(true);
  for (const auto& [index, next] : b.ends) {
    (index < spools_.size() ? *spools_[index] : *overflow_).consume(next);
  }
  std::error_code ec;
  fs::remove(opt_.spool_dir + "/" + std::string(kMarker), ec);
  archived_.fetch_add(b.records.size());
  objects_.fetch_add(1);
  return true;
}

void AuditLog::finish_marked() {
  const std::string path = opt_.spool_dir + "/" + std::string(kMarker);
  std::ifstream in(path);
  if (!in) {
    return;
  }
  Batch b;
  std::getline(in, b.name);
  std::size_t index = 0;
  std::uint64_t next = 0;
  while (in >> index >> next) {
    b.ends.emplace_back(index, next);
  }
  // The same records as before the crash: each spool read up to where the batch ended.
  std::vector<std::uint64_t> seqs;
  std::vector<std::pair<std::size_t, std::uint64_t>> ends;
  for (const auto& [i, end] : b.ends) {
    if (i > spools_.size()) {
      continue;
    }
    events::Spool& s = i < spools_.size() ? *spools_[i] : *overflow_;
    if (s.tail() >= end) {
      continue;  // consumed before the crash; only the marker was left
    }
    std::uint64_t reached = 0;
    s.read(SIZE_MAX, b.records, seqs, reached, nullptr, end);
    ends.emplace_back(i, reached);
  }
  b.ends = std::move(ends);
  std::error_code ec;
  if (b.ends.empty() || b.name.empty()) {
    fs::remove(path, ec);
    return;
  }
  core::LogLine(core::LogLevel::Warn, "audit batch of an interrupted run uploaded again")
      .field("object", b.name)
      .field("records", static_cast<std::uint64_t>(b.records.size()))
      .emit();
  if (!upload(b, std::chrono::steady_clock::now() + opt_.stop_grace)) {
    pending_ = std::move(b);
  }
}

}  // namespace llmgw::audit

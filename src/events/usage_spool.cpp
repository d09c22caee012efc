#include "events/usage_spool.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>

namespace llmgw::events {

namespace {

constexpr char kMagic[8] = {'L', 'L', 'M', 'G', 'W', 'S', 'P', '1'};
constexpr std::size_t kHeaderBytes = 4096;
constexpr std::uint32_t kMaxRecordBytes = 1u << 20;

void put_u32(std::string& s, std::uint32_t v) { s.append(reinterpret_cast<const char*>(&v), 4); }
void put_u64(std::string& s, std::uint64_t v) { s.append(reinterpret_cast<const char*>(&v), 8); }
void put_str(std::string& s, const std::string& v) {
  put_u32(s, static_cast<std::uint32_t>(v.size()));
  s += v;
}

struct Reader {
  const char* p;
  const char* end;
  bool ok = true;
  std::uint64_t u64() {
    std::uint64_t v = 0;
    if (end - p < 8) {
      ok = false;
      return 0;
    }
    std::memcpy(&v, p, 8);
    p += 8;
    return v;
  }
  std::uint32_t u32() {
    std::uint32_t v = 0;
    if (end - p < 4) {
      ok = false;
      return 0;
    }
    std::memcpy(&v, p, 4);
    p += 4;
    return v;
  }
  std::string str() {
    const std::uint32_t n = u32();
    if (!ok || static_cast<std::size_t>(end - p) < n) {
      ok = false;
      return {};
    }
    std::string s(p, n);
    p += n;
    return s;
  }
};

}  // namespace

struct UsageSpool::Header {
  char magic[8];
  std::uint64_t capacity;
  alignas(64) std::atomic<std::uint64_t> head;  ///< bytes ever appended
  alignas(64) std::atomic<std::uint64_t> tail;  ///< bytes ever consumed
  alignas(64) std::uint64_t next_seq;           ///< producer's next sequence number
};
static_assert(sizeof(UsageSpool::Header) <= kHeaderBytes);
static_assert(std::atomic<std::uint64_t>::is_always_lock_free);

std::unique_ptr<UsageSpool> UsageSpool::open(const std::string& path, std::size_t capacity,
                                             const std::string& name_prefix) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    throw std::runtime_error("usage spool " + path + ": " + std::strerror(errno));
  }
  // One process per spool: a second gateway on the same data directory would count the
  // same records twice and corrupt the ring.
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    throw std::runtime_error("usage spool " + path +
                             " is in use by another llmgw process on this data directory");
  }
  struct stat st {};
  ::fstat(fd, &st);
  bool fresh = st.st_size == 0;
  std::size_t bytes = kHeaderBytes + capacity;
  if (!fresh) {
    bytes = static_cast<std::size_t>(st.st_size);  // an existing spool keeps its size
  } else if (const int rc = ::posix_fallocate(fd, 0, static_cast<off_t>(bytes)); rc != 0) {
    // Allocated now, not sparse: a write into the mapping can never meet a full disk (SIGBUS).
    ::close(fd);
    throw std::runtime_error("usage spool " + path + ": " + std::strerror(rc));
  }
  void* m = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (m == MAP_FAILED) {
    ::close(fd);
    throw std::runtime_error("usage spool " + path + ": mmap: " + std::strerror(errno));
  }
  auto s = std::unique_ptr<UsageSpool>(new UsageSpool());
  s->name_ = name_prefix + std::filesystem::path(path).filename().string();
  s->fd_ = fd;
  s->map_ = static_cast<char*>(m);
  s->map_bytes_ = bytes;
  s->header_ = reinterpret_cast<Header*>(s->map_);
  s->ring_ = s->map_ + kHeaderBytes;
  // A process that died between allocating the file and writing its header left zeros.
  static constexpr char kZero[sizeof kMagic] = {};
  fresh = fresh || std::memcmp(s->header_->magic, kZero, sizeof kZero) == 0;
  if (fresh) {
    std::memcpy(s->header_->magic, kMagic, sizeof kMagic);
    s->header_->capacity = bytes - kHeaderBytes;
    s->header_->head.store(0);
    s->header_->tail.store(0);
    s->header_->next_seq = 1;
  } else if (std::memcmp(s->header_->magic, kMagic, sizeof kMagic) != 0 ||
             s->header_->capacity != bytes - kHeaderBytes ||
             s->header_->tail.load() > s->header_->head.load() ||
             s->header_->head.load() - s->header_->tail.load() > s->header_->capacity) {
    throw std::runtime_error("usage spool " + path + " is not a spool of this version or is "
                             "damaged; move it aside to start a new one");
  }
  s->capacity_ = s->header_->capacity;
  return s;
}

UsageSpool::~UsageSpool() {
  if (map_ != nullptr) {
    ::msync(map_, map_bytes_, MS_SYNC);
    ::munmap(map_, map_bytes_);
  }
  if (fd_ >= 0) {
    ::close(fd_);
  }
}

void UsageSpool::copy_in(std::uint64_t pos, const char* data, std::size_t n) {
  const std::size_t at = static_cast<std::size_t>(pos % capacity_);
  const std::size_t first = std::min<std::size_t>(n, capacity_ - at);
  std::memcpy(ring_ + at, data, first);
  std::memcpy(ring_, data + first, n - first);
}

void UsageSpool::copy_out(std::uint64_t pos, char* data, std::size_t n) const {
  const std::size_t at = static_cast<std::size_t>(pos % capacity_);
  const std::size_t first = std::min<std::size_t>(n, capacity_ - at);
  std::memcpy(data, ring_ + at, first);
  std::memcpy(data + first, ring_, n - first);
}

bool UsageSpool::append(const store::UsageRecord& r) {
  std::string& s = scratch_;
  s.clear();
  put_u32(s, 0);  // length, filled below
  put_u64(s, header_->next_seq);
  for (const std::string* f : {&r.request_id, &r.client_request_id, &r.key_id, &r.model,
                               &r.upstream_model, &r.provider, &r.endpoint, &r.pricing_model,
                               &r.service_tier, &r.cost_usd, &r.cost_status, &r.prices_json}) {
    put_str(s, *f);
  }
  for (std::int64_t v : {std::int64_t{r.status}, r.prompt_tokens, r.completion_tokens,
                         r.cached_tokens, r.reasoning_tokens, r.cache_write_tokens,
                         r.overhead_us, r.upstream_us, std::int64_t{r.stream},
                         std::int64_t{r.usage_reported}, r.created_at_us}) {
    put_u64(s, static_cast<std::uint64_t>(v));
  }
  const auto len = static_cast<std::uint32_t>(s.size() - 4);
  std::memcpy(s.data(), &len, 4);
  const std::uint64_t head = header_->head.load(std::memory_order_relaxed);
  const std::uint64_t tail = header_->tail.load(std::memory_order_acquire);
  if (s.size() > kMaxRecordBytes || head - tail + s.size() > capacity_) {
    return false;
  }
  copy_in(head, s.data(), s.size());
  ++header_->next_seq;
  header_->head.store(head + s.size(), std::memory_order_release);  // publishes the record
  return true;
}

void UsageSpool::read(std::size_t max, std::vector<store::UsageRecord>& out,
                      std::vector<std::uint64_t>& seqs, std::uint64_t& next_tail,
                      bool* damaged) const {
  bool ignored = false;
  if (damaged == nullptr) {
    damaged = &ignored;
  }
  std::uint64_t pos = header_->tail.load(std::memory_order_relaxed);
  const std::uint64_t head = header_->head.load(std::memory_order_acquire);
  std::string buf;
  std::size_t n = 0;
  while (pos < head && n < max) {
    std::uint32_t len = 0;
    copy_out(pos, reinterpret_cast<char*>(&len), 4);
    if (len == 0 || len > kMaxRecordBytes || pos + 4 + len > head) {
      // Not a record append() published (a power loss wrote the header but not the ring):
      // what follows cannot be framed. Give up on it rather than stall the spool.
      *damaged = true;
      pos = head;
      break;
    }
    buf.resize(len);
    copy_out(pos + 4, buf.data(), len);
    Reader rd{buf.data(), buf.data() + buf.size()};
    const std::uint64_t seq = rd.u64();
    store::UsageRecord r;
    for (std::string* f : {&r.request_id, &r.client_request_id, &r.key_id, &r.model,
                           &r.upstream_model, &r.provider, &r.endpoint, &r.pricing_model,
                           &r.service_tier, &r.cost_usd, &r.cost_status, &r.prices_json}) {
      *f = rd.str();
    }
    std::int64_t v[11];
    for (auto& x : v) {
      x = static_cast<std::int64_t>(rd.u64());
    }
    r.status = static_cast<int>(v[0]);
    r.prompt_tokens = v[1];
    r.completion_tokens = v[2];
    r.cached_tokens = v[3];
    r.reasoning_tokens = v[4];
    r.cache_write_tokens = v[5];
    r.overhead_us = v[6];
    r.upstream_us = v[7];
    r.stream = v[8] != 0;
    r.usage_reported = v[9] != 0;
    r.created_at_us = v[10];
    pos += 4 + len;
    if (!rd.ok) {
      continue;  // undecodable: skipped rather than stopping the spool
    }
    out.push_back(std::move(r));
    seqs.push_back(seq);
    ++n;
  }
  next_tail = pos;
}

void UsageSpool::consume(std::uint64_t next_tail) {
  // Starts write-back of the ring (it does not wait): records reach the disk sooner, which
  // narrows what a power loss can take. A process kill loses nothing either way.
  ::msync(map_, map_bytes_, MS_ASYNC);
  header_->tail.store(next_tail, std::memory_order_release);
}

std::uint64_t UsageSpool::next_sequence() const noexcept { return header_->next_seq; }

void UsageSpool::start_sequence_after(std::uint64_t seq) {
  if (pending_bytes() == 0 && header_->next_seq <= seq) {
    header_->next_seq = seq + 1;
  }
}

std::uint64_t UsageSpool::pending_bytes() const noexcept {
  return header_->head.load(std::memory_order_acquire) -
         header_->tail.load(std::memory_order_acquire);
}

}  // namespace llmgw::events

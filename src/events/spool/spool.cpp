#include "events/spool/spool.hpp"

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

}  // namespace

struct Spool::Header {
  char magic[8];
  std::uint64_t capacity;
  alignas(64) std::atomic<std::uint64_t> head;  ///< bytes ever appended
  alignas(64) std::atomic<std::uint64_t> tail;  ///< bytes ever consumed
  alignas(64) std::uint64_t next_seq;           ///< producer's next sequence number
};
static_assert(sizeof(Spool::Header) <= kHeaderBytes);
static_assert(std::atomic<std::uint64_t>::is_always_lock_free);

std::unique_ptr<Spool> Spool::open(const std::string& path, std::size_t capacity,
                                   const std::string& name_prefix, std::string_view what) {
  const std::string label = std::string(what) + " " + path;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    throw std::runtime_error(label + ": " + std::strerror(errno));
  }
  // One process per spool: a second gateway on the same data directory would count the
  // same records twice and corrupt the ring.
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    throw std::runtime_error(label + " is in use by another llmgw process on this data directory");
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
    throw std::runtime_error(label + ": " + std::strerror(rc));
  }
  void* m = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (m == MAP_FAILED) {
    ::close(fd);
    throw std::runtime_error(label + ": mmap: " + std::strerror(errno));
  }
  auto s = std::unique_ptr<Spool>(new Spool());
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
    throw std::runtime_error(label + " is not a spool of this version or is damaged; move it "
                             "aside to start a new one");
  }
  s->capacity_ = s->header_->capacity;
  return s;
}

Spool::~Spool() {
  if (map_ != nullptr) {
    ::msync(map_, map_bytes_, MS_SYNC);
    ::munmap(map_, map_bytes_);
  }
  if (fd_ >= 0) {
    ::close(fd_);
  }
}

void Spool::copy_in(std::uint64_t pos, const char* data, std::size_t n) {
  const std::size_t at = static_cast<std::size_t>(pos % capacity_);
  const std::size_t first = std::min<std::size_t>(n, capacity_ - at);
  std::memcpy(ring_ + at, data, first);
  std::memcpy(ring_, data + first, n - first);
}

void Spool::copy_out(std::uint64_t pos, char* data, std::size_t n) const {
  const std::size_t at = static_cast<std::size_t>(pos % capacity_);
  const std::size_t first = std::min<std::size_t>(n, capacity_ - at);
  std::memcpy(data, ring_ + at, first);
  std::memcpy(data + first, ring_, n - first);
}

bool Spool::append(std::string_view payload) {
  std::string& f = frame_;
  const std::uint64_t seq = header_->next_seq;
  const auto len = static_cast<std::uint32_t>(8 + payload.size());
  f.clear();
  f.append(reinterpret_cast<const char*>(&len), 4);
  f.append(reinterpret_cast<const char*>(&seq), 8);
  f.append(payload);
  const std::uint64_t head = header_->head.load(std::memory_order_relaxed);
  const std::uint64_t tail = header_->tail.load(std::memory_order_acquire);
  if (payload.size() + 8 > kMaxRecordBytes || head - tail + f.size() > capacity_) {
    return false;
  }
  copy_in(head, f.data(), f.size());
  ++header_->next_seq;
  header_->head.store(head + f.size(), std::memory_order_release);  // publishes the record
  return true;
}

void Spool::read(std::size_t max, std::vector<std::string>& out, std::vector<std::uint64_t>& seqs,
                 std::uint64_t& next_tail, bool* damaged, std::uint64_t limit) const {
  bool ignored = false;
  if (damaged == nullptr) {
    damaged = &ignored;
  }
  std::uint64_t pos = header_->tail.load(std::memory_order_relaxed);
  std::uint64_t head = header_->head.load(std::memory_order_acquire);
  if (limit != 0 && limit < head) {
    head = limit;
  }
  std::size_t n = 0;
  while (pos < head && n < max) {
    std::uint32_t len = 0;
    copy_out(pos, reinterpret_cast<char*>(&len), 4);
    if (len < 8 || len > kMaxRecordBytes || pos + 4 + len > head) {
      // Not a record append() published (a power loss wrote the header but not the ring):
      // what follows cannot be framed. Give up on it rather than stall the spool.
      *damaged = true;
      pos = head;
      break;
    }
    std::uint64_t seq = 0;
    copy_out(pos + 4, reinterpret_cast<char*>(&seq), 8);
    std::string payload(len - 8, '\0');
    copy_out(pos + 12, payload.data(), payload.size());
    out.push_back(std::move(payload));
    seqs.push_back(seq);
    pos += 4 + len;
    ++n;
  }
  next_tail = pos;
}

void Spool::consume(std::uint64_t next_tail) {
  // Starts write-back of the ring (it does not wait): records reach the disk sooner, which
  // narrows what a power loss can take. A process kill loses nothing either way.
  ::msync(map_, map_bytes_, MS_ASYNC);
  header_->tail.store(next_tail, std::memory_order_release);
}

std::uint64_t Spool::next_sequence() const noexcept { return header_->next_seq; }

void Spool::start_sequence_after(std::uint64_t seq) {
  if (pending_bytes() == 0 && header_->next_seq <= seq) {
    header_->next_seq = seq + 1;
  }
}

std::uint64_t Spool::tail() const noexcept {
  return header_->tail.load(std::memory_order_acquire);
}

std::uint64_t Spool::pending_bytes() const noexcept {
  return header_->head.load(std::memory_order_acquire) -
         header_->tail.load(std::memory_order_acquire);
}

}  // namespace llmgw::events

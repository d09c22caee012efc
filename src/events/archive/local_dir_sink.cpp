#include "events/archive/local_dir_sink.hpp"

#include "events/archive/object_name.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <system_error>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace llmgw::archive {

namespace {

namespace fs = std::filesystem;

constexpr std::size_t kReadChunk = 1u << 20;
constexpr mode_t kFileMode = 0640;  // audit records hold request bodies
constexpr mode_t kDirMode = 0750;

std::string errno_text(int err) { return std::error_code(err, std::generic_category()).message(); }

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) {
      ::close(fd_);
    }
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  [[nodiscard]] int get() const noexcept { return fd_; }
  /// close(2)'s own result: a write error may only show here (NFS).
  int close() {
    const int rc = ::close(fd_);
    fd_ = -1;
    return rc;
  }

 private:
  int fd_;
};

/// Temporary names are unique in the process (several sinks may share a directory) and across
/// processes (the pid).
std::uint64_t next_temp_number() {
  static std::atomic<std::uint64_t> counter{0};
  return counter.fetch_add(1, std::memory_order_relaxed);
}

bool fsync_dir(const std::string& dir) {
  const Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  return fd.get() >= 0 && ::fsync(fd.get()) == 0;
}

/// Creates `dir` and its missing parents below `root`, each made durable in its parent.
bool make_dirs(const std::string& root, std::string_view relative, std::string& error) {
  std::string path = root;
  if (::mkdir(path.c_str(), kDirMode) != 0 && errno != EEXIST) {
    error = "creating " + path + " failed: " + errno_text(errno);
    return false;
  }
  std::size_t start = 0;
  while (start < relative.size()) {
    const std::size_t slash = relative.find('/', start);
    const std::size_t end = slash == std::string_view::npos ? relative.size() : slash;
    const std::string parent = path;
    path += '/';
    path.append(relative.substr(start, end - start));
    if (::mkdir(path.c_str(), kDirMode) == 0) {
      if (!fsync_dir(parent)) {
        error = "syncing " + parent + " failed: " + errno_text(errno);
        return false;
      }
    } else if (errno != EEXIST) {
      error = "creating " + path + " failed: " + errno_text(errno);
      return false;
    }
    start = end + 1;
  }
  return true;
}

bool write_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return false;
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

/// The whole file; nullopt with errno set.
std::optional<std::string> read_file(const std::string& path) {
  const Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    return std::nullopt;
  }
  std::string out;
  for (;;) {
    const std::size_t old = out.size();
    out.resize(old + kReadChunk);
    const ssize_t n = ::read(fd.get(), out.data() + old, kReadChunk);
    if (n < 0) {
      if (errno == EINTR) {
        out.resize(old);
        continue;
      }
      return std::nullopt;
    }
    out.resize(old + static_cast<std::size_t>(n));
    if (n == 0) {
      return out;
    }
  }
}

/// What a put that found `path` already there answers.
PutResult compare_existing(const std::string& path, std::string_view bytes) {
  const auto existing = read_file(path);
  if (!existing) {
    return PutResult::failed("reading the existing " + path + " failed: " + errno_text(errno));
  }
  if (*existing == bytes) {
    return PutResult::stored();
  }
  return PutResult::conflict(path + " exists with other content");
}

}  // namespace

LocalDirSink::LocalDirSink(std::string dir) : dir_(std::move(dir)) {
  while (dir_.size() > 1 && dir_.back() == '/') {
    dir_.pop_back();
  }
  if (dir_.empty()) {
    dir_ = ".";
  }
}

PutResult LocalDirSink::put(std::string_view name, std::string_view bytes) {
  if (!valid_object_name(name)) {
    return PutResult::failed("'" + std::string(name) + "' is not a valid object name");
  }
  const std::string path = dir_ + "/" + std::string(name);
  const std::size_t slash = name.rfind('/');
  const std::string_view relative_dir =
      slash == std::string_view::npos ? std::string_view{} : name.substr(0, slash);
  const std::string parent = relative_dir.empty() ? dir_ : dir_ + "/" + std::string(relative_dir);
  const std::string_view base = name.substr(slash == std::string_view::npos ? 0 : slash + 1);

  struct stat st{};
  if (::stat(path.c_str(), &st) == 0) {
    return compare_existing(path, bytes);
  }
  std::string error;
  if (!make_dirs(dir_, relative_dir, error)) {
    return PutResult::failed(std::move(error));
  }
  const std::string temp = parent + "/." + std::string(base) + "." + std::to_string(::getpid()) +
                           "." + std::to_string(next_temp_number()) + ".tmp";
  Fd fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, kFileMode));
  if (fd.get() < 0) {
    return PutResult::failed("creating " + temp + " failed: " + errno_text(errno));
  }
  if (!write_all(fd.get(), bytes) || ::fsync(fd.get()) != 0 || fd.close() != 0) {
    const int err = errno;
    ::unlink(temp.c_str());
    return PutResult::failed("writing " + temp + " failed: " + errno_text(err));
  }
  // link(2) refuses an existing name: two writers of one name cannot replace each other.
  int rc = ::link(temp.c_str(), path.c_str());
  int err = errno;
  if (rc != 0 && err != EEXIST) {
    // A file system without hard links: rename without replacing.
    rc = ::renameat2(AT_FDCWD, temp.c_str(), AT_FDCWD, path.c_str(), RENAME_NOREPLACE);
    err = errno;
  }
  ::unlink(temp.c_str());
  if (rc != 0) {
    if (err == EEXIST) {
      return compare_existing(path, bytes);
    }
    return PutResult::failed("naming " + path + " failed: " + errno_text(err));
  }
  if (!fsync_dir(parent)) {
    return PutResult::failed("syncing " + parent + " failed: " + errno_text(errno));
  }
  return PutResult::stored();
}

std::optional<std::string> LocalDirSink::get(std::string_view name, std::string& error) {
  if (!valid_object_name(name)) {
    error = "'" + std::string(name) + "' is not a valid object name";
    return std::nullopt;
  }
  const std::string path = dir_ + "/" + std::string(name);
  auto bytes = read_file(path);
  if (!bytes) {
    error = "reading " + path + " failed: " + errno_text(errno);
  }
  return bytes;
}

std::optional<std::vector<std::string>> LocalDirSink::list(std::string_view prefix,
                                                           std::string& error) {
  std::vector<std::string> names;
  std::error_code ec;
  if (!fs::exists(dir_, ec)) {
    return names;
  }
  for (fs::recursive_directory_iterator it(dir_, ec), end; !ec && it != end; it.increment(ec)) {
    if (!it->is_regular_file(ec)) {
      continue;
    }
    std::string name = it->path().lexically_relative(dir_).generic_string();
    if (valid_object_name(name) && name.starts_with(prefix)) {
      names.push_back(std::move(name));
    }
  }
  if (ec) {
    error = "listing " + dir_ + " failed: " + ec.message();
    return std::nullopt;
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::string LocalDirSink::describe() const {
  std::error_code ec;
  const fs::path abs = fs::absolute(dir_, ec);
  return "file://" + (ec ? dir_ : abs.lexically_normal().generic_string());
}

}  // namespace llmgw::archive

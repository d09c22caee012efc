#include "admin/secrets.hpp"

#include "auth/api_key.hpp"
#include "core/ids.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <stdexcept>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

namespace llmgw::admin {

namespace {

constexpr std::size_t kKeyBytes = 32;

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? std::string() : std::string(v);
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) {
    s.remove_suffix(1);
  }
  while (!s.empty() && s.front() == ' ') {
    s.remove_prefix(1);
  }
  return s;
}

void fsync_dir(const std::string& path) {
  const auto dir = std::filesystem::path(path).parent_path();
  const int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

}  // namespace

MasterKeyCodec::MasterKeyCodec(std::vector<auth::Bytes> keys) : keys_(std::move(keys)) {
  if (keys_.empty()) {
    throw std::invalid_argument("MasterKeyCodec: no key");
  }
  for (const auto& k : keys_) {
    if (k.size() != kKeyBytes) {
      throw std::invalid_argument("MasterKeyCodec: a key is not 32 bytes");
    }
  }
}

std::string MasterKeyCodec::seal(std::string_view plaintext, std::string_view aad) const {
  return auth::seal_secret(keys_.front(), plaintext, aad);
}

std::optional<std::string> MasterKeyCodec::open(std::string_view sealed,
                                                std::string_view aad) const {
  for (const auto& k : keys_) {
    if (auto v = auth::open_secret(k, sealed, aad)) {
      return v;
    }
  }
  return std::nullopt;
}

std::optional<auth::Bytes> parse_key_text(std::string_view text) {
  text = trim(text);
  if (auth::KeyDigest raw; auth::parse_digest_hex(text, raw)) {  // 64 hex digits = 32 bytes
    return auth::Bytes(raw.begin(), raw.end());
  }
  // Base64 in either alphabet, padding optional: normalise to url-safe without padding.
  std::string s(text);
  while (!s.empty() && s.back() == '=') {
    s.pop_back();
  }
  for (char& c : s) {
    c = c == '+' ? '-' : c == '/' ? '_' : c;
  }
  auto bytes = core::base64url_decode(s);
  if (!bytes || bytes->size() != kKeyBytes) {
    return std::nullopt;
  }
  return auth::Bytes(bytes->begin(), bytes->end());
}

std::optional<auth::Bytes> read_key_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) {
      return std::nullopt;
    }
    throw std::runtime_error(path + ": " + std::strerror(errno));
  }
  char buf[256];
  const ssize_t n = ::read(fd, buf, sizeof buf);
  ::close(fd);
  if (n <= 0) {
    throw std::runtime_error(path + ": empty or unreadable");
  }
  auto key = parse_key_text(std::string_view(buf, static_cast<std::size_t>(n)));
  if (!key) {
    throw std::runtime_error(path + ": not a 32-byte key (64 hex digits or base64)");
  }
  return key;
}

void write_key_file(const std::string& path, std::span<const unsigned char> key) {
  // Written in full under a temporary name, then linked into place: a crash leaves either no
  // key file or a complete one (never an empty file that blocks every later start), and
  // link() fails if the name exists, so a key is never overwritten.
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  std::filesystem::remove(tmp);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    throw std::runtime_error(tmp + ": " + std::strerror(errno));
  }
  const std::string text = core::to_hex(key) + "\n";
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
                  ::fsync(fd) == 0;
  ::close(fd);
  const int linked = ok ? ::link(tmp.c_str(), path.c_str()) : -1;
  const int err = errno;
  std::filesystem::remove(tmp);
  if (!ok || linked != 0) {
    throw std::runtime_error(path + ": could not be written" +
                             (linked != 0 && ok ? std::string(": ") + std::strerror(err) : ""));
  }
  fsync_dir(path);
}

auth::Bytes create_key_file(const std::string& path) {
  auth::Bytes key(kKeyBytes);
  core::secure_random(key);
  write_key_file(path, key);
  return key;
}

MasterKeys load_master_keys(const std::string& data_dir, bool create) {
  MasterKeys out;
  if (const std::string v = env("LLMGW_MASTER_KEY"); !v.empty()) {
    auto key = parse_key_text(v);
    if (!key) {
      throw std::runtime_error("LLMGW_MASTER_KEY is not a 32-byte key (64 hex digits or base64)");
    }
    out.keys.push_back(std::move(*key));
    if (const std::string prev = env("LLMGW_MASTER_KEY_PREVIOUS"); !prev.empty()) {
      auto pk = parse_key_text(prev);
      if (!pk) {
        throw std::runtime_error("LLMGW_MASTER_KEY_PREVIOUS is not a 32-byte key");
      }
      out.keys.push_back(std::move(*pk));
    }
    out.source = "LLMGW_MASTER_KEY";
    return out;
  }
  const std::string path = data_dir + "/master.key";
  if (auto pending = read_key_file(path + ".new")) {
    out.keys.push_back(std::move(*pending));
  }
  if (auto key = read_key_file(path)) {
    out.keys.push_back(std::move(*key));
  } else if (create && out.keys.empty()) {
    out.keys.push_back(create_key_file(path));
  } else if (out.keys.empty()) {
    throw std::runtime_error(path + " does not exist (set LLMGW_MASTER_KEY or start the gateway once)");
  }
  out.source = path;
  return out;
}

int lock_master_key(const std::string& data_dir, bool exclusive) {
  const std::string path = data_dir + "/master.key.lock";
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    throw std::runtime_error(path + ": " + std::strerror(errno));
  }
  if (::flock(fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

bool finish_rotation(const std::string& data_dir, store::Store& store) {
  if (!env("LLMGW_MASTER_KEY").empty()) {
    return false;
  }
  const std::string path = data_dir + "/master.key";
  auto fresh = read_key_file(path + ".new");
  if (!fresh) {
    return false;
  }
  std::vector<auth::Bytes> both{*fresh};
  if (auto old = read_key_file(path)) {
    both.push_back(std::move(*old));
  }
  const MasterKeyCodec either(std::move(both));
  const MasterKeyCodec only_new({*fresh});
  store.reseal_credentials(&either, only_new);
  // Before the rename: a crash here is finished again at the next start.
  store.set_secret_check(std::string(kMasterKeyCheck),
                         secret_check_value(kMasterKeyCheck, *fresh));
  std::filesystem::rename(path + ".new", path);
  fsync_dir(path);
  return true;
}

auth::Bytes load_jwt_secret(const std::string& data_dir) {
  if (const std::string v = env("ADMIN_JWT_SECRET"); !v.empty()) {
    if (v.size() < kKeyBytes) {
      throw std::runtime_error("ADMIN_JWT_SECRET must be at least 32 characters");
    }
    return auth::Bytes(v.begin(), v.end());
  }
  const std::string path = data_dir + "/admin-jwt.secret";
  if (auto key = read_key_file(path)) {
    return *key;
  }
  return create_key_file(path);
}

std::string secret_check_value(std::string_view name, std::span<const unsigned char> secret) {
  std::string input = "llmgw secret check v1: ";
  input += name;
  return "v1:" + auth::hs256_signature(input, secret);
}

void verify_master_key(store::Store& store, const MasterKeys& keys) {
  std::vector<std::string> mine;
  for (const auto& k : keys.keys) {
    mine.push_back(secret_check_value(kMasterKeyCheck, k));
  }
  const bool from_env = keys.source == "LLMGW_MASTER_KEY";
  const std::string fix =
      from_env ? "set LLMGW_MASTER_KEY to the key every gateway on this database uses (during a "
                 "rotation, the other one in LLMGW_MASTER_KEY_PREVIOUS)"
               : "set LLMGW_MASTER_KEY to the key the other gateways on this database use (" +
                     keys.source +
                     " was generated by this one; replicas sharing a database must share the key)";
  auto stored = store.secret_check(std::string(kMasterKeyCheck));
  if (!stored) {
    // A database from before the checks: the credentials tell which key sealed them.
    std::size_t unreadable = 0;
    for (const auto& p : store.list_providers()) {
      unreadable += p.credential_unreadable ? 1 : 0;
    }
    if (unreadable > 0) {
      throw SecretMismatch(std::string(from_env ? "LLMGW_MASTER_KEY" : keys.source) +
                           " cannot open the credentials of " + std::to_string(unreadable) +
                           " provider(s) stored in the database: " + fix +
                           " (if that key is lost, `llmgw admin adopt-master-key` makes this "
                           "one the database's; those credentials must then be given again)");
    }
    stored = store.claim_secret_check(std::string(kMasterKeyCheck), mine.front());
  }
  for (const auto& m : mine) {
    if (auth::constant_time_equal(m, *stored)) {
      return;
    }
  }
  throw SecretMismatch(std::string(from_env ? "LLMGW_MASTER_KEY" : "the master key in " + keys.source) +
                       " is not the key that sealed the provider credentials in this database: " +
                       fix + " (if that key is lost, `llmgw admin adopt-master-key` makes this "
                       "one the database's; credentials sealed under the lost one must then be "
                       "given again)");
}

bool jwt_secret_from_environment() {
  return !env("ADMIN_JWT_SECRET").empty();
}

void verify_jwt_secret(store::Store& store, std::span<const unsigned char> secret,
                       bool from_environment) {
  const std::string mine = secret_check_value(kJwtSecretCheck, secret);
  const std::string stored = store.claim_secret_check(std::string(kJwtSecretCheck), mine);
  if (auth::constant_time_equal(mine, stored)) {
    return;
  }
  throw SecretMismatch(
      std::string(from_environment
                      ? "ADMIN_JWT_SECRET is not the secret"
                      : "ADMIN_JWT_SECRET is not set and this data directory's admin-jwt.secret is "
                        "not the secret") +
      " the other gateways on this database sign admin sessions with: set ADMIN_JWT_SECRET to the "
      "same value on every gateway (after changing it on all of them on purpose, record the new "
      "one with `llmgw admin adopt-jwt-secret`)");
}

}  // namespace llmgw::admin

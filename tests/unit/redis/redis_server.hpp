#pragma once
// A real redis-server as a child process of a test binary, on a free 127.0.0.1 port in a
// temporary directory: started, killed, paused and restarted on the same port by the tests.
// A server that cannot start is an error the test reports (never a skip).

#include "redis/redis_client.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace llmgw::redis::test {

using namespace std::chrono_literals;

/// Found through PATH (Debian installs it in /usr/bin).
inline constexpr const char* kRedisServerBinary = "redis-server";
inline constexpr auto kStartTimeout = 10s;
inline constexpr auto kPollInterval = 20ms;

/// An unused 127.0.0.1 TCP port (the kernel's choice; free when this returns).
inline std::uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return 0;
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  std::uint16_t port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}

/// True when something answers an inline PING on `port` within `wait` (+PONG, or an error
/// such as -NOAUTH when the server wants a password: either way it is serving).
inline bool answers_ping(std::uint16_t port, std::chrono::milliseconds wait) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return false;
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  bool ok = false;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    static constexpr char kPing[] = "PING\r\n";
    if (::send(fd, kPing, sizeof kPing - 1, MSG_NOSIGNAL) ==
        static_cast<ssize_t>(sizeof kPing - 1)) {
      pollfd p{fd, POLLIN, 0};
      char c = 0;
      ok = ::poll(&p, 1, static_cast<int>(wait.count())) == 1 && ::recv(fd, &c, 1, 0) == 1 &&
           (c == '+' || c == '-');
    }
  }
  ::close(fd);
  return ok;
}

class RedisServer {
 public:
  explicit RedisServer(std::string password = {}) : password_(std::move(password)) {}
  ~RedisServer() {
    kill();
    if (!dir_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
    }
  }
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  /// Starts redis-server and waits until it answers PING: on a free port the first time, on
  /// the same port afterwards (a restart). Empty on success, else what went wrong.
  std::string start() {
    if (pid_ > 0) {
      return "already running";
    }
    if (dir_.empty()) {
      std::error_code ec;
      std::filesystem::path tmp = std::filesystem::temp_directory_path(ec);
      if (ec) {
        tmp = "/tmp";
      }
      std::string tmpl = (tmp / "llmgw-redis-XXXXXX").string();
      if (::mkdtemp(tmpl.data()) == nullptr) {
        return "cannot create a directory " + tmpl + ": " + std::strerror(errno);
      }
      dir_ = tmpl;
    }
    const bool restart = port_ != 0;
    std::string error;
    for (int attempt = 0; attempt < (restart ? 1 : 3); ++attempt) {
      if (!restart) {
        port_ = free_port();
      }
      error = spawn();
      if (error.empty()) {
        return {};
      }
    }
    return error;
  }

  /// SIGKILL (no shutdown, no goodbye on the connections) and reap.
  void kill() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }
  void pause() { signal(SIGSTOP); }
  void resume() { signal(SIGCONT); }
  [[nodiscard]] std::uint16_t port() const { return port_; }
  /// Options for a client of this server, with the short timeouts the tests use.
  [[nodiscard]] Options client_options() const {
    Options o;
    o.port = port_;
    o.timeout = 500ms;
    o.backoff = 100ms;
    return o;
  }

 private:
  void signal(int sig) const {
    if (pid_ > 0) {  // never kill(-1, ...): that would signal every process of the user
      ::kill(pid_, sig);
    }
  }

  std::string spawn() {
    const std::string log = (dir_ / "redis.log").string();
    const std::vector<std::pair<std::string, std::string>> options{
        {"--port", std::to_string(port_)},
        {"--bind", "127.0.0.1"},
        {"--dir", dir_.string()},
        {"--save", ""},  // no RDB snapshots
        {"--appendonly", "no"},
        {"--daemonize", "no"},
        {"--protected-mode", "no"},
        {"--logfile", log}};
    std::vector<std::string> args{kRedisServerBinary};
    for (const auto& [option, value] : options) {
      args.push_back(option);
      args.push_back(value);
    }
    if (!password_.empty()) {
      args.insert(args.end(), {"--requirepass", password_});
    }
    std::vector<char*> argv;
    for (auto& a : args) {
      argv.push_back(a.data());
    }
    argv.push_back(nullptr);
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) {
      return "fork failed";
    }
    if (pid == 0) {
      // Dies with the test binary, whatever way that ends.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) {
        ::_exit(126);
      }
      ::execvp(kRedisServerBinary, argv.data());
      ::_exit(127);
    }
    pid_ = pid;
    const auto deadline = std::chrono::steady_clock::now() + kStartTimeout;
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return "redis-server (" + std::string(kRedisServerBinary) + ") exited at start-up with " +
               "status " + std::to_string(status) + "; its log:\n" + read_log(log);
      }
      if (answers_ping(port_, 200ms)) {
        return {};
      }
      std::this_thread::sleep_for(kPollInterval);
    }
    kill();
    return "redis-server did not answer PING on 127.0.0.1:" + std::to_string(port_) +
           " within 10 s; its log:\n" + read_log(log);
  }

  static std::string read_log(const std::string& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

  std::string password_;
  std::filesystem::path dir_;
  std::uint16_t port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace llmgw::redis::test

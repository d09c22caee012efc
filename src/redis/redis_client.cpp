#include "redis/redis_client.hpp"

#include "core/log.hpp"

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <openssl/evp.h>

#include <charconv>

namespace llmgw::redis {

namespace asio = boost::asio;

bool Options::parse_address(std::string_view text, Options& out) {
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0) {
    return false;
  }
  unsigned port = 0;
  const auto p = text.substr(colon + 1);
  const auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), port);
  if (ec != std::errc{} || end != p.data() + p.size() || port == 0 || port > 65535) {
    return false;
  }
  std::string_view host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);  // "[::1]:6379": an IPv6 literal
    if (host.empty()) {
      return false;
    }
  }
  out.host = std::string(host);
  out.port = static_cast<std::uint16_t>(port);
  return true;
}

namespace {

Reply convert(const redisReply* r) {
  Reply out;
  switch (r->type) {
    case REDIS_REPLY_INTEGER:
      out.type = Reply::Type::Integer;
      out.integer = r->integer;
      break;
    case REDIS_REPLY_STRING:
      out.type = Reply::Type::String;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = Reply::Type::Status;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ERROR:
      out.type = Reply::Type::Error;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ARRAY:
      out.type = Reply::Type::Array;
      out.elements.reserve(r->elements);
      for (std::size_t i = 0; i < r->elements; ++i) {
        out.elements.push_back(convert(r->element[i]));
      }
      break;
    default:
      break;
  }
  return out;
}

/// EVALSHA or EVAL of `body` with its keys and arguments, as one command's arguments.
std::vector<std::string> eval_command(std::string_view verb, const std::string& body,
                                      const std::vector<std::string>& keys,
                                      const std::vector<std::string>& argv) {
  std::vector<std::string> args{std::string(verb), body, std::to_string(keys.size())};
  args.reserve(3 + keys.size() + argv.size());
  args.insert(args.end(), keys.begin(), keys.end());
  args.insert(args.end(), argv.begin(), argv.end());
  return args;
}

std::string sha1_hex(const std::string& text) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(text.data(), text.size(), md, &len, EVP_sha1(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 15];
  }
  return out;
}

}  // namespace

/// One command in flight. The caller waits on `timer` (armed with the command's timeout); the
/// reply or the disconnect stores the result and cancels the timer, which wakes it.
struct Client::Pending {
  explicit Pending(asio::io_context& ioc) : timer(ioc) {}
  asio::steady_timer timer;
  std::optional<Reply> result;
  bool done = false;

  void complete(std::optional<Reply> r) {
    if (done) {
      return;
    }
    done = true;
    result = std::move(r);
    timer.cancel();
  }
};

namespace {

void on_reply(redisAsyncContext*, void* reply, void* privdata) {
  auto* holder = static_cast<std::shared_ptr<Client::Pending>*>(privdata);
  (*holder)->complete(reply != nullptr
                          ? std::optional<Reply>(convert(static_cast<redisReply*>(reply)))
                          : std::nullopt);
  delete holder;
}

}  // namespace

Client::Client(asio::io_context& ioc, Options opts) : ioc_(ioc), opts_(std::move(opts)) {}

Client::~Client() { close(); }

void Client::close() {
  if (ctx_ != nullptr) {
    redisAsyncContext* ac = ctx_;
    // redisAsyncFree runs every pending callback with a null reply, then the cleanup hook.
    redisAsyncFree(ac);
    ctx_ = nullptr;
  }
  up_ = false;
}

bool Client::ensure_connected() {
  if (ctx_ != nullptr) {
    return true;
  }
  if (std::chrono::steady_clock::now() < retry_at_) {
    return false;
  }
  retry_at_ = std::chrono::steady_clock::now() + opts_.backoff;
  redisAsyncContext* ac = redisAsyncConnect(opts_.host.c_str(), opts_.port);
  if (ac == nullptr) {
    return false;
  }
  if (ac->err != 0) {
    redisAsyncFree(ac);
    return false;
  }
  ++generation_;
  ctx_ = ac;
  ac->data = this;
  ac->ev.data = this;
  ac->ev.addRead = &Client::hook_add_read;
  ac->ev.delRead = &Client::hook_del_read;
  ac->ev.addWrite = &Client::hook_add_write;
  ac->ev.delWrite = &Client::hook_del_write;
  ac->ev.cleanup = &Client::hook_cleanup;
  fd_ = std::make_unique<asio::posix::stream_descriptor>(ioc_, ac->c.fd);
  redisAsyncSetConnectCallback(ac, &Client::on_connect);
  redisAsyncSetDisconnectCallback(ac, &Client::on_disconnect);
  // Queued before any caller's command: hiredis sends them in order once connected.
  if (!opts_.password.empty()) {
    const char* argv[] = {"AUTH", opts_.password.c_str()};
    const std::size_t lens[] = {4, opts_.password.size()};
    redisAsyncCommandArgv(ac, nullptr, nullptr, 2, argv, lens);
  }
  if (opts_.db != 0) {
    const std::string db = std::to_string(opts_.db);
    const char* argv[] = {"SELECT", db.c_str()};
    const std::size_t lens[] = {6, db.size()};
    redisAsyncCommandArgv(ac, nullptr, nullptr, 2, argv, lens);
  }
  return true;
}

void Client::on_connect(const redisAsyncContext* ac, int status) {
  auto* self = static_cast<Client*>(ac->data);
  if (status == REDIS_OK) {
    self->up_ = true;
    self->retry_at_ = {};
    return;
  }
  // A failed connect: hiredis frees the context after this callback without calling the
  // disconnect callback, so forget it here.
  if (self->ctx_ == ac) {
    self->ctx_ = nullptr;
    self->up_ = false;
    self->retry_at_ = std::chrono::steady_clock::now() + self->opts_.backoff;
  }
}

void Client::on_disconnect(const redisAsyncContext* ac, int) {
  auto* self = static_cast<Client*>(ac->data);
  if (self->ctx_ == ac) {
    self->ctx_ = nullptr;  // hiredis frees it after this callback
    self->up_ = false;
    self->retry_at_ = std::chrono::steady_clock::now() + self->opts_.backoff;
  }
}

void Client::hook_add_read(void* p) {
  auto* self = static_cast<Client*>(p);
  self->reading_ = true;
  self->watch_read();
}
void Client::hook_del_read(void* p) { static_cast<Client*>(p)->reading_ = false; }
void Client::hook_add_write(void* p) {
  auto* self = static_cast<Client*>(p);
  self->writing_ = true;
  self->watch_write();
}
void Client::hook_del_write(void* p) { static_cast<Client*>(p)->writing_ = false; }

void Client::hook_cleanup(void* p) {
  auto* self = static_cast<Client*>(p);
  self->reading_ = false;
  self->writing_ = false;
  ++self->generation_;
  if (self->fd_) {
    boost::system::error_code ec;
    self->fd_->cancel(ec);
    (void)self->fd_->release();  // hiredis closes the descriptor itself
    self->fd_.reset();
  }
  self->read_armed_ = false;
  self->write_armed_ = false;
}

void Client::watch_read() {
  if (read_armed_ || !fd_) {
    return;
  }
  read_armed_ = true;
  fd_->async_wait(asio::posix::stream_descriptor::wait_read,
                  [this, alive = std::weak_ptr<void>(alive_),
                   gen = generation_](const boost::system::error_code& ec) {
                    if (alive.expired() || gen != generation_) {
                      return;  // a watcher of an earlier connection or of a destroyed Client
                    }
                    read_armed_ = false;
                    if (ec || ctx_ == nullptr || !reading_) {
                      return;
                    }
                    redisAsyncHandleRead(ctx_);
                    if (gen == generation_ && reading_) {
                      watch_read();
                    }
                  });
}

void Client::watch_write() {
  if (write_armed_ || !fd_) {
    return;
  }
  write_armed_ = true;
  fd_->async_wait(asio::posix::stream_descriptor::wait_write,
                  [this, alive = std::weak_ptr<void>(alive_),
                   gen = generation_](const boost::system::error_code& ec) {
                    if (alive.expired() || gen != generation_) {
                      return;
                    }
                    write_armed_ = false;
                    if (ec || ctx_ == nullptr || !writing_) {
                      return;
                    }
                    redisAsyncHandleWrite(ctx_);
                    if (gen == generation_ && writing_) {
                      watch_write();
                    }
                  });
}

asio::awaitable<std::optional<Reply>> Client::command(std::vector<std::string> args) {
  if (!ensure_connected()) {
    co_return std::nullopt;
  }
  auto pending = std::make_shared<Pending>(ioc_);
  std::vector<const char*> argv;
  std::vector<std::size_t> lens;
  for (const auto& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  auto* holder = new std::shared_ptr<Pending>(pending);
  if (redisAsyncCommandArgv(ctx_, &on_reply, holder, static_cast<int>(argv.size()), argv.data(),
                            lens.data()) != REDIS_OK) {
    delete holder;
    co_return std::nullopt;
  }
  const std::uint64_t gen = generation_;
  pending->timer.expires_after(opts_.timeout);
  boost::system::error_code ec;
  if (!pending->done) {
    co_await pending->timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  if (!pending->done) {
    // No answer in time: give up on this connection; its other commands fail with it.
    pending->complete(std::nullopt);
    if (gen == generation_ && ctx_ != nullptr) {
      close();
      retry_at_ = std::chrono::steady_clock::now() + opts_.backoff;
    }
  }
  co_return std::move(pending->result);
}

const std::string& Client::sha_of(const std::string& script) {
  for (const auto& s : scripts_) {
    if (s.text == script) {
      return s.sha;
    }
  }
  if (scripts_.size() >= kMaxScripts) {
    scripts_.clear();  // scripts are constants of the code: this only bounds a misuse
  }
  scripts_.push_back({script, sha1_hex(script)});
  return scripts_.back().sha;
}

asio::awaitable<std::optional<Reply>> Client::eval(const std::string& script,
                                                   std::vector<std::string> keys,
                                                   std::vector<std::string> argv) {
  // Built before the first suspension: another eval may add to scripts_ meanwhile.
  auto r = co_await command(eval_command("EVALSHA", sha_of(script), keys, argv));
  if (r && r->is_error() && r->str.starts_with("NOSCRIPT")) {
    // Loads it into the script cache too.
    r = co_await command(eval_command("EVAL", script, keys, argv));
  }
  co_return r;
}

// ---------------------------------------------------------------------------------------------
// BlockingClient

namespace {

struct FreeReply {
  void operator()(redisReply* r) const noexcept { freeReplyObject(r); }
};
using ReplyPtr = std::unique_ptr<redisReply, FreeReply>;

/// One command on a blocking context; null on an I/O error or a timeout.
ReplyPtr send(redisContext* ctx, const std::vector<std::string>& args) {
  std::vector<const char*> argv;
  std::vector<std::size_t> lens;
  argv.reserve(args.size());
  lens.reserve(args.size());
  for (const auto& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  return ReplyPtr(static_cast<redisReply*>(
      redisCommandArgv(ctx, static_cast<int>(argv.size()), argv.data(), lens.data())));
}

core::LogThrottle g_refused_log;  // AUTH/SELECT refusals, whichever client meets them

}  // namespace

BlockingClient::BlockingClient(Options opts) : opts_(std::move(opts)) {}

BlockingClient::~BlockingClient() { drop(); }

void BlockingClient::drop() {
  if (ctx_ != nullptr) {
    redisFree(ctx_);
    ctx_ = nullptr;
  }
}

void BlockingClient::fail() {
  drop();  // the connection's state is unknown
  retry_at_ = std::chrono::steady_clock::now() + opts_.backoff;
}

bool BlockingClient::ensure_connected() {
  if (ctx_ != nullptr) {
    return true;
  }
  if (std::chrono::steady_clock::now() < retry_at_) {
    return false;
  }
  const auto ms = opts_.timeout.count();
  const timeval tv{static_cast<time_t>(ms / 1000), static_cast<suseconds_t>((ms % 1000) * 1000)};
  ctx_ = redisConnectWithTimeout(opts_.host.c_str(), opts_.port, tv);
  if (ctx_ == nullptr || ctx_->err != 0 || redisSetTimeout(ctx_, tv) != REDIS_OK) {
    fail();
    return false;
  }
  // AUTH and SELECT before anything else; a refusal is as good as no connection.
  std::vector<std::vector<std::string>> hello;
  if (!opts_.password.empty()) {
    hello.push_back({"AUTH", opts_.password});
  }
  if (opts_.db != 0) {
    hello.push_back({"SELECT", std::to_string(opts_.db)});
  }
  for (const auto& args : hello) {
    const ReplyPtr r = send(ctx_, args);
    if (r == nullptr || r->type == REDIS_REPLY_ERROR) {
      if (r != nullptr && g_refused_log.allow()) {
        core::LogLine(core::LogLevel::Warn, "redis refused the connection's AUTH or SELECT").emit();
      }
      fail();
      return false;
    }
  }
  return true;
}

std::optional<Reply> BlockingClient::command(const std::vector<std::string>& args) {
  if (!ensure_connected()) {
    return std::nullopt;
  }
  const ReplyPtr r = send(ctx_, args);
  if (r == nullptr) {
    // An I/O error or a timeout: no new attempt before the back-off, so a Redis that hangs
    // costs one timeout per back-off rather than one per command.
    fail();
    return std::nullopt;
  }
  return convert(r.get());
}

std::optional<Reply> BlockingClient::eval(const std::string& script,
                                          const std::vector<std::string>& keys,
                                          const std::vector<std::string>& argv) {
  const std::string* sha = nullptr;
  for (const auto& [text, s] : shas_) {
    if (text == script) {
      sha = &s;
    }
  }
  if (sha == nullptr) {
    if (shas_.size() >= kMaxScripts) {
      shas_.clear();  // scripts are constants of the code: this only bounds a misuse
    }
    shas_.emplace_back(script, sha1_hex(script));
    sha = &shas_.back().second;
  }
  auto r = command(eval_command("EVALSHA", *sha, keys, argv));
  if (r && r->is_error() && r->str.starts_with("NOSCRIPT")) {
    r = command(eval_command("EVAL", script, keys, argv));
  }
  return r;
}

}  // namespace llmgw::redis

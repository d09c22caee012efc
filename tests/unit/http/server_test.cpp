#include "http/server.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <gtest/gtest.h>

#include <thread>

namespace llmgw::http {
namespace {

/// Answers with what it saw: "METHOD TARGET body-size auth=… id=…".
class EchoHandler final : public Handler {
 public:
  asio::awaitable<void> handle(Exchange& ex) override {
    const auto& r = ex.request();
    if (ex.path() == "/slow") {
      asio::steady_timer t(ex.worker().io_context(), std::chrono::milliseconds(300));
      co_await t.async_wait(asio::use_awaitable);
    }
    if (ex.path() == "/stream") {
      co_await ex.start_stream(200, "text/event-stream");
      co_await ex.write_stream("data: 1\n\n");
      co_await ex.write_stream("data: 2\n\n");
      co_await ex.finish_stream();
      co_return;
    }
    std::string body = std::string(boost::beast::http::to_string(r.method)) + " " + r.target +
                       " " + std::to_string(r.body.size()) + " auth=" + r.authorization +
                       " key=" + r.api_key;
    if (!r.anthropic_beta.empty()) {
      body += " beta=" + r.anthropic_beta;
    }
    co_await ex.respond(200, "text/plain", body);
  }
};

class ServerTest : public ::testing::Test {
 protected:
  void start(ServerOptions o = {}) {
    o.host = "127.0.0.1";
    o.port = 0;
    o.threads = 2;
    o.access_log = false;
    server_ = std::make_unique<Server>(o, handler_);
    server_->start();
  }
  void TearDown() override {
    if (server_) {
      server_->shutdown();
      server_->join();
    }
  }
  tcp::socket connect() {
    tcp::socket s(ioc_);
    s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), server_->port()));
    return s;
  }
  /// Sends `raw`, then reads until the peer closes or `responses` responses were seen.
  std::string exchange(tcp::socket& s, std::string_view raw, int responses = 1) {
    asio::write(s, asio::buffer(raw));
    std::string out;
    char buf[4096];
    boost::system::error_code ec;
    while (count(out, "HTTP/1.1 ") < responses || !complete(out)) {
      const std::size_t n = s.read_some(asio::buffer(buf), ec);
      if (ec) {
        break;
      }
      out.append(buf, n);
    }
    return out;
  }
  static int count(const std::string& s, std::string_view what) {
    int n = 0;
    for (auto p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) {
      ++n;
    }
    return n;
  }
  /// True when the last response's body has fully arrived (Content-Length or chunked end).
  static bool complete(const std::string& s) {
    const auto head = s.rfind("HTTP/1.1 ");
    const auto end = s.find("\r\n\r\n", head);
    if (end == std::string::npos) {
      return false;
    }
    const auto cl = s.find("Content-Length: ", head);
    if (cl != std::string::npos && cl < end) {
      return s.size() - (end + 4) >= std::stoul(s.substr(cl + 16));
    }
    return s.ends_with("0\r\n\r\n");
  }
  std::string read_all(tcp::socket& s) {
    std::string out;
    char buf[4096];
    boost::system::error_code ec;
    while (!ec) {
      const std::size_t n = s.read_some(asio::buffer(buf), ec);
      out.append(buf, n);
    }
    return out;
  }

  asio::io_context ioc_;
  EchoHandler handler_;
  std::unique_ptr<Server> server_;
};

TEST_F(ServerTest, AnswersAndKeepsTheConnectionAlive) {
  start();
  auto s = connect();
  auto r1 = exchange(s, "GET /a HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\n\r\n");
  EXPECT_EQ(r1.substr(0, 15), "HTTP/1.1 200 OK");
  EXPECT_NE(r1.find("GET /a 0 auth=Bearer k"), std::string::npos);
  EXPECT_NE(r1.find("x-request-id: "), std::string::npos);
  auto r2 = exchange(s, "POST /b HTTP/1.1\r\nHost: x\r\napi-key: z\r\nContent-Length: 3\r\n\r\nabc");
  EXPECT_NE(r2.find("POST /b 3 auth= key=z"), std::string::npos);
}

TEST_F(ServerTest, KeepsTheAnthropicBetaHeaderJoiningRepeatedOnes) {
  start();
  auto s = connect();
  auto r = exchange(s, "POST /v1/messages?beta=true HTTP/1.1\r\nHost: x\r\nx-api-key: k\r\n"
                       "Anthropic-Beta: a-2025-01-01,b-2025-02-02\r\nanthropic-beta: c\r\n"
                       "Content-Length: 0\r\n\r\n");
  EXPECT_NE(r.find("POST /v1/messages?beta=true 0 auth= key=k beta=a-2025-01-01,b-2025-02-02,c"),
            std::string::npos)
      << r;
  // Not carried over to the next request on the connection.
  r = exchange(s, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_TRUE(r.ends_with("GET /a 0 auth= key=")) << r;
}

TEST_F(ServerTest, EchoesAClientRequestIdAndReplacesUnsafeOnes) {
  start();
  auto s = connect();
  auto r = exchange(s, "GET / HTTP/1.1\r\nHost: x\r\nX-Request-Id: abc-123\r\n\r\n");
  EXPECT_NE(r.find("x-request-id: abc-123\r\n"), std::string::npos);
  r = exchange(s, "GET / HTTP/1.1\r\nHost: x\r\nX-Request-Id: " + std::string(300, 'a') +
                      "\r\n\r\n");
  EXPECT_EQ(r.find(std::string(300, 'a')), std::string::npos);
}

TEST_F(ServerTest, AnswersPipelinedRequestsInOrder) {
  start();
  auto s = connect();
  const std::string three =
      "GET /1 HTTP/1.1\r\nHost: x\r\n\r\n"
      "POST /2 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi"
      "GET /3 HTTP/1.1\r\nHost: x\r\n\r\n";
  const auto r = exchange(s, three, 3);
  const auto p1 = r.find("GET /1 0");
  const auto p2 = r.find("POST /2 2");
  const auto p3 = r.find("GET /3 0");
  ASSERT_NE(p1, std::string::npos);
  ASSERT_NE(p2, std::string::npos);
  ASSERT_NE(p3, std::string::npos);
  EXPECT_LT(p1, p2);
  EXPECT_LT(p2, p3);
}

TEST_F(ServerTest, ReadsChunkedBodiesAndAnswersExpectContinue) {
  start();
  auto s = connect();
  auto r = exchange(s,
                    "POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                    "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n");
  EXPECT_NE(r.find("POST /c 5"), std::string::npos);
  asio::write(s, asio::buffer(std::string_view(
                     "POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")));
  std::string cont(25, '\0');
  asio::read(s, asio::buffer(cont));
  EXPECT_EQ(cont, "HTTP/1.1 100 Continue\r\n\r\n");
  r = exchange(s, "wxyz");
  EXPECT_NE(r.find("POST /e 4"), std::string::npos);
}

TEST_F(ServerTest, RefusesOversizedBodyWith413AndCloses) {
  ServerOptions o;
  o.max_body_bytes = 1024;
  start(o);
  auto s = connect();
  const std::string req =
      "POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n" + std::string(5000, 'a');
  asio::write(s, asio::buffer(req));
  const auto r = read_all(s);
  EXPECT_EQ(r.substr(0, 12), "HTTP/1.1 413");
  EXPECT_NE(r.find("\"type\":\"invalid_request_error\""), std::string::npos);
  EXPECT_NE(r.find("Connection: close"), std::string::npos);
}

TEST_F(ServerTest, RefusesOversizedHeadersWith431) {
  ServerOptions o;
  o.max_header_bytes = 2048;
  start(o);
  auto s = connect();
  asio::write(s, asio::buffer("GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(4000, 'b') +
                              "\r\n\r\n"));
  EXPECT_EQ(read_all(s).substr(0, 12), "HTTP/1.1 431");
}

TEST_F(ServerTest, RefusesMalformedRequestsWith400) {
  start();
  for (std::string_view bad : {"NOT HTTP AT ALL\r\n\r\n", "GET / HTTP/1.1\r\nBad Header\r\n\r\n",
                               "POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n"}) {
    auto s = connect();
    asio::write(s, asio::buffer(bad));
    EXPECT_EQ(read_all(s).substr(0, 12), "HTTP/1.1 400") << bad;
  }
}

TEST_F(ServerTest, ClosesAConnectionWhoseHeadersNeverFinish) {
  ServerOptions o;
  o.header_timeout = std::chrono::milliseconds(200);
  start(o);
  auto s = connect();
  asio::write(s, asio::buffer(std::string_view("GET / HTTP/1.1\r\nHost:")));
  const auto t0 = std::chrono::steady_clock::now();
  read_all(s);  // returns when the server closes
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
}

TEST_F(ServerTest, StreamsChunkedResponses) {
  start();
  auto s = connect();
  const auto r = exchange(s, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_NE(r.find("Transfer-Encoding: chunked"), std::string::npos);
  EXPECT_NE(r.find("9\r\ndata: 1\n\n\r\n9\r\ndata: 2\n\n\r\n0\r\n\r\n"), std::string::npos);
}

TEST_F(ServerTest, ShutdownLetsInFlightRequestsFinish) {
  start();
  auto s = connect();
  asio::write(s, asio::buffer(std::string_view("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  server_->shutdown();
  const auto r = read_all(s);
  EXPECT_EQ(r.substr(0, 15), "HTTP/1.1 200 OK");
  EXPECT_NE(r.find("Connection: close"), std::string::npos);
  server_->join();
  server_.reset();
}

TEST_F(ServerTest, ShutdownClosesIdleConnectionsAndStopsAccepting) {
  start();
  auto idle = connect();
  const auto port = server_->port();
  server_->shutdown();
  server_->join();
  EXPECT_EQ(read_all(idle), "");
  tcp::socket s(ioc_);
  boost::system::error_code ec;
  s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), ec);
  EXPECT_TRUE(ec);
  server_.reset();
}

}  // namespace
}  // namespace llmgw::http

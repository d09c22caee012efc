#include "providers/gemini/google_auth.hpp"

#include "providers/gemini/vertex.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/parse_query.hpp>
#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <atomic>
#include <condition_variable>
#include <map>
#include <thread>
#include <vector>

#include "core/ids.hpp"

namespace llmgw::providers::gemini {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
namespace json = boost::json;
using asio::ip::tcp;
using std::chrono::seconds;

struct TestKey {
  std::string private_pem;
  EVP_PKEY* key = nullptr;
  TestKey() {
    key = EVP_RSA_gen(2048);
    BIO* bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio, &data);
    private_pem.assign(data, static_cast<std::size_t>(n));
    BIO_free(bio);
  }
  ~TestKey() { EVP_PKEY_free(key); }
  TestKey(const TestKey&) = delete;
  TestKey& operator=(const TestKey&) = delete;
};

const TestKey& test_key() {
  static const TestKey k;  // 2048-bit generation is slow under ASan: once per binary
  return k;
}

std::string from_b64url(std::string_view s) {
  const auto bytes = core::base64url_decode(s);
  return bytes ? std::string(bytes->begin(), bytes->end()) : std::string("<bad base64url>");
}

/// Verifies an RS256 JWT with the test key's public half; returns its claims, or "" if the
/// signature does not verify.
std::string verify_jwt(std::string_view jwt, json::value* header = nullptr) {
  const std::size_t d1 = jwt.find('.');
  const std::size_t d2 = jwt.rfind('.');
  if (d1 == std::string_view::npos || d1 == d2) {
    return {};
  }
  const std::string_view signing_input = jwt.substr(0, d2);
  const std::string sig = from_b64url(jwt.substr(d2 + 1));
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  const bool ok =
      EVP_DigestVerifyInit(ctx, nullptr, EVP_sha256(), nullptr, test_key().key) == 1 &&
      EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                       reinterpret_cast<const unsigned char*>(signing_input.data()),
                       signing_input.size()) == 1;
  EVP_MD_CTX_free(ctx);
  if (!ok) {
    return {};
  }
  if (header != nullptr) {
    *header = json::parse(from_b64url(jwt.substr(0, d1)));
  }
  return from_b64url(jwt.substr(d1 + 1, d2 - d1 - 1));
}

std::string service_account_json(std::string_view token_uri) {
  json::object o;
  o["type"] = "service_account";
  o["project_id"] = "demo-project";
  o["private_key_id"] = "kid-0123";
  o["private_key"] = test_key().private_pem;
  o["client_email"] = "gateway@demo-project.iam.gserviceaccount.com";
  o["client_id"] = "1234567890";
  o["token_uri"] = token_uri;
  return json::serialize(o);
}

std::map<std::string, std::string> parse_form(std::string_view form) {
  std::map<std::string, std::string> out;
  const auto params = boost::urls::parse_query(form);
  if (params) {
    for (const auto& p : *params) {
      out[std::string(p.key.decode())] = std::string(p.value.decode());
    }
  }
  return out;
}

/// A tiny token endpoint on 127.0.0.1: answers each POST with `answer` (status, body) after
/// checking it; counts requests, and can hold answers until released.
class TokenServer {
 public:
  explicit TokenServer(
      unsigned status = 200,
      std::string body =
          R"({"access_token":"ya29.test-token","expires_in":3599,"token_type":"Bearer"})")
      : acceptor_(ioc_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)),
        status_(status),
        body_(std::move(body)) {
    thread_ = std::thread([this] { serve(); });
  }
  ~TokenServer() {
    {
      const std::lock_guard lock(mutex_);
      held_ = false;
      stop_ = true;
    }
    cv_.notify_all();
    boost::system::error_code ec;
    // Wake a blocked accept with one last connection.
    tcp::socket s(ioc_);
    s.connect(acceptor_.local_endpoint(), ec);
    thread_.join();
  }
  TokenServer(const TokenServer&) = delete;
  TokenServer& operator=(const TokenServer&) = delete;

  [[nodiscard]] std::string url() const {
    return "http://127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port()) + "/token";
  }
  void hold() { held_ = true; }
  void release() {
    {
      const std::lock_guard lock(mutex_);
      held_ = false;
    }
    cv_.notify_all();
  }
  void never_answer() { silent_ = true; }

  std::atomic<int> requests{0};
  std::string last_form;
  std::string last_content_type;
  std::string last_target;

 private:
  void serve() {
    while (!stop_) {
      tcp::socket sock(ioc_);
      boost::system::error_code ec;
      acceptor_.accept(sock, ec);
      if (ec || stop_) {
        return;
      }
      boost::beast::flat_buffer buf;
      http::request<http::string_body> req;
      http::read(sock, buf, req, ec);
      if (ec) {
        continue;
      }
      ++requests;
      {
        std::unique_lock lock(mutex_);
        last_form = req.body();
        last_content_type = std::string(req[http::field::content_type]);
        last_target = std::string(req.target());
        cv_.wait(lock, [this] { return !held_; });
      }
      if (silent_) {
        std::unique_lock lock(mutex_);
        cv_.wait(lock, [this] { return stop_.load(); });
        return;
      }
      http::response<http::string_body> res{static_cast<http::status>(status_), 11};
      res.set(http::field::content_type, "application/json; charset=utf-8");
      res.body() = body_;
      res.prepare_payload();
      http::write(sock, res, ec);
    }
  }

  asio::io_context ioc_;
  tcp::acceptor acceptor_;
  unsigned status_;
  std::string body_;
  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool held_ = false;
  std::atomic<bool> silent_{false};
  std::atomic<bool> stop_{false};
};

TEST(GoogleAuth, ParsesServiceAccountAndRefusesBadKeysWithoutQuotingThem) {
  std::string error;
  const auto sa =
      parse_credentials(service_account_json("https://oauth2.googleapis.com/token"), error);
  ASSERT_TRUE(sa) << error;
  EXPECT_EQ(sa->kind, GoogleCredentials::Kind::ServiceAccount);
  EXPECT_EQ(sa->client_email, "gateway@demo-project.iam.gserviceaccount.com");
  EXPECT_EQ(sa->private_key_id, "kid-0123");

  json::object o = json::parse(service_account_json("https://x/token")).as_object();
  o["private_key"] =
      "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1ieXRlcw==\n-----END PRIVATE KEY-----\n";
  EXPECT_FALSE(parse_credentials(json::serialize(o), error));
  EXPECT_NE(error.find("private_key"), std::string::npos);
  EXPECT_EQ(error.find("c2VjcmV0"), std::string::npos);

  o.erase("private_key");
  EXPECT_FALSE(parse_credentials(json::serialize(o), error));
  EXPECT_EQ(error, "the credentials lack 'private_key'");
  EXPECT_FALSE(parse_credentials("{not json", error));
  EXPECT_FALSE(parse_credentials(R"({"type":"external_account"})", error));
}

TEST(GoogleAuth, ParsesAuthorizedUserCredentials) {
  std::string error;
  const auto c = parse_credentials(
      R"({"type":"authorized_user","client_id":"cid","client_secret":"csecret","refresh_token":"1//rt"})",
      error);
  ASSERT_TRUE(c) << error;
  EXPECT_EQ(c->kind, GoogleCredentials::Kind::AuthorizedUser);
  EXPECT_EQ(c->token_uri, kDefaultTokenUri);
  const auto form = parse_form(token_request_form(*c, 0, error));
  EXPECT_EQ(form.at("grant_type"), "refresh_token");
  EXPECT_EQ(form.at("refresh_token"), "1//rt");
  EXPECT_EQ(form.at("client_id"), "cid");
}

TEST(GoogleAuth, JwtAssertionIsSignedWithRs256AndCarriesGooglesClaims) {
  std::string error;
  const auto sa =
      parse_credentials(service_account_json("https://oauth2.googleapis.com/token"), error);
  ASSERT_TRUE(sa) << error;
  const std::string jwt = make_jwt_assertion(*sa, 1'700'000'000, error);
  ASSERT_FALSE(jwt.empty()) << error;
  json::value header;
  const std::string claims = verify_jwt(jwt, &header);
  ASSERT_FALSE(claims.empty()) << "signature does not verify";
  EXPECT_EQ(header, json::parse(R"({"alg":"RS256","typ":"JWT","kid":"kid-0123"})"));
  EXPECT_EQ(json::parse(claims), json::parse(R"({
    "iss":"gateway@demo-project.iam.gserviceaccount.com",
    "scope":"https://www.googleapis.com/auth/cloud-platform",
    "aud":"https://oauth2.googleapis.com/token","iat":1700000000,"exp":1700003600})"));

  // A tampered payload does not verify.
  std::string tampered = jwt;
  tampered[jwt.find('.') + 5] ^= 1;
  EXPECT_TRUE(verify_jwt(tampered).empty());
}

TEST(GoogleAuth, ParsesTokenAnswers) {
  const auto now = std::chrono::system_clock::time_point(seconds(1'000));
  std::string error;
  const auto t = parse_token_answer(
      R"({"access_token":"ya29.abc","expires_in":3599,"token_type":"Bearer"})", now, error);
  ASSERT_TRUE(t) << error;
  EXPECT_EQ(t->token, "ya29.abc");
  EXPECT_EQ(t->expires, now + seconds(3599));
  EXPECT_FALSE(parse_token_answer(R"({"expires_in":3599,"token_type":"Bearer"})", now, error));
  EXPECT_FALSE(parse_token_answer(R"({"access_token":"x","token_type":"Bearer"})", now, error));
  EXPECT_FALSE(parse_token_answer(R"({"access_token":"x","expires_in":-5})", now, error));
  EXPECT_FALSE(
      parse_token_answer(R"({"access_token":"x","expires_in":60,"token_type":"MAC"})", now, error));
  EXPECT_FALSE(parse_token_answer("<html>", now, error));
}

TEST(GoogleAuth, TokenSourceExchangesASignedAssertionAtTheTokenUri) {
  TokenServer server;
  std::string error;
  const auto sa = parse_credentials(service_account_json(server.url()), error);
  ASSERT_TRUE(sa) << error;
  auto now = std::chrono::system_clock::time_point(seconds(1'700'000'000));
  TokenSource source(*sa, [&] { return now; });
  EXPECT_EQ(source.state(now), TokenSource::State::Missing);
  EXPECT_EQ(source.refresh(), "");
  ASSERT_NE(source.current(), nullptr);
  EXPECT_EQ(source.current()->token, "ya29.test-token");
  EXPECT_EQ(server.last_target, "/token");
  EXPECT_EQ(server.last_content_type, "application/x-www-form-urlencoded");
  const auto form = parse_form(server.last_form);
  EXPECT_EQ(form.at("grant_type"), "urn:ietf:params:oauth:grant-type:jwt-bearer");
  const std::string claims = verify_jwt(form.at("assertion"));
  ASSERT_FALSE(claims.empty());
  EXPECT_EQ(json::parse(claims).at("aud"), json::value(server.url()));
  EXPECT_EQ(json::parse(claims).at("iat"), json::value(1'700'000'000));

  EXPECT_EQ(source.state(now), TokenSource::State::Ready);
  EXPECT_EQ(source.state(now + seconds(3599 - 301)), TokenSource::State::Ready);
  EXPECT_EQ(source.state(now + seconds(3599 - 300)), TokenSource::State::RefreshSoon);
  EXPECT_EQ(source.state(now + seconds(3599)), TokenSource::State::Missing);
}

TEST(GoogleAuth, ConcurrentRefreshesShareOneFetch) {
  TokenServer server;
  server.hold();
  std::string error;
  const auto sa = parse_credentials(service_account_json(server.url()), error);
  ASSERT_TRUE(sa) << error;
  TokenSource source(*sa);
  std::vector<std::thread> callers;
  std::vector<std::string> results(4, "unset");
  for (std::size_t i = 0; i < results.size(); ++i) {
    callers.emplace_back([&, i] { results[i] = source.refresh(); });
  }
  while (server.requests.load() == 0) {
    std::this_thread::yield();
  }
  // The first fetch is held at the server: give the other callers time to join it.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  server.release();
  for (auto& t : callers) {
    t.join();
  }
  EXPECT_EQ(server.requests.load(), 1);
  for (const auto& r : results) {
    EXPECT_EQ(r, "");
  }
  // A later refresh fetches again.
  EXPECT_EQ(source.refresh(), "");
  EXPECT_EQ(server.requests.load(), 2);
}

TEST(GoogleAuth, TokenEndpointErrorsNameTheReasonNeverTheSecrets) {
  TokenServer server(400,
                     R"({"error":"invalid_grant","error_description":"Invalid JWT Signature."})");
  std::string error;
  const auto sa = parse_credentials(service_account_json(server.url()), error);
  ASSERT_TRUE(sa) << error;
  TokenSource source(*sa);
  const std::string e = source.refresh();
  EXPECT_EQ(e, "the token endpoint answered HTTP 400: invalid_grant (Invalid JWT Signature.)");
  EXPECT_EQ(source.current(), nullptr);
  EXPECT_EQ(e.find("PRIVATE"), std::string::npos);
}

TEST(GoogleAuth, PostFormGivesUpAtItsTimeout) {
  TokenServer server;
  server.never_answer();
  std::string error;
  const auto answer = post_form(server.url(), "a=b", std::chrono::milliseconds(200), error);
  EXPECT_FALSE(answer);
  EXPECT_FALSE(error.empty());
}

TEST(GoogleAuth, PostFormVerifiesTheServersCertificate) {
  // A TLS server whose self-signed certificate no system root vouches for: refused.
  X509* cert = X509_new();
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
  X509_set_pubkey(cert, test_key().key);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("127.0.0.1"), -1, -1, 0);
  X509_set_issuer_name(cert, name);
  ASSERT_GT(X509_sign(cert, test_key().key, EVP_sha256()), 0);
  asio::ssl::context server_tls(asio::ssl::context::tls_server);
  SSL_CTX_use_certificate(server_tls.native_handle(), cert);
  SSL_CTX_use_PrivateKey(server_tls.native_handle(), test_key().key);
  X509_free(cert);

  asio::io_context ioc;
  tcp::acceptor acceptor(ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  std::atomic<bool> reached_http{false};
  std::thread server([&] {
    asio::ssl::stream<tcp::socket> stream(ioc, server_tls);
    boost::system::error_code ec;
    acceptor.accept(stream.next_layer(), ec);
    stream.handshake(asio::ssl::stream_base::server, ec);
    if (!ec) {
      boost::beast::flat_buffer buf;
      http::request<http::string_body> req;
      http::read(stream, buf, req, ec);
      reached_http = !ec;
    }
  });
  std::string error;
  const auto answer =
      post_form("https://127.0.0.1:" + std::to_string(acceptor.local_endpoint().port()) + "/token",
                "a=b", std::chrono::milliseconds(5'000), error);
  server.join();
  EXPECT_FALSE(answer);
  EXPECT_NE(error.find("TLS handshake"), std::string::npos) << error;
  EXPECT_FALSE(reached_http.load());
}

TEST(GoogleAuth, VertexAdapterSignsWithTheTokenItRefreshed) {
  TokenServer server;
  core::ProviderConfig config;
  config.type = core::ProviderType::Vertex;
  config.settings = {{"project", "demo-project"}, {"location", "europe-west4"}};
  config.secrets = {{"credentials_json", service_account_json(server.url())}};
  const auto adapter = make_vertex_adapter(config);
  EXPECT_EQ(adapter->origin().host, "europe-west4-aiplatform.googleapis.com");
  const auto now = std::chrono::system_clock::now();
  EXPECT_EQ(adapter->credential_state(now), Adapter::CredentialState::Missing);

  CallInput in;
  in.body = R"({"model":"m","messages":[{"role":"user","content":"Hi"}]})";
  in.upstream_model = "gemini-2.5-flash";
  Outgoing out;
  const auto refused = adapter->prepare(in, out);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->errc, core::Errc::ProviderUnavailable);

  EXPECT_EQ(adapter->refresh_credential(), "");
  EXPECT_EQ(adapter->credential_state(now), Adapter::CredentialState::Ready);
  EXPECT_EQ(adapter->credential_state(now + seconds(3599 - 60)),
            Adapter::CredentialState::RefreshSoon);
  ASSERT_FALSE(adapter->prepare(in, out));
  EXPECT_NE(out.headers.find("Authorization: Bearer ya29.test-token\r\n"), std::string::npos);
  EXPECT_EQ(out.target,
            "/v1/projects/demo-project/locations/europe-west4/publishers/google/models/"
            "gemini-2.5-flash:generateContent");
}

TEST(GoogleAuth, PostFormRefusesWhatIsNotAnHttpUrl) {
  std::string error;
  EXPECT_FALSE(post_form("ftp://example.com/token", "", std::chrono::milliseconds(100), error));
  EXPECT_FALSE(post_form("not a url", "", std::chrono::milliseconds(100), error));
}

}  // namespace
}  // namespace llmgw::providers::gemini

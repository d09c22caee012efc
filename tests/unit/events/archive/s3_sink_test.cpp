#include "events/archive/s3_sink.hpp"

#include "events/archive/batch_codec.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <thread>

namespace llmgw::archive {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using asio::ip::tcp;

constexpr std::int64_t k20261207T180102Z = 1'796'666'462;
constexpr const char* kSecret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

S3Config config(std::string endpoint = {}) {
  S3Config c;
  c.bucket = "audit-bucket";
  c.region = "eu-west-1";
  c.endpoint = std::move(endpoint);
  c.credentials = {"AKIDEXAMPLE", kSecret, ""};
  c.timeout = std::chrono::milliseconds(5'000);
  c.clock = [] { return k20261207T180102Z; };
  return c;
}

std::string header(const S3Request& r, std::string_view name) {
  for (const auto& [n, v] : r.headers) {
    if (n == name) {
      return v;
    }
  }
  return "<absent>";
}

TEST(S3Signing, MatchesAwsDocumentedGetObjectExample) {
  // Amazon S3 API reference, "Examples: Signature Calculations in AWS Signature Version 4",
  // GET Object: examplebucket, /test.txt, Range bytes=0-9, 20130524T000000Z.
  aws::SigV4Request req;
  req.method = "GET";
  req.path = "/test.txt";
  req.headers = {{"Host", "examplebucket.s3.amazonaws.com"}, {"Range", "bytes=0-9"}};
  const aws::AwsCredentials creds{"AKIAIOSFODNN7EXAMPLE",
                                  "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", ""};
  const auto sig = aws::sign_v4(req, creds, s3_signing_options("us-east-1", 1'369'353'600));
  EXPECT_EQ(sig.signature, "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
  EXPECT_EQ(sig.authorization,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
            "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
            "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

TEST(S3Signing, MatchesAwsDocumentedPutObjectExample) {
  // Same page, PUT Object: "/test$file.text" (the '$' sent encoded), a Date header and
  // x-amz-storage-class, body "Welcome to Amazon S3.".
  aws::SigV4Request req;
  req.method = "PUT";
  req.path = "/test%24file.text";
  req.headers = {{"Host", "examplebucket.s3.amazonaws.com"},
                 {"Date", "Fri, 24 May 2013 00:00:00 GMT"},
                 {"x-amz-storage-class", "REDUCED_REDUNDANCY"}};
  req.payload = "Welcome to Amazon S3.";
  const aws::AwsCredentials creds{"AKIAIOSFODNN7EXAMPLE",
                                  "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", ""};
  const auto sig = aws::sign_v4(req, creds, s3_signing_options("us-east-1", 1'369'353'600));
  EXPECT_EQ(sig.signature, "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
}

TEST(S3Sink, SignsAPutAsAnIndependentImplementationDoes) {
  // tests/data/archive/s3_put_vector.py computes the same request with Python's hashlib.
  const S3Sink sink(config());
  const std::string key = "logs/2026/12/07/gw-1-20261207T180102Z-000000001.jsonl.gz";
  const auto r = sink.make_request("PUT", key, {}, "hello archive\n", k20261207T180102Z,
                                   {{"If-None-Match", "*"}});
  EXPECT_EQ(r.url, "https://audit-bucket.s3.eu-west-1.amazonaws.com/" + key);
  EXPECT_EQ(header(r, "Host"), "audit-bucket.s3.eu-west-1.amazonaws.com");
  EXPECT_EQ(header(r, "Content-MD5"), "XyExfFCZgN+L6GKM6pz3Ow==");
  EXPECT_EQ(header(r, "x-amz-content-sha256"),
            "ea0463d12bc36581369e010a3546c36c2b2c70e79b77b3acf15fdd9c13cf3bfb");
  EXPECT_EQ(header(r, "X-Amz-Date"), "20261207T180102Z");
  EXPECT_EQ(r.signature, "142bd4a2a398831ae7d0d8a56ee43f1abeb3c40ea9061df8df760c29153767b5");
  EXPECT_EQ(header(r, "Authorization"),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261207/eu-west-1/s3/aws4_request, "
            "SignedHeaders=content-md5;content-type;host;if-none-match;x-amz-content-sha256;"
            "x-amz-date, Signature=142bd4a2a398831ae7d0d8a56ee43f1abeb3c40ea9061df8df760c29153767b5");
}

TEST(S3Sink, AddressesPathStyleWithAnEndpointAndForDottedBuckets) {
  const S3Sink local(config("http://127.0.0.1:9000"));
  auto r = local.make_request("GET", "logs/a b+c.jsonl.gz", {}, {}, k20261207T180102Z);
  EXPECT_EQ(r.url, "http://127.0.0.1:9000/audit-bucket/logs/a%20b%2Bc.jsonl.gz");
  EXPECT_EQ(header(r, "Host"), "127.0.0.1:9000");
  EXPECT_EQ(header(r, "Content-MD5"), "<absent>");
  auto dotted = config();
  dotted.bucket = "audit.example.com";
  r = S3Sink(dotted).make_request("GET", "k", "list-type=2", {}, k20261207T180102Z);
  EXPECT_EQ(r.url, "https://s3.eu-west-1.amazonaws.com/audit.example.com/k?list-type=2");
  auto with_token = config();
  with_token.credentials.session_token = "session-token";
  r = S3Sink(with_token).make_request("GET", "k", {}, {}, k20261207T180102Z);
  EXPECT_EQ(header(r, "X-Amz-Security-Token"), "session-token");
  EXPECT_NE(header(r, "Authorization").find("x-amz-security-token"), std::string::npos);
}

TEST(S3Sink, RefusesUnusableSettingsWithoutQuotingTheSecret) {
  auto c = config();
  c.credentials.access_key_id.clear();
  try {
    S3Sink sink(c);
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("AWS_ACCESS_KEY_ID"), std::string::npos);
    EXPECT_EQ(std::string(e.what()).find(kSecret), std::string::npos);
  }
  c = config();
  c.bucket = "UPPER";
  EXPECT_THROW(S3Sink{c}, std::invalid_argument);
  EXPECT_THROW(S3Sink{config("ftp://x")}, std::invalid_argument);
}

TEST(S3Sink, ReadsTheStoresErrorDocuments) {
  EXPECT_EQ(s3_error_text(R"(<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>NoSuchBucket</Code><Message>The specified bucket &amp; key
do not exist</Message><BucketName>b</BucketName></Error>)"),
            "NoSuchBucket: The specified bucket & key do not exist");
  EXPECT_EQ(s3_error_text("not xml"), "");
  EXPECT_EQ(s3_error_text("<Code>X</Code>"), "X");
  EXPECT_EQ(content_md5(""), "1B2M2Y8AsgTpgAmY7PhCfg==");
}

/// A small S3 lookalike: PUT (honouring If-None-Match: *, or answering 501 to it), GET, HEAD,
/// ListObjectsV2; checks Content-MD5 like S3 does. One request per connection.
class FakeS3 {
 public:
  explicit FakeS3(bool conditional = true) : conditional_(conditional) {
    acceptor_.open(tcp::v4());
    acceptor_.bind(tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    acceptor_.listen();
    thread_ = std::thread([this] { run(); });
  }
  ~FakeS3() {
    stop_ = true;
    boost::system::error_code ec;
    tcp::socket wake(ioc_);
    wake.connect(acceptor_.local_endpoint(), ec);
    thread_.join();
  }
  FakeS3(const FakeS3&) = delete;
  FakeS3& operator=(const FakeS3&) = delete;

  std::string url() const {
    return "http://127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port());
  }
  std::map<std::string, std::string> objects() {
    const std::lock_guard lock(mu_);
    return objects_;
  }
  void put_object(const std::string& path, std::string body) {
    const std::lock_guard lock(mu_);
    objects_[path] = std::move(body);
  }
  std::atomic<int> puts{0};
  std::atomic<int> heads{0};

 private:
  void run() {
    while (!stop_) {
      tcp::socket s(ioc_);
      boost::system::error_code ec;
      acceptor_.accept(s, ec);
      if (ec || stop_) {
        continue;
      }
      boost::beast::flat_buffer buf;
      http::request<http::string_body> req;
      http::read(s, buf, req, ec);
      if (ec) {
        continue;
      }
      http::response<http::string_body> res = answer(req);
      res.keep_alive(false);
      if (req.method() != http::verb::head) {
        res.prepare_payload();
      }
      http::write(s, res, ec);
    }
  }

  http::response<http::string_body> answer(const http::request<http::string_body>& req) {
    const std::lock_guard lock(mu_);
    std::string target(req.target());
    const std::string path = target.substr(0, target.find('?'));
    http::response<http::string_body> res{http::status::ok, 11};
    const auto err = [&](http::status st, const char* code) {
      res.result(st);
      res.body() = std::string("<Error><Code>") + code + "</Code><Message>m</Message></Error>";
      return res;
    };
    if (req.find(http::field::authorization) == req.end()) {
      return err(http::status::forbidden, "AccessDenied");
    }
    if (req.method() == http::verb::put) {
      ++puts;
      if (std::string(req["Content-MD5"]) != content_md5(req.body())) {
        return err(http::status::bad_request, "BadDigest");
      }
      if (req.find(http::field::if_none_match) != req.end()) {
        if (!conditional_) {
          return err(http::status::not_implemented, "NotImplemented");
        }
        if (objects_.contains(path)) {
          return err(http::status::precondition_failed, "PreconditionFailed");
        }
      }
      objects_[path] = req.body();
      return res;
    }
    if (req.method() == http::verb::head) {
      ++heads;
    }
    if (target.find("list-type=2") != std::string::npos) {
      res.body() = "<ListBucketResult><IsTruncated>false</IsTruncated>";
      for (const auto& [k, v] : objects_) {
        res.body() += "<Contents><Key>" + k.substr(k.find('/', 1) + 1) + "</Key></Contents>";
      }
      res.body() += "</ListBucketResult>";
      return res;
    }
    const auto it = objects_.find(path);
    if (it == objects_.end()) {
      return err(http::status::not_found, "NoSuchKey");
    }
    if (req.method() == http::verb::get) {
      res.body() = it->second;
    } else {
      res.content_length(it->second.size());
    }
    return res;
  }

  bool conditional_;
  asio::io_context ioc_;
  tcp::acceptor acceptor_{ioc_};
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::map<std::string, std::string> objects_;
};

TEST(S3Sink, PutsGetsAndListsObjects) {
  FakeS3 store;
  S3Sink sink(config(store.url()));
  std::string error;
  const auto gz = encode_batch(std::vector<std::string>{R"({"id":1})"}, error);
  ASSERT_TRUE(gz) << error;
  const auto r = sink.put("logs/2026/12/07/a.jsonl.gz", *gz);
  ASSERT_TRUE(r.ok()) << r.reason;
  EXPECT_EQ(store.objects().at("/audit-bucket/logs/2026/12/07/a.jsonl.gz"), *gz);
  EXPECT_EQ(sink.get("logs/2026/12/07/a.jsonl.gz", error), *gz);
  const auto names = sink.list("logs/", error);
  ASSERT_TRUE(names) << error;
  EXPECT_EQ(*names, std::vector<std::string>{"logs/2026/12/07/a.jsonl.gz"});
  EXPECT_FALSE(sink.get("logs/missing.jsonl.gz", error));
  EXPECT_NE(error.find("HTTP 404: NoSuchKey"), std::string::npos) << error;
}

TEST(S3Sink, ARetriedPutOfTheSameBytesSucceedsOtherBytesConflict) {
  for (const bool conditional : {true, false}) {
    FakeS3 store(conditional);
    S3Sink sink(config(store.url()));
    ASSERT_TRUE(sink.put("logs/x.jsonl.gz", "one").ok());
    const auto again = sink.put("logs/x.jsonl.gz", "one");
    EXPECT_TRUE(again.ok()) << again.reason;
    const auto other = sink.put("logs/x.jsonl.gz", "two");
    EXPECT_EQ(other.status, PutStatus::Conflict) << other.reason;
    EXPECT_EQ(store.objects().at("/audit-bucket/logs/x.jsonl.gz"), "one");
    if (!conditional) {
      EXPECT_GT(store.heads.load(), 0);  // fell back to looking first
    }
  }
}

TEST(S3Sink, FailuresAreRetryableAndNeverNameTheSecret) {
  std::string url;
  {
    FakeS3 gone;
    url = gone.url();
  }
  S3Sink sink(config(url));  // nothing listens there any more
  const auto r = sink.put("logs/x.jsonl.gz", "bytes");
  EXPECT_EQ(r.status, PutStatus::Failed);
  EXPECT_NE(r.reason.find("s3://audit-bucket/logs/x.jsonl.gz"), std::string::npos) << r.reason;
  EXPECT_EQ(r.reason.find(kSecret), std::string::npos);
  EXPECT_EQ(r.reason.find("Signature"), std::string::npos);
  const auto bad = sink.put("../x", "bytes");
  EXPECT_EQ(bad.status, PutStatus::Failed);
}

}  // namespace
}  // namespace llmgw::archive

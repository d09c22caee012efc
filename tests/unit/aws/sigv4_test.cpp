// SigV4 against AWS's own test suites (tests/data/aws-sigv4/README.md): every case of
// aws-c-auth's v4 suite (header signing: canonical request, string to sign, signature) and
// botocore's aws4_testsuite (canonical request, string to sign, Authorization header).

#include "aws/sigv4.hpp"
#include "core/ids.hpp"

#include "read_file.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <filesystem>

namespace llmgw::aws {
namespace {

namespace fs = std::filesystem;
const fs::path kData = fs::path(LLMGW_TEST_DATA_DIR) / "aws-sigv4";

using test::read_file;

/// A request file: "METHOD TARGET HTTP/1.1", header lines (a line starting with whitespace
/// continues the previous value), a blank line, the body.
struct ParsedRequest {
  std::string method, path, query, body;
  std::vector<std::pair<std::string, std::string>> headers;
};

ParsedRequest parse_request(const std::string& text) {
  ParsedRequest r;
  std::size_t pos = text.find('\n');
  std::string first = text.substr(0, pos);
  if (!first.empty() && first.back() == '\r') first.pop_back();
  const std::size_t sp = first.find(' ');
  const std::size_t proto = first.rfind(" HTTP/");
  r.method = first.substr(0, sp);
  const std::string target = first.substr(sp + 1, proto - sp - 1);
  const std::size_t q = target.find('?');
  r.path = target.substr(0, q);
  r.query = q == std::string::npos ? "" : target.substr(q + 1);
  while (pos != std::string::npos && pos + 1 <= text.size()) {
    const std::size_t start = pos + 1;
    pos = text.find('\n', start);
    std::string line = text.substr(start, pos == std::string::npos ? std::string::npos : pos - start);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) {
      r.body = pos == std::string::npos ? "" : text.substr(pos + 1);
      break;
    }
    if ((line[0] == ' ' || line[0] == '\t') && !r.headers.empty()) {
      r.headers.back().second += " " + line;
      continue;
    }
    const std::size_t colon = line.find(':');
    r.headers.emplace_back(line.substr(0, colon), line.substr(colon + 1));
  }
  return r;
}

std::string trim_end(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

std::vector<fs::path> cases(const fs::path& dir) {
  std::vector<fs::path> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file() && (e.path().filename() == "request.txt" || e.path().extension() == ".req")) {
      out.push_back(e.path());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST(SigV4, AwsCAuthSuiteHeaderSigning) {
  const auto all = cases(kData / "aws-c-auth-v4");
  ASSERT_GE(all.size(), 38u);
  for (const auto& req_file : all) {
    const fs::path dir = req_file.parent_path();
    SCOPED_TRACE(dir.filename().string());
    const auto ctx = boost::json::parse(read_file(dir / "context.json")).as_object();
    const auto& c = ctx.at("credentials").as_object();
    AwsCredentials creds{std::string(c.at("access_key_id").as_string()),
                         std::string(c.at("secret_access_key").as_string()), ""};
    if (c.contains("token")) creds.session_token = std::string(c.at("token").as_string());
    SigV4Options opt;
    opt.region = std::string(ctx.at("region").as_string());
    opt.service = std::string(ctx.at("service").as_string());
    ASSERT_TRUE(core::parse_utc(std::string(ctx.at("timestamp").as_string()), opt.unix_seconds));
    opt.normalize_path = ctx.at("normalize").as_bool();
    opt.content_sha256_header = ctx.at("sign_body").as_bool();
    if (ctx.contains("omit_session_token")) {
      opt.sign_session_token = !ctx.at("omit_session_token").as_bool();
    }
    const ParsedRequest pr = parse_request(read_file(req_file));
    SigV4Request req{pr.method, pr.path, pr.query, pr.headers, pr.body};
    const SigV4Signature sig = sign_v4(req, creds, opt);
    EXPECT_EQ(sig.canonical_request, trim_end(read_file(dir / "header-canonical-request.txt")));
    EXPECT_EQ(sig.string_to_sign, trim_end(read_file(dir / "header-string-to-sign.txt")));
    EXPECT_EQ(sig.signature, trim_end(read_file(dir / "header-signature.txt")));
    // The signed request's Authorization line is ours.
    const std::string signed_req = read_file(dir / "header-signed-request.txt");
    EXPECT_NE(signed_req.find("Authorization:" + sig.authorization), std::string::npos)
        << sig.authorization;
  }
}

TEST(SigV4, BotocoreSuite) {
  const auto all = cases(kData / "botocore");
  ASSERT_GE(all.size(), 30u);
  for (const auto& req_file : all) {
    const fs::path stem = req_file.parent_path() / req_file.stem();
    SCOPED_TRACE(req_file.stem().string());
    ParsedRequest pr = parse_request(read_file(req_file));
    AwsCredentials creds{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", ""};
    // The suite's requests carry X-Amz-Date (and a session token) already: the signer adds
    // them itself.
    std::erase_if(pr.headers, [&](const auto& h) {
      std::string n = h.first;
      std::transform(n.begin(), n.end(), n.begin(), ::tolower);
      if (n == "x-amz-security-token") creds.session_token = h.second;
      return n == "x-amz-date" || n == "x-amz-security-token";
    });
    if (req_file.stem() == "get-vanilla-with-session-token") {
      // botocore's runner gives this case its token (the request file does not carry it).
      creds.session_token = "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267";
    }
    SigV4Options opt{.region = "us-east-1", .service = "service"};
    ASSERT_TRUE(core::parse_utc("2015-08-30T12:36:00Z", opt.unix_seconds));
    SigV4Request req{pr.method, pr.path, pr.query, pr.headers, pr.body};
    const SigV4Signature sig = sign_v4(req, creds, opt);
    EXPECT_EQ(sig.canonical_request, trim_end(read_file(stem.string() + ".creq")));
    EXPECT_EQ(sig.string_to_sign, trim_end(read_file(stem.string() + ".sts")));
    EXPECT_EQ(sig.authorization, trim_end(read_file(stem.string() + ".authz")));
  }
}

TEST(SigV4, BedrockPathsAreEncodedTwiceAndTheBodyIsSigned) {
  // Bedrock's model ids carry ':' (sent as %3A); the canonical path encodes it again.
  SigV4Request req{"POST", "/model/us.anthropic.claude-sonnet-4-20250514-v1%3A0/converse", "",
                   {{"Host", "bedrock-runtime.us-east-1.amazonaws.com"},
                    {"Content-Type", "application/json"}},
                   R"({"messages":[]})"};
  SigV4Options opt{.region = "us-east-1", .service = "bedrock", .unix_seconds = 1'700'000'000};
  const auto sig = sign_v4(req, {"AKID", "secret", "tok"}, opt);
  EXPECT_NE(sig.canonical_request.find("\n/model/us.anthropic.claude-sonnet-4-20250514-v1%253A0/converse\n"),
            std::string::npos)
      << sig.canonical_request;
  EXPECT_TRUE(sig.canonical_request.ends_with(sha256_hex(R"({"messages":[]})")));
  ASSERT_EQ(sig.added_headers.size(), 2u);
  EXPECT_EQ(sig.added_headers[0].first, "X-Amz-Date");
  EXPECT_EQ(sig.added_headers[0].second, "20231114T221320Z");
  EXPECT_EQ(sig.added_headers[1].second, "tok");
  EXPECT_NE(sig.authorization.find("/20231114/us-east-1/bedrock/aws4_request"), std::string::npos);
  EXPECT_NE(sig.authorization.find("SignedHeaders=content-type;host;x-amz-date;x-amz-security-token"),
            std::string::npos);
  // A different body is a different signature.
  req.payload = R"({"messages":[1]})";
  EXPECT_NE(sign_v4(req, {"AKID", "secret", "tok"}, opt).signature, sig.signature);
}

TEST(SigV4, TheDaysSigningKeyIsCachedAndRenewedTheNextDay) {
  SigV4Request req{"POST", "/model/m/converse", "", {{"Host", "bedrock.example"}}, "{}"};
  SigV4Options opt{.region = "us-east-1", .service = "bedrock", .unix_seconds = 1'700'000'000};
  const AwsCredentials creds{"AKID", "secret", ""};
  SigningKeyCache cache;
  SigningKeyCache::Key key{};
  EXPECT_FALSE(cache.find("20231114", key));
  const auto first = sign_v4(req, creds, opt, &cache);
  EXPECT_EQ(first.signature, sign_v4(req, creds, opt).signature);
  EXPECT_TRUE(cache.find("20231114", key));
  EXPECT_EQ(sign_v4(req, creds, opt, &cache).signature, first.signature);
  opt.unix_seconds += 86'400;  // the next day: a new key, the same as signing without a cache
  const auto next = sign_v4(req, creds, opt, &cache);
  EXPECT_EQ(next.signature, sign_v4(req, creds, opt).signature);
  EXPECT_FALSE(cache.find("20231114", key));
  EXPECT_TRUE(cache.find("20231115", key));
}

}  // namespace
}  // namespace llmgw::aws

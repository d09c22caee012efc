#include "providers/bedrock/bedrock.hpp"

#include "aws/sigv4.hpp"
#include "providers/bedrock/converse.hpp"
#include "providers/bedrock/converse_stream.hpp"
#include "providers/bedrock/redactor.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <stdexcept>

namespace llmgw::providers::bedrock {

namespace {

constexpr std::string_view kService = "bedrock";
constexpr std::string_view kJson = "application/json";
constexpr std::string_view kEventStream = "application/vnd.amazon.eventstream";
/// AWS region names ("us-east-1", "us-gov-west-1") are short; this bounds what a host holds.
constexpr std::size_t kMaxRegionBytes = 32;

class BedrockAdapter final : public Adapter {
 public:
  BedrockAdapter(core::Origin origin, std::string region, aws::AwsCredentials credentials,
                 std::string api_key)
      : origin_(std::move(origin)),
        region_(std::move(region)),
        credentials_(std::move(credentials)),
        api_key_(std::move(api_key)),
        redactor_(std::make_shared<const Redactor>(std::vector<std::string>{
            credentials_.secret_access_key, credentials_.session_token, api_key_})) {}

  [[nodiscard]] const core::Origin& origin() const noexcept override { return origin_; }

  [[nodiscard]] bool accepts(Format f) const noexcept override {
    // Embeddings are taken to be refused in prepare() with a clear message.
    return f == Format::OpenAIChat || f == Format::OpenAIEmbeddings;
  }

  [[nodiscard]] std::optional<Refusal> prepare(const CallInput& in,
                                               Outgoing& out) const override {
    if (in.format == Format::OpenAIEmbeddings) {
      return Refusal{"The bedrock provider does not offer embeddings.", "model"};
    }
    if (in.format != Format::OpenAIChat) {
      return Refusal{"The bedrock provider takes OpenAI chat completions.", ""};
    }
    if (in.upstream_model.empty()) {
      return Refusal{"The model has no Bedrock model id.", "model"};
    }
    out.client_body = false;
    if (auto r = build_converse_request(in.body, out.body)) {
      return r;
    }
    // The model id is one path segment: ':' of versions and '/' of ARNs percent-encoded.
    out.target = origin_.base_path;
    out.target += "/model/";
    out.target += aws::aws_uri_encode(in.upstream_model, false);
    out.target += in.stream ? "/converse-stream" : "/converse";

    out.headers.clear();
    append_header(out.headers, "Content-Type", kJson);
    append_header(out.headers, "Accept", in.stream ? kEventStream : kJson);
    if (!api_key_.empty()) {
      append_header(out.headers, "Authorization", "Bearer " + api_key_);
      return std::nullopt;
    }
    // Host is the one the proxy sends (the origin's); both it and Content-Type are signed.
    const aws::SigV4Request req{
        "POST",
        out.target,
        "",
        {{"Host", origin_.host_header}, {"Content-Type", std::string(kJson)}},
        out.body};
    aws::SigV4Options opt;
    opt.region = region_;
    opt.service = kService;
    opt.unix_seconds =
        std::chrono::duration_cast<std::chrono::seconds>(in.now.time_since_epoch()).count();
    const aws::SigV4Signature sig = aws::sign_v4(req, credentials_, opt, &signing_keys_);
    for (const auto& [name, value] : sig.added_headers) {
      append_header(out.headers, name, value);
    }
    append_header(out.headers, "Authorization", sig.authorization);
    return std::nullopt;
  }

  [[nodiscard]] bool translate_answer(const CallInput& in, std::string_view body,
                                      std::string& out, Answer& answer) const override {
    return translate_converse_answer(in, body, out, answer);
  }

  [[nodiscard]] ProviderError translate_error(unsigned status, std::string_view body,
                                              std::string_view retry_after) const override {
    // restJson1 errors: {"message": "..."} ("Message" from some front ends); the error's name
    // is in the x-amzn-ErrorType header, which the status stands in for here.
    std::string message;
    boost::system::error_code ec;
    const boost::json::value v = boost::json::parse(body, ec);
    if (const boost::json::object* o = ec ? nullptr : v.if_object()) {
      for (const std::string_view key : {"message", "Message"}) {
        if (const boost::json::value* m = o->if_contains(key); m != nullptr && m->is_string()) {
          message = redactor_->clean(m->get_string());
          break;
        }
      }
    }
    return map_error(status, std::move(message), retry_after);
  }

  [[nodiscard]] std::unique_ptr<StreamTranslator> translate_stream(
      const CallInput& in) const override {
    return std::make_unique<ConverseStreamTranslator>(in, redactor_);
  }

  [[nodiscard]] std::string_view stream_content_type() const noexcept override {
    return kEventStream;
  }

 private:
  static void append_header(std::string& out, std::string_view name, std::string_view value) {
    out += name;
    out += ": ";
    out += value;
    out += "\r\n";
  }

  core::Origin origin_;
  std::string region_;
  aws::AwsCredentials credentials_;
  std::string api_key_;
  std::shared_ptr<const Redactor> redactor_;
  mutable aws::SigningKeyCache signing_keys_;  ///< the day's key, shared by the I/O threads
};

std::string_view find(const std::map<std::string, std::string>& m, const std::string& key) {
  const auto it = m.find(key);
  return it == m.end() ? std::string_view{} : std::string_view(it->second);
}

bool is_region(std::string_view r) noexcept {
  if (r.empty() || r.size() > kMaxRegionBytes || r.front() == '-' || r.back() == '-') {
    return false;
  }
  for (const char c : r) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) {
      return false;
    }
  }
  return true;
}

/// A value that goes into a header line: printable ASCII and spaces only.
void check_header_value(std::string_view setting, std::string_view value) {
  for (const char c : value) {
    if (c < ' ' || c > '~') {
      throw std::invalid_argument("'" + std::string(setting) +
                                  "' holds a character a header cannot carry.");
    }
  }
}

}  // namespace

std::shared_ptr<const Adapter> make_bedrock_adapter(const core::ProviderConfig& p) {
  const std::string_view region = find(p.settings, "region");
  if (region.empty()) {
    throw std::invalid_argument("'region' is required for provider type bedrock.");
  }
  if (!is_region(region)) {
    throw std::invalid_argument("'region' must be an AWS region name such as us-east-1.");
  }
  const std::string base_url = p.base_url.empty()
                                   ? "https://bedrock-runtime." + std::string(region) +
                                         ".amazonaws.com"
                                   : p.base_url;
  auto origin = core::Origin::parse(base_url);
  if (!origin) {
    throw std::invalid_argument("'base_url' must be an http:// or https:// URL.");
  }

  aws::AwsCredentials creds;
  creds.access_key_id = find(p.settings, "aws_access_key_id");
  creds.secret_access_key = find(p.secrets, "aws_secret_access_key");
  creds.session_token = find(p.secrets, "aws_session_token");
  const bool sigv4 = !creds.access_key_id.empty() || !creds.secret_access_key.empty() ||
                     !creds.session_token.empty();
  if (sigv4 && !p.api_key.empty()) {
    throw std::invalid_argument(
        "'api_key' and 'aws_access_key_id' are both set: a bedrock provider uses one "
        "credential, a Bedrock API key or AWS access keys.");
  }
  if (sigv4) {
    if (creds.access_key_id.empty()) {
      throw std::invalid_argument(
          "'aws_access_key_id' is required with 'aws_secret_access_key' for provider type "
          "bedrock.");
    }
    if (creds.secret_access_key.empty()) {
      throw std::invalid_argument(
          "'aws_secret_access_key' is required with 'aws_access_key_id' for provider type "
          "bedrock.");
    }
    check_header_value("aws_access_key_id", creds.access_key_id);
    check_header_value("aws_session_token", creds.session_token);
  } else if (p.api_key.empty()) {
    throw std::invalid_argument(
        "'aws_access_key_id' and 'aws_secret_access_key', or 'api_key', are required for "
        "provider type bedrock.");
  } else {
    check_header_value("api_key", p.api_key);
  }
  return std::make_shared<const BedrockAdapter>(std::move(*origin), std::string(region),
                                                std::move(creds), sigv4 ? "" : p.api_key);
}

}  // namespace llmgw::providers::bedrock

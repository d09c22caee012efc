#include "providers/gemini/vertex.hpp"

#include "providers/anthropic/codec.hpp"
#include "providers/gemini/codec.hpp"
#include "providers/gemini/google_auth.hpp"

#include <boost/json/parse.hpp>

#include <fstream>
#include <sstream>
#include <stdexcept>

namespace llmgw::providers {

namespace {

constexpr std::size_t kMaxCredentialsFile = 64 * 1024;

/// Project ids and locations as Google names them: lowercase letters, digits, '-' (and ':'
/// / '.' in legacy domain-scoped project ids).
bool valid_name(std::string_view s) {
  if (s.empty() || s.size() > 100) {
    return false;
  }
  for (const char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == ':' ||
          c == '_')) {
      return false;
    }
  }
  return true;
}

bool is_claude(std::string_view model) {
  return model.substr(0, 6) == "claude";
}

/// Whether an error body is Anthropic's (`{"type":"error",...}`, from a Claude model) rather
/// than Google's envelope (from Vertex AI itself: credentials, quota, unknown model).
bool is_anthropic_error(std::string_view body) {
  boost::system::error_code ec;
  const auto v = boost::json::parse(body, ec);
  if (ec || !v.is_object()) {
    return false;
  }
  const auto* type = v.get_object().if_contains("type");
  return type != nullptr && type->is_string() && type->get_string() == "error";
}

std::string setting(const core::ProviderConfig& c, const std::string& name, bool secret) {
  const auto& m = secret ? c.secrets : c.settings;
  const auto it = m.find(name);
  return it == m.end() ? std::string() : it->second;
}

class VertexAdapter final : public Adapter {
 public:
  VertexAdapter(core::Origin origin, std::string location_path,
                std::shared_ptr<gemini::TokenSource> tokens, std::string static_token)
      : origin_(std::move(origin)),
        location_path_(std::move(location_path)),
        tokens_(std::move(tokens)),
        static_auth_(static_token.empty() ? std::string()
                                          : "Authorization: Bearer " + static_token + "\r\n") {}

  [[nodiscard]] const core::Origin& origin() const noexcept override { return origin_; }

  [[nodiscard]] bool accepts(Format f) const noexcept override {
    return f == Format::OpenAIChat || f == Format::OpenAIEmbeddings;
  }

  [[nodiscard]] std::optional<Refusal> prepare(const CallInput& in, Outgoing& out) const override {
    std::string auth;
    if (!static_auth_.empty()) {
      auth = static_auth_;
    } else if (const auto token = tokens_->current(); token != nullptr) {
      auth = "Authorization: Bearer " + token->token + "\r\n";
    } else {
      return Refusal{
          "The provider's access token is not available yet.", {}, core::Errc::ProviderUnavailable};
    }
    std::optional<Refusal> refusal;
    std::string_view method;
    if (is_claude(in.upstream_model)) {
      anthropic::MessagesOptions options;
      options.vertex = true;
      if (auto r = anthropic::build_request(in, options, out.body)) {
        return r;
      }
      out.client_body = false;
      out.target = model_path(in.upstream_model, "publishers/anthropic/models/");
      out.target += in.stream ? ":streamRawPredict" : ":rawPredict";
      out.headers = std::move(auth);
      out.headers += "Content-Type: application/json\r\n";
      out.headers += in.stream ? "Accept: text/event-stream\r\n" : "Accept: application/json\r\n";
      return std::nullopt;
    }
    if (in.format == Format::OpenAIEmbeddings) {
      refusal = gemini::build_vertex_embed_request(in.body, out.body);
      method = ":predict";
    } else if (in.format == Format::OpenAIChat) {
      refusal = gemini::build_generate_request(in.body, in.upstream_model, out.body);
      method = in.stream ? ":streamGenerateContent?alt=sse" : ":generateContent";
    } else {
      return Refusal{"This provider does not take this call format.", {}, core::Errc::BadRequest};
    }
    if (refusal) {
      return refusal;
    }
    out.client_body = false;
    out.target = model_path(in.upstream_model, "publishers/google/models/");
    out.target += method;
    out.headers = std::move(auth);
    out.headers += "Content-Type: application/json\r\n";
    if (in.stream && in.format == Format::OpenAIChat) {
      out.headers += "Accept: text/event-stream\r\n";
    }
    return std::nullopt;
  }

  [[nodiscard]] bool translate_answer(const CallInput& in, std::string_view body, std::string& out,
                                      Answer& answer) const override {
    if (is_claude(in.upstream_model)) {
      return anthropic::translate_answer(in, body, out, answer);
    }
    if (in.format == Format::OpenAIEmbeddings) {
      return gemini::translate_vertex_embed_answer(in, body, out, answer);
    }
    return gemini::translate_generate_answer(in, body, out, answer);
  }

  [[nodiscard]] ProviderError translate_error(unsigned status, std::string_view body,
                                              std::string_view retry_after) const override {
    if (is_anthropic_error(body)) {
      return anthropic::translate_error(status, body, retry_after);
    }
    return gemini::translate_google_error(status, body, retry_after);
  }

  [[nodiscard]] std::unique_ptr<StreamTranslator> translate_stream(
      const CallInput& in) const override {
    if (is_claude(in.upstream_model)) {
      return anthropic::make_stream_translator(in);
    }
    return gemini::make_generate_stream(in);
  }

  [[nodiscard]] CredentialState credential_state(
      std::chrono::system_clock::time_point now) const noexcept override {
    if (!tokens_) {
      return CredentialState::Ready;
    }
    switch (tokens_->state(now)) {
      case gemini::TokenSource::State::Ready:
        return CredentialState::Ready;
      case gemini::TokenSource::State::RefreshSoon:
        return CredentialState::RefreshSoon;
      case gemini::TokenSource::State::Missing:
        break;
    }
    return CredentialState::Missing;
  }

  [[nodiscard]] std::string refresh_credential() const override {
    return tokens_ ? tokens_->refresh() : std::string();
  }

 private:
  /// "/v1/projects/{p}/locations/{l}/{publisher_path}{model}", or the model's own resource
  /// path ("projects/…" from /v1, anything else with a '/' under the location).
  [[nodiscard]] std::string model_path(std::string_view model,
                                       std::string_view publisher_path) const {
    std::string target = origin_.base_path;
    if (model.substr(0, 9) == "projects/") {
      target += "/v1/";
      target += gemini::encode_model(model, true);
      return target;
    }
    target += location_path_;
    if (model.find('/') != std::string_view::npos) {
      target += gemini::encode_model(model, true);
      return target;
    }
    target += publisher_path;
    target += gemini::encode_model(model, false);
    return target;
  }

  core::Origin origin_;
  std::string location_path_;  ///< "/v1/projects/{p}/locations/{l}/"
  std::shared_ptr<gemini::TokenSource> tokens_;
  std::string static_auth_;
};

}  // namespace

std::shared_ptr<const Adapter> make_vertex_adapter(const core::ProviderConfig& config) {
  const std::string project = setting(config, "project", false);
  const std::string location = setting(config, "location", false);
  if (!valid_name(project)) {
    throw std::invalid_argument("'project' must be a Google Cloud project id.");
  }
  if (!valid_name(location)) {
    throw std::invalid_argument(
        "'location' must be a Google Cloud location such as "
        "us-central1 or global.");
  }
  const std::string base = !config.base_url.empty() ? config.base_url
                           : location == "global"
                               ? std::string("https://aiplatform.googleapis.com")
                               : "https://" + location + "-aiplatform.googleapis.com";
  auto origin = core::Origin::parse(base);
  if (!origin) {
    throw std::invalid_argument("'base_url' must be an http:// or https:// URL.");
  }

  std::string credentials = setting(config, "credentials_json", true);
  std::string credentials_name = "credentials_json";
  const std::string file = setting(config, "credentials_file", false);
  if (credentials.empty() && !file.empty()) {
    credentials_name = "credentials_file";
    std::ifstream in(file, std::ios::binary);
    std::ostringstream text;
    if (!in || !(text << in.rdbuf())) {
      throw std::invalid_argument("'credentials_file' cannot be read.");
    }
    credentials = text.str();
    if (credentials.size() > kMaxCredentialsFile) {
      throw std::invalid_argument("'credentials_file' is too large for a credentials file.");
    }
  }
  std::shared_ptr<gemini::TokenSource> tokens;
  if (!credentials.empty()) {
    std::string error;
    auto parsed = gemini::parse_credentials(credentials, error);
    if (!parsed) {
      throw std::invalid_argument("'" + credentials_name + "': " + error + ".");
    }
    tokens = std::make_shared<gemini::TokenSource>(std::move(*parsed));
  }
  const std::string access_token = setting(config, "access_token", true);
  if (access_token.find_first_of("\r\n") != std::string::npos) {
    throw std::invalid_argument("'access_token' must be one line.");
  }
  if (!tokens && access_token.empty()) {
    throw std::invalid_argument(
        "'credentials_json', 'credentials_file' or 'access_token' is "
        "required for provider type vertex.");
  }
  std::string location_path = "/v1/projects/" + project + "/locations/" + location + "/";
  return std::make_shared<VertexAdapter>(std::move(*origin), std::move(location_path),
                                         std::move(tokens), tokens ? std::string() : access_token);
}

}  // namespace llmgw::providers

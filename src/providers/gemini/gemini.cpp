#include "providers/gemini/gemini.hpp"

#include "providers/gemini/codec.hpp"

#include <stdexcept>

namespace llmgw::providers {

namespace {

constexpr std::string_view kDefaultOrigin = "https://generativelanguage.googleapis.com";
constexpr std::string_view kApiVersion = "/v1beta/";

class GeminiAdapter final : public Adapter {
 public:
  GeminiAdapter(core::Origin origin, std::string api_key)
      : origin_(std::move(origin)), key_header_("x-goog-api-key: " + api_key + "\r\n") {}

  [[nodiscard]] const core::Origin& origin() const noexcept override { return origin_; }

  [[nodiscard]] bool accepts(Format f) const noexcept override {
    return f == Format::OpenAIChat || f == Format::OpenAIEmbeddings;
  }

  [[nodiscard]] std::optional<Refusal> prepare(const CallInput& in, Outgoing& out) const override {
    std::optional<Refusal> refusal;
    std::string_view method;
    if (in.format == Format::OpenAIEmbeddings) {
      bool batch = false;
      refusal = gemini::build_gemini_embed_request(in.body, in.upstream_model, batch, out.body);
      method = batch ? ":batchEmbedContents" : ":embedContent";
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
    out.target = model_path(in.upstream_model);
    out.target += method;
    out.headers = key_header_;
    out.headers += "Content-Type: application/json\r\n";
    if (in.stream && in.format == Format::OpenAIChat) {
      out.headers += "Accept: text/event-stream\r\n";
    }
    return std::nullopt;
  }

  [[nodiscard]] bool translate_answer(const CallInput& in, std::string_view body, std::string& out,
                                      Answer& answer) const override {
    if (in.format == Format::OpenAIEmbeddings) {
      return gemini::translate_gemini_embed_answer(in, body, out, answer);
    }
    return gemini::translate_generate_answer(in, body, out, answer);
  }

  [[nodiscard]] ProviderError translate_error(unsigned status, std::string_view body,
                                              std::string_view retry_after) const override {
    return gemini::translate_google_error(status, body, retry_after);
  }

  [[nodiscard]] std::unique_ptr<StreamTranslator> translate_stream(
      const CallInput& in) const override {
    return gemini::make_generate_stream(in);
  }

 private:
  /// "/v1beta/models/{model}", or the resource name as given ("tunedModels/x", "models/x").
  [[nodiscard]] std::string model_path(std::string_view model) const {
    std::string target = origin_.base_path;
    target += kApiVersion;
    if (model.find('/') == std::string_view::npos) {
      target += "models/";
      target += gemini::encode_model(model, false);
    } else {
      target += gemini::encode_model(model, true);
    }
    return target;
  }

  core::Origin origin_;
  std::string key_header_;
};

}  // namespace

std::shared_ptr<const Adapter> make_gemini_adapter(const core::ProviderConfig& config) {
  const std::string base = config.base_url.empty() ? std::string(kDefaultOrigin) : config.base_url;
  auto origin = core::Origin::parse(base);
  if (!origin) {
    throw std::invalid_argument("'base_url' must be an http:// or https:// URL.");
  }
  if (config.api_key.empty()) {
    throw std::invalid_argument("'api_key' is required for provider type gemini.");
  }
  if (config.api_key.find_first_of("\r\n") != std::string::npos) {
    throw std::invalid_argument("'api_key' must be one line.");
  }
  return std::make_shared<GeminiAdapter>(std::move(*origin), config.api_key);
}

}  // namespace llmgw::providers

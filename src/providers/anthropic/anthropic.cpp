#include "providers/anthropic/anthropic.hpp"

#include "providers/anthropic/codec.hpp"

#include <stdexcept>

namespace llmgw::providers {

namespace {

constexpr std::string_view kDefaultBaseUrl = "https://api.anthropic.com";

/// A header value must be one line of visible ASCII (or tabs and spaces): anything else could
/// split the request.
bool header_safe(std::string_view v) {
  for (const char c : v) {
    const auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t') || u == 0x7f) {
      return false;
    }
  }
  return true;
}

class AnthropicAdapter final : public Adapter {
 public:
  explicit AnthropicAdapter(const core::ProviderConfig& config) {
    const std::string_view base =
        config.base_url.empty() ? kDefaultBaseUrl : std::string_view(config.base_url);
    auto origin = core::Origin::parse(base);
    if (!origin) {
      throw std::invalid_argument("'base_url' of provider '" + config.name +
                                  "' is not a usable http:// or https:// URL.");
    }
    origin_ = std::move(*origin);
    if (config.api_key.empty()) {
      throw std::invalid_argument("'api_key' is required for provider type anthropic.");
    }
    if (!header_safe(config.api_key)) {
      throw std::invalid_argument("'api_key' of provider '" + config.name +
                                  "' holds a control character (a line break?).");
    }
    std::string_view version = anthropic::kApiVersion;
    if (const auto it = config.settings.find("anthropic_version");
        it != config.settings.end() && !it->second.empty()) {
      version = it->second;
    }
    if (!header_safe(version)) {
      throw std::invalid_argument("'anthropic_version' holds a control character.");
    }
    // A base URL given with Anthropic's version prefix ("https://host/v1") is taken as meant.
    target_ = origin_.base_path.ends_with("/v1") ? origin_.base_path + "/messages"
                                                 : origin_.base_path + "/v1/messages";
    headers_ = "x-api-key: " + config.api_key + "\r\nanthropic-version: " + std::string(version) +
               "\r\ncontent-type: application/json\r\n";
  }

  [[nodiscard]] const core::Origin& origin() const noexcept override { return origin_; }

  [[nodiscard]] bool accepts(Format f) const noexcept override {
    return f == Format::AnthropicMessages || f == Format::OpenAIChat;
  }

  [[nodiscard]] std::optional<Refusal> prepare(const CallInput& in,
                                               Outgoing& out) const override {
    const anthropic::MessagesOptions options;
    // The betas an Anthropic client names go with its body: the body may use their members.
    const bool betas = in.format == Format::AnthropicMessages && !in.anthropic_beta.empty();
    if (betas && !header_safe(in.anthropic_beta)) {
      return Refusal{"The anthropic-beta header holds a control character.", "anthropic-beta"};
    }
    if (anthropic::body_unchanged(in, options)) {
      out.client_body = true;
      out.body.clear();
    } else if (auto refusal = anthropic::build_request(in, options, out.body)) {
      return refusal;
    } else {
      out.client_body = false;
    }
    out.target = target_;
    out.headers = headers_;
    if (betas) {
      out.headers += "anthropic-beta: ";
      out.headers += in.anthropic_beta;
      out.headers += "\r\n";
    }
    out.headers += in.stream ? "accept: text/event-stream\r\n" : "accept: application/json\r\n";
    return std::nullopt;
  }

  [[nodiscard]] bool translate_answer(const CallInput& in, std::string_view body,
                                      std::string& out, Answer& answer) const override {
    return anthropic::translate_answer(in, body, out, answer);
  }

  [[nodiscard]] ProviderError translate_error(unsigned status, std::string_view body,
                                              std::string_view retry_after) const override {
    return anthropic::translate_error(status, body, retry_after);
  }

  [[nodiscard]] std::unique_ptr<StreamTranslator> translate_stream(
      const CallInput& in) const override {
    return anthropic::make_stream_translator(in);
  }

 private:
  core::Origin origin_;
  std::string target_;
  std::string headers_;  ///< the credential and the static headers, built once
};

}  // namespace

std::shared_ptr<const Adapter> make_anthropic_adapter(const core::ProviderConfig& config) {
  return std::make_shared<const AnthropicAdapter>(config);
}

}  // namespace llmgw::providers

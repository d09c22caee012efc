#include "providers/openai_adapter.hpp"

#include "core/json.hpp"
#include "providers/openai.hpp"
#include "providers/openai_errors.hpp"

#include <stdexcept>

namespace llmgw::providers {
namespace {

/// Passes an OpenAI stream through (SseFilter), normalising the usage it carries.
class OpenAIStream final : public StreamTranslator {
 public:
  OpenAIStream(bool hide_usage, bool read_model) : filter_(hide_usage, read_model) {}

  void feed(std::string& in, std::string& out) override {
    filter_.feed(in, out);
    update();
  }
  void finish(std::string& in, std::string& out, bool complete) override {
    filter_.finish(in, out);
    update();
    // OpenAI ends with [DONE]; some compatible servers just end the body: both are complete.
    ended_ = complete || filter_.saw_done();
  }

 private:
  void update() {
    events_ = filter_.events();
    if (model_.empty()) {
      model_ = filter_.model();
    }
    const std::string& u = filter_.usage_json();
    if (u.size() != seen_usage_size_ || (u.data() != seen_usage_data_)) {
      seen_usage_size_ = u.size();
      seen_usage_data_ = u.data();
      pricing::TokenUsage parsed;
      if (!u.empty() && pricing::normalize_openai(u, parsed)) {
        usage_ = parsed;
      }
    }
  }

  SseFilter filter_;
  std::size_t seen_usage_size_ = 0;
  const char* seen_usage_data_ = nullptr;
};

enum class Flavor : std::uint8_t { OpenAI, Azure };

class OpenAIAdapter final : public Adapter {
 public:
  OpenAIAdapter(const core::ProviderConfig& p, core::Origin origin)
      : origin_(std::move(origin)), flavor_(p.type == core::ProviderType::Azure ? Flavor::Azure
                                                                                : Flavor::OpenAI) {
    headers_ = "Content-Type: application/json\r\n";
    if (flavor_ == Flavor::Azure) {
      const auto token = p.secrets.find("azure_ad_token");
      if (token != p.secrets.end() && !token->second.empty()) {
        headers_ += "Authorization: Bearer " + token->second + "\r\n";
      } else if (!p.api_key.empty()) {
        headers_ += "api-key: " + p.api_key + "\r\n";
      }
      const auto v = p.settings.find("api_version");
      api_version_ = v != p.settings.end() && !v->second.empty() ? v->second
                                                                  : kDefaultAzureApiVersion;
    } else if (!p.api_key.empty()) {
      headers_ += "Authorization: Bearer " + p.api_key + "\r\n";
    }
  }

  const core::Origin& origin() const noexcept override { return origin_; }

  bool accepts(Format f) const noexcept override { return f != Format::AnthropicMessages; }

  std::optional<Refusal> prepare(const CallInput& in, Outgoing& out) const override {
    const bool embeddings = in.format == Format::OpenAIEmbeddings;
    out.target = origin_.base_path;
    if (flavor_ == Flavor::Azure) {
      out.target += "/openai/deployments/";
      out.target += core::percent_encode_segment(in.upstream_model);
      out.target += embeddings ? "/embeddings?api-version=" : "/chat/completions?api-version=";
      out.target += api_version_;
    } else {
      out.target += embeddings ? "/embeddings" : "/chat/completions";
    }
    out.headers = headers_;
    out.headers += in.stream ? "Accept: text/event-stream\r\n" : "Accept: application/json\r\n";
    if (in.inspected == nullptr) {
      return Refusal{"The request could not be read.", {}, core::Errc::Internal};
    }
    const bool request_usage = in.stream && !in.client_wants_usage;
    switch (rewrite_request(in.body, *in.inspected, in.upstream_model, request_usage, out.body)) {
      case RewriteResult::Original: out.client_body = true; break;
      case RewriteResult::Rewritten: out.client_body = false; break;
      case RewriteResult::Inconsistent:
        // Never forward a body other than the one the gateway authorized and priced.
        return Refusal{"The gateway failed to process the request.", {}, core::Errc::Internal};
    }
    return std::nullopt;
  }

  bool translate_answer(const CallInput&, std::string_view body, std::string&,
                        Answer& answer) const override {
    answer.passthrough = true;
    const std::string_view usage = find_usage_object(body);
    if (!usage.empty()) {
      answer.usage = {};
      pricing::normalize_openai(usage, answer.usage);
    }
    if (flavor_ == Flavor::Azure) {
      // Azure names the model behind the deployment: its price applies.
      static constexpr std::array<std::string_view, 1> kModel{"model"};
      std::array<core::JsonField, 1> f;
      if (core::locate_fields(body, kModel, f) && f[0].kind() == core::JsonKind::String) {
        answer.model = core::json_string_value(f[0].value).value_or(std::string());
      }
    }
    return true;
  }

  ProviderError translate_error(unsigned status, std::string_view body,
                                std::string_view retry_after) const override {
    return openai_error_to_provider_error(status, body, retry_after);
  }

  bool prices_by_reported_model() const noexcept override { return flavor_ == Flavor::Azure; }

  bool errors_pass_through(Format f) const noexcept override {
    return f != Format::AnthropicMessages;
  }

  std::unique_ptr<StreamTranslator> translate_stream(const CallInput& in) const override {
    // Azure names the model behind the deployment in its chunks: its price applies.
    return std::make_unique<OpenAIStream>(
        in.format != Format::AnthropicMessages && !in.client_wants_usage, flavor_ == Flavor::Azure);
  }

 private:
  core::Origin origin_;
  Flavor flavor_;
  std::string headers_;  ///< the credential and content type: the same for every call
  std::string api_version_;
};

}  // namespace

std::shared_ptr<const Adapter> make_openai_adapter(const core::ProviderConfig& p) {
  auto origin = core::Origin::parse(p.base_url);
  if (!origin) {
    throw std::invalid_argument("base_url is not a usable URL");
  }
  return std::make_shared<OpenAIAdapter>(p, std::move(*origin));
}

}  // namespace llmgw::providers

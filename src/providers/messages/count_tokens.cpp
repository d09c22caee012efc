// Token counting (`POST /v1/messages/count_tokens`) through a provider that serves it beside
// its Messages route: Anthropic's API.

#include "providers/messages/messages.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

namespace llmgw::providers {

namespace {

constexpr std::string_view kMessagesRoute = "/messages";
constexpr std::string_view kCountRoute = "/count_tokens";

/// The provider's own adapter, its Messages request sent to the count_tokens route.
class CountTokensAdapter final : public Adapter {
 public:
  explicit CountTokensAdapter(std::shared_ptr<const Adapter> messages)
      : messages_(std::move(messages)) {}

  [[nodiscard]] const core::Origin& origin() const noexcept override {
    return messages_->origin();
  }

  [[nodiscard]] bool accepts(Format f) const noexcept override {
    return f == Format::AnthropicMessages;
  }

  [[nodiscard]] std::optional<Refusal> prepare(const CallInput& in,
                                               Outgoing& out) const override {
    CallInput call = in;
    call.stream = false;  // a count is one JSON answer
    if (auto refusal = messages_->prepare(call, out)) {
      return refusal;
    }
    if (!out.target.ends_with(kMessagesRoute)) {
      // Not a Messages route with a count_tokens route beside it (a query, a rawPredict path).
      return Refusal{"Token counting is not available for the provider of this model.", "model"};
    }
    out.target += kCountRoute;
    return std::nullopt;
  }

  [[nodiscard]] bool translate_answer(const CallInput&, std::string_view body, std::string&,
                                      Answer& answer) const override {
    boost::system::error_code ec;
    const boost::json::value v = boost::json::parse(body, ec);
    const boost::json::object* o = ec ? nullptr : v.if_object();
    const boost::json::value* n = o != nullptr ? o->if_contains("input_tokens") : nullptr;
    if (n == nullptr || !n->is_int64() || n->get_int64() < 0) {
      return false;
    }
    answer.passthrough = true;
    answer.usage = {};
    answer.usage.reported = true;  // nothing generated, nothing billed
    return true;
  }

  [[nodiscard]] ProviderError translate_error(unsigned status, std::string_view body,
                                              std::string_view retry_after) const override {
    return messages_->translate_error(status, body, retry_after);
  }

  [[nodiscard]] bool errors_pass_through(Format f) const noexcept override {
    return messages_->errors_pass_through(f);
  }

  [[nodiscard]] std::unique_ptr<StreamTranslator> translate_stream(
      const CallInput& in) const override {
    return messages_->translate_stream(in);  // not reached: prepare() never asks for a stream
  }

  [[nodiscard]] CredentialState credential_state(
      std::chrono::system_clock::time_point now) const noexcept override {
    return messages_->credential_state(now);
  }

  [[nodiscard]] std::string refresh_credential() const override {
    return messages_->refresh_credential();
  }

  [[nodiscard]] std::string_view stream_content_type() const noexcept override {
    return messages_->stream_content_type();
  }

 private:
  std::shared_ptr<const Adapter> messages_;
};

}  // namespace

std::shared_ptr<const Adapter> make_count_tokens_adapter(
    std::shared_ptr<const Adapter> messages_adapter) {
  return std::make_shared<const CountTokensAdapter>(std::move(messages_adapter));
}

}  // namespace llmgw::providers

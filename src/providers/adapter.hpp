#pragma once
/// One interface for every provider type. An adapter turns a call, in the format the client
/// used (OpenAI chat completions or embeddings, Anthropic Messages), into the provider's
/// request (target, headers with the credential, body), and the provider's answer, whole or
/// streamed, back into the client's format, with its usage normalised for pricing. The proxy
/// only moves bytes between the two; it knows no provider's format (src/proxy/proxy.cpp).
///
/// An adapter is built once per catalog snapshot from the provider's settings
/// (providers/registry.hpp), is immutable after that and is shared by every I/O thread.
/// Nothing here does I/O or throws on what a client or a provider sends.

#include "core/errors.hpp"
#include "core/url.hpp"
#include "pricing/usage.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace llmgw::providers {

struct InspectedRequest;  // providers/openai.hpp

/// The wire format of a call, as the client sent it (and is answered in).
enum class Format : std::uint8_t {
  OpenAIChat,         ///< POST /v1/chat/completions
  OpenAIEmbeddings,   ///< POST /v1/embeddings
  AnthropicMessages,  ///< POST /v1/messages
};

/// One call as the adapter sees it. `body` has been validated for `format` (strict JSON, the
/// required fields and their types) before the adapter is asked.
struct CallInput {
  Format format = Format::OpenAIChat;
  std::string_view body;
  /// What the gateway read from `body` (OpenAI formats: providers/openai.hpp's
  /// inspect_request), or null.
  const InspectedRequest* inspected = nullptr;
  std::string_view upstream_model;  ///< the provider's name for the model
  bool stream = false;
  bool client_wants_usage = false;  ///< OpenAI: stream_options.include_usage was true
  /// The model's output limit from its price list, for providers that require max_tokens
  /// (Anthropic) when the client gave none; -1: unknown (the adapter's default applies).
  std::int64_t max_output_tokens = -1;
  /// Anthropic Messages calls: the client's `anthropic-beta` header (betas, comma-separated),
  /// passed on by providers that take the call as it is; empty: none.
  std::string_view anthropic_beta;
  std::string_view request_id;  ///< the gateway's id: ids of translated answers derive from it
  std::int64_t created = 0;     ///< unix seconds: `created` of translated answers
  /// The time a signature is made at (SigV4); tests fix it.
  std::chrono::system_clock::time_point now{};
};

/// The upstream request an adapter makes for a call.
struct Outgoing {
  /// Origin-form target with query, the base URL's path included: "/v1/messages",
  /// "/model/us.anthropic.claude-3-haiku-20240307-v1%3A0/converse-stream".
  std::string target;
  /// Header lines besides Host, Content-Length and User-Agent, each "Name: value\r\n": the
  /// credential, Content-Type, Accept, version headers.
  std::string headers;
  std::string body;           ///< the upstream body, unless `client_body`
  bool client_body = false;   ///< send CallInput::body unchanged (no copy)
};

/// A call the provider cannot take as asked (`n` > 1 where there is no `n`, an endpoint the
/// provider does not have): answered 400 (or `errc`) with this message, nothing sent.
struct Refusal {
  std::string message;
  std::string param;
  core::Errc errc = core::Errc::BadRequest;
};

/// A provider's error answer, in terms the client's format can render.
struct ProviderError {
  unsigned status = 502;  ///< the status the client gets
  /// OpenAI `error.type` (invalid_request_error, rate_limit_error, server_error, ...);
  /// to_anthropic_error_type maps it for Anthropic-format clients.
  std::string type;
  std::string message;
  std::string code;         ///< OpenAI `error.code`; empty: null
  std::string retry_after;  ///< seconds, passed on as Retry-After (429, 503); empty: none
  /// The provider refused the gateway's own credential (401/403): the proxy logs it for the
  /// operator and the client gets 502, never the provider's text (it may quote the key).
  bool credential_refused = false;
};

/// What a whole (non-streamed) successful answer carried.
struct Answer {
  pricing::TokenUsage usage;  ///< usage.reported == false: the provider sent none
  /// The model the provider says answered (Azure names the underlying model); empty: none.
  std::string model;
  /// The provider's body is already in the client's format and goes out unchanged (the
  /// translated body is then not written).
  bool passthrough = false;
};

/// Turns a provider's stream into the client's, incrementally: bytes arrive split anywhere
/// (an SSE event or a binary frame across reads), and nothing is buffered beyond one
/// incomplete event. One per call; used on one thread.
class StreamTranslator {
 public:
  virtual ~StreamTranslator() = default;

  /// Consumes every complete event (or frame) from the front of `in` and appends what the
  /// client receives to `out`.
  virtual void feed(std::string& in, std::string& out) = 0;
  /// The provider's body ended, normally (`complete`) or not. Consumes the rest of `in` and
  /// appends the end of the client's stream when the provider's stream ended properly (its end
  /// event seen and `complete`); otherwise appends nothing: the proxy ends the stream with an
  /// error event.
  virtual void finish(std::string& in, std::string& out, bool complete) = 0;

  /// The usage the stream reported so far (running totals replace, the last one wins).
  [[nodiscard]] const pricing::TokenUsage& usage() const noexcept { return usage_; }
  /// Content events passed on: about one token each, the estimate's basis when a stream
  /// ends without usage.
  [[nodiscard]] std::size_t events() const noexcept { return events_; }
  /// The provider's stream reached its own end marker ([DONE], message_stop, messageStop).
  [[nodiscard]] bool ended() const noexcept { return ended_; }
  /// An error the provider sent inside the stream, already passed to the client as an error
  /// event in its format and the stream ended: the error's OpenAI type; empty: none.
  [[nodiscard]] const std::string& error() const noexcept { return error_; }
  /// The model the provider says answered; empty: none.
  [[nodiscard]] const std::string& model() const noexcept { return model_; }

 protected:
  pricing::TokenUsage usage_;
  std::size_t events_ = 0;
  bool ended_ = false;
  std::string error_;
  std::string model_;
};

class Adapter {
 public:
  virtual ~Adapter() = default;

  /// Where every call goes: the configured base_url, else the provider's public endpoint.
  [[nodiscard]] virtual const core::Origin& origin() const noexcept = 0;

  /// Whether calls in `f` are taken natively (an Anthropic provider takes Anthropic
  /// Messages as they are). A call in a format the adapter does not take is first translated
  /// to OpenAI chat by the proxy (providers/messages/messages.hpp), and its answer back.
  [[nodiscard]] virtual bool accepts(Format f) const noexcept = 0;

  /// Builds the upstream request for `in` (a format the adapter accepts). The credential is
  /// added here, per request: a signature covers the final body.
  [[nodiscard]] virtual std::optional<Refusal> prepare(const CallInput& in,
                                                       Outgoing& out) const = 0;

  /// Translates a successful (2xx) whole answer `body` into `out` in the client's format and
  /// reads its usage. Returns false if `body` is not a valid answer of the provider (the
  /// client gets 502); `out` may then be partly written.
  [[nodiscard]] virtual bool translate_answer(const CallInput& in, std::string_view body,
                                              std::string& out, Answer& answer) const = 0;

  /// Maps a provider's error answer (status >= 400, its body and Retry-After header value).
  [[nodiscard]] virtual ProviderError translate_error(unsigned status, std::string_view body,
                                                      std::string_view retry_after) const = 0;

  /// Whether the call is priced by the model the answer names (Answer::model,
  /// StreamTranslator::model), when the route sets no price list itself: Azure names the model
  /// behind a deployment whose own name no price list knows.
  [[nodiscard]] virtual bool prices_by_reported_model() const noexcept { return false; }

  /// Whether a status-400+ answer of this provider passes to an OpenAI-format client as it
  /// is (status, JSON body): true only for providers that answer in OpenAI's error shape.
  [[nodiscard]] virtual bool errors_pass_through(Format) const noexcept { return false; }

  /// The translator of a streamed answer (status 200, content type as stream_content_type).
  [[nodiscard]] virtual std::unique_ptr<StreamTranslator> translate_stream(
      const CallInput& in) const = 0;

  /// Credentials that expire (Vertex AI's OAuth access token): how the current one stands.
  enum class CredentialState : std::uint8_t {
    Ready,        ///< prepare() can sign in
    RefreshSoon,  ///< still valid; refresh in the background (the proxy starts it once)
    Missing,      ///< none, or expired: refresh before prepare()
  };
  [[nodiscard]] virtual CredentialState credential_state(
      std::chrono::system_clock::time_point /*now*/) const noexcept {
    return CredentialState::Ready;
  }
  /// Fetches a new credential. Blocking I/O: the proxy runs it on the blocking pool, never on
  /// an I/O thread. Thread-safe; concurrent callers share one fetch. Returns an error for the
  /// operator's log (never a secret), empty on success.
  [[nodiscard]] virtual std::string refresh_credential() const { return {}; }

  /// The content type of the provider's stream ("text/event-stream",
  /// "application/vnd.amazon.eventstream").
  [[nodiscard]] virtual std::string_view stream_content_type() const noexcept {
    return "text/event-stream";
  }
};

/// Anthropic's error type for an OpenAI error type (invalid_request_error stays,
/// rate_limit_error stays, insufficient_quota → rate_limit_error, server_error → api_error,
/// 503 → overloaded_error, ...).
std::string_view to_anthropic_error_type(std::string_view openai_type, unsigned status) noexcept;

/// The JSON error body for `format`: OpenAI's `{"error":{message,type,param,code}}` or
/// Anthropic's `{"type":"error","error":{"type","message"}}`.
std::string render_provider_error(Format format, const ProviderError& e);

/// An error event that ends a stream in `format`: OpenAI `data: {"error":{...}}\n\n`,
/// Anthropic `event: error\ndata: {"type":"error","error":{...}}\n\n`.
std::string render_stream_error(Format format, std::string_view openai_type,
                                std::string_view message, unsigned status);

/// The default mapping of a provider's HTTP error status when its body says nothing more:
/// 400/404/413/422 → 400 invalid_request_error with the provider's message, 401/403 →
/// credential_refused (502), 429 → 429 rate_limit_error, 529 and 503 → 503 (overloaded),
/// 500/502/504 → 502 upstream_error, 408/504 → 504 timeout_error.
ProviderError map_status(unsigned status, std::string message, std::string_view retry_after);

}  // namespace llmgw::providers

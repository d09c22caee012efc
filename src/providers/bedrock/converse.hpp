#pragma once
/// The Bedrock Runtime Converse format against OpenAI chat completions: the request body an
/// OpenAI chat call becomes, and the whole answer it gets back. The streamed answer is
/// converse_stream.hpp's.
///
/// What OpenAI asks that Converse cannot do is refused, never dropped silently when it would
/// change the answer's shape (`n` > 1, logprobs, JSON mode without a schema, audio, image URLs
/// Bedrock does not fetch); sampling hints Converse has no field for (seed, penalties,
/// logit_bias, parallel_tool_calls, service_tier) are left out.

#include "providers/adapter.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace llmgw::providers::bedrock {

/// Builds the Converse (and ConverseStream: the same body) request for an OpenAI chat body
/// into `out`. Mapping:
/// - system and developer messages → `system: [{text}]`, in order, wherever they stand;
/// - user / assistant / tool messages → `messages`, adjacent ones of one role merged (Converse
///   wants the roles to alternate); a tool message is a user `toolResult`; blank text parts are
///   left out (Converse refuses them) and a message left empty is dropped;
/// - image parts: base64 data URLs (png, jpeg, gif, webp) → `image.source.bytes`, `s3://`
///   URIs → `image.source.s3Location`; http(s) URLs are refused (Converse does not fetch);
/// - tools → `toolConfig.tools[].toolSpec` (`strict` kept); tool_choice auto → `auto`,
///   required → `any`, a named function → `tool`; none → no toolChoice, and no toolConfig at
///   all unless the conversation holds tool calls (Converse then requires it and cannot forbid
///   a call: the model may still call one);
/// - max_completion_tokens (else max_tokens), temperature, top_p, stop → `inferenceConfig`;
/// - response_format json_schema → `outputConfig.textFormat` (Bedrock's structured output,
///   the schema as a JSON string); json_object is refused (Converse has no schema-less mode);
/// - user → `requestMetadata.user` when it fits Bedrock's metadata pattern, else left out.
std::optional<Refusal> build_converse_request(std::string_view openai_body, std::string& out);

/// OpenAI's finish_reason for a Converse stopReason (unknown ones: "stop").
std::string_view finish_reason(std::string_view stop_reason) noexcept;

/// A Bedrock error status as the client sees it: map_status (adapter.hpp), except that 424
/// (ModelErrorException: the model failed) is the provider's failure, 502.
ProviderError map_error(unsigned status, std::string message, std::string_view retry_after);

/// Translates a Converse answer into an OpenAI `chat.completion` (id "chatcmpl-<request_id>",
/// created and model from `in`); reasoning text goes to `message.reasoning_content`. False if
/// `body` is not a Converse answer.
bool translate_converse_answer(const CallInput& in, std::string_view body, std::string& out,
                               Answer& answer);

}  // namespace llmgw::providers::bedrock

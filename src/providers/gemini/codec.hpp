#pragma once
/// Google's generateContent format, shared by the Gemini API (`gemini`) and Vertex AI
/// (`vertex`): OpenAI chat completions to a GenerateContentRequest, the GenerateContentResponse
/// (whole, or streamed as `?alt=sse` events) back to OpenAI's chat.completion(.chunk), Google's
/// error envelope (`{"error":{code,message,status,details}}`), and the two embeddings dialects
/// (the Gemini API's embedContent / batchEmbedContents, Vertex AI's `:predict`).
///
/// Choices made where the formats differ (each also in docs/providers/gemini.md):
/// - system/developer messages, wherever they are, join `systemInstruction` in order;
///   consecutive turns of one Gemini role (user / model; a tool result is a user turn) merge.
/// - An image URL `data:<mime>;base64,<data>` becomes `inlineData`; any other URL becomes
///   `fileData` with a MIME type guessed from the path's extension (image/jpeg when unknown).
/// - Tools are declared with `parametersJsonSchema` (JSON Schema, kept whole:
///   `additionalProperties`, `anyOf`, `$ref` pass) and json_schema output with
///   `responseJsonSchema`; only the top-level `$schema` is dropped. OpenAI's `strict` has no
///   counterpart and is ignored.
/// - Gemini's function calls have no id: the answer's calls get `call_<request id>_<k>`
///   (`call_<request id>_<choice>_<k>` for choices after the first). A call's
///   `thoughtSignature` (Gemini 3 requires it back on the next turn) rides in the id after
///   `__ts__`, and goes back on the functionCall part when the client replays the id.
/// - A tool result's `content` that is a JSON object is the functionResponse's `response`;
///   any other content is `{"content": <text>}`.
/// - A prompt blocked outright (`promptFeedback.blockReason`, no candidates) is answered 200
///   with one empty choice, finish_reason `content_filter`, whole or streamed alike.

#include "providers/adapter.hpp"

#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace llmgw::providers::gemini {

/// Builds the generateContent body for an OpenAI chat body. `upstream_model` picks the
/// thinking control (thinkingBudget for Gemini 2.x, thinkingLevel after).
std::optional<Refusal> build_generate_request(std::string_view openai_body,
                                              std::string_view upstream_model, std::string& out);

/// A whole GenerateContentResponse to an OpenAI chat.completion.
bool translate_generate_answer(const CallInput& in, std::string_view body, std::string& out,
                               Answer& answer);

/// The translator of a `streamGenerateContent?alt=sse` answer.
std::unique_ptr<StreamTranslator> make_generate_stream(const CallInput& in);

/// Google's error envelope to the client's terms: a bad API key (400 INVALID_ARGUMENT naming
/// the key, or ErrorInfo reason API_KEY_INVALID), 401 and 403 are the gateway's credential;
/// 429 and 503 take their Retry-After from RetryInfo.retryDelay when the header is absent.
ProviderError translate_google_error(unsigned status, std::string_view body,
                                     std::string_view retry_after);

/// The Gemini API's embeddings request for an OpenAI embeddings body: `embedContent` for one
/// string, `batchEmbedContents` (`batch` set) for a list. Token-id inputs are refused.
std::optional<Refusal> build_gemini_embed_request(std::string_view openai_body,
                                                  std::string_view upstream_model, bool& batch,
                                                  std::string& out);
/// An embedContent / batchEmbedContents answer to OpenAI's embeddings list. The public API
/// reports no usage: answer.usage.reported stays false unless a `usageMetadata` is present.
bool translate_gemini_embed_answer(const CallInput& in, std::string_view body, std::string& out,
                                   Answer& answer);

/// Vertex AI's `:predict` body (`{instances:[{content}], parameters}`) for an OpenAI
/// embeddings body.
std::optional<Refusal> build_vertex_embed_request(std::string_view openai_body, std::string& out);
/// A `:predict` answer (`predictions[].embeddings.values`, `.statistics.token_count`).
bool translate_vertex_embed_answer(const CallInput& in, std::string_view body, std::string& out,
                                   Answer& answer);

/// Percent-encodes a model id for a path segment; `keep_slash` leaves '/' (resource names
/// such as "tunedModels/x" or "projects/p/locations/l/endpoints/e").
std::string encode_model(std::string_view model, bool keep_slash);

}  // namespace llmgw::providers::gemini

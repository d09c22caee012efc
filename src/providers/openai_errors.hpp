#pragma once
/// OpenAI's error answer (`{"error":{"message","type","param","code"}}`), as every OpenAI-family
/// provider (OpenAI, Azure OpenAI, OpenAI-compatible servers) sends it, read into the
/// gateway's ProviderError so that it can be rendered in any client format.

#include "providers/adapter.hpp"

#include <string_view>

namespace llmgw::providers {

/// Maps an OpenAI-shaped error answer: the status decides the class (map_status); the body
/// gives the message and the code. Tolerates the variants compatible servers send (`error` as
/// a string, a top-level `message`, Gemini's one-element array, `code` as a number) and
/// anything else (HTML, empty): the message is then the status alone. A refused credential
/// (401/403) never carries the provider's text, which may quote the key: only its code.
ProviderError openai_error_to_provider_error(unsigned status, std::string_view body,
                                             std::string_view retry_after);

}  // namespace llmgw::providers

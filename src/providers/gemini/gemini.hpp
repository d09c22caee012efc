#pragma once
/// The `gemini` provider: Google's Gemini API (generativelanguage.googleapis.com, v1beta),
/// the API key in `x-goog-api-key`. OpenAI chat completions go to
/// `/v1beta/models/{model}:generateContent` (`:streamGenerateContent?alt=sse` when streamed),
/// embeddings to `:embedContent` (one input) or `:batchEmbedContents` (a list); the
/// translation is codec.hpp's. Anthropic Messages reach it translated to OpenAI chat by the
/// proxy. `base_url` replaces the origin (a path in it prefixes `/v1beta`).

#include "core/config.hpp"
#include "providers/adapter.hpp"

#include <memory>

namespace llmgw::providers {

/// Throws std::invalid_argument naming the setting (`api_key`, `base_url`) when unusable.
std::shared_ptr<const Adapter> make_gemini_adapter(const core::ProviderConfig& config);

}  // namespace llmgw::providers

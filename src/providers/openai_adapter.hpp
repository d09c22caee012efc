#pragma once
/// The OpenAI family: `openai` and `openai_compatible` (POST {base_url}/chat/completions and
/// /embeddings, `Authorization: Bearer`) and `azure` (deployment routes
/// /openai/deployments/{deployment}/chat/completions?api-version=…, `api-key` header or an
/// Entra ID token as bearer). Requests and answers are OpenAI's already: the client's bytes go
/// through unless the model name or the stream usage option must change.

#include "core/config.hpp"
#include "providers/adapter.hpp"

#include <memory>

namespace llmgw::providers {

/// For provider types openai, openai_compatible and azure. Throws std::invalid_argument for
/// settings it cannot use (base_url is required by those types).
std::shared_ptr<const Adapter> make_openai_adapter(const core::ProviderConfig& p);

/// The Azure OpenAI API version used when the provider sets none.
inline constexpr std::string_view kDefaultAzureApiVersion = "2024-10-21";

}  // namespace llmgw::providers

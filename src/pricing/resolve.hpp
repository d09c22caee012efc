#pragma once
/// Which price-list entry prices a model a provider names its own way, when the model sets no
/// `pricing_model`. The rules follow the catalog's naming (LiteLLM's keys) and how LiteLLM
/// resolves them: the provider-specific entry first, then the model it is a name of.
///
/// Candidates, in order (the first one with a price wins):
///   1. the name as the provider uses it, under the provider's catalog prefix (`azure/`,
///      `gemini/`, `vertex_ai/`), then bare;
///   2. Bedrock ids: without the cross-region prefix (`us.`, `eu.`, `apac.`, `global.`, …),
///      then without the vendor prefix and the `-v1:0` version (`anthropic.claude-3-haiku-
///      20240307-v1:0` → `claude-3-haiku-20240307`);
///   3. Vertex AI's `model@version` (`claude-sonnet-4@20250514`): as `model-version`, then
///      `model`;
///   4. OpenAI fine-tunes `ft:<base>:<org>:<suffix>:<id>`: `ft:<base>`, then `<base>`;
///   5. a dated snapshot (`-2024-11-20`, `-20250514`) without its date.
/// Names are tried as given; nothing is lower-cased.

#include "core/config.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace llmgw::pricing {

/// The names to look up, most specific first, without repeats.
std::vector<std::string> pricing_candidates(core::ProviderType type, std::string_view model);

}  // namespace llmgw::pricing

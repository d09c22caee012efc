#include "providers/registry/registry.hpp"

#include "providers/anthropic/anthropic.hpp"
#include "providers/bedrock/bedrock.hpp"
#include "providers/openai_adapter.hpp"

#include <stdexcept>

namespace llmgw::providers {

std::shared_ptr<const Adapter> make_adapter(const core::ProviderConfig& p) {
  switch (p.type) {
    case core::ProviderType::Echo: return nullptr;
    case core::ProviderType::OpenAI:
    case core::ProviderType::OpenAICompatible:
    case core::ProviderType::Azure: return make_openai_adapter(p);
    case core::ProviderType::Anthropic: return make_anthropic_adapter(p);
    case core::ProviderType::Gemini:
    case core::ProviderType::Bedrock: return bedrock::make_bedrock_adapter(p);
    case core::ProviderType::Vertex: break;
  }
  throw std::invalid_argument("provider type " + std::string(core::to_string(p.type)) +
                              " is not available in this build");
}

}  // namespace llmgw::providers

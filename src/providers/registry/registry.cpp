#include "providers/registry/registry.hpp"

#include "providers/anthropic/anthropic.hpp"
#include "providers/bedrock/bedrock.hpp"
#include "providers/gemini/gemini.hpp"
#include "providers/gemini/vertex.hpp"
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
    case core::ProviderType::Gemini: return make_gemini_adapter(p);
    case core::ProviderType::Vertex: return make_vertex_adapter(p);
    case core::ProviderType::Bedrock: return bedrock::make_bedrock_adapter(p);
  }
  throw std::invalid_argument("provider type " + std::string(core::to_string(p.type)) +
                              " is not available in this build");
}

}  // namespace llmgw::providers

#pragma once
/// Usage normalised across providers, so that one cost engine prices them all. Each provider
/// reports differently; the normalisers below turn each report into disjoint quantities:
///   OpenAI:    prompt_tokens includes cached (and cache-write) tokens; completion_tokens
///              includes reasoning tokens.
///   Anthropic: input_tokens excludes cache reads and writes, reported separately.
///   Gemini:    promptTokenCount includes cachedContentTokenCount; candidatesTokenCount
///              excludes thoughtsTokenCount.
///   Bedrock:   inputTokens excludes cacheReadInputTokens and cacheWriteInputTokens.

#include <cstdint>
#include <string_view>

namespace llmgw::pricing {

struct TokenUsage {
  std::int64_t input_tokens = 0;           ///< uncached text input (not audio/image)
  std::int64_t cache_read_tokens = 0;
  std::int64_t cache_write_5m_tokens = 0;
  std::int64_t cache_write_1h_tokens = 0;
  std::int64_t output_tokens = 0;          ///< text output, reasoning excluded
  std::int64_t reasoning_tokens = 0;
  std::int64_t input_audio_tokens = 0;
  std::int64_t output_audio_tokens = 0;
  std::int64_t input_image_tokens = 0;
  std::int64_t output_image_tokens = 0;
  std::int64_t input_images = 0;           ///< images as units (priced per image)
  std::int64_t output_images = 0;
  bool reported = false;                   ///< false: nothing was reported (estimate needed)

  /// All prompt-side tokens: what a prompt-size tier threshold compares against.
  [[nodiscard]] std::int64_t prompt_total() const noexcept {
    return input_tokens + cache_read_tokens + cache_write_5m_tokens + cache_write_1h_tokens +
           input_audio_tokens + input_image_tokens;
  }
  /// All completion-side tokens.
  [[nodiscard]] std::int64_t completion_total() const noexcept {
    return output_tokens + reasoning_tokens + output_audio_tokens + output_image_tokens;
  }
  bool operator==(const TokenUsage&) const = default;
};

/// Each takes the provider's usage object as JSON text (`{…}`); false if it is not one.
bool normalize_openai(std::string_view usage_object, TokenUsage& out);
bool normalize_anthropic(std::string_view usage_object, TokenUsage& out);
bool normalize_gemini(std::string_view usage_metadata, TokenUsage& out);
bool normalize_bedrock(std::string_view usage_object, TokenUsage& out);

}  // namespace llmgw::pricing

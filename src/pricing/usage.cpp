#include "pricing/usage.hpp"

#include "core/json.hpp"

#include <algorithm>
#include <array>
#include <charconv>

namespace llmgw::pricing {

namespace {

using core::JsonField;
using core::JsonKind;

/// Top-level numeric members of a JSON object, by name (absent or not a number: -1).
template <std::size_t N>
std::array<std::int64_t, N> numbers(std::string_view obj, const std::array<std::string_view, N>& names,
                                    std::array<JsonField, N>& fields) {
  std::array<std::int64_t, N> out;
  out.fill(-1);
  if (!core::locate_fields(obj, names, fields)) {
    return out;
  }
  for (std::size_t i = 0; i < N; ++i) {
    if (fields[i].kind() == JsonKind::Number) {
      std::int64_t v = 0;
      const auto s = fields[i].value;
      const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
      if (ec == std::errc{} && v >= 0) {
        out[i] = v;
      }
    }
  }
  return out;
}

std::int64_t nz(std::int64_t v) { return v < 0 ? 0 : v; }

bool is_object(std::string_view s) {
  const auto i = s.find_first_not_of(" \t\r\n");
  return i != std::string_view::npos && s[i] == '{';
}

}  // namespace

bool normalize_openai(std::string_view obj, TokenUsage& out) {
  if (!is_object(obj)) {
    return false;
  }
  static constexpr std::array<std::string_view, 7> kNames{
      "prompt_tokens",     "completion_tokens",          "prompt_tokens_details",
      "completion_tokens_details", "input_tokens", "output_tokens", "cache_creation_input_tokens"};
  std::array<JsonField, kNames.size()> f;
  const auto n = numbers(obj, kNames, f);
  std::int64_t prompt = n[0] >= 0 ? n[0] : n[4];  // Responses API: input_tokens/output_tokens
  std::int64_t completion = n[1] >= 0 ? n[1] : n[5];
  if (prompt < 0 && completion < 0) {
    return false;
  }
  prompt = nz(prompt);
  completion = nz(completion);
  TokenUsage u;
  u.reported = true;
  std::int64_t cached = 0, audio_in = 0, image_in = 0, cache_write = nz(n[6]);
  if (f[2].kind() == JsonKind::Object) {
    static constexpr std::array<std::string_view, 5> kIn{"cached_tokens", "audio_tokens",
                                                         "image_tokens", "cache_creation_tokens",
                                                         "cache_write_tokens"};
    std::array<JsonField, kIn.size()> g;
    const auto d = numbers(f[2].value, kIn, g);
    cached = nz(d[0]);
    audio_in = nz(d[1]);
    image_in = nz(d[2]);
    cache_write = std::max({cache_write, nz(d[3]), nz(d[4])});
  }
  std::int64_t reasoning = 0, audio_out = 0, image_out = 0;
  if (f[3].kind() == JsonKind::Object) {
    static constexpr std::array<std::string_view, 3> kOut{"reasoning_tokens", "audio_tokens",
                                                          "image_tokens"};
    std::array<JsonField, kOut.size()> g;
    const auto d = numbers(f[3].value, kOut, g);
    reasoning = nz(d[0]);
    audio_out = nz(d[1]);
    image_out = nz(d[2]);
  }
  // prompt_tokens counts every prompt token; the parts are carved out of it.
  u.cache_read_tokens = std::min(cached, prompt);
  u.cache_write_5m_tokens = std::min(cache_write, prompt - u.cache_read_tokens);
  u.input_audio_tokens = std::min(audio_in, prompt - u.cache_read_tokens - u.cache_write_5m_tokens);
  u.input_image_tokens = std::min(
      image_in, prompt - u.cache_read_tokens - u.cache_write_5m_tokens - u.input_audio_tokens);
  u.input_tokens = prompt - u.cache_read_tokens - u.cache_write_5m_tokens - u.input_audio_tokens -
                   u.input_image_tokens;
  u.reasoning_tokens = std::min(reasoning, completion);
  u.output_audio_tokens = std::min(audio_out, completion - u.reasoning_tokens);
  u.output_image_tokens =
      std::min(image_out, completion - u.reasoning_tokens - u.output_audio_tokens);
  u.output_tokens =
      completion - u.reasoning_tokens - u.output_audio_tokens - u.output_image_tokens;
  out = u;
  return true;
}

bool normalize_anthropic(std::string_view obj, TokenUsage& out) {
  if (!is_object(obj)) {
    return false;
  }
  static constexpr std::array<std::string_view, 5> kNames{
      "input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens",
      "cache_creation"};
  std::array<JsonField, kNames.size()> f;
  const auto n = numbers(obj, kNames, f);
  if (n[0] < 0 && n[1] < 0) {
    return false;
  }
  TokenUsage u;
  u.reported = true;
  u.input_tokens = nz(n[0]);  // excludes cache reads and writes
  u.output_tokens = nz(n[1]);
  u.cache_read_tokens = nz(n[3]);
  const std::int64_t creation = nz(n[2]);
  std::int64_t w5 = creation, w1h = 0;
  if (f[4].kind() == JsonKind::Object) {
    // {"ephemeral_5m_input_tokens":…, "ephemeral_1h_input_tokens":…} splits the total.
    static constexpr std::array<std::string_view, 2> kTtl{"ephemeral_5m_input_tokens",
                                                          "ephemeral_1h_input_tokens"};
    std::array<JsonField, kTtl.size()> g;
    const auto d = numbers(f[4].value, kTtl, g);
    if (d[0] >= 0 || d[1] >= 0) {
      w5 = nz(d[0]);
      w1h = nz(d[1]);
    }
  }
  u.cache_write_5m_tokens = w5;
  u.cache_write_1h_tokens = w1h;
  out = u;
  return true;
}

bool normalize_gemini(std::string_view obj, TokenUsage& out) {
  if (!is_object(obj)) {
    return false;
  }
  static constexpr std::array<std::string_view, 5> kNames{
      "promptTokenCount", "candidatesTokenCount", "cachedContentTokenCount", "thoughtsTokenCount",
      "toolUsePromptTokenCount"};
  std::array<JsonField, kNames.size()> f;
  const auto n = numbers(obj, kNames, f);
  if (n[0] < 0 && n[1] < 0) {
    return false;
  }
  TokenUsage u;
  u.reported = true;
  const std::int64_t prompt = nz(n[0]) + nz(n[4]);  // tool-use prompt tokens are input too
  u.cache_read_tokens = std::min(nz(n[2]), prompt);   // included in promptTokenCount
  u.input_tokens = prompt - u.cache_read_tokens;
  u.output_tokens = nz(n[1]);                         // excludes thoughts
  u.reasoning_tokens = nz(n[3]);
  out = u;
  return true;
}

bool normalize_bedrock(std::string_view obj, TokenUsage& out) {
  if (!is_object(obj)) {
    return false;
  }
  static constexpr std::array<std::string_view, 4> kNames{
      "inputTokens", "outputTokens", "cacheReadInputTokens", "cacheWriteInputTokens"};
  std::array<JsonField, kNames.size()> f;
  const auto n = numbers(obj, kNames, f);
  if (n[0] < 0 && n[1] < 0) {
    return false;
  }
  TokenUsage u;
  u.reported = true;
  u.input_tokens = nz(n[0]);  // excludes cache reads and writes
  u.output_tokens = nz(n[1]);
  u.cache_read_tokens = nz(n[2]);
  u.cache_write_5m_tokens = nz(n[3]);
  out = u;
  return true;
}

}  // namespace llmgw::pricing

#include "providers/stream_util.hpp"

#include "core/json.hpp"

#include <algorithm>
#include <cctype>
#include <cstring>

namespace llmgw::providers {

namespace {

/// The end of the line starting at `pos` and the start of the next, or npos if the line is
/// not complete. A "\r" at the very end may be the first half of "\r\n": incomplete.
bool line_at(std::string_view in, std::size_t pos, std::size_t& end, std::size_t& next) {
  // memchr for the "\n" that ends most lines, then for a lone "\r" before it.
  const char* base = in.data();
  const std::size_t left = in.size() - pos;
  const void* lf = std::memchr(base + pos, '\n', left);
  const std::size_t limit = lf != nullptr ? static_cast<const char*>(lf) - base : in.size();
  const void* cr = std::memchr(base + pos, '\r', limit - pos);
  if (cr != nullptr) {
    const std::size_t i = static_cast<const char*>(cr) - base;
    if (i + 1 == in.size()) {
      return false;
    }
    end = i;
    next = in[i + 1] == '\n' ? i + 2 : i + 1;
    return true;
  }
  if (lf == nullptr) {
    return false;
  }
  end = limit;
  next = limit + 1;
  return true;
}

}  // namespace

std::size_t next_sse_event(std::string_view in, SseEvent& ev) {
  ev.name.clear();
  ev.data.clear();
  bool has_data = false;
  std::size_t pos = 0;
  while (true) {
    std::size_t end = 0;
    std::size_t next = 0;
    if (!line_at(in, pos, end, next)) {
      return 0;
    }
    const std::string_view line = in.substr(pos, end - pos);
    pos = next;
    if (line.empty()) {
      return pos;  // the blank line that ends the event
    }
    if (line.front() == ':') {
      continue;  // a comment
    }
    const std::size_t colon = line.find(':');
    const std::string_view field = line.substr(0, colon);
    std::string_view value;
    if (colon != std::string_view::npos) {
      value = line.substr(colon + 1);
      if (!value.empty() && value.front() == ' ') {
        value.remove_prefix(1);
      }
    }
    if (field == "data") {
      if (has_data) {
        ev.data += '\n';
      }
      ev.data += value;
      has_data = true;
    } else if (field == "event") {
      ev.name = value;
    }
  }
}

std::optional<DataUrl> parse_data_url(std::string_view url) noexcept {
  const auto iequal = [](std::string_view a, std::string_view b) {
    return a.size() == b.size() &&
           std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
             return std::tolower(static_cast<unsigned char>(x)) ==
                    std::tolower(static_cast<unsigned char>(y));
           });
  };
  constexpr std::string_view kScheme = "data:";
  constexpr std::string_view kBase64 = ";base64";
  if (url.size() < kScheme.size() || !iequal(url.substr(0, kScheme.size()), kScheme)) {
    return std::nullopt;
  }
  const std::size_t comma = url.find(',');
  if (comma == std::string_view::npos) {
    return std::nullopt;
  }
  const std::string_view meta = url.substr(kScheme.size(), comma - kScheme.size());
  if (meta.size() < kBase64.size() ||
      !iequal(meta.substr(meta.size() - kBase64.size()), kBase64)) {
    return std::nullopt;
  }
  DataUrl d{meta.substr(0, meta.find(';')), url.substr(comma + 1)};
  if (d.mime.empty() || d.data.empty()) {
    return std::nullopt;
  }
  return d;
}

void append_openai_usage(std::string& out, const pricing::TokenUsage& u) {
  const std::int64_t prompt = u.prompt_total();
  const std::int64_t completion = u.completion_total();
  out += R"({"prompt_tokens":)";
  out += std::to_string(prompt);
  out += R"(,"completion_tokens":)";
  out += std::to_string(completion);
  out += R"(,"total_tokens":)";
  out += std::to_string(prompt + completion);
  out += R"(,"prompt_tokens_details":{"cached_tokens":)";
  out += std::to_string(u.cache_read_tokens);
  if (u.cache_write_5m_tokens + u.cache_write_1h_tokens > 0) {
    // Not an OpenAI field (OpenAI has no cache writes): LiteLLM's name for Anthropic's.
    out += R"(,"cache_creation_tokens":)";
    out += std::to_string(u.cache_write_5m_tokens + u.cache_write_1h_tokens);
  }
  out += R"(},"completion_tokens_details":{"reasoning_tokens":)";
  out += std::to_string(u.reasoning_tokens);
  out += "}}";
}

void ChunkWriter::make_prefix() {
  prefix_ = R"(data: {"id":)";
  core::append_json_string(prefix_, id_);
  prefix_ += R"(,"object":"chat.completion.chunk","created":)";
  prefix_ += std::to_string(created_);
  prefix_ += R"(,"model":)";
  core::append_json_string(prefix_, model_);
}

void ChunkWriter::open(std::string& out, int choice) {
  out += prefix_;
  out += R"(,"choices":[{"index":)";
  if (choice >= 0 && choice < 10) {
    out += static_cast<char>('0' + choice);
  } else {
    out += std::to_string(choice);
  }
  out += ",";
}

void ChunkWriter::close(std::string& out) { out += "}]}\n\n"; }

void ChunkWriter::role(std::string& out, int choice) {
  open(out, choice);
  out += R"("delta":{"role":"assistant","content":""},"finish_reason":null)";
  close(out);
}

void ChunkWriter::text_delta(std::string& out, std::string_view field, std::string_view text,
                             bool literal, int choice) {
  open(out, choice);
  out += R"("delta":{")";
  out += field;
  out += R"(":)";
  if (literal) {
    out += text;
  } else {
    core::append_json_string(out, text);
  }
  out += R"(},"finish_reason":null)";
  close(out);
}

void ChunkWriter::content(std::string& out, std::string_view text, int choice) {
  text_delta(out, "content", text, false, choice);
}

void ChunkWriter::content(std::string& out, JsonLiteral text, int choice) {
  text_delta(out, "content", text.text, true, choice);
}

void ChunkWriter::reasoning(std::string& out, std::string_view text, int choice) {
  text_delta(out, "reasoning_content", text, false, choice);
}

void ChunkWriter::reasoning(std::string& out, JsonLiteral text, int choice) {
  text_delta(out, "reasoning_content", text.text, true, choice);
}

void ChunkWriter::tool_start(std::string& out, int tool_index, std::string_view id,
                             std::string_view name, int choice) {
  open(out, choice);
  out += R"("delta":{"tool_calls":[{"index":)";
  out += std::to_string(tool_index);
  out += R"(,"id":)";
  core::append_json_string(out, id);
  out += R"(,"type":"function","function":{"name":)";
  core::append_json_string(out, name);
  out += R"(,"arguments":""}}]},"finish_reason":null)";
  close(out);
}

void ChunkWriter::tool_arguments(std::string& out, int tool_index, std::string_view fragment,
                                 int choice) {
  arguments(out, tool_index, fragment, false, choice);
}

void ChunkWriter::tool_arguments(std::string& out, int tool_index, JsonLiteral fragment,
                                 int choice) {
  arguments(out, tool_index, fragment.text, true, choice);
}

void ChunkWriter::arguments(std::string& out, int tool_index, std::string_view fragment,
                            bool literal, int choice) {
  open(out, choice);
  out += R"("delta":{"tool_calls":[{"index":)";
  out += std::to_string(tool_index);
  out += R"(,"function":{"arguments":)";
  if (literal) {
    out += fragment;
  } else {
    core::append_json_string(out, fragment);
  }
  out += R"(}}]},"finish_reason":null)";
  close(out);
}

void ChunkWriter::finish(std::string& out, std::string_view finish_reason, int choice) {
  open(out, choice);
  out += R"("delta":{},"finish_reason":)";
  core::append_json_string(out, finish_reason);
  close(out);
}

void ChunkWriter::usage(std::string& out, const pricing::TokenUsage& u) {
  out += R"(data: {"id":)";
  core::append_json_string(out, id_);
  out += R"(,"object":"chat.completion.chunk","created":)";
  out += std::to_string(created_);
  out += R"(,"model":)";
  core::append_json_string(out, model_);
  out += R"(,"choices":[],"usage":)";
  append_openai_usage(out, u);
  out += "}\n\n";
}

}  // namespace llmgw::providers

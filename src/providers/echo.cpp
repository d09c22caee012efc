#include "providers/echo.hpp"

#include "core/json.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <openssl/evp.h>

#include <cmath>
#include <cstdio>
#include <cstring>

namespace llmgw::providers::echo {

namespace {

constexpr std::size_t kDefaultDimensions = 16;
constexpr std::size_t kMaxDimensions = 4096;
constexpr std::size_t kMaxInputs = 2048;

std::int64_t count_words(std::string_view s) {
  std::int64_t n = 0;
  bool in_word = false;
  for (char c : s) {
    const bool space = c == ' ' || c == '\n' || c == '\t' || c == '\r';
    if (!space && !in_word) {
      ++n;
    }
    in_word = !space;
  }
  return n;
}

/// Text of a message `content`: a string, or the text parts of an array.
std::string content_text(const boost::json::value& content) {
  if (content.is_string()) {
    return std::string(content.get_string());
  }
  std::string out;
  if (content.is_array()) {
    for (const auto& part : content.get_array()) {
      if (part.is_object()) {
        if (const auto* t = part.get_object().if_contains("text"); t != nullptr && t->is_string()) {
          if (!out.empty()) {
            out += ' ';
          }
          out += t->get_string();
        }
      }
    }
  }
  return out;
}

std::string completion_id(std::string_view request_id) {
  std::string id;
  core::append_json_string(id, "chatcmpl-" + std::string(request_id));
  return id;
}

std::string chunk_prefix(std::string_view model, std::string_view id, std::int64_t created) {
  std::string p = R"({"id":)";
  p += completion_id(id);
  p += R"(,"object":"chat.completion.chunk","created":)";
  p += std::to_string(created);
  p += R"(,"model":)";
  core::append_json_string(p, model);
  p += R"(,"system_fingerprint":"fp_llmgw_echo",)";
  return p;
}

std::string usage_json(const ChatReply& u) {
  return R"({"prompt_tokens":)" + std::to_string(u.prompt_tokens) +
         R"(,"completion_tokens":)" + std::to_string(u.completion_tokens) +
         R"(,"total_tokens":)" + std::to_string(u.prompt_tokens + u.completion_tokens) +
         R"(,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}})";
}

}  // namespace

ChatReply chat_reply(std::string_view body) {
  ChatReply r;
  boost::system::error_code ec;
  const auto v = boost::json::parse(body, ec);
  std::int64_t prompt = 0;
  if (!ec && v.is_object()) {
    if (const auto* msgs = v.get_object().if_contains("messages");
        msgs != nullptr && msgs->is_array()) {
      for (const auto& m : msgs->get_array()) {
        if (!m.is_object()) {
          continue;
        }
        const auto& o = m.get_object();
        const auto* content = o.if_contains("content");
        const std::string text = content != nullptr ? content_text(*content) : std::string();
        prompt += std::max<std::int64_t>(1, count_words(text));
        const auto* role = o.if_contains("role");
        if (role != nullptr && role->is_string() && role->get_string() == "user") {
          r.content = text;
        }
      }
    }
  }
  if (r.content.empty()) {
    r.content = "(echo: no user message)";
  }
  r.prompt_tokens = prompt;
  r.completion_tokens = std::max<std::int64_t>(1, count_words(r.content));
  return r;
}

std::string chat_completion_json(const ChatReply& r, std::string_view model,
                                 std::string_view request_id, std::int64_t created) {
  std::string s = R"({"id":)";
  s += completion_id(request_id);
  s += R"(,"object":"chat.completion","created":)";
  s += std::to_string(created);
  s += R"(,"model":)";
  core::append_json_string(s, model);
  s += R"(,"choices":[{"index":0,"message":{"role":"assistant","content":)";
  core::append_json_string(s, r.content);
  s += R"(,"refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":)";
  s += usage_json(r);
  s += R"(,"system_fingerprint":"fp_llmgw_echo"})";
  return s;
}

std::vector<std::string> chat_completion_events(const ChatReply& r, std::string_view model,
                                                std::string_view request_id,
                                                std::int64_t created, bool include_usage) {
  const std::string prefix = chunk_prefix(model, request_id, created);
  const std::string usage_null = include_usage ? R"(,"usage":null)" : "";
  std::vector<std::string> events;
  auto add = [&](std::string_view choices_and_rest) {
    std::string e = "data: ";
    e += prefix;
    e += choices_and_rest;
    e += "}\n\n";
    events.push_back(std::move(e));
  };
  add(R"("choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}])" +
      usage_null);
  // One chunk per word, keeping the separating whitespace with the word that follows it.
  std::size_t start = 0;
  const std::string& c = r.content;
  while (start < c.size()) {
    std::size_t i = start;
    while (i < c.size() && (c[i] == ' ' || c[i] == '\n' || c[i] == '\t')) {
      ++i;
    }
    while (i < c.size() && c[i] != ' ' && c[i] != '\n' && c[i] != '\t') {
      ++i;
    }
    std::string piece = R"("choices":[{"index":0,"delta":{"content":)";
    core::append_json_string(piece, std::string_view(c).substr(start, i - start));
    piece += R"(},"logprobs":null,"finish_reason":null}])";
    add(piece + usage_null);
    start = i;
  }
  add(R"("choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}])" + usage_null);
  if (include_usage) {
    add(R"("choices":[],"usage":)" + usage_json(r));
  }
  events.emplace_back("data: [DONE]\n\n");
  return events;
}

namespace {

class EchoStream final : public StreamTranslator {
 public:
  explicit EchoStream(const pricing::TokenUsage& usage) { usage_ = usage; }

  void feed(std::string& in, std::string& out) override {
    out += in;
    in.clear();
  }
  void finish(std::string& in, std::string& out, bool complete) override {
    feed(in, out);
    ended_ = complete;
  }
};

}  // namespace

std::unique_ptr<StreamTranslator> chat_stream_translator(const pricing::TokenUsage& usage) {
  return std::make_unique<EchoStream>(usage);
}

std::string embeddings_json(std::string_view body, std::string_view model, std::string& error,
                            std::string& param) {
  boost::system::error_code ec;
  const auto v = boost::json::parse(body, ec);
  if (ec || !v.is_object()) {
    error = "The request body must be a JSON object.";
    return {};
  }
  const auto& o = v.get_object();
  std::size_t dims = kDefaultDimensions;
  if (const auto* d = o.if_contains("dimensions"); d != nullptr && !d->is_null()) {
    if (!d->is_int64() || d->get_int64() < 1 || d->get_int64() > static_cast<std::int64_t>(kMaxDimensions)) {
      error = "Invalid 'dimensions': expected an integer between 1 and 4096.";
      param = "dimensions";
      return {};
    }
    dims = static_cast<std::size_t>(d->get_int64());
  }
  bool base64 = false;
  if (const auto* f = o.if_contains("encoding_format"); f != nullptr && !f->is_null()) {
    if (!f->is_string() || (f->get_string() != "float" && f->get_string() != "base64")) {
      error = "Invalid 'encoding_format': expected 'float' or 'base64'.";
      param = "encoding_format";
      return {};
    }
    base64 = f->get_string() == "base64";
  }
  std::vector<std::string> inputs;
  const auto* in = o.if_contains("input");
  if (in != nullptr && in->is_string()) {
    inputs.emplace_back(in->get_string());
  } else if (in != nullptr && in->is_array() && !in->get_array().empty() &&
             in->get_array().size() <= kMaxInputs) {
    for (const auto& item : in->get_array()) {
      if (item.is_string()) {
        inputs.emplace_back(item.get_string());
      } else if (item.is_array()) {  // token ids
        inputs.push_back(boost::json::serialize(item));
      } else if (item.is_int64()) {
        inputs.push_back(std::to_string(item.get_int64()));
      } else {
        error = "Invalid 'input': expected a string, an array of strings or of token arrays.";
        param = "input";
        return {};
      }
    }
  } else {
    error = "Invalid 'input': expected a non-empty string or array (at most 2048 items).";
    param = "input";
    return {};
  }
  std::string s = R"({"object":"list","data":[)";
  std::int64_t tokens = 0;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    tokens += std::max<std::int64_t>(1, count_words(inputs[i]));
    // Deterministic components from SHA-256(counter || input), normalised to unit length.
    std::vector<double> vec(dims);
    double norm = 0;
    for (std::size_t j = 0; j < dims; j += 8) {
      unsigned char block[32];
      unsigned int len = 0;
      const std::string seed = std::to_string(j) + ":" + inputs[i];
      EVP_Digest(seed.data(), seed.size(), block, &len, EVP_sha256(), nullptr);
      for (std::size_t k = 0; k < 8 && j + k < dims; ++k) {
        const std::uint32_t x = (block[4 * k] << 24) | (block[4 * k + 1] << 16) |
                                (block[4 * k + 2] << 8) | block[4 * k + 3];
        vec[j + k] = static_cast<double>(x) / 4294967295.0 * 2.0 - 1.0;
        norm += vec[j + k] * vec[j + k];
      }
    }
    norm = std::sqrt(norm > 0 ? norm : 1);
    s += i == 0 ? "" : ",";
    s += R"({"object":"embedding","index":)" + std::to_string(i) + R"(,"embedding":)";
    if (base64) {
      // OpenAI's base64 form: little-endian float32 values, standard base64 with padding.
      std::string raw(dims * sizeof(float), '\0');
      for (std::size_t j = 0; j < dims; ++j) {
        const float f = static_cast<float>(vec[j] / norm);
        std::uint32_t bits;
        std::memcpy(&bits, &f, sizeof bits);
        for (int b = 0; b < 4; ++b) {
          raw[j * 4 + b] = static_cast<char>((bits >> (8 * b)) & 0xFF);
        }
      }
      std::string enc(4 * ((raw.size() + 2) / 3) + 1, '\0');
      const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(enc.data()),
                                    reinterpret_cast<const unsigned char*>(raw.data()),
                                    static_cast<int>(raw.size()));
      enc.resize(static_cast<std::size_t>(n));
      core::append_json_string(s, enc);
      s += "}";
    } else {
      s += "[";
      for (std::size_t j = 0; j < dims; ++j) {
        char num[32];
        std::snprintf(num, sizeof num, "%s%.8f", j == 0 ? "" : ",", vec[j] / norm);
        s += num;
      }
      s += "]}";
    }
  }
  s += R"(],"model":)";
  core::append_json_string(s, model);
  s += R"(,"usage":{"prompt_tokens":)" + std::to_string(tokens) + R"(,"total_tokens":)" +
       std::to_string(tokens) + "}}";
  return s;
}

}  // namespace llmgw::providers::echo

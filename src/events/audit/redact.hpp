#pragma once
/// The audit log's redacted mode: request and answer bodies with the values at configured
/// JSON paths replaced by "[redacted]", so a record keeps the shape of a call (which model,
/// which parameters, how many messages, which tools) without its contents.
///
/// A path is member names joined by dots; `[*]` after a name (or alone, first) stands for
/// every element of an array, and `*` for every member of an object:
///   messages[*].content     the content of every message
///   choices[*].message.tool_calls[*].function.arguments
/// A path that names nothing in a body changes nothing. A body that is not JSON is replaced
/// whole.

#include <string>
#include <string_view>
#include <vector>

namespace llmgw::audit {

class Redactor {
 public:
  /// The paths of every message's and answer's contents, in the three formats the gateway
  /// serves (OpenAI chat and embeddings, Anthropic Messages): LOGGING_REDACT_PATHS's default.
  static constexpr std::string_view kDefaultPaths =
      "messages[*].content,messages[*].tool_calls[*].function.arguments,system,prompt,input,"
      "choices[*].message.content,choices[*].message.reasoning_content,"
      "choices[*].message.refusal,choices[*].message.tool_calls[*].function.arguments,"
      "content[*].text,content[*].thinking,content[*].input,data[*].embedding";

  /// `paths`: comma-separated. Throws std::invalid_argument naming a malformed path.
  explicit Redactor(std::string_view paths = kDefaultPaths);

  /// `body` with every configured path masked, as JSON.
  [[nodiscard]] std::string redact(std::string_view body) const;

  static constexpr std::string_view kMask = "[redacted]";

 private:
  struct Step {
    enum Kind : unsigned char { Member, AnyMember, AnyElement } kind;
    std::string name;
  };
  std::vector<std::vector<Step>> paths_;
};

}  // namespace llmgw::audit

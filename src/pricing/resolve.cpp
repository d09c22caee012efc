#include "pricing/resolve.hpp"

#include <algorithm>
#include <array>
#include <cctype>

namespace llmgw::pricing {
namespace {

std::string_view catalog_prefix(core::ProviderType type) noexcept {
  switch (type) {
    case core::ProviderType::Azure: return "azure/";
    case core::ProviderType::Gemini: return "gemini/";
    case core::ProviderType::Vertex: return "vertex_ai/";
    default: return {};
  }
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isdigit(static_cast<unsigned char>(c)) != 0;
  });
}

/// `name` without a trailing date (`-2024-11-20` or `-20250514`), or empty if it has none.
std::string without_date(std::string_view name) {
  if (name.size() > 11 && name[name.size() - 11] == '-' && name[name.size() - 6] == '-' &&
      name[name.size() - 3] == '-' && all_digits(name.substr(name.size() - 10, 4)) &&
      all_digits(name.substr(name.size() - 5, 2)) && all_digits(name.substr(name.size() - 2))) {
    return std::string(name.substr(0, name.size() - 11));
  }
  if (name.size() > 9 && name[name.size() - 9] == '-' && all_digits(name.substr(name.size() - 8))) {
    return std::string(name.substr(0, name.size() - 9));
  }
  return {};
}

/// Bedrock's cross-region inference prefixes.
constexpr std::array<std::string_view, 7> kRegionPrefixes{"us.",  "eu.",    "apac.", "au.",
                                                          "jp.",  "global.", "us-gov."};

class Candidates {
 public:
  explicit Candidates(std::string_view prefix) : prefix_(prefix) {}

  /// Adds `name` under the provider's prefix, then bare, plus its undated form.
  void add(const std::string& name) {
    if (name.empty()) {
      return;
    }
    if (!prefix_.empty()) {
      push(std::string(prefix_) + name);
    }
    push(name);
  }
  void add_with_undated(const std::string& name) {
    add(name);
    add(without_date(name));
  }
  std::vector<std::string> take() { return std::move(out_); }

 private:
  void push(std::string s) {
    if (std::find(out_.begin(), out_.end(), s) == out_.end()) {
      out_.push_back(std::move(s));
    }
  }

  std::string_view prefix_;
  std::vector<std::string> out_;
};

}  // namespace

std::vector<std::string> pricing_candidates(core::ProviderType type, std::string_view model) {
  Candidates c(catalog_prefix(type));
  const std::string name(model);
  c.add(name);

  // Bedrock: region prefix, then vendor prefix and version suffix.
  std::string_view rest = model;
  for (std::string_view region : kRegionPrefixes) {
    if (type != core::ProviderType::Bedrock) {
      break;
    }
    if (rest.starts_with(region)) {
      rest.remove_prefix(region.size());
      c.add(std::string(rest));
      break;
    }
  }
  if (const auto dot = rest.find('.'); type == core::ProviderType::Bedrock &&
                                       dot != std::string_view::npos &&
                                       rest.find(':') != std::string_view::npos) {
    std::string_view base = rest.substr(dot + 1);  // "claude-3-haiku-20240307-v1:0"
    if (const auto v = base.rfind("-v"); v != std::string_view::npos) {
      base = base.substr(0, v);
    }
    c.add_with_undated(std::string(base));
  }

  // Vertex AI: model@version.
  if (const auto at = model.find('@');
      type == core::ProviderType::Vertex && at != std::string_view::npos) {
    const std::string base(model.substr(0, at));
    c.add(base + "-" + std::string(model.substr(at + 1)));
    c.add(base);
  }

  // OpenAI fine-tunes: ft:<base>:<org>:<suffix>:<id>.
  if (model.starts_with("ft:")) {
    const std::string_view after = model.substr(3);
    const std::string base(after.substr(0, after.find(':')));
    c.add("ft:" + base);
    c.add_with_undated(base);
  }

  c.add(without_date(model));
  return c.take();
}

}  // namespace llmgw::pricing

#pragma once
// Reads sample values out of a rendered scrape, for the metrics tests.

#include <optional>
#include <string>
#include <string_view>

namespace llmgw::metrics::test {

/// The value text of the sample whose name and labels are exactly `series`, or nullopt.
inline std::optional<std::string> sample(std::string_view scrape, std::string_view series) {
  std::string needle = "\n";
  needle.append(series).append(" ");
  const auto at = scrape.find(needle);
  if (at == std::string_view::npos) {
    return std::nullopt;
  }
  const auto begin = at + needle.size();
  const auto end = scrape.find('\n', begin);
  return std::string(scrape.substr(begin, end - begin));
}

}  // namespace llmgw::metrics::test

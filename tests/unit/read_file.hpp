#pragma once
/// Test helper: the bytes of a file (empty if it cannot be read; the tests count what they read).

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace llmgw::test {

inline std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace llmgw::test

# Writes OUT: a C++ source defining `std::string_view NAME()` returning the bytes of IN.
# Used to build the default price catalog into the binary.
file(READ "${IN}" content)
string(FIND "${content}" ")llmgw_embed\"" clash)
if(NOT clash EQUAL -1)
  message(FATAL_ERROR "${IN} contains the raw-string delimiter")
endif()
file(WRITE "${OUT}" "// Generated from ${IN} by cmake/embed.cmake. Do not edit.\n#include <string_view>\nnamespace llmgw::app {\nstd::string_view ${NAME}() {\n  static constexpr char kData[] = R\"llmgw_embed(${content})llmgw_embed\";\n  return {kData, sizeof kData - 1};\n}\n}  // namespace llmgw::app\n")

# Writes OUT: a C++ source defining `std::string_view NAMESPACE::NAME()` returning the bytes
# of IN (NAMESPACE defaults to llmgw::app). Builds the default price catalog and the admin
# API's OpenAPI document into the binary.
if(NOT NAMESPACE)
  set(NAMESPACE "llmgw::app")
endif()
file(READ "${IN}" content)
string(FIND "${content}" ")llmgw_embed\"" clash)
if(NOT clash EQUAL -1)
  message(FATAL_ERROR "${IN} contains the raw-string delimiter")
endif()
file(WRITE "${OUT}" "// Generated from ${IN} by cmake/embed.cmake. Do not edit.\n#include <string_view>\nnamespace ${NAMESPACE} {\nstd::string_view ${NAME}() {\n  static constexpr char kData[] = R\"llmgw_embed(${content})llmgw_embed\";\n  return {kData, sizeof kData - 1};\n}\n}  // namespace ${NAMESPACE}\n")

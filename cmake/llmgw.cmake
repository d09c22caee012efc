# Shared per-target settings: warnings and sanitizers (never global flags).
add_library(llmgw_warnings INTERFACE)
target_compile_options(llmgw_warnings INTERFACE -Wall -Wextra -Wpedantic
  # GCC 12 misreads Asio's recycling allocator for coroutine frames at -O2 (a false positive).
  -Wno-mismatched-new-delete)
# Boost.Asio/Beast and Boost.JSON headers are used everywhere: keep them out of the
# deprecated-API paths and compile the Boost.JSON/Beast "separate compilation" bits once.
target_compile_definitions(llmgw_warnings INTERFACE
  BOOST_ASIO_NO_DEPRECATED BOOST_ASIO_DISABLE_CONCEPTS
  # A request awaits several nested coroutines and ops: with Asio's default of 2 cached
  # blocks per thread most frames went back to malloc. Same value in every target (ODR).
  BOOST_ASIO_RECYCLING_ALLOCATOR_CACHE_SIZE=16)
if(LLMGW_WERROR)
  target_compile_options(llmgw_warnings INTERFACE -Werror)
endif()
if(LLMGW_SANITIZE)
  target_compile_options(llmgw_warnings INTERFACE -fsanitize=address,undefined -fno-omit-frame-pointer
    -fno-sanitize-recover=undefined)
  target_link_options(llmgw_warnings INTERFACE -fsanitize=address,undefined)
endif()
if(LLMGW_TSAN)
  target_compile_options(llmgw_warnings INTERFACE -fsanitize=thread -fno-omit-frame-pointer)
  target_link_options(llmgw_warnings INTERFACE -fsanitize=thread)
endif()

# llmgw_library(NAME SOURCES... DEPS ...) -> static library llmgw_NAME, alias llmgw::NAME
function(llmgw_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_library(llmgw_${name} STATIC ${ARG_SOURCES})
  add_library(llmgw::${name} ALIAS llmgw_${name})
  target_include_directories(llmgw_${name} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(llmgw_${name} PUBLIC ${ARG_DEPS} PRIVATE llmgw_warnings)
endfunction()

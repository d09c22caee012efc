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
  # Each library sees its own headers and those of the libraries it links, nothing else: its
  # headers are staged (symlinked) under build/include/<name>/<path under src>, and only that
  # tree is its include directory (PUBLIC, so it reaches what links it). A subfolder with its
  # own CMakeLists.txt is another library and is staged by that one.
  set(stage ${PROJECT_BINARY_DIR}/include/${name})
  file(GLOB_RECURSE headers RELATIVE ${CMAKE_CURRENT_SOURCE_DIR} CONFIGURE_DEPENDS
    ${CMAKE_CURRENT_SOURCE_DIR}/*.hpp)
  file(RELATIVE_PATH prefix ${PROJECT_SOURCE_DIR}/src ${CMAKE_CURRENT_SOURCE_DIR})
  foreach(h IN LISTS headers)
    get_filename_component(dir ${h} DIRECTORY)
    if(dir AND EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/${dir}/CMakeLists.txt)
      continue()
    endif()
    set(link ${stage}/${prefix}/${h})
    if(NOT EXISTS ${link})
      get_filename_component(link_dir ${link} DIRECTORY)
      file(MAKE_DIRECTORY ${link_dir})
      file(CREATE_LINK ${CMAKE_CURRENT_SOURCE_DIR}/${h} ${link} SYMBOLIC)
    endif()
  endforeach()
  target_include_directories(llmgw_${name} PUBLIC ${stage})
  target_link_libraries(llmgw_${name} PUBLIC ${ARG_DEPS} PRIVATE llmgw_warnings)
endfunction()

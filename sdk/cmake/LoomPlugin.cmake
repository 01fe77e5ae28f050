# loom_add_plugin(NAME SOURCES src... [LIBRARIES libs...] [OUTPUT_DIRECTORY dir])
#
# Builds a loom plugin: a MODULE named NAME.so (no "lib" prefix), with hidden
# visibility so that LOOM_PLUGIN's entry is its only export, and -z defs so
# that a plugin which reaches for a host symbol fails at link time, not at
# load time. Works in loom's tree and from an installed SDK (LoomConfig.cmake).
function(loom_add_plugin name)
  cmake_parse_arguments(LP "" "OUTPUT_DIRECTORY" "SOURCES;LIBRARIES" ${ARGN})
  if(NOT LP_SOURCES)
    message(FATAL_ERROR "loom_add_plugin(${name}): SOURCES is required")
  endif()
  add_library(${name} MODULE ${LP_SOURCES})
  set_target_properties(${name} PROPERTIES
    PREFIX ""
    OUTPUT_NAME ${name}
    C_STANDARD 11
    C_VISIBILITY_PRESET hidden)
  if(LP_OUTPUT_DIRECTORY)
    set_target_properties(${name} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${LP_OUTPUT_DIRECTORY})
  elseif(DEFINED LOOM_PLUGIN_OUTPUT_DIR)
    set_target_properties(${name} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${LOOM_PLUGIN_OUTPUT_DIR})
  endif()
  target_include_directories(${name} PRIVATE ${LOOM_SDK_INCLUDE_DIR})
  target_link_options(${name} PRIVATE -Wl,-z,defs)
  if(LP_LIBRARIES)
    target_link_libraries(${name} PRIVATE ${LP_LIBRARIES})
  endif()
endfunction()

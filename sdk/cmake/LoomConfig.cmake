# find_package(Loom): the installed loom plugin SDK.
#
# Provides:
#   loom_add_plugin(name SOURCES src... [LIBRARIES libs...] [OUTPUT_DIRECTORY dir])
#   LOOM_SDK_INCLUDE_DIR   the directory that holds loom/loom.h
#   LOOM_ABI_MAJOR, LOOM_ABI_MINOR   the plugin ABI of that header
#   LOOM_EXECUTABLE        the installed `loom` binary, if there is one
# A plugin links nothing of loom: there is no library to import.
get_filename_component(_loom_prefix "${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)
set(LOOM_SDK_INCLUDE_DIR "${_loom_prefix}/include")
if(NOT EXISTS "${LOOM_SDK_INCLUDE_DIR}/loom/loom.h")
  set(Loom_FOUND FALSE)
  set(Loom_NOT_FOUND_MESSAGE "${LOOM_SDK_INCLUDE_DIR}/loom/loom.h is missing")
  return()
endif()
file(STRINGS "${LOOM_SDK_INCLUDE_DIR}/loom/loom.h" _loom_abi REGEX "^#define LOOM_ABI_M(AJ|IN)OR [0-9]+")
string(REGEX REPLACE ".*LOOM_ABI_MAJOR ([0-9]+).*" "\\1" LOOM_ABI_MAJOR "${_loom_abi}")
string(REGEX REPLACE ".*LOOM_ABI_MINOR ([0-9]+).*" "\\1" LOOM_ABI_MINOR "${_loom_abi}")
if(EXISTS "${_loom_prefix}/bin/loom")
  set(LOOM_EXECUTABLE "${_loom_prefix}/bin/loom")
endif()
include("${CMAKE_CURRENT_LIST_DIR}/LoomPlugin.cmake")
unset(_loom_abi)
unset(_loom_prefix)

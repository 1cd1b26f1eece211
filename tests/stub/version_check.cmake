# tests/stub/version_check.cmake: `kvmstub --version` says the version and
# the git commit it was built from, as the other places that show it
# (monitor info, the snapshot header) get it from the same header,
# kvmstub_version.h. No KVM needed.
#   1. --version prints exactly "kvmstub " and KVMSTUB_VERSION of that header;
#   2. that is PROJECT_VERSION, then, in a git checkout, " (DESCRIBE)" where
#      DESCRIBE names a commit of this repository (git describe --always
#      --dirty: [TAG-N-g]HASH[-dirty]).
#
#   cmake -DKVMSTUB=build/kvmstub -DHEADER=build/generated/kvmstub_version.h
#         -DPROJECT_VERSION=0.1.0 -DSOURCE_DIR=. [-DGIT_EXECUTABLE=git] -P version_check.cmake
cmake_minimum_required(VERSION 3.25)
execute_process(COMMAND "${KVMSTUB}" --version RESULT_VARIABLE status OUTPUT_VARIABLE out)
if(NOT status EQUAL 0)
  message(FATAL_ERROR "'${KVMSTUB} --version' exited with ${status}")
endif()
file(STRINGS "${HEADER}" define REGEX "^#define KVMSTUB_VERSION \"")
string(REGEX REPLACE "^#define KVMSTUB_VERSION \"(.*)\"$" "\\1" version "${define}")
if(NOT out STREQUAL "kvmstub ${version}\n")
  message(FATAL_ERROR "'kvmstub --version' printed '${out}', not 'kvmstub ${version}' "
                      "(${HEADER}): rebuild kvmstub")
endif()
if(GIT_EXECUTABLE AND EXISTS "${SOURCE_DIR}/.git")
  if(NOT version MATCHES "^${PROJECT_VERSION} \\((.+)\\)$")
    message(FATAL_ERROR "the version '${version}' names no git commit, though ${SOURCE_DIR} "
                        "is a git checkout: see stub/version.cmake")
  endif()
  set(describe "${CMAKE_MATCH_1}")
  string(REGEX REPLACE "-dirty$" "" commit "${describe}")
  string(REGEX REPLACE "^.*-g([0-9a-f]+)$" "\\1" commit "${commit}")
  execute_process(COMMAND "${GIT_EXECUTABLE}" cat-file -e "${commit}^{commit}"
                  WORKING_DIRECTORY "${SOURCE_DIR}" RESULT_VARIABLE status ERROR_QUIET)
  if(NOT status EQUAL 0)
    message(FATAL_ERROR "the version '${version}' names '${commit}', which is no commit of "
                        "${SOURCE_DIR}")
  endif()
elseif(NOT version STREQUAL PROJECT_VERSION)
  message(FATAL_ERROR "outside a git checkout the version should be ${PROJECT_VERSION}, "
                      "not '${version}'")
endif()
message(STATUS "kvmstub --version: ${out}")

# stub/version.cmake: writes kvmstub_version.h, whose KVMSTUB_VERSION is the
# one version string kvmstub shows everywhere (--version, 'monitor info',
# the snapshot file's header, the multiboot boot loader name):
#
#   PROJECT_VERSION (GIT_DESCRIBE)   e.g. "0.1.0 (9fa8b19-dirty)"
#   PROJECT_VERSION                  without git or outside a checkout
#
# GIT_DESCRIBE is `git describe --always --dirty`, taken at every build (the
# target kvmstub_version runs this script), so a build from a changed tree
# never claims the commit it started from. The file is rewritten only when
# the string changes: an unchanged commit recompiles nothing.
#
# With CHANGELOG (and MAINTAINER, GZIP) it also writes CHANGELOG, a Debian
# changelog of one entry saying what the package was built from, compressed
# with gzip -9n as Debian wants it (the Debian package's changelog.gz).
#
#   cmake -DSOURCE_DIR=... -DOUTPUT=.../kvmstub_version.h -DPROJECT_VERSION=0.1.0
#         [-DGIT_EXECUTABLE=/usr/bin/git] [-DCHANGELOG=.../changelog.gz
#         -DMAINTAINER="Name <address>" -DGZIP=/usr/bin/gzip] -P stub/version.cmake
foreach(var SOURCE_DIR OUTPUT PROJECT_VERSION)
  if(NOT ${var})
    message(FATAL_ERROR "version.cmake: ${var} is not set; see the comment at its top")
  endif()
endforeach()

set(version "${PROJECT_VERSION}")
if(GIT_EXECUTABLE AND EXISTS "${SOURCE_DIR}/.git")
  execute_process(COMMAND "${GIT_EXECUTABLE}" describe --always --dirty
                  WORKING_DIRECTORY "${SOURCE_DIR}" RESULT_VARIABLE status
                  OUTPUT_VARIABLE describe ERROR_QUIET OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(status EQUAL 0 AND describe)
    set(version "${PROJECT_VERSION} (${describe})")
    # The snapshot header holds 32 bytes of it: past that (a long tag),
    # only the commit, which still tells builds apart.
    string(LENGTH "${version}" length)
    if(length GREATER 32)
      execute_process(COMMAND "${GIT_EXECUTABLE}" describe --always --dirty --exclude=*
                      WORKING_DIRECTORY "${SOURCE_DIR}" OUTPUT_VARIABLE describe
                      ERROR_QUIET OUTPUT_STRIP_TRAILING_WHITESPACE)
      set(version "${PROJECT_VERSION} (${describe})")
    endif()
  endif()
endif()
string(LENGTH "${version}" length)
if(length GREATER 32)
  message(FATAL_ERROR "version.cmake: the version string '${version}' is longer than the 32 "
                      "bytes a snapshot header holds; shorten the project version")
endif()

set(text "/* Written by stub/version.cmake at build time: do not edit. */
#ifndef KVMSTUB_VERSION_H
#define KVMSTUB_VERSION_H
#define KVMSTUB_VERSION \"${version}\"
#endif
")
set(old "")
if(EXISTS "${OUTPUT}")
  file(READ "${OUTPUT}" old)
endif()
if(NOT old STREQUAL text)
  file(WRITE "${OUTPUT}" "${text}")
endif()

if(CHANGELOG)
  # The date of the commit, so that a rebuild of it gives the same bytes;
  # the time of the build outside a checkout.
  set(date "")
  set(what "a source tree without git")
  if(GIT_EXECUTABLE AND EXISTS "${SOURCE_DIR}/.git")
    execute_process(COMMAND "${GIT_EXECUTABLE}" log -1 --format=%aD
                    WORKING_DIRECTORY "${SOURCE_DIR}" OUTPUT_VARIABLE date
                    ERROR_QUIET OUTPUT_STRIP_TRAILING_WHITESPACE)
    set(what "git ${describe}")
  endif()
  if(NOT date)
    string(TIMESTAMP date "%a, %d %b %Y %H:%M:%S +0000" UTC)
  endif()
  set(entry "kvmstub (${PROJECT_VERSION}) unstable; urgency=medium

  * Built from ${what} with CMake and CPack; the history is in git.

 -- ${MAINTAINER}  ${date}
")
  set(text_file "${CHANGELOG}.txt")
  set(old "")
  if(EXISTS "${text_file}")
    file(READ "${text_file}" old)
  endif()
  if(NOT old STREQUAL entry OR NOT EXISTS "${CHANGELOG}")
    file(WRITE "${text_file}" "${entry}")
    execute_process(COMMAND "${GZIP}" -9n -c "${text_file}" OUTPUT_FILE "${CHANGELOG}"
                    COMMAND_ERROR_IS_FATAL ANY)
  endif()
endif()

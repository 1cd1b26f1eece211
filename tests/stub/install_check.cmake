# tests/stub/install_check.cmake: `cmake --install` into a DESTDIR staging
# directory puts exactly kvmstub's files where README's "Installing" says,
# under the prefix and nowhere else, and nothing from tests or benchmarks.
# No KVM needed.
#
#   cmake -DBUILD_DIR=build -DWORK=build/install-check -P install_check.cmake
cmake_minimum_required(VERSION 3.25)
file(REMOVE_RECURSE "${WORK}")
# A prefix no rule could name itself: a destination that ignores it (an
# absolute one) shows as a file outside it.
set(prefix /kvmstub-check/prefix)
execute_process(COMMAND ${CMAKE_COMMAND} -E env DESTDIR=${WORK}/stage
                        ${CMAKE_COMMAND} --install "${BUILD_DIR}" --prefix ${prefix}
                RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(NOT status EQUAL 0)
  message(FATAL_ERROR "cmake --install ${BUILD_DIR} failed (${status}):\n${out}")
endif()
file(GLOB_RECURSE files LIST_DIRECTORIES false RELATIVE "${WORK}/stage" "${WORK}/stage/*")
list(SORT files)
string(REGEX REPLACE "^/" "" rel "${prefix}")
set(want
  bin/kvmstub
  share/bash-completion/completions/kvmstub
  share/doc/kvmstub/LICENSE
  share/doc/kvmstub/README.md
  share/doc/kvmstub/changelog.gz
  share/doc/kvmstub/copyright
  share/doc/kvmstub/examples/ckernel.gdb
  share/doc/kvmstub/examples/ckernel.lldb
  share/doc/kvmstub/examples/demo.gdb
  share/doc/kvmstub/examples/kaslr.py
  share/doc/kvmstub/examples/linux.gdb
  share/man/man1/kvmstub.1.gz)
list(TRANSFORM want PREPEND "${rel}/")
set(problems "")
foreach(f IN LISTS want)
  if(NOT f IN_LIST files)
    string(APPEND problems "  missing: /${f}\n")
  endif()
endforeach()
foreach(f IN LISTS files)
  if(NOT f MATCHES "^${rel}/(bin/kvmstub$|share/(man/man1|doc/kvmstub|bash-completion/completions)/)"
     OR f MATCHES "/test_|/tests/|bench|fuzz")
    string(APPEND problems "  not kvmstub's to install: /${f}\n")
  endif()
endforeach()
# Every path cmake --install reports must be under the prefix, and there
# under DESTDIR.
file(STRINGS "${BUILD_DIR}/install_manifest.txt" manifest)
foreach(f IN LISTS manifest)
  if(NOT f MATCHES "^${prefix}/" OR NOT EXISTS "${WORK}/stage${f}")
    string(APPEND problems "  installed outside the prefix or DESTDIR: ${f}\n")
  endif()
endforeach()
if(problems)
  list(JOIN files "\n  " all)
  message(FATAL_ERROR "cmake --install put the wrong files under ${prefix}:\n${problems}"
                      "it installed:\n  ${all}")
endif()
list(LENGTH files n)
message(STATUS "cmake --install: the ${n} files of kvmstub, all under DESTDIR${prefix}")
file(REMOVE_RECURSE "${WORK}")

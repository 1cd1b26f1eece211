# tests/stub/manpage_check.cmake: kvmstub(1) and `kvmstub --help` must never
# disagree. Checks, with no KVM needed:
#   1. every option on an option line of --help is in the man page's OPTIONS
#      section, and every option there is in --help;
#   2. kvmstub accepts every option the man page names (none is "unknown");
#   3. every command of the monitor's table (stub/monitor.c) is in the man
#      page as "monitor WORD";
#   4. the version in the man page's .TH line is the project's;
#   5. where man(1) is installed, the page renders with no warning.
#
#   cmake -DKVMSTUB=build/kvmstub -DMANPAGE=stub/kvmstub.1 -DMONITOR=stub/monitor.c
#         -DPROJECT_VERSION=0.1.0 -P tests/stub/manpage_check.cmake
cmake_minimum_required(VERSION 3.25)
set(failures "")
macro(fail text)
  string(APPEND failures "  ${text}\n")
endmacro()

# The options in a list of lines: words starting with - or --.
function(options_in lines out)
  set(found "")
  foreach(line IN LISTS lines)
    string(REGEX REPLACE "[(,\"]" " " line " ${line}")
    string(REGEX MATCHALL " --?[A-Za-z][A-Za-z0-9-]*" words "${line}")
    foreach(w IN LISTS words)
      string(STRIP "${w}" w)
      list(APPEND found "${w}")
    endforeach()
  endforeach()
  list(REMOVE_DUPLICATES found)
  list(SORT found)
  set(${out} "${found}" PARENT_SCOPE)
endfunction()

# --help: the option lines are those that start with two spaces and a dash.
execute_process(COMMAND "${KVMSTUB}" --help RESULT_VARIABLE status OUTPUT_VARIABLE help)
if(NOT status EQUAL 0)
  message(FATAL_ERROR "'${KVMSTUB} --help' exited with ${status}; build kvmstub first")
endif()
string(REPLACE ";" "," help "${help}")
string(REPLACE "\n" ";" help_lines "${help}")
list(FILTER help_lines INCLUDE REGEX "^  -")
options_in("${help_lines}" help_options)

# The man page: the line after each .TP in the OPTIONS section is the tag.
file(STRINGS "${MANPAGE}" man_lines)
set(in_options FALSE)
set(after_tp FALSE)
set(tags "")
set(man_text "")
foreach(line IN LISTS man_lines)
  string(REPLACE "\\-" "-" plain "${line}")
  string(REGEX REPLACE "\\\\f[BIRP]" "" plain "${plain}")
  string(APPEND man_text "${plain}\n")
  if(line MATCHES "^\\.SH ")
    set(in_options FALSE)
    if(line MATCHES "^\\.SH OPTIONS")
      set(in_options TRUE)
    endif()
  elseif(in_options AND after_tp)
    list(APPEND tags "${plain}")
  endif()
  set(after_tp FALSE)
  if(line MATCHES "^\\.TP")
    set(after_tp TRUE)
  endif()
endforeach()
options_in("${tags}" man_options)
list(LENGTH man_options n_man)
list(LENGTH help_options n_help)
if(n_man LESS 20 OR n_help LESS 20)
  message(FATAL_ERROR "found only ${n_man} options in ${MANPAGE} and ${n_help} in --help: "
                      "the parsing in ${CMAKE_CURRENT_LIST_FILE} no longer fits them")
endif()

foreach(o IN LISTS help_options)
  if(NOT o IN_LIST man_options)
    fail("${o} is in 'kvmstub --help' but not in the OPTIONS of ${MANPAGE}: document it there")
  endif()
endforeach()
foreach(o IN LISTS man_options)
  if(NOT o IN_LIST help_options)
    fail("${o} is in the OPTIONS of ${MANPAGE} but not in 'kvmstub --help': add it to the "
         "usage text in stub/options.c, or drop it from the man page")
  endif()
  execute_process(COMMAND "${KVMSTUB}" "${o}" RESULT_VARIABLE status OUTPUT_QUIET
                  ERROR_VARIABLE err)
  if(err MATCHES "unknown option")
    fail("${o} is in ${MANPAGE}, but kvmstub says: ${err}")
  endif()
endforeach()

# The monitor's commands: the table entries {"word", c_function}.
file(STRINGS "${MONITOR}" table REGEX "\\{\"[a-z_]+\", c_[a-z_]+\\}")
string(REGEX MATCHALL "\\{\"[a-z_]+\"" words "${table}")
list(LENGTH words n_words)
if(n_words LESS 5)
  message(FATAL_ERROR "found only ${n_words} monitor commands in ${MONITOR}: the parsing in "
                      "${CMAKE_CURRENT_LIST_FILE} no longer fits its table")
endif()
foreach(w IN LISTS words)
  string(REGEX REPLACE "[{\"]" "" w "${w}")
  if(NOT man_text MATCHES "monitor ${w}")
    fail("the monitor command '${w}' (${MONITOR}) is not in ${MANPAGE}: add 'monitor ${w}' "
         "to its MONITOR COMMANDS")
  endif()
endforeach()

if(NOT man_text MATCHES "\n\\.TH KVMSTUB 1 [0-9-]+ \"kvmstub ${PROJECT_VERSION}\"")
  fail("the .TH line of ${MANPAGE} does not give version ${PROJECT_VERSION} (the project's, "
       "CMakeLists.txt): update it")
endif()

find_program(MAN man)
if(MAN)
  execute_process(COMMAND ${CMAKE_COMMAND} -E env LC_ALL=C.UTF-8 MANWIDTH=80
                          "${MAN}" --warnings -E UTF-8 -l "${MANPAGE}"
                  RESULT_VARIABLE status OUTPUT_VARIABLE rendered ERROR_VARIABLE warnings)
  if(NOT status EQUAL 0 OR warnings)
    fail("man -l ${MANPAGE} failed (${status}) or warned: ${warnings}")
  elseif(NOT rendered MATCHES "EXIT STATUS" OR NOT rendered MATCHES "--watchpoints")
    fail("man -l ${MANPAGE} rendered no EXIT STATUS or --watchpoints: ${rendered}")
  endif()
else()
  message(STATUS "man is not installed: not rendering ${MANPAGE} (apt-get install man-db)")
endif()

if(failures)
  message(FATAL_ERROR "kvmstub(1) and kvmstub disagree:\n${failures}")
endif()
list(JOIN help_options " " all)
message(STATUS "kvmstub(1) agrees with --help on ${n_help} options (${all}) and names all "
               "${n_words} monitor commands")

# Runs a libFuzzer binary for a bounded time over a scratch copy of its seed
# corpus, so that the inputs it adds never land in the source tree.
# Variables: FUZZER, CORPUS, WORK, SECONDS, DICT (optional).
file(REMOVE_RECURSE "${WORK}")
file(MAKE_DIRECTORY "${WORK}/corpus")
file(GLOB seeds "${CORPUS}/*")
file(COPY ${seeds} DESTINATION "${WORK}/corpus")
set(args -max_total_time=${SECONDS} -timeout=10 -print_final_stats=1 "-artifact_prefix=${WORK}/")
if(DICT)
  list(APPEND args "-dict=${DICT}")
endif()
execute_process(COMMAND "${FUZZER}" ${args} "${WORK}/corpus" RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${FUZZER} failed (${rc}); the crashing input is in ${WORK}")
endif()

# cmake -DIMAGE=file.bin -DSIZE=N [-DHEX=hexbytes] [-DSIGNATURE_AT=offset -DSIGNATURE=hex] -P check_image.cmake
# Fails the build when a flat example image is not what its README and gdb
# script promise: exactly SIZE bytes, optionally exactly the bytes HEX, and
# optionally the bytes SIGNATURE at offset SIGNATURE_AT. An extra section the
# linker adds (or a code change) would otherwise silently change them.
if(NOT IMAGE OR NOT SIZE)
  message(FATAL_ERROR "check_image.cmake: pass -DIMAGE=file.bin -DSIZE=bytes")
endif()
file(SIZE "${IMAGE}" size)
if(NOT size EQUAL SIZE)
  message(FATAL_ERROR "${IMAGE} is ${size} bytes, not ${SIZE}")
endif()
if(HEX)
  file(READ "${IMAGE}" content HEX)
  if(NOT content STREQUAL HEX)
    message(FATAL_ERROR "${IMAGE} holds ${content}, not ${HEX}")
  endif()
endif()
if(SIGNATURE)
  string(LENGTH "${SIGNATURE}" hexlen)
  math(EXPR len "${hexlen} / 2")
  file(READ "${IMAGE}" found OFFSET ${SIGNATURE_AT} LIMIT ${len} HEX)
  if(NOT found STREQUAL SIGNATURE)
    message(FATAL_ERROR "${IMAGE} has ${found} at offset ${SIGNATURE_AT}, not ${SIGNATURE}")
  endif()
endif()

# cmake -DBOOTSECTOR=file.bin -P check_bootsector.cmake
# Fails the build unless the file is exactly one boot sector: 512 bytes with
# the 0x55 0xAA signature at offset 510. A BIOS refuses anything else, and a
# section the linker added past .text would silently grow the flat binary.
if(NOT BOOTSECTOR)
  message(FATAL_ERROR "check_bootsector.cmake: pass -DBOOTSECTOR=file.bin")
endif()
file(SIZE "${BOOTSECTOR}" size)
if(NOT size EQUAL 512)
  message(FATAL_ERROR "${BOOTSECTOR} is ${size} bytes, not a 512-byte boot sector: "
                      "keep all code and data in .text before '.org 510'")
endif()
file(READ "${BOOTSECTOR}" signature OFFSET 510 LIMIT 2 HEX)
if(NOT signature STREQUAL "55aa")
  message(FATAL_ERROR "${BOOTSECTOR} ends in 0x${signature}, not the boot signature 0x55aa")
endif()

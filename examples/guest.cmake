# kvmstub_add_guest(): builds a bare-metal guest with the system toolchain
# (gcc, as, ld, objcopy), outside the project's own compile flags, so that
# sanitizers, -Werror and the like never reach freestanding guest code.
#
#   kvmstub_add_guest(NAME
#       SOURCES file.S file.c ...   # assembled/compiled with gcc
#       ARCH i386|x86_64            # default x86_64
#       LINKER_SCRIPT file.ld       # or TEXT_ADDR 0x...
#       [FLAT]                      # also produce NAME.bin with objcopy
#       [CFLAGS ...]
#       [DEPENDS file.h ...]        # extra inputs (headers) that rebuild every object
#       [TARGET target])            # name of the target, if not NAME
#
# Produces ${CMAKE_CURRENT_BINARY_DIR}/NAME.elf (and NAME.bin) and a target
# NAME (or TARGET) that builds them; sets NAME_ELF / NAME_BIN in the caller's
# scope.
find_program(KVMSTUB_GUEST_CC NAMES gcc REQUIRED)
find_program(KVMSTUB_GUEST_LD NAMES ld REQUIRED)
find_program(KVMSTUB_GUEST_OBJCOPY NAMES objcopy REQUIRED)

function(kvmstub_add_guest name)
  cmake_parse_arguments(G "FLAT" "ARCH;LINKER_SCRIPT;TEXT_ADDR;TARGET" "SOURCES;CFLAGS;DEPENDS" ${ARGN})
  if(NOT G_ARCH)
    set(G_ARCH x86_64)
  endif()
  if(G_ARCH STREQUAL "i386")
    set(mflag -m32)
    set(emu elf_i386)
  else()
    set(mflag -m64)
    set(emu elf_x86_64)
  endif()
  set(dir ${CMAKE_CURRENT_BINARY_DIR}/${name}.objs)
  set(objs)
  set(extra_deps)
  foreach(dep ${G_DEPENDS})
    get_filename_component(dep ${dep} ABSOLUTE)
    list(APPEND extra_deps ${dep})
  endforeach()
  foreach(src ${G_SOURCES})
    get_filename_component(abs ${src} ABSOLUTE)
    get_filename_component(base ${src} NAME)
    set(obj ${dir}/${base}.o)
    add_custom_command(
      OUTPUT ${obj}
      COMMAND ${CMAKE_COMMAND} -E make_directory ${dir}
      COMMAND ${KVMSTUB_GUEST_CC} ${mflag} -g -O1 -ffreestanding -fno-pic -fno-pie
              -fno-stack-protector -fno-asynchronous-unwind-tables -mno-red-zone -nostdlib
              -fcf-protection=none -Wall -Wextra ${G_CFLAGS} -c ${abs} -o ${obj}
      DEPENDS ${abs} ${extra_deps}
      COMMENT "Building guest object ${name}/${base}"
      VERBATIM)
    list(APPEND objs ${obj})
  endforeach()
  set(elf ${CMAKE_CURRENT_BINARY_DIR}/${name}.elf)
  if(G_LINKER_SCRIPT)
    get_filename_component(lds ${G_LINKER_SCRIPT} ABSOLUTE)
    set(layout -T ${lds})
    set(deps ${lds})
  elseif(G_TEXT_ADDR)
    set(layout -Ttext=${G_TEXT_ADDR})
    set(deps)
  else()
    message(FATAL_ERROR "kvmstub_add_guest(${name}): give LINKER_SCRIPT or TEXT_ADDR")
  endif()
  add_custom_command(
    OUTPUT ${elf}
    COMMAND ${KVMSTUB_GUEST_LD} -m ${emu} -nostdlib -static --no-dynamic-linker -z noexecstack
            --build-id=none ${layout} -o ${elf} ${objs}
    DEPENDS ${objs} ${deps}
    COMMENT "Linking guest ${name}.elf"
    VERBATIM)
  set(outputs ${elf})
  if(G_FLAT)
    set(bin ${CMAKE_CURRENT_BINARY_DIR}/${name}.bin)
    add_custom_command(
      OUTPUT ${bin}
      COMMAND ${KVMSTUB_GUEST_OBJCOPY} -O binary ${elf} ${bin}
      DEPENDS ${elf}
      COMMENT "Extracting flat guest ${name}.bin"
      VERBATIM)
    list(APPEND outputs ${bin})
    set(${name}_BIN ${bin} PARENT_SCOPE)
  endif()
  if(NOT G_TARGET)
    set(G_TARGET ${name})
  endif()
  add_custom_target(${G_TARGET} ALL DEPENDS ${outputs})
  set(${name}_ELF ${elf} PARENT_SCOPE)
endfunction()

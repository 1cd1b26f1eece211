# examples/linux/kaslr.py: vmlinux's symbols where a KASLR kernel runs, for
# gdb connected to kvmstub, with Linux's own gdb scripts kept working.
#
#   (gdb) source examples/linux/kaslr.py
#   (gdb) kvmstub-kaslr [VMLINUX]
#
# kvmstub-kaslr asks kvmstub (`monitor info kaslr`) how far the kernel moved
# itself and loads VMLINUX (default: the vmlinux gdb has loaded, else
# ./vmlinux) there, keeping the per-CPU section at 0: x86-64 KASLR does not
# move the per-CPU variables, which vmlinux links at offset 0 from each
# CPU's per-CPU area. Linux's `lx-symbols` (scripts/gdb/linux/symbols.py in
# 6.1) reloads vmlinux with a plain `symbol-file`, which would put its
# symbols back at the link addresses; once kvmstub-kaslr has run, such a
# reload is made at the slide too. Run it again after every boot: each boot
# chooses another slide.
import re

import gdb

_slide = None
_execute = gdb.execute


def _load(vmlinux, from_tty=False):
    # add-symbol-file, not `symbol-file -o`, since only it can keep one
    # section (the per-CPU one) where it is linked while the rest moves.
    _execute("add-symbol-file {0} -o {1:#x} -s .data..percpu 0".format(vmlinux, _slide),
             from_tty, True)


def _execute_at_slide(command, from_tty=False, to_string=False):
    m = re.fullmatch(r"\s*symbol-file\s+(\S+)\s*", command)
    if _slide is not None and m and not m.group(1).startswith("-"):
        return _execute("add-symbol-file {0} -o {1:#x} -s .data..percpu 0".format(
            m.group(1), _slide), from_tty, to_string)
    return _execute(command, from_tty, to_string)


gdb.execute = _execute_at_slide


def _loaded_vmlinux():
    for obj in gdb.objfiles():
        if obj.filename.endswith("vmlinux") or obj.filename.endswith("vmlinux.debug"):
            return obj.filename
    return None


class KvmstubKaslr(gdb.Command):
    """Load vmlinux at the slide of the KASLR kernel kvmstub runs.
Usage: kvmstub-kaslr [VMLINUX]
Asks kvmstub (monitor info kaslr) where the kernel moved itself, drops the
symbols gdb has and loads VMLINUX (default: the vmlinux loaded now, else
./vmlinux) at that slide, the per-CPU section kept at 0. Later reloads of
vmlinux by Linux's lx-symbols keep the slide. Run it once the kernel runs
its own code, again after each boot."""

    def __init__(self):
        super().__init__("kvmstub-kaslr", gdb.COMMAND_FILES, gdb.COMPLETE_FILENAME)

    def invoke(self, arg, from_tty):
        global _slide
        args = gdb.string_to_argv(arg)
        if len(args) > 1:
            raise gdb.GdbError("kvmstub-kaslr takes at most one argument, vmlinux's path")
        vmlinux = args[0] if args else (_loaded_vmlinux() or "vmlinux")
        out = _execute("monitor info kaslr", False, True)
        m = re.search(r"^slide: (0|-?0x[0-9a-f]+) ", out, re.M)
        if not m:
            raise gdb.GdbError("kvmstub did not give a slide: " + out.strip())
        _slide = int(m.group(1), 16)
        _execute("symbol-file", False, True)
        _load(vmlinux, from_tty)
        gdb.write("vmlinux {0} loaded at slide {1:#x}\n".format(vmlinux, _slide))


KvmstubKaslr()

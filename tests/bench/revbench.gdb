# Reverse execution against forward execution, on the e2e fixture's counting
# loop (tests/e2e/guests/target64.S, mode 0). Prints its figures:
#   gdb -nx -batch -ex 'target remote | build/kvmstub --stdio --reg rdi=0 build/tests/e2e/e2e_target64.elf' \
#       -x tests/bench/revbench.gdb build/tests/e2e/e2e_target64.elf
python
import time
def timed(label, cmd, n=1):
    t = time.perf_counter()
    for _ in range(n):
        gdb.execute(cmd, to_string=True)
    dt = time.perf_counter() - t
    print("%-44s %9.1f us each (%d)" % (label, dt / n * 1e6, n))
    return dt
gdb.execute("break count_loop", to_string=True)
gdb.execute("continue", to_string=True)
gdb.execute("delete", to_string=True)
timed("stepi", "stepi", 200)
timed("reverse-stepi over steps", "reverse-stepi", 200)
gdb.execute("break count_done", to_string=True)
f = timed("continue over the loop (forward)", "continue")
gdb.execute("delete", to_string=True)
timed("reverse-stepi into that continue (first)", "reverse-stepi")
timed("reverse-stepi again", "reverse-stepi", 20)
gdb.execute("break _start", to_string=True)
r = timed("reverse-continue over the loop", "reverse-continue")
gdb.execute("delete", to_string=True)
gdb.execute("break count_done", to_string=True)
gdb.execute("continue", to_string=True)
gdb.execute("delete", to_string=True)
gdb.execute("watch *(int *)&counter", to_string=True)
timed("reverse-continue to each earlier write", "reverse-continue", 50)
gdb.execute("delete", to_string=True)
print(gdb.execute("monitor record info", to_string=True))
timed("monitor snapshot save", "monitor snapshot save a", 20)
timed("monitor snapshot load", "monitor snapshot load a", 20)
end

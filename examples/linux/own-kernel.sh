#!/usr/bin/env bash
# examples/linux/own-kernel.sh: a Linux kernel built from source, as a kernel
# developer builds one, with its debug information, its gdb scripts and a
# small out-of-tree module, for the tests and README's "Debugging your own
# kernel".
#
#   examples/linux/own-kernel.sh [--cache DIR] [--out DIR] [-j N] [build|dir|check]
#
#   build  (default) build what is out of date; print the build tree's path
#   dir    print the build tree's path (built or not)
#   check  exit 0 if the tree is built and up to date, 1 otherwise
#
# The source is Debian's linux-source-6.1 package (/usr/src/linux-source-6.1.tar.xz;
# .ci/deps installs it and the build tools). The kernel is `make tinyconfig`
# plus examples/linux/own-kernel.config, built out of tree (O=) under
# DIR/own-kernel/ (--cache, default ${XDG_CACHE_HOME:-~/.cache}/kvmstub-machine,
# the cache of .ci/kvm-machine beside Debian's kernel), never in the source
# tree. It is rebuilt only when the fragment, this script's build steps or
# the source package's version change (a stamp); the module only when its
# sources or the kernel change.
#
# --out DIR links there: own-kernel (the build tree: vmlinux, vmlinux-gdb.py,
# scripts/gdb/linux, arch/x86/boot/bzImage), own-bzImage, own-vmlinux and
# own-module.ko, at paths a build system can name in advance.
set -euo pipefail

cache="${XDG_CACHE_HOME:-$HOME/.cache}/kvmstub-machine"
out=""
jobs=$(nproc 2>/dev/null || echo 2)
command=build
here=$(cd "$(dirname "$0")" && pwd)
while [ $# -gt 0 ]; do
    case "$1" in
    --cache) cache="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    -j) jobs="$2"; shift 2 ;;
    -h|--help) sed -n '2,/^set -e/{/^set -e/!p}' "$0"; exit 0 ;;
    build|dir|check) command="$1"; shift ;;
    *) echo "own-kernel.sh: unknown argument '$1'; see examples/linux/own-kernel.sh --help" >&2; exit 2 ;;
    esac
done

top="$cache/own-kernel"
obj="$top/build"
src="$top/src/linux-source-6.1"
mod="$top/module"
tarball=/usr/src/linux-source-6.1.tar.xz
fragment="$here/own-kernel.config"

if [ "$command" = dir ]; then
    echo "$obj"
    exit 0
fi

pkgver=$(dpkg-query -W -f='${Version}' linux-source-6.1 2>/dev/null || true)
# The kernel's inputs: the source package, the fragment and the steps below
# (bump the 1 when they change); the module's: the kernel and its sources.
kstamp=$({ echo "1 $pkgver"; cat "$fragment"; } | md5sum | cut -c1-16)
mstamp=$({ echo "$kstamp"; cat "$here"/module/*; } | md5sum | cut -c1-16)

uptodate() {
    [ "$(cat "$obj/.kvmstub-stamp" 2>/dev/null)" = "$kstamp" ] &&
        [ "$(cat "$mod/.kvmstub-stamp" 2>/dev/null)" = "$mstamp" ]
}
if [ "$command" = check ]; then
    uptodate
    exit
fi

link() { # link FILE NAME: give FILE a fixed name in --out DIR
    [ -n "$out" ] || return 0
    mkdir -p "$out"
    ln -sfn "$1" "$out/$2"
}

mkdir -p "$top"
exec 9>"$top/.lock"
flock 9

if [ "$(cat "$obj/.kvmstub-stamp" 2>/dev/null)" != "$kstamp" ]; then
    if [ -z "$pkgver" ] || [ ! -f "$tarball" ]; then
        echo "own-kernel.sh: the kernel source is missing; install it with 'bash .ci/deps'" \
            "(or 'apt-get install linux-source-6.1 bc bison flex libelf-dev libssl-dev')" >&2
        exit 1
    fi
    if [ "$(cat "$top/src/.kvmstub-version" 2>/dev/null)" != "$pkgver" ]; then
        echo "own-kernel.sh: unpacking linux-source-6.1 $pkgver into $top/src (once)" >&2
        rm -rf "$top/src"
        mkdir -p "$top/src"
        tar -xf "$tarball" -C "$top/src"
        echo "$pkgver" >"$top/src/.kvmstub-version"
        rm -rf "$obj"
    fi
    echo "own-kernel.sh: building the kernel in $obj (make -j$jobs; a few minutes, log in $top/build.log)" >&2
    rm -f "$obj/.kvmstub-stamp" "$mod/.kvmstub-stamp"
    mkdir -p "$obj"
    {
        make -C "$src" O="$obj" tinyconfig &&
            "$src/scripts/kconfig/merge_config.sh" -m -O "$obj" "$obj/.config" "$fragment" &&
            make -C "$src" O="$obj" olddefconfig
    } >"$top/build.log" 2>&1 || {
        tail -n 30 "$top/build.log" >&2
        echo "own-kernel.sh: configuring the kernel failed (above; whole log in $top/build.log)" >&2
        exit 1
    }
    # A fragment line the configuration did not take (a missing dependency,
    # a renamed option) would silently give another kernel than the one
    # the tests describe.
    missing=$(grep -E '^(CONFIG_[A-Z0-9_]+=.*|# CONFIG_[A-Z0-9_]+ is not set)$' "$fragment" |
        while IFS= read -r line; do
            grep -qxF "$line" "$obj/.config" ||
                { [[ $line == "# "* ]] && ! grep -q "^${line:2:-11}=" "$obj/.config"; } ||
                echo "$line"
        done)
    if [ -n "$missing" ]; then
        echo "own-kernel.sh: the configuration did not take these lines of $fragment:" >&2
        echo "$missing" >&2
        echo "own-kernel.sh: fix their dependencies in the fragment" >&2
        exit 1
    fi
    make -C "$src" O="$obj" -j"$jobs" all scripts_gdb >>"$top/build.log" 2>&1 || {
        tail -n 30 "$top/build.log" >&2
        echo "own-kernel.sh: building the kernel failed (above; whole log in $top/build.log)" >&2
        exit 1
    }
    echo "$kstamp" >"$obj/.kvmstub-stamp"
fi

if [ "$(cat "$mod/.kvmstub-stamp" 2>/dev/null)" != "$mstamp" ]; then
    # Kbuild writes its objects beside the sources: build a copy.
    rm -rf "$mod"
    mkdir -p "$mod"
    cp "$here"/module/* "$mod/"
    make -C "$obj" M="$mod" modules >"$top/module.log" 2>&1 || {
        tail -n 30 "$top/module.log" >&2
        echo "own-kernel.sh: building the module failed (above; whole log in $top/module.log)" >&2
        exit 1
    }
    echo "$mstamp" >"$mod/.kvmstub-stamp"
fi

link "$obj" own-kernel
link "$obj/arch/x86/boot/bzImage" own-bzImage
link "$obj/vmlinux" own-vmlinux
link "$mod/kvmstub_demo.ko" own-module.ko
echo "$obj"

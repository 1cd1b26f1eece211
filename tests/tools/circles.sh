#!/usr/bin/env bash
# Finds circles among the files of one directory (vm/ or stub/): calls, from
# the object files (which global symbol each defines and which it uses), and
# includes, from the #include "..." lines of its headers and sources.
#
#   circles.sh [--fail] NAME SRCDIR OBJECT...
#
# Prints each circle as the files in it and the edges between them (with
# the symbols or headers that make each edge). Exits 0 when there is none,
# or when there are some and --fail was not given (a report only); 1 with
# --fail when there are circles; 2 when it cannot read its inputs.
set -euo pipefail

fail=0
if [[ ${1:-} == --fail ]]; then
    fail=1
    shift
fi
if (($# < 3)); then
    echo "usage: circles.sh [--fail] NAME SRCDIR OBJECT..." >&2
    exit 2
fi
name=$1 srcdir=$2
shift 2
NM=${NM:-nm}
if ! command -v "$NM" >/dev/null; then
    echo "circles.sh: $NM not found: install binutils" >&2
    exit 2
fi

edges=$(mktemp)
trap '[[ -n ${KEEP:-} ]] || rm -f "$edges" "$edges".*' EXIT

# Calls: "from to symbol" for every global symbol one file uses and
# another defines. A file compiled into two targets counts once.
for obj in "$@"; do
    [[ -f $obj ]] || { echo "circles.sh: no object file $obj: build first" >&2; exit 2; }
    f=$(basename "$obj" .o)
    "$NM" -g --defined-only "$obj" | awk -v f="$f" 'NF == 3 { print "D", $3, f }'
    "$NM" -u "$obj" | awk -v f="$f" '{ print "U", $NF, f }'
done | sort -u >"$edges.syms"
awk '$1 == "D" { def[$2] = $3 } $1 == "U" { use[NR] = $2 " " $3 }
     END { for (i in use) { split(use[i], u, " "); if ((u[1] in def) && def[u[1]] != u[2])
                                print u[2], def[u[1]], u[1] } }' "$edges.syms" |
    sort >"$edges.calls"

# Includes: "from to header" for #include "x.h" naming a file of this
# directory (directly, or as NAME/x.h).
for src in "$srcdir"/*.[ch]; do
    f=$(basename "$src")
    sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$src" |
        while read -r inc; do
            case $inc in
            */*) [[ ${inc%/*} == "$name" ]] || continue ;;
            esac
            h=${inc##*/}
            if [[ -f $srcdir/$h && $h != "$f" ]]; then
                echo "$f $h $h"
            fi
        done
done | sort -u >"$edges.includes"

# Strongly connected components by reachability (a few dozen files).
circles() {
    awk -v what="$1" -v name="$name" '
    BEGIN { n = 0; nedges = 0 }
    { if (!($1 in id)) { id[$1] = n; node[n++] = $1 }
      if (!($2 in id)) { id[$2] = n; node[n++] = $2 }
      a = id[$1]; b = id[$2]; reach[a, b] = 1
      if (why[a, b] == "") nedges++
      why[a, b] = (why[a, b] == "" ? $3 : why[a, b] " " $3) }
    END {
      for (k = 0; k < n; k++) for (i = 0; i < n; i++) if (reach[i, k])
        for (j = 0; j < n; j++) if (reach[k, j]) reach[i, j] = 1
      found = 0
      for (i = 0; i < n; i++) {
        if (done[i] || !reach[i, i]) continue
        members = ""; m = 0
        for (j = 0; j < n; j++) if (reach[i, j] && reach[j, i]) { done[j] = 1; list[m++] = j }
        for (x = 0; x < m; x++) members = members " " node[list[x]]
        printf "%s %s: CIRCLE among%s\n", name, what, members
        for (x = 0; x < m; x++) for (y = 0; y < m; y++)
          if (why[list[x], list[y]] != "")
            printf "    %s -> %s: %s\n", node[list[x]], node[list[y]], why[list[x], list[y]]
        found++
      }
      if (!found) printf "%s %s: no circles (%d files, %d edges)\n", name, what, n, nedges
      exit found ? 1 : 0
    }' "$2"
}

status=0
circles calls "$edges.calls" || status=1
circles includes "$edges.includes" || status=1
if ((status && !fail)); then
    echo "$name: circles reported above (report only, not a failure)"
    status=0
fi
exit $status

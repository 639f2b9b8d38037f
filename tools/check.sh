#!/usr/bin/env bash
# The test command: set up, build and boot each flavor, run KUnit and the
# selftests in the VM, print one line per test and `N passed, N failed`.
#   tools/check.sh [FLAVOR...]      (default: every flavor in FLAVORS)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

FLAVORS=${FLAVORS:-c}
[ $# -gt 0 ] && FLAVORS="$*"
results=${DEVMEM_RESULTS:-$DEVMEM_CACHE/results}
t0=$SECONDS

"$DEVMEM_ROOT/tools/setup.sh"
tree=$("$DEVMEM_ROOT/tools/prepare-tree.sh")

total_pass=0
total_fail=0
summary=()
for flavor in $FLAVORS; do
	build=$("$DEVMEM_ROOT/tools/build-kernel.sh" "$flavor")
	tools=$("$DEVMEM_ROOT/tools/build-selftest-tools.sh" "$build")
	R=$results/$flavor
	say "vm[$flavor]: booting and running selftests (TCG, a few minutes)"
	vt=$SECONDS
	"$DEVMEM_ROOT/tools/vm-run.sh" -t 1800 "$build" "$R" \
		env DEVMEM_TREE="$tree" DEVMEM_PY="$VENV/bin/python" \
		DEVMEM_FLAVOR="$flavor" DEVMEM_TOOLS="$tools" \
		"$DEVMEM_ROOT/selftests/run.sh" "$R" || true
	say "vm[$flavor]: done in $((SECONDS - vt)) s; results in $R"
	"$VENV/bin/python" "$DEVMEM_ROOT/tools/ktap.py" "$flavor" "$R" \
		"$DEVMEM_ROOT/selftests/expected-skips"
	read -r p f <"$R/counts"
	total_pass=$((total_pass + p))
	total_fail=$((total_fail + f))
	summary+=("$flavor: $p passed, $f failed")
done
say "check: ${summary[*]} (total $((SECONDS - t0)) s)"
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ] && [ "$total_pass" -gt 0 ]

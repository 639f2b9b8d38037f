#!/usr/bin/env bash
# The demo: set up, build and boot a flavor (default: rust), stream DEMO_MIB
# MiB (default 256) of devmem TCP between two netdevsim ports into a udmabuf,
# validate every byte with upstream ncdevmem, and print throughput and the
# page pool's recycling counters.
#   tools/demo.sh [FLAVOR...]       e.g. tools/demo.sh c rust
set -euo pipefail
. "$(dirname "$0")/lib.sh"

flavors=${*:-rust}
results=${DEVMEM_RESULTS:-$DEVMEM_CACHE/results}
rc=0

"$DEVMEM_ROOT/tools/setup.sh"
tree=$("$DEVMEM_ROOT/tools/prepare-tree.sh")
for flavor in $flavors; do
	build=$("$DEVMEM_ROOT/tools/build-kernel.sh" "$flavor")
	tools=$("$DEVMEM_ROOT/tools/build-selftest-tools.sh" "$build")
	R=$results/demo-$flavor
	say "demo[$flavor]: booting (TCG) and streaming ${DEMO_MIB:-256} MiB"
	# The guest's output reaches us only through the rwdir: follow it.
	mkdir -p "$R"
	: >"$R/demo.log"
	tail -n +1 -F "$R/demo.log" 2>/dev/null &
	follow=$!
	VM_RODIRS="$tree $VENV $tools" "$DEVMEM_ROOT/tools/vm-run.sh" -t 1800 "$build" "$R" \
		env DEVMEM_TREE="$tree" DEVMEM_PY="$VENV/bin/python" \
		DEVMEM_TOOLS="$tools" DEVMEM_OUT="$R" DEMO_MIB="${DEMO_MIB:-256}" \
		sh -c "PATH=/usr/sbin:/sbin:\$PATH \"$VENV/bin/python\" -u \
			\"$DEVMEM_ROOT/selftests/demo.py\" >\"$R/demo.log\" 2>&1" || rc=1
	sleep 1
	kill "$follow" 2>/dev/null || true
	wait "$follow" 2>/dev/null || true
	if read -r verdict mib secs _ <"$R/demo.result" 2>/dev/null && [ "$verdict" = ok ]; then
		say "demo[$flavor]: ok, $mib MiB in $secs s"
	else
		say "demo[$flavor]: FAILED (see $R)"
		rc=1
	fi
done
exit $rc

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

# Print the lines of $R/out.log not shown yet.
follow() {
	local n
	n=$(wc -l 2>/dev/null <"$R/out.log") || return 0
	if [ "$n" -gt "$shown" ]; then
		sed -n "$((shown + 1)),${n}p" "$R/out.log"
		shown=$n
	fi
}

"$DEVMEM_ROOT/tools/setup.sh"
tree=$("$DEVMEM_ROOT/tools/prepare-tree.sh")
for flavor in $flavors; do
	build=$("$DEVMEM_ROOT/tools/build-kernel.sh" "$flavor")
	tools=$("$DEVMEM_ROOT/tools/build-selftest-tools.sh" "$build")
	R=$results/demo-$flavor
	say "demo[$flavor]: booting (TCG) and streaming ${DEMO_MIB:-256} MiB"
	# The guest's output reaches us only through the rwdir's out.log, which
	# vm-run.sh creates afresh (so tail -F loses it): poll it while the VM runs.
	rm -rf "$R" # not the last run's log
	VM_RODIRS="$tree $VENV $tools" "$DEVMEM_ROOT/tools/vm-run.sh" -t 1800 "$build" "$R" \
		env DEVMEM_TREE="$tree" DEVMEM_TOOLS="$tools" DEVMEM_OUT="$R" \
		DEMO_MIB="${DEMO_MIB:-256}" PATH="/usr/sbin:/sbin:/usr/bin:/bin" \
		"$VENV/bin/python" -u "$DEVMEM_ROOT/selftests/demo.py" &
	vm=$!
	shown=0
	while kill -0 "$vm" 2>/dev/null; do
		follow
		sleep 2
	done
	wait "$vm" || rc=1
	follow
	if read -r verdict mib secs _ <"$R/demo.result" 2>/dev/null && [ "$verdict" = ok ]; then
		say "demo[$flavor]: ok, $mib MiB in $secs s"
	else
		say "demo[$flavor]: FAILED (see $R)"
		rc=1
	fi
done
exit $rc

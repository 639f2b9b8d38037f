#!/bin/bash
# Runs inside the test VM: the selftest suites named in $2 (default: every
# suite in selftests/suites), each writing KTAP to $1/<suite>.tap and its exit
# status to $1/<suite>.rc. Each suite's output also goes to stdout as it is
# produced, so that the host can follow the run (out.log), between
# "=== <suite> start" and "=== <suite> end rc=N s=SECONDS" lines.
# Environment: DEVMEM_TREE (the prepared kernel tree), DEVMEM_PY (python with
# pyyaml and jsonschema), DEVMEM_FLAVOR.
out=${1:?result dir}
here=$(cd "$(dirname "$0")" && pwd)
suites=${2:-$(grep -v '^#' "$here/suites")}
rc=0
mkdir -p "$out"
export DEVMEM_OUT=$out
export PATH=/usr/sbin:/sbin:$PATH
# Result lines as they happen, also from Python that upstream suites start.
export PYTHONUNBUFFERED=1
# A suite's limit: races took 305 s with both flavors' guests side by side,
# and machines of this kind differ by up to 1.7 times.
for suite in $suites; do
	t0=$(date +%s.%N)
	echo "=== $suite start"
	timeout 900 "$DEVMEM_PY" "$here/$suite.py" 2>&1 | tee "$out/$suite.tap"
	src=${PIPESTATUS[0]}
	echo "$src" >"$out/$suite.rc"
	[ "$src" = 0 ] || rc=1
	echo "=== $suite end rc=$src s=$(awk "BEGIN { printf \"%.1f\", $(date +%s.%N) - $t0 }")"
done
exit $rc

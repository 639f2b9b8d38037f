#!/bin/bash
# Runs inside the test VM: every selftest suite, each writing KTAP to
#   $1/<suite>.tap
# Environment: DEVMEM_TREE (the prepared kernel tree), DEVMEM_PY (python with
# pyyaml and jsonschema), DEVMEM_FLAVOR.
out=${1:?result dir}
here=$(cd "$(dirname "$0")" && pwd)
rc=0
mkdir -p "$out"
export DEVMEM_OUT=$out
export PATH=/usr/sbin:/sbin:$PATH
for t in ${DEVMEM_SUITES:-"$here"/nl_bind.py "$here"/nl_lease.py "$here"/fault_inject.py "$here"/nl_fuzz.py "$here"/ncdevmem_smoke.py "$here"/upstream_ping.py "$here"/upstream_devmem.py "$here"/upstream_nk_devmem.py "$here"/upstream_userns_devmem.py "$here"/dmabuf_sources.py "$here"/rx_page_size.py "$here"/dmabuf_get.py "$here"/devmem_teardown.py "$here"/teardown_order.py "$here"/regression.py "$here"/races.py "$here"/bench_smoke.py}; do
	suite=$(basename "$t" .py)
	echo "=== $suite"
	timeout 600 "$DEVMEM_PY" "$t" >"$out/$suite.tap" 2>&1 || rc=1
	cat "$out/$suite.tap"
done
exit $rc

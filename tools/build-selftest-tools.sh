#!/usr/bin/env bash
# Build the userspace tools the VM tests use from the kernel tree (upstream
# ncdevmem) against the build's exported headers. Prints the output dir.
#   tools/build-selftest-tools.sh BUILD_DIR
set -euo pipefail
. "$(dirname "$0")/lib.sh"

build=${1:?build dir}
tree=$("$DEVMEM_ROOT/tools/prepare-tree.sh")
out=$build/selftest-tools
mkdir -p "$out"
# The hw selftest Makefile's default target also builds BPF objects (clang):
# build the ncdevmem target alone. YNL's code generator needs pyyaml.
if ! PATH="$VENV/bin:$PATH" make -s -C "$tree/tools/testing/selftests/drivers/net/hw" \
	KHDR_INCLUDES="-isystem $build/usr/include" OUTPUT="$out" \
	"$out/ncdevmem" >"$out/build.log" 2>&1; then
	tail -30 "$out/build.log" >&2
	die "ncdevmem build failed (log: $out/build.log)"
fi
[ -x "$out/ncdevmem" ] || die "ncdevmem missing after build"
echo "$out"

#!/usr/bin/env bash
# The drivers:build test: the NIC drivers that set up devmem (unreadable)
# page pools in 7.2 build unchanged as modules against one flavor's kernel,
# and modpost resolves every symbol they use (tools/config/drivers.config;
# the build is cached and incremental, like the kernels).
# Prints one PASS/FAIL line and exits non-zero on a failure.
#   tools/drivers-check.sh FLAVOR
set -uo pipefail
. "$(dirname "$0")/lib.sh"

flavor=${1:?flavor}
name="$flavor:drivers:build"
# The driver directory and module of each: gve, bnxt_en, bng_en, mlx5_core
# (with its Ethernet part), fbnic.
modules=(
	drivers/net/ethernet/google/gve/gve.ko
	drivers/net/ethernet/broadcom/bnxt/bnxt_en.ko
	drivers/net/ethernet/broadcom/bnge/bng_en.ko
	drivers/net/ethernet/mellanox/mlx5/core/mlx5_core.ko
	drivers/net/ethernet/meta/fbnic/fbnic.ko
)
if ! build=$("$DEVMEM_ROOT/tools/build-kernel.sh" "drivers-$flavor" 2>"${TMPDIR:-/tmp}/drivers-$flavor.err"); then
	echo "FAIL $name  (build failed)"
	tail -30 "${TMPDIR:-/tmp}/drivers-$flavor.err" | sed 's/^/    /'
	exit 1
fi
bad=()
for m in "${modules[@]}"; do
	[ -s "$build/$m" ] || bad+=("$(basename "$m") missing")
done
# modpost stops the build on an undefined symbol (a warning-only mode would
# still print it); its warnings (section mismatches, ...) count too.
pattern='modpost: .*undefined|^WARNING: modpost:'
if grep -qE "$pattern" "$build/build.log"; then
	bad+=("modpost: $(grep -cE "$pattern" "$build/build.log") complaints")
fi
# The mlx5 driver's Ethernet part (en_main.c) must be in: it is what sets up
# the unreadable pools.
grep -q '^CONFIG_MLX5_CORE_EN=y' "$build/.config" || bad+=("MLX5_CORE_EN off")
if [ ${#bad[@]} -eq 0 ]; then
	echo "PASS $name  ($(printf '%s ' "${modules[@]##*/}"))"
else
	echo "FAIL $name  (${bad[*]}; log: $build/build.log)"
	exit 1
fi

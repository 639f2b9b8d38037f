#!/usr/bin/env bash
# Build the kernel at every prefix of the patch series, as a bisection would:
#   tools/series-check.sh [FLAVOR]      (default: rust)
# Prefix 0 is plain 7.2.13; prefix N adds patches/000N. Each prefix is synced
# into one tree at a fixed path by content, so kbuild rebuilds only what that
# patch touched (and what depends on it). Prints a line per prefix and
# `N passed, N failed`. Slow (a full build first): not part of make check.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

flavor=${1:-rust}
frag_common=$DEVMEM_ROOT/tools/config/vm.config
frag_flavor=$DEVMEM_ROOT/tools/config/$flavor.config
[ -f "$frag_flavor" ] || die "unknown flavor $flavor"
"$DEVMEM_ROOT/tools/setup.sh"
"$DEVMEM_ROOT/tools/prepare-tree.sh" >/dev/null # unpacks the pristine tree
pristine=$DEVMEM_CACHE/src/pristine-$KDEB_VERSION
tree=$DEVMEM_CACHE/src/series-check
out=$DEVMEM_CACHE/build/series-check-$flavor
mkdir -p "$tree" "$out"
kernel_build_env
kmake() { make -C "$tree" O="$out" BINDGEN="$BINDGEN" -j"$JOBS" "$@"; }

shopt -s nullglob
patches=("$DEVMEM_ROOT"/patches/*.patch)
pass=0
fail=0
for k in $(seq 0 ${#patches[@]}); do
	name=$([ "$k" = 0 ] && echo "0000-linux-$KVER" || basename "${patches[k - 1]}" .patch)
	rm -rf "$tree.tmp"
	cp -al "$pristine" "$tree.tmp"
	rm -f "$tree.tmp/.unpacked"
	for p in "${patches[@]:0:k}"; do
		patch -d "$tree.tmp" -p1 -s -N --no-backup-if-mismatch <"$p" ||
			die "$(basename "$p") does not apply"
	done
	rsync -rlpD --checksum --delete --exclude=/net/core/devmem_rust "$tree.tmp/" "$tree/"
	rm -rf "$tree.tmp"
	ln -sfn "$DEVMEM_ROOT" "$tree/net/core/devmem_rust"
	t=$SECONDS
	log=$out/build-$name.log
	if { kmake tinyconfig &&
		"$tree/scripts/kconfig/merge_config.sh" -m -O "$out" "$out/.config" \
			"$frag_common" "$frag_flavor" &&
		kmake olddefconfig && kmake bzImage; } >"$log" 2>&1; then
		rust=$(grep -q '^CONFIG_NET_DEVMEM_RUST=y' "$out/.config" && echo rust || echo c)
		echo "PASS series-check.$name  (${rust} provider, $((SECONDS - t)) s)"
		pass=$((pass + 1))
	else
		echo "FAIL series-check.$name  (log: $log)"
		grep -E -m5 'error' "$log" | sed 's/^/    /'
		fail=$((fail + 1))
	fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]

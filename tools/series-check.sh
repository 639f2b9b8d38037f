#!/usr/bin/env bash
# Build the kernel at every prefix of the exported series, as a bisection
# would (make series-check):
#   tools/series-check.sh [FLAVOR...]      (default: c rust)
# Two chains per flavor, from what tools/series.sh exports:
# - netdevsim: series 2 on plain 7.2, its base as sent;
# - combined: plain 7.2, then series 1, 2 (after-net-fixes form) and 3 with
#   the crate's files, one patch at a time: every prefix of series 1 and 3
#   on their bases.
# A prefix is synced into one tree at a fixed path by content, so kbuild
# rebuilds only what that patch changed. Before the last patch of series 3
# NET_DEVMEM_RUST does not exist yet, so the rust flavor builds the C
# provider there (with Rust, the helpers and bindings on); the line says
# which provider each prefix built. The config is tinyconfig, vm.config,
# the KUnit suite, and the flavor. Prints a line per build and
# `N passed, N failed`. Slow (a full build first): not part of make check.
# SERIES_CHECK_ONLY="K ..." builds only those prefixes of the combined
# chain (K patches applied, as numbered in apply-order) and skips the
# netdevsim chain: for checking the patches a change touched.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

flavors=("$@")
[ ${#flavors[@]} -gt 0 ] || flavors=(c rust)
"$DEVMEM_ROOT/tools/setup.sh" >/dev/null
exp=$DEVMEM_CACHE/series-check/export
"$DEVMEM_ROOT/tools/series.sh" "$exp"
pristine=$DEVMEM_CACHE/src/pristine-$KDEB_VERSION
tree=$DEVMEM_CACHE/src/series-check
kunit_frag=$DEVMEM_CACHE/series-check/kunit.config
printf 'CONFIG_KUNIT=y\nCONFIG_NET_DEVMEM_KUNIT_TEST=y\nCONFIG_DEBUG_FS=y\n' >"$kunit_frag"
kernel_build_env

pass=0
fail=0
build_prefix() { # build_prefix FLAVOR CHAIN NAME PATCH...
	local flavor=$1 chain=$2 name=$3 out=$DEVMEM_CACHE/build/series-check-$1 p t log provider
	shift 3
	mkdir -p "$out"
	rm -rf "$tree.tmp"
	cp -al "$pristine" "$tree.tmp"
	rm -f "$tree.tmp/.unpacked"
	for p in "$@"; do
		patch -d "$tree.tmp" -p1 -s -N -F0 --no-backup-if-mismatch <"$p" ||
			die "$(basename "$p") does not apply"
	done
	mkdir -p "$tree"
	rsync -rlpD --checksum --delete "$tree.tmp/" "$tree/"
	rm -rf "$tree.tmp"
	t=$SECONDS
	log=$out/build-$chain-$name.log
	kmake() { make -C "$tree" O="$out" BINDGEN="$BINDGEN" -j"$JOBS" "$@"; }
	if { kmake tinyconfig &&
		"$tree/scripts/kconfig/merge_config.sh" -m -O "$out" "$out/.config" \
			"$DEVMEM_ROOT/tools/config/vm.config" "$kunit_frag" \
			"$DEVMEM_ROOT/tools/config/$flavor.config" &&
		kmake olddefconfig && kmake bzImage; } >"$log" 2>&1; then
		provider=$(grep -q '^CONFIG_NET_DEVMEM_RUST=y' "$out/.config" && echo rust || echo c)
		echo "PASS series-check.$flavor.$chain.$name  ($provider provider, $((SECONDS - t)) s)"
		pass=$((pass + 1))
	else
		echo "FAIL series-check.$flavor.$chain.$name  (log: $log)"
		grep -E -m5 'error' "$log" | sed 's/^/    /'
		fail=$((fail + 1))
	fi
}

mapfile -t combined <"$exp/apply-order"
mapfile -t netdevsim < <(ls "$exp"/2-netdevsim/[0-9]*.patch | grep -v /0000-)
for flavor in "${flavors[@]}"; do
	[ -f "$DEVMEM_ROOT/tools/config/$flavor.config" ] || die "unknown flavor $flavor"
	for k in $(seq 1 ${#netdevsim[@]}); do
		[ -z "${SERIES_CHECK_ONLY:-}" ] || break
		build_prefix "$flavor" netdevsim "$(basename "${netdevsim[k - 1]}" .patch | cut -c1-4)" \
			"${netdevsim[@]:0:k}"
	done
	for k in $(seq 0 ${#combined[@]}); do
		if [ -n "${SERIES_CHECK_ONLY:-}" ] && ! grep -qw "$k" <<<"$SERIES_CHECK_ONLY"; then
			continue
		fi
		name=$([ "$k" = 0 ] && echo "0000-linux-$KVER" ||
			basename "${combined[k - 1]}" .patch | cut -c1-4)
		build_prefix "$flavor" combined "$name" "${combined[@]:0:k}"
	done
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]

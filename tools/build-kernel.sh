#!/usr/bin/env bash
# Build the VM kernel for one flavor out of tree and print the build dir.
#   tools/build-kernel.sh c|rust
# The build dir belongs to the tree's path, which does not change with the
# series; kbuild itself rebuilds what changed inside it. The config is regenerated whenever a fragment changes and
# every symbol a fragment names is asserted afterwards.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

flavor=${1:?usage: build-kernel.sh c|rust|bench-c|bench-rust|drivers-c|drivers-rust}
# c, rust: test kernels (debug set); bench-c, bench-rust: benchmark kernels;
# drivers-c, drivers-rust: a test kernel plus the devmem NIC drivers as
# modules (tools/config/drivers.config), built with modpost.
frags_extra=()
target=(bzImage)
case $flavor in
bench-*) set_frag=bench provider=${flavor#bench-} ;;
drivers-*)
	set_frag=debug provider=${flavor#drivers-}
	frags_extra=("$DEVMEM_ROOT/tools/config/drivers.config")
	target=(bzImage modules)
	;;
*) set_frag=debug provider=$flavor ;;
esac
frag_common=$DEVMEM_ROOT/tools/config/vm.config
frag_set=$DEVMEM_ROOT/tools/config/$set_frag.config
frag_flavor=$DEVMEM_ROOT/tools/config/$provider.config
[ -f "$frag_flavor" ] || die "unknown flavor $flavor"
frags=("$frag_common" "$frag_set" "$frag_flavor" "${frags_extra[@]}")

tree=$("$DEVMEM_ROOT/tools/prepare-tree.sh")
kernel_build_env
out=$DEVMEM_CACHE/build/$flavor-$(basename "$tree")
mkdir -p "$out"
# Drop build dirs of this flavor made from older trees.
for old in "$DEVMEM_CACHE/build/$flavor"-*; do
	[ "$old" = "$out" ] || rm -rf "$old"
done

kmake() { make -C "$tree" O="$out" BINDGEN="$BINDGEN" -j"$JOBS" "$@"; }

# A flavor differs from another by a few symbols: start from another
# flavor's finished build of the same tree, and let kbuild rebuild what the
# config change touches, instead of building everything again. A real copy:
# hard links would let the compiler overwrite the other flavor's objects.
# A flavor of the same set (test or bench) first: the other set differs in
# its debug options, which nearly everything depends on.
if [ ! -f "$out/arch/x86/boot/bzImage" ]; then
	case $flavor in
	bench-*) same=("$DEVMEM_CACHE/build/bench-"*-"$(basename "$tree")") ;;
	# The other provider's driver build differs in the provider's
	# symbols only; this provider's test kernel lacks the drivers.
	drivers-*) same=("$DEVMEM_CACHE/build/drivers-"*-"$(basename "$tree")"
		"$DEVMEM_CACHE/build/$provider-$(basename "$tree")") ;;
	# A test flavor from the other test flavor: the bench builds differ
	# in the debug options.
	*) same=("$DEVMEM_CACHE/build/"{c,rust}-"$(basename "$tree")") ;;
	esac
	for other in "${same[@]}" "$DEVMEM_CACHE/build/"*-"$(basename "$tree")"; do
		[ "$other" != "$out" ] && [ -f "$other/arch/x86/boot/bzImage" ] || continue
		say "kernel[$flavor]: starting from $(basename "$other")'s build (incremental)"
		rm -rf "$out"
		cp -a "$other" "$out"
		rm -f "$out/.devmem-config-key" "$out/build.log" "$out/clippy.log"
		break
	done
fi

# Assert that every option a fragment sets (or unsets) survived olddefconfig.
check_config() {
	local bad=0 line sym
	while IFS= read -r line; do
		case "$line" in
		CONFIG_*=*)
			grep -qxF "$line" "$out/.config" || {
				say "config: $line requested, got: $(grep -E "^(# )?${line%%=*}[= ]" "$out/.config" || echo absent)"
				bad=1
			}
			;;
		"# CONFIG_"*" is not set")
			sym=${line#"# "}
			sym=${sym%" is not set"}
			if grep -q "^$sym=" "$out/.config"; then
				say "config: $sym must be off"
				bad=1
			fi
			;;
		esac
	done < <(cat "${frags[@]}")
	return $bad
}

# The tree's path is fixed; its series (which may change Kconfig) is in
# .devmem-key, or the user's tree (KSRC) is taken as it is.
cfg_key=$(content_key "${frags[@]}" "$tree" "$tree/.devmem-key")
if [ "$(cat "$out/.devmem-config-key" 2>/dev/null)" != "$cfg_key" ]; then
	say "kernel[$flavor]: configuring (tinyconfig + fragments)"
	kmake rustavailable >/dev/null || die "make rustavailable failed: run tools/setup.sh"
	kmake tinyconfig >/dev/null
	"$tree/scripts/kconfig/merge_config.sh" -m -O "$out" "$out/.config" \
		"${frags[@]}" >/dev/null
	kmake olddefconfig >/dev/null
	check_config || die "kernel config lost required options (see above)"
	echo "$cfg_key" >"$out/.devmem-config-key"
fi
check_config || die "kernel config lost required options (see above)"

say "kernel[$flavor]: building ${target[*]} in $out (a fresh build takes 8-10 min)"
start=$SECONDS
log=$out/build.log
# A line a minute while make runs: how long, how many files compiled so far
# and the last one, so that a long build is seen to move.
: >"$log"
(
	while sleep 60; do
		n=$(grep -cE '^  (CC|RUSTC|AS|LD)\b' "$log" || true)
		last=$(grep -E '^  (CC|RUSTC|AS|LD|AR)\b' "$log" | tail -1 | awk '{print $NF}' || true)
		say "kernel[$flavor]: building, $(( (SECONDS - start) / 60 )) min, $n files so far (${last:-starting})"
	done
) >/dev/null &
ticker=$!
trap 'kill $ticker 2>/dev/null || true' EXIT
if ! kmake "${target[@]}" >"$log" 2>&1; then
	grep -E -B2 -A8 'error|Error' "$log" | tail -60 >&2
	die "kernel build failed, log: $log"
fi
grep -E '^(warning|.*: warning:)' "$log" | sort -u | head -20 >&2 || true
kmake headers >/dev/null 2>&1 || die "make headers failed"
kill $ticker 2>/dev/null || true
say "kernel[$flavor]: built in $((SECONDS - start)) s"
echo "$out"

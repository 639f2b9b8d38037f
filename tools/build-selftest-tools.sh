#!/usr/bin/env bash
# Build the userspace tools the VM tests use from the kernel tree (upstream
# ncdevmem, against the build's exported headers; the BPF objects of the
# netkit devmem suites) and the benchmark's receiver (bench/user/devmem_rx.c).
# Prints the output dir.
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

# The benchmark's devmem TCP receiver (bench/bench.py's ring rows).
if ! gcc -O2 -Wall -Werror -isystem "$build/usr/include" -o "$out/devmem_rx" \
	"$DEVMEM_ROOT/bench/user/devmem_rx.c" >"$out/devmem_rx.log" 2>&1; then
	cat "$out/devmem_rx.log" >&2
	die "bench/user/devmem_rx.c failed to build"
fi

# Upstream's netkit devmem suites, run as their own main() runs them: their
# NetDrvContEnv loads nk_*.bpf.o from the test's directory and main() takes
# ncdevmem from beside the script. So the scripts are linked in here, next to
# both; Python resolves the link for sys.path, so their imports (devmem_lib,
# lib.py) still come from the tree. The BPF objects are built by the
# selftests' own rules (net/bpf.mk: libbpf from the tree, clang); its
# include path names the tree's usr/include, which an out-of-tree build
# does not have, so it is given the build's exported headers instead, as
# ncdevmem is (otherwise clang would fall back to the system's).
hw=$tree/tools/testing/selftests/drivers/net/hw
bpf_objs=()
for c in "$hw"/nk_*.bpf.c; do
	bpf_objs+=("$out/$(basename "${c%.c}").o")
done
if ! PATH="$VENV/bin:$PATH" make -s -C "$hw" OUTPUT="$out" \
	CCINCLUDE="-I$tree/tools/testing/selftests/bpf -I$build/usr/include -I$out/tools/include" \
	"${bpf_objs[@]}" >"$out/bpf-build.log" 2>&1; then
	tail -30 "$out/bpf-build.log" >&2
	die "BPF objects failed to build (log: $out/bpf-build.log)"
fi
for s in nk_devmem.py userns_devmem.py; do
	ln -sfn "$hw/$s" "$out/$s"
done

# Upstream 7.3's devmem suites (tools/setup.sh fetched them), unchanged, in a
# directory of their own that their main() runs from: 7.3's ncdevmem, built
# here against this tree's exported headers and YNL library (the netdev
# spec's bind-rx attributes, rx-page-size included, are 7.3's: same names
# and numbers), beside the scripts, which import 7.3's devmem_lib from the
# same directory and the test library (lib.py) of this tree through a link,
# and the netkit BPF objects built above (7.3's sources for them are 7.2's).
up73=$out/upstream-7.3
rm -rf "$up73" && mkdir -p "$up73"
for s in devmem.py devmem_lib.py nk_devmem.py ncdevmem.c; do
	[ -s "$UP73_DIR/hw/$s" ] || die "$UP73_DIR/hw/$s missing: run tools/setup.sh"
	cp "$UP73_DIR/hw/$s" "$up73/$s"
done
ln -sfn "$hw/lib" "$up73/lib"
for o in "${bpf_objs[@]}"; do
	ln -sfn "$o" "$up73/$(basename "$o")"
done
# YNL's library and headers for the two families ncdevmem uses, as
# net/ynl.mk makes them (the make above skips that when its ncdevmem is up to
# date, and a resync of the tree drops the generated headers), then the flags
# selftests/lib.mk and net/ynl.mk give ncdevmem.
if ! { PATH="$VENV/bin:$PATH" make -s -C "$tree/tools/net/ynl" GENS="ethtool netdev" RSTS="" \
	libynl.a && gcc -O2 -Wall -D_GNU_SOURCE= -isystem "$build/usr/include" \
	-I"$tree/tools/testing/selftests" -I"$tree/tools/net/ynl/lib" \
	-I"$tree/tools/net/ynl/generated" -o "$up73/ncdevmem" "$up73/ncdevmem.c" \
	"$tree/tools/net/ynl/libynl.a"; } >"$up73/build.log" 2>&1; then
	tail -30 "$up73/build.log" >&2
	die "upstream 7.3 ncdevmem failed to build (log: $up73/build.log)"
fi
echo "$out"

#!/usr/bin/env bash
# Boot a built kernel under virtme-ng (TCG) and run one command in it.
#   vm-run.sh [-t TIMEOUT_S] BUILD_DIR RESULT_DIR CMD...
# RESULT_DIR receives out.log (the command's output), status (its exit code),
# dmesg, kmemleak, console.log and, on the host's verdict, splats. Exits 0 only
# if the command exited 0, the guest finished, and the kernel reported no
# WARNING, BUG, Oops, KFENCE, lockdep or kmemleak finding.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

timeout=900
if [ "${1:-}" = -t ]; then
	timeout=$2
	shift 2
fi
build=${1:?build dir}
R=${2:?result dir}
shift 2
[ $# -gt 0 ] || die "no command"

rm -rf "$R"
mkdir -p "$R"
R=$(cd "$R" && pwd)
cmd=$(printf '%q ' bash "$DEVMEM_ROOT/tools/vm-guest.sh" "$R" "$@")

# The guest sees the host's root read-only, but with fresh tmpfs mounts over
# /tmp, /run, /var/cache and others: hand it the repo and whatever else the
# command needs (VM_RODIRS, space-separated) explicitly, at the same paths.
rodirs=()
for d in "$DEVMEM_ROOT" ${VM_RODIRS:-}; do
	rodirs+=(--rodir "$d")
done

# Poison freed slab objects and check redzones and poison on allocation, so a
# use-after-free faults or is reported at once instead of reading stale but
# plausible memory (SLUB_DEBUG is built in, but off until asked for).
# DMA API misuse is reported for netdevsim, the device devmem maps for here;
# udmabuf maps huge-page segments for its own misc device, which declares no
# segment limit, and would be reported on every CPU-access sync.
VM_APPEND=${VM_APPEND-slub_debug=FZP dma_debug_driver=netdevsim}
# The benchmarks (tools/bench.sh) boot kernels without kmemleak, with more
# memory and, for deterministic timing, QEMU instruction counting.
VM_MEMORY=${VM_MEMORY:-2G}
VM_KMEMLEAK=${VM_KMEMLEAK:-1}
qemu_opts=()
[ -n "${VM_QEMU_OPTS:-}" ] && qemu_opts=(--qemu-opts="$VM_QEMU_OPTS")

# vng never returns if the guest cannot power off (no ACPI), hence the hard
# timeout; stdin is closed as in CI.
set +e
PATH="$VENV/bin:$PATH" timeout -k 10 "$timeout" "$VENV/bin/vng" --run "$build/arch/x86/boot/bzImage" \
	--disable-kvm --force-9p --cpus 2 --memory "$VM_MEMORY" \
	--append "root=/dev/root $VM_APPEND" "${qemu_opts[@]}" \
	"${rodirs[@]}" --rwdir "$R" --verbose --exec "$cmd" </dev/null >"$R/console.log" 2>&1
vng_rc=$?
set -e

fail=0
verdict=()
if [ ! -f "$R/finished" ]; then
	[ $vng_rc -eq 124 ] && say "vm: timed out after ${timeout}s"
	say "vm: guest did not finish (vng exit $vng_rc); console: $R/console.log"
	tail -30 "$R/console.log" >&2
	verdict+=("guest did not finish")
fi
status=$(cat "$R/status" 2>/dev/null || echo missing)
if [ "$status" != 0 ]; then
	say "vm: command exited $status"
	fail=1
fi

# Kernel findings: any of these fails the run even if the command passed.
splat_re='WARNING:|BUG:|BUG [^ ]+ \(|Oops|KFENCE:|general protection fault|possible (recursive|circular) locking|inconsistent lock state|lock held when returning|suspicious RCU usage|UBSAN:|refcount_t:|kernel BUG|unreferenced object|rcu detected stall|detected stalls on CPUs|unregister_netdevice: waiting'
cat "$R/dmesg" "$R/console.log" 2>/dev/null | grep -E "$splat_re" >"$R/splats" || true
if [ -s "$R/kmemleak" ]; then
	say "vm: kmemleak reported leaks (see $R/kmemleak)"
	head -20 "$R/kmemleak" >&2
	verdict+=("kmemleak: $(grep -c 'unreferenced object' "$R/kmemleak") objects")
fi
if [ "$VM_KMEMLEAK" = 1 ] && { [ -f "$R/kmemleak.missing" ] ||
	! grep -q "kmemleak: Kernel memory leak detector initialized" "$R/dmesg" 2>/dev/null; }; then
	verdict+=("kmemleak inactive")
fi
if [ -s "$R/splats" ]; then
	say "vm: kernel splat(s):"
	head -20 "$R/splats" >&2
	verdict+=("splat: $(head -1 "$R/splats")")
fi
if [ ${#verdict[@]} -eq 0 ]; then
	echo clean >"$R/verdict"
else
	printf '%s; ' "${verdict[@]}" >"$R/verdict"
	fail=1
fi
exit $fail

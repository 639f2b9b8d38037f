#!/usr/bin/env bash
# Boot a built kernel under virtme-ng (TCG) and run one command in it.
#   vm-run.sh [-t TIMEOUT_S] [--bench] BUILD_DIR RESULT_DIR CMD...
# RESULT_DIR receives out.log (the command's output, as it is produced),
# status (its exit code), kmsg and dmesg (the whole kernel log), kmemleak,
# debug-state, console.log and verdict (tools/verdict.py). Exits 0 only if
# the command exited 0 and every check of the verdict passed.
#
# A test run (the default) always boots with SLUB debugging, the DMA API
# filter and a kernel log large enough for the run, and its verdict requires
# kmemleak and checks in the guest that those were in effect: the caller's
# environment can add to the command line (VM_APPEND) but not take them away.
# --bench boots the benchmark kernels, which have none of these debug options.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

timeout=900
mode=test
while [ $# -gt 0 ]; do
	case $1 in
	-t) timeout=$2; shift 2 ;;
	--bench) mode=bench; shift ;;
	*) break ;;
	esac
done
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
# segment limit, and would be reported on every CPU-access sync. The log
# ring holds a whole run (32 MiB; the default 256 KiB wraps in a long one).
append="log_buf_len=32M"
[ $mode = test ] && append+=" slub_debug=FZP dma_debug_driver=netdevsim"
append+=" ${VM_APPEND:-}"
# The benchmarks (tools/bench.sh) boot with more memory and, for
# deterministic timing, QEMU instruction counting.
VM_MEMORY=${VM_MEMORY:-2G}
# Two vCPUs unless VM_CPUS says otherwise (one, to see a thread's CPU time
# under icount without the other vCPU's instructions in its slices).
VM_CPUS=${VM_CPUS:-2}
qemu_opts=()
[ -n "${VM_QEMU_OPTS:-}" ] && qemu_opts=(--qemu-opts="$VM_QEMU_OPTS")

# vng never returns if the guest cannot power off (no ACPI), hence the hard
# timeout; stdin is closed as in CI.
set +e
PATH="$VENV/bin:$PATH" timeout -k 10 "$timeout" "$VENV/bin/vng" --run "$build/arch/x86/boot/bzImage" \
	--disable-kvm --force-9p --cpus "$VM_CPUS" --memory "$VM_MEMORY" \
	--append "root=/dev/root $append" "${qemu_opts[@]}" \
	"${rodirs[@]}" --rwdir "$R" --verbose --exec "$cmd" </dev/null >"$R/console.log" 2>&1
vng_rc=$?
set -e

if [ ! -f "$R/finished" ]; then
	[ $vng_rc -eq 124 ] && say "vm: timed out after ${timeout}s"
	say "vm: guest did not finish (vng exit $vng_rc); console: $R/console.log"
	tail -30 "$R/console.log" >&2
	# virtme-ng passes the command, base64-encoded, on the kernel command
	# line; past x86's 2048 bytes it is cut, and so is the init path after it.
	if grep -q "Kernel panic - not syncing: Requested init" "$R/console.log"; then
		say "vm: the kernel command line was probably cut: the guest command alone is $(printf %s "$cmd" | base64 -w0 | wc -c) bytes in base64; pass less on it"
	fi
fi
fail=0
status=$(cat "$R/status" 2>/dev/null || echo missing)
if [ "$status" != 0 ]; then
	say "vm: command exited $status"
	fail=1
fi
if ! "$VENV/bin/python" "$DEVMEM_ROOT/tools/verdict.py" "$R" "$mode" "$vng_rc"; then
	say "vm: verdict: $(grep -c ' FAIL' "$R/verdict") check(s) failed"
	grep ' FAIL' "$R/verdict" | sed 's/^/    /' >&2
	fail=1
fi
exit $fail

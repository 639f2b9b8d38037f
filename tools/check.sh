#!/usr/bin/env bash
# The test command: set up, build each flavor's kernel, boot the flavors'
# VMs side by side and run KUnit and the selftests in them, streaming each
# result to the console as the guest reports it; then one line per test, a
# line per suite with its time, and `N passed, N failed`.
#   tools/check.sh [FLAVOR...]      (default: every flavor in FLAVORS)
# Environment (for iterating; CI=true refuses them, since a CI run is the
# whole run):
#   FLAVORS="rust"         one flavor (make check FLAVORS=rust)
#   CHECK_SUITES="a b"     only these selftest suites (selftests/suites)
#   CHECK_QUICK=1          no lints, driver builds or VM harness boot
#                          (make quick: KUnit and the netlink suites)
#   CHECK_TESTS="a b"      only the selftests with these names, in the
#                          suites that have them
set -euo pipefail
. "$(dirname "$0")/lib.sh"

FLAVORS=${FLAVORS:-c rust}
[ $# -gt 0 ] && FLAVORS="$*"
results=${DEVMEM_RESULTS:-$DEVMEM_CACHE/results}
all_suites=$(grep -v '^#' "$DEVMEM_ROOT/selftests/suites" | xargs)
suites=${CHECK_SUITES:-$all_suites}
quick=${CHECK_QUICK:-0}
t0=$SECONDS
phases=()
phase() { phases+=("$1 $(($SECONDS - $2)) s"); }

total_pass=0
total_fail=0
summary=()
failures=()
count() { # name pass fail
	total_pass=$((total_pass + $2))
	total_fail=$((total_fail + $3))
	summary+=("$1: $2 passed, $3 failed")
}

# A CI run is the whole run: a subset asked for by the environment would
# print a clean count for less than the suite.
FLAVORS=$(xargs <<<"$FLAVORS")
for flavor in $FLAVORS; do
	[ -f "$DEVMEM_ROOT/tools/config/$flavor.config" ] || die "unknown flavor $flavor"
done
[ -n "$FLAVORS" ] || die "no flavor to run (FLAVORS is empty)"
if [ "${CI:-}" = true ]; then
	partial=()
	[ "$FLAVORS" = "c rust" ] || partial+=("FLAVORS=$FLAVORS")
	[ -z "${NL_FUZZ_COUNT:-}" ] || [ "$NL_FUZZ_COUNT" = 10000 ] || partial+=("NL_FUZZ_COUNT=$NL_FUZZ_COUNT")
	[ -z "${NL_FUZZ_SEED:-}" ] || [ "$NL_FUZZ_SEED" = 1 ] || partial+=("NL_FUZZ_SEED=$NL_FUZZ_SEED")
	[ "$suites" = "$all_suites" ] || partial+=("CHECK_SUITES=$suites")
	[ "$quick" = 0 ] || partial+=("CHECK_QUICK=$quick")
	[ -z "${CHECK_TESTS:-}" ] || partial+=("CHECK_TESTS=$CHECK_TESTS")
	if [ ${#partial[@]} -gt 0 ]; then
		echo "FAIL check:full_run  (CI=true with ${partial[*]})"
		echo "0 passed, 1 failed"
		exit 1
	fi
fi
for s in $suites; do
	[ -f "$DEVMEM_ROOT/selftests/$s.py" ] || die "no suite $s (selftests/suites lists the suites)"
done

pt=$SECONDS
"$DEVMEM_ROOT/tools/setup.sh"
tree=$("$DEVMEM_ROOT/tools/prepare-tree.sh")
phase setup $pt

# Runs a lint script that prints PASS/FAIL lines; sets lint_pass, lint_fail.
# A script that dies before reporting must not vanish from the count.
run_lint() {
	local name=$1 out rc=0
	shift
	out=$("$@") || rc=$?
	echo "$out"
	# grep -c exits 1 on no match, which set -e would take for an error.
	lint_pass=$(grep -c '^PASS' <<<"$out" || true)
	lint_fail=$(grep -c '^FAIL' <<<"$out" || true)
	if [ "$rc" -ne 0 ] && [ "$lint_fail" -eq 0 ]; then
		echo "FAIL $name  ($(basename "$1") exited $rc without a verdict)"
		lint_fail=1
	fi
}

# The counting's own tests, on made-up result directories (host, < 1 s).
DEVMEM_TREE=$tree run_lint harness:counting "$VENV/bin/python" "$DEVMEM_ROOT/tools/harness-check.py"
count harness $lint_pass $lint_fail

# Work that runs beside the VMs, at the lowest CPU priority, each into its
# own log: checkpatch on the series, and (after the kernels) clippy and the
# NIC driver builds. The VMs get the CPU first.
bg=$(mktemp -d)
# Everything started from here (VMs, the follower, the builds beside them)
# goes with the run, however it ends: an interrupted run must not leave
# guests behind to slow the next one down.
kill_tree() {
	local c
	for c in $(pgrep -P "$1" 2>/dev/null); do
		kill_tree "$c"
	done
	kill "$1" 2>/dev/null || true
}
cleanup() {
	local j
	for j in $(jobs -p); do
		kill_tree "$j"
	done
	rm -rf "$bg"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
if [ "$quick" = 0 ]; then
	(
		rc=0
		nice -n 19 "$DEVMEM_ROOT/tools/lint-series.sh" "$tree" >"$bg/series.out" 2>"$bg/series.err" || rc=$?
		echo $rc >"$bg/series.rc"
	) &
	echo $! >"$bg/series.pid"
fi

declare -A build tools
for flavor in $FLAVORS; do
	pt=$SECONDS
	build[$flavor]=$("$DEVMEM_ROOT/tools/build-kernel.sh" "$flavor")
	tools[$flavor]=$("$DEVMEM_ROOT/tools/build-selftest-tools.sh" "${build[$flavor]}")
	phase "kernel[$flavor]" $pt
done

# The VM runner's own checks must be able to fail: a command that exits 3
# after printing a WARNING to the kernel log, booted with an environment
# that asks to turn SLUB debugging and the DMA API filter off, must be
# reported as failing on each count.
harness_vm() {
	local b=$1 R=$results/harness p=0 f=0 v
	hv() { # name ok [note]
		if [ "$2" = 1 ]; then
			echo "PASS harness:$1"
			p=$((p + 1))
		else
			echo "FAIL harness:$1  ($3)"
			f=$((f + 1))
		fi
	}
	local ran=0
	VM_APPEND="slub_debug=- dma_debug_driver=none" VM_KMEMLEAK=0 VM_QEMU_OPTS=$rr \
		"$DEVMEM_ROOT/tools/vm-run.sh" -t 900 "$b" "$R" sh -c \
		'echo "WARNING: devmem-rs harness self-check" >/dev/kmsg; exit 3' \
		>/dev/null 2>&1 || ran=1
	hv vm_run_fails_on_bad_run $ran "vm-run.sh passed it"
	[ "$(cat "$R/status" 2>/dev/null)" = 3 ] && ran=1 || ran=0
	hv exit_status_through_rwdir $ran "status: $(cat "$R/status" 2>/dev/null)"
	v=$(cat "$R/verdict" 2>/dev/null || echo missing)
	local name re
	while read -r name re; do
		grep -qE "^$re" <<<"$v" && ran=1 || ran=0
		hv "$name" $ran "verdict: $(tr '\n' ';' <<<"$v")"
	done <<-'CHECKS'
		splat_detected kernel_clean FAIL .*devmem-rs harness self-check
		slub_debug_off_detected debug_options FAIL .*slub_poison=0
		dma_filter_off_detected debug_options FAIL .*dma_debug_driver=none
		boot_log_whole kernel_log_whole PASS
		guest_finished guest_finished PASS
		kmemleak_kept_on kmemleak_clean PASS
	CHECKS
	echo "$p $f" >"$bg/harness-vm.counts"
}

# Boot every flavor at once (and the harness VM), their results streaming to
# the console as they come. Each guest's two vCPUs then share one host
# thread (QEMU's round-robin TCG): with a thread per vCPU, two guests'
# four threads on two cores spin on each other's preempted vCPUs and every
# test took 3-5 times as long as alone, while two round-robin guests take
# 1.1 times one multi-threaded guest alone (nl_bind and nl_lease: 190 s for
# both flavors side by side, 171 s for one flavor alone). A flavor alone
# keeps a thread per vCPU.
# Side by side, both guests took 2206 s here; the guest's limit (3600 s)
# leaves room for a machine of this kind 1.6 times slower.
pt=$SECONDS
rr="-accel tcg,thread=single"
vm_qemu=
[ "$(wc -w <<<"$FLAVORS")" -gt 1 ] && vm_qemu=$rr
stop=$bg/follow.stop
follow_args=()
declare -A vmpid
# The guest's command travels on the kernel command line (virtme-ng), which
# x86 cuts at 2048 bytes: a full run leaves the suite list to run.sh, which
# reads the same file.
guest_suites=$suites
[ "$suites" = "$all_suites" ] && guest_suites=
for flavor in $FLAVORS; do
	R=$results/$flavor
	rm -rf "$R"
	follow_args+=("$flavor=$R")
	VM_QEMU_OPTS=$vm_qemu VM_RODIRS="$tree $VENV ${tools[$flavor]}" \
		"$DEVMEM_ROOT/tools/vm-run.sh" -t 3600 \
		"${build[$flavor]}" "$R" \
		env DEVMEM_TREE="$tree" DEVMEM_PY="$VENV/bin/python" \
		DEVMEM_FLAVOR="$flavor" DEVMEM_TOOLS="${tools[$flavor]}" \
		NL_FUZZ_SEED="${NL_FUZZ_SEED:-1}" NL_FUZZ_COUNT="${NL_FUZZ_COUNT:-10000}" \
		DEVMEM_TESTS="${CHECK_TESTS:-}" \
		"$DEVMEM_ROOT/selftests/run.sh" "$R" "$guest_suites" \
		>"$bg/vm-$flavor.out" 2>&1 &
	vmpid[$flavor]=$!
	say "vm[$flavor]: booting; suites: $(wc -w <<<"$suites") of $(wc -w <<<"$all_suites")"
done
first=${FLAVORS%% *}
if [ "$quick" = 0 ]; then
	harness_vm "${build[$first]}" >"$bg/harness-vm.out" 2>&1 &
	echo $! >"$bg/harness-vm.pid"
	# clippy (rust) and the NIC drivers against each flavor, one after the
	# other, niced below the VMs.
	(
		# Before anything is started from here: children inherit it.
		renice -n 19 -p $BASHPID >/dev/null
		for flavor in $FLAVORS; do
			if [ "$flavor" = rust ]; then
				run_lint rust:lint "$DEVMEM_ROOT/tools/lint-rust.sh" "${build[rust]}"
				echo "$lint_pass $lint_fail" >"$bg/lint-rust.counts"
			fi
			run_lint "$flavor:drivers:build" "$DEVMEM_ROOT/tools/drivers-check.sh" "$flavor"
			echo "$lint_pass $lint_fail" >"$bg/drivers-$flavor.counts"
		done
	) >"$bg/builds.out" 2>"$bg/builds.err" &
	echo $! >"$bg/builds.pid"
fi
"$VENV/bin/python" -u "$DEVMEM_ROOT/tools/follow.py" "$stop" "${follow_args[@]}" &
follower=$!
declare -A vm_rc
for flavor in $FLAVORS; do
	rc=0
	wait "${vmpid[$flavor]}" || rc=$?
	vm_rc[$flavor]=$rc
done
touch "$stop"
wait $follower || true
phase "vms($FLAVORS)" $pt

if [ "$quick" = 0 ]; then
	pt=$SECONDS
	wait "$(cat "$bg/harness-vm.pid")" || true
	cat "$bg/harness-vm.out"
	read -r p f <"$bg/harness-vm.counts" 2>/dev/null || { p=0; f=1; echo "FAIL harness:vm  (no result)"; }
	count harness-vm "$p" "$f"
	wait "$(cat "$bg/series.pid")" || true
	run_lint series:checkpatch sh -c "cat '$bg/series.out'; exit \$(cat '$bg/series.rc' 2>/dev/null || echo 99)"
	[ "$lint_fail" = 0 ] || sed 's/^/    /' "$bg/series.err" | tail -20
	count series "$lint_pass" "$lint_fail"
	say "builds: waiting for clippy and the driver builds"
	wait "$(cat "$bg/builds.pid")" || true
	phase "builds-after-vms" $pt
fi

for flavor in $FLAVORS; do
	R=$results/$flavor
	say "vm[$flavor]: $(grep -c . "$R/out.log" 2>/dev/null || echo 0) lines of output; results in $R"
	[ "${vm_rc[$flavor]}" = 0 ] || tail -5 "$bg/vm-$flavor.out" | sed 's/^/    /'
	rm -f "$R/counts"
	if ! "$VENV/bin/python" "$DEVMEM_ROOT/tools/ktap.py" "$flavor" "$R" \
		--skips "$DEVMEM_ROOT/selftests/expected-skips" --suites "$suites" \
		--kunit "$DEVMEM_ROOT"/kunit/*.c >"$R/ktap.out"; then
		echo "FAIL $flavor:ktap  (tools/ktap.py failed: the results were not read)" >>"$R/ktap.out"
		echo "0 1" >"$R/counts"
	fi
	cat "$R/ktap.out"
	mapfile -t -O "${#failures[@]}" failures < <(grep '^FAIL' "$R/ktap.out" || true)
	[ -s "$R/metrics" ] && sed "s/^/metric $flavor: /" "$R/metrics"
	read -r p f <"$R/counts" || { p=0; f=1; }
	# vm-run.sh's own exit status: any failure it saw must be in the count.
	if [ "${vm_rc[$flavor]}" != 0 ] && [ "$f" = 0 ]; then
		echo "FAIL $flavor:vm.run  (vm-run.sh exited ${vm_rc[$flavor]} with no failing test)"
		f=1
	fi
	if [ "$quick" = 0 ]; then
		if [ "$flavor" = rust ]; then
			grep -E '^(PASS|FAIL) rust:lint' "$bg/builds.out" || true
			read -r lp lf <"$bg/lint-rust.counts" 2>/dev/null || { lp=0; lf=1; echo "FAIL rust:lint  (no result)"; }
			p=$((p + lp)); f=$((f + lf))
		fi
		grep -E "^(PASS|FAIL) $flavor:drivers" "$bg/builds.out" || true
		read -r dp df <"$bg/drivers-$flavor.counts" 2>/dev/null || { dp=0; df=1; echo "FAIL $flavor:drivers:build  (no result)"; }
		p=$((p + dp)); f=$((f + df))
	fi
	count "$flavor" "$p" "$f"
done
if [[ " $FLAVORS " == *" c "* && " $FLAVORS " == *" rust "* ]] &&
	[[ " $suites " == *" nl_fuzz "* ]]; then
	if "$VENV/bin/python" "$DEVMEM_ROOT/tools/fuzz-compare.py" \
		"$results/c/nl_fuzz.txt" "$results/rust/nl_fuzz.txt" "${NL_FUZZ_SEED:-1}"; then
		count fuzz-compare 1 0
	else
		count fuzz-compare 0 1
	fi
fi
if [ "$total_pass" -eq 0 ]; then
	echo "FAIL check:ran  (no test passed: nothing ran)"
	total_fail=$((total_fail + 1))
fi
phase total $t0
# The failures again, with their reasons, where a log cut to its head and
# tail still shows them.
if [ "${#failures[@]}" -gt 0 ]; then
	echo "failures:"
	printf '  %s\n' "${failures[@]}"
fi
say "check: ${summary[*]}"
say "timings: ${phases[*]}"
# A partial run says so on its last line too ("partial: N passed, N failed").
if [ "$suites" = "$all_suites" ] && [ "$quick" = 0 ] && [ "$FLAVORS" = "c rust" ] &&
	[ -z "${CHECK_TESTS:-}" ]; then
	echo "$total_pass passed, $total_fail failed"
else
	echo "PARTIAL run: flavors $FLAVORS; suites $suites; quick $quick${CHECK_TESTS:+; tests $CHECK_TESTS}"
	echo "partial: $total_pass passed, $total_fail failed"
fi
[ "$total_fail" -eq 0 ] && [ "$total_pass" -gt 0 ]

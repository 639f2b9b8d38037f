#!/usr/bin/env bash
# The test command: set up, build and boot each flavor, run KUnit and the
# selftests in the VM, print one line per test and `N passed, N failed`.
#   tools/check.sh [FLAVOR...]      (default: every flavor in FLAVORS)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

FLAVORS=${FLAVORS:-c rust}
[ $# -gt 0 ] && FLAVORS="$*"
results=${DEVMEM_RESULTS:-$DEVMEM_CACHE/results}
t0=$SECONDS

"$DEVMEM_ROOT/tools/setup.sh"
tree=$("$DEVMEM_ROOT/tools/prepare-tree.sh")

total_pass=0
total_fail=0
summary=()
# The runner's own checks must be able to fail: a command that exits 3 after
# printing a WARNING to the kernel log must be reported as both.
harness_check() {
	local build=$1 R=$results/harness p=0 f=0
	say "vm: checking that the runner catches a failing command and a splat"
	if "$DEVMEM_ROOT/tools/vm-run.sh" -t 600 "$build" "$R" sh -c \
		'echo "WARNING: devmem-rs harness self-check" >/dev/kmsg; exit 3' 2>/dev/null; then
		echo "FAIL harness:vm_run_fails_on_bad_run  (vm-run.sh passed it)"
		f=$((f + 1))
	else
		echo "PASS harness:vm_run_fails_on_bad_run"
		p=$((p + 1))
	fi
	if [ "$(cat "$R/status" 2>/dev/null)" = 3 ]; then
		echo "PASS harness:exit_status_through_rwdir"
		p=$((p + 1))
	else
		echo "FAIL harness:exit_status_through_rwdir  (status: $(cat "$R/status" 2>/dev/null))"
		f=$((f + 1))
	fi
	if grep -q "splat: .*devmem-rs harness self-check" "$R/verdict" 2>/dev/null; then
		echo "PASS harness:splat_detected"
		p=$((p + 1))
	else
		echo "FAIL harness:splat_detected  (verdict: $(cat "$R/verdict" 2>/dev/null))"
		f=$((f + 1))
	fi
	total_pass=$((total_pass + p))
	total_fail=$((total_fail + f))
	summary+=("harness: $p passed, $f failed")
}

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

# checkpatch.pl --strict on each patch of the series (a test per patch).
run_lint series:checkpatch "$DEVMEM_ROOT/tools/lint-series.sh" "$tree"
total_pass=$((total_pass + lint_pass))
total_fail=$((total_fail + lint_fail))
summary+=("series: $lint_pass passed, $lint_fail failed")

# The netlink fuzzer (selftests/nl_fuzz.py) sends the same messages on every
# flavor; afterwards the flavors' errnos are compared message by message.
fuzz_seed=${NL_FUZZ_SEED:-1}
fuzz_count=${NL_FUZZ_COUNT:-10000}

first=1
for flavor in $FLAVORS; do
	build=$("$DEVMEM_ROOT/tools/build-kernel.sh" "$flavor")
	if [ $first = 1 ]; then
		harness_check "$build"
		first=0
	fi
	tools=$("$DEVMEM_ROOT/tools/build-selftest-tools.sh" "$build")
	R=$results/$flavor
	say "vm[$flavor]: booting and running selftests (TCG, a few minutes)"
	vt=$SECONDS
	VM_RODIRS="$tree $VENV $tools" "$DEVMEM_ROOT/tools/vm-run.sh" -t 1800 "$build" "$R" \
		env DEVMEM_TREE="$tree" DEVMEM_PY="$VENV/bin/python" \
		DEVMEM_FLAVOR="$flavor" DEVMEM_TOOLS="$tools" \
		NL_FUZZ_SEED="$fuzz_seed" NL_FUZZ_COUNT="$fuzz_count" \
		"$DEVMEM_ROOT/selftests/run.sh" "$R" || true
	say "vm[$flavor]: done in $((SECONDS - vt)) s; results in $R"
	"$VENV/bin/python" "$DEVMEM_ROOT/tools/ktap.py" "$flavor" "$R" \
		"$DEVMEM_ROOT/selftests/expected-skips"
	[ -s "$R/metrics" ] && sed "s/^/metric $flavor: /" "$R/metrics"
	read -r p f <"$R/counts"
	if [ "$flavor" = rust ]; then
		run_lint rust:lint "$DEVMEM_ROOT/tools/lint-rust.sh" "$build"
		p=$((p + lint_pass))
		f=$((f + lint_fail))
	fi
	# The devmem NIC drivers against this flavor (a cached, incremental
	# build on top of the test kernel).
	say "drivers[$flavor]: building gve, bnxt_en, bng_en, mlx5_core, fbnic"
	run_lint "$flavor:drivers:build" "$DEVMEM_ROOT/tools/drivers-check.sh" "$flavor"
	p=$((p + lint_pass))
	f=$((f + lint_fail))
	total_pass=$((total_pass + p))
	total_fail=$((total_fail + f))
	summary+=("$flavor: $p passed, $f failed")
done
if [[ " $FLAVORS " == *" c "* && " $FLAVORS " == *" rust "* ]]; then
	if "$VENV/bin/python" "$DEVMEM_ROOT/tools/fuzz-compare.py" \
		"$results/c/nl_fuzz.txt" "$results/rust/nl_fuzz.txt" "$fuzz_seed"; then
		total_pass=$((total_pass + 1))
	else
		total_fail=$((total_fail + 1))
	fi
fi
say "check: ${summary[*]} (total $((SECONDS - t0)) s)"
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ] && [ "$total_pass" -gt 0 ]

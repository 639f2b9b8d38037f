#!/usr/bin/env bash
# Lint the crate the way the kernel does: rustfmt with the tree's
# .rustfmt.toml, and the object rebuilt with CLIPPY=1 (the kernel's lint set).
# Prints one PASS/FAIL line per check and exits non-zero on a failure.
#   tools/lint-rust.sh BUILD_DIR
set -uo pipefail
. "$(dirname "$0")/lib.sh"

build=${1:?build dir}
tree=$("$DEVMEM_ROOT/tools/prepare-tree.sh")
kernel_build_env
fail=0

if out=$(rustfmt --config-path "$tree/.rustfmt.toml" --edition 2021 --check \
	"$DEVMEM_ROOT/src/devmem_rust.rs" 2>&1); then
	echo "PASS rust:lint.rustfmt"
else
	echo "FAIL rust:lint.rustfmt"
	echo "$out" | head -30 | sed 's/^/    /'
	fail=1
fi

# The object is rebuilt with clippy-driver; the next build recompiles it
# without (the command line changed), so this never leaves a stale object.
obj=net/core/devmem_rust/src/devmem_rust.o
log=$build/clippy.log
make -C "$tree" O="$build" BINDGEN="$BINDGEN" CLIPPY=1 -j"$JOBS" "$obj" >"$log" 2>&1
rc=$?
if [ $rc -eq 0 ] && ! grep -qE '^(warning|error)' "$log"; then
	echo "PASS rust:lint.clippy"
else
	echo "FAIL rust:lint.clippy  (log: $log)"
	grep -E -A6 '^(warning|error)' "$log" | head -40 | sed 's/^/    /'
	fail=1
fi
# Where the unsafe code is: none in the provider's logic, and every SAFETY
# comment naming the fact it relies on (tools/unsafe-report.py).
out=$(python3 "$DEVMEM_ROOT/tools/unsafe-report.py" --check) || fail=1
grep -E '^(PASS|FAIL) ' <<<"$out"
grep -E '^  src/' <<<"$out" | head -20 | sed 's/^/  /'
exit $fail

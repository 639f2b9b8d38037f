#!/usr/bin/env bash
# Deliberate breaks of the Rust provider and of netdevsim's data path, one
# at a time, each against the tests that should catch it: a break that no
# named test fails has survived, and the suites are weaker than they claim.
#   tools/mutation-check.sh [NAME...]     (default: every tools/mutations/*.patch)
# Each patch starts with two comment lines, "# what it breaks" and
# "# catch: suite.test ...", then a diff against this repository, or, with
# a third line "# tree: kernel", against the prepared kernel tree (for
# netdevsim, whose code is in patches/). The patch
# is applied to the work tree, the rust kernel rebuilt incrementally and
# tools/check.sh run (quick, rust only) on the catchers' suites and tests;
# then the patch is reverted, whatever happened. Not part of `make check`:
# it runs one VM boot per break. Prints a table and "N caught, N survived";
# exits non-zero if a break survived or a run could not be judged.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
root=$DEVMEM_ROOT
cd "$root" || exit 1

if ! git diff --quiet -- src; then
	echo "mutation-check: src/ has uncommitted changes; commit or stash them first" >&2
	exit 2
fi

names=("$@")
if [ ${#names[@]} -eq 0 ]; then
	for p in tools/mutations/*.patch; do
		names+=("$(basename "$p" .patch)")
	done
fi

applied= tree=
# A kernel-tree break is applied with patch(1) and reverted the same way;
# the tree keeps its series key, so prepare-tree leaves it as it is.
apply() {
	if [ -n "$tree" ]; then
		patch -d "$tree" -p1 -s -N -F0 --no-backup-if-mismatch <"$1"
	else
		git apply "$1"
	fi
}
revert() {
	[ -n "$applied" ] || return 0
	if [ -n "$tree" ]; then
		patch -d "$tree" -p1 -s -R -F0 --no-backup-if-mismatch <"$applied"
	else
		git apply -R "$applied"
	fi && applied=
}
trap revert EXIT INT TERM

out=$DEVMEM_CACHE/results/mutation-check
mkdir -p "$out"
caught=0 survived=0 rows=()
for name in "${names[@]}"; do
	p=tools/mutations/$name.patch
	catch=$(sed -n 's/^# catch: //p' "$p")
	if [ -z "$catch" ]; then
		echo "mutation-check: $p names no catcher" >&2
		exit 2
	fi
	suites= tests=
	for t in $catch; do
		s=${t%%.*}
		case $s in
		kunit) ;; # KUnit runs on every boot
		*) suites+=" $s"; tests+=" ${t#*.}" ;;
		esac
	done
	# A break caught only by KUnit still needs one suite for the boot.
	[ -n "$suites" ] || suites=" nl_bind" tests=" none"
	suites=$(tr ' ' '\n' <<<"$suites" | sort -u | xargs)
	tree=
	if grep -q '^# tree: kernel$' "$p"; then
		tree=$("$root/tools/prepare-tree.sh") || exit 2
	fi
	apply "$p" || { echo "mutation-check: $p does not apply" >&2; exit 2; }
	applied=$p
	log=$out/$name.log
	CHECK_QUICK=1 FLAVORS=rust CHECK_SUITES="$suites" CHECK_TESTS="${tests# }" \
		"$root/tools/check.sh" >"$log" 2>&1
	revert
	hit=()
	for t in $catch; do
		grep -aq "rust FAIL $t\b" "$log" && hit+=("$t")
	done
	if [ ${#hit[@]} -gt 0 ]; then
		caught=$((caught + 1))
		rows+=("| $name | caught | ${hit[*]} |")
	elif grep -aq 'rust booted in' "$log"; then
		survived=$((survived + 1))
		rows+=("| $name | SURVIVED | none of: $catch |")
	else
		survived=$((survived + 1))
		rows+=("| $name | NOT RUN | see $log |")
	fi
	echo "${rows[-1]}"
done

echo
echo "| break | result | failed |"
echo "| --- | --- | --- |"
printf '%s\n' "${rows[@]}"
echo "$caught caught, $survived survived"
[ "$survived" -eq 0 ]

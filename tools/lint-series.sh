#!/usr/bin/env bash
# The series as sent: exported by tools/series.sh (which checks that every
# patch applies to its base without fuzz and that the crate's files are all
# in it), then checkpatch.pl --strict on every patch, one test line each,
# and checks that the export and the uAPI mirror agree with the repository:
#   tools/lint-series.sh TREE
# UNKNOWN_COMMIT_ID is not checked: the packaged tree has no git history to
# look Fixes: tags up in (they name upstream commits). Any other warning or
# check fails the patch unless its commit message justifies that type, on a
# line of its own: "checkpatch TYPE: why".
set -uo pipefail
tree=${1:?usage: lint-series.sh TREE}
. "$(dirname "$0")/lib.sh"
root=$DEVMEM_ROOT
rc=0
exp=$DEVMEM_CACHE/lint-series
if "$root/tools/series.sh" "$exp" >/dev/null 2>"$exp.err"; then
	echo "PASS series:export"
else
	echo "FAIL series:export  ($(grep -m1 error "$exp.err"))"
	exit 1
fi

checkpatch() { # checkpatch NAME PATCH
	local name=$1 p=$2 out cp_rc bad=() line type
	out=$(perl "$tree/scripts/checkpatch.pl" --strict --no-tree --show-types \
		--ignore UNKNOWN_COMMIT_ID --terse "$p" 2>&1)
	cp_rc=$?
	while IFS= read -r line; do
		type=$(sed -nE 's/.*: (ERROR|WARNING|CHECK):([A-Z0-9_]+):.*/\1:\2/p' <<<"$line")
		[ -n "$type" ] || continue
		# The commit message is everything before the first "---" line.
		if [[ $type != ERROR:* ]] &&
			sed '/^---$/q' "$p" | grep -q "^checkpatch ${type#*:}: "; then
			continue
		fi
		bad+=("${line#*: }")
	done <<<"$out"
	# checkpatch exits 0 only when clean; otherwise it must have said why.
	if [ $cp_rc -ne 0 ] && ! grep -q '^total: ' <<<"$out"; then
		bad+=("checkpatch.pl failed: $(tail -1 <<<"$out")")
	fi
	if [ ${#bad[@]} -eq 0 ]; then
		echo "PASS series:checkpatch.$name"
	else
		echo "FAIL series:checkpatch.$name  (${bad[*]})"
		rc=1
	fi
}

for s in "${SERIES_DIRS[@]}"; do
	for p in "$exp/$s"/[0-9]*.patch; do
		n=$(basename "$p" | cut -c1-4)
		[ "$n" = 0000 ] && continue
		checkpatch "$s.$n" "$p"
	done
done
for p in "$root"/patches/2-netdevsim/after-net-fixes/*.patch; do
	[ -f "$p" ] || continue
	n=$(basename "$p" | cut -c1-4)
	checkpatch "2-netdevsim.after-net-fixes.$n" "$p"
	# The same change as the form sent: the same lines added and removed,
	# only their context differs.
	plain=$root/patches/2-netdevsim/$(basename "$p")
	if [ -f "$plain" ] && cmp -s <(grep -E '^[-+]' "$plain" | grep -vE '^(---|\+\+\+) ') \
		<(grep -E '^[-+]' "$p" | grep -vE '^(---|\+\+\+) '); then
		echo "PASS series:after-net-fixes.$n.same_change"
	else
		echo "FAIL series:after-net-fixes.$n.same_change  (adds or removes other lines than ${plain#"$root"/})"
		rc=1
	fi
done

# The combined export ends with the tree the project builds: the stored
# patches applied and the crate's files as they are in git.
chk=$(mktemp -d)
cp -al "$DEVMEM_CACHE/src/pristine-$KDEB_VERSION" "$chk/t"
ok=1
while read -r p; do
	patch -d "$chk/t" -p1 -s -N -F0 --no-backup-if-mismatch <"$p" >/dev/null || ok=0
done <"$exp/apply-order"
same_files() { # every file a patch touches is as in TREE, the graft as in git
	local f
	while read -r f; do
		case $f in
		net/core/devmem_rust/*) cmp -s "$chk/t/$f" "$root/${f#net/core/devmem_rust/}" || return 1 ;;
		*) cmp -s "$chk/t/$f" "$tree/$f" || return 1 ;;
		esac
	done < <(xargs sed -n 's@^diff --git a/\([^ ]*\) .*@\1@p' <"$exp/apply-order" | sort -u)
}
if [ $ok = 1 ] && same_files; then
	echo "PASS series:export_is_the_tree"
else
	echo "FAIL series:export_is_the_tree  (the exported series does not give the tree make check builds)"
	rc=1
fi
rm -rf "$chk"

# The uAPI this project adds is mirrored in include/uapi/ for userspace
# built outside a kernel tree: the copy must be what the series generates.
for h in "$root"/include/uapi/linux/*.h "$root"/include/uapi/asm-generic/*.h; do
	rel=${h#"$root"/}
	if cmp -s "$h" "$tree/$rel"; then
		echo "PASS series:uapi.$(basename "$h")"
	else
		echo "FAIL series:uapi.$(basename "$h")  ($rel differs from the series' header)"
		rc=1
	fi
done
exit $rc

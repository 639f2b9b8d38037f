#!/usr/bin/env bash
# checkpatch.pl --strict on every patch of the series, one test line each,
# and a check that include/uapi/ mirrors the series' headers:
#   tools/lint-series.sh TREE
# UNKNOWN_COMMIT_ID is not checked: the packaged tree has no git history to
# look Fixes: tags up in (they name upstream commits). Any other warning or
# check fails the patch unless its commit message justifies that type, on a
# line of its own: "checkpatch TYPE: why".
set -uo pipefail
tree=${1:?usage: lint-series.sh TREE}
root=$(cd "$(dirname "$0")/.." && pwd)
rc=0
for p in "$root"/patches/*.patch; do
	name=$(basename "$p" .patch)
	name=${name:0:4}
	out=$(perl "$tree/scripts/checkpatch.pl" --strict --no-tree --show-types \
		--ignore UNKNOWN_COMMIT_ID --terse "$p" 2>&1)
	cp_rc=$?
	bad=()
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
done
# The uAPI this project adds is mirrored in include/uapi/ for userspace
# built outside a kernel tree: the copy must be what the series generates.
for h in "$root"/include/uapi/linux/*.h; do
	rel=${h#"$root"/}
	if cmp -s "$h" "$tree/$rel"; then
		echo "PASS series:uapi.$(basename "$h")"
	else
		echo "FAIL series:uapi.$(basename "$h")  ($rel differs from the series' header)"
		rc=1
	fi
done
exit $rc

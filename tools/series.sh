#!/usr/bin/env bash
# Write the upstream submission (make series): three series, each with its
# cover letter, as git format-patch writes them:
#   tools/series.sh [OUT]        (default: results/series)
# OUT/1-net-fixes/       for net, on plain 7.2
# OUT/2-netdevsim/       for net-next, on plain 7.2
# OUT/3-rust-devmem/     for net-next, on 7.2 with series 1 and 2; the
#                        crate's files are exported here as patches, from
#                        patches/3-rust-devmem/crate.txt
# Each series is applied with git am to a repository holding the pristine
# versions of the files it touches (a sparse tree: format-patch needs only
# those), so every patch is checked to apply without fuzz. OUT/apply-order
# lists every patch of the three in the order the combined tree takes them
# (tools/series-check.sh builds each prefix of it).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

out=$(realpath -m "${1:-$DEVMEM_ROOT/results/series}")
"$DEVMEM_ROOT/tools/setup.sh" >/dev/null
"$DEVMEM_ROOT/tools/prepare-tree.sh" >/dev/null # unpacks the pristine tree
pristine=$DEVMEM_CACHE/src/pristine-$KDEB_VERSION
manifest=$DEVMEM_ROOT/patches/3-rust-devmem/crate.txt
graft=net/core/devmem_rust

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
repo=$work/repo
mkdir -p "$repo"
g() { git -C "$repo" -c user.name="$ident_name" -c user.email="$ident_mail" \
	-c commit.gpgsign=false "$@"; }
ident=$(sed -n '2,3p' "$(series_patches 1-net-fixes | head -1)" | tr -d '\n' |
	sed -E 's/^From: *//; s/ +/ /g')
ident_name=${ident% <*}
ident_mail=${ident##*<}
ident_mail=${ident_mail%>}

# The sparse base: every file any stored patch touches, as 7.2.13 has it.
while read -r f; do
	if [ -f "$pristine/$f" ]; then
		mkdir -p "$repo/$(dirname "$f")"
		cp "$pristine/$f" "$repo/$f"
	fi
done < <(series_apply_list | xargs sed -n 's@^diff --git a/\([^ ]*\) .*@\1@p' | sort -u)
g init -q
g add -A
g commit -q -m "Linux $KVER" --date="@0"
g tag base

am() { # am REF PATCH...: apply on a new branch REF, from HEAD
	local p
	g checkout -q -b "$1"
	shift
	for p in "$@"; do
		g am -q --committer-date-is-author-date "$p" ||
			die "${p#"$DEVMEM_ROOT"/} does not apply to its base"
	done
}

# The crate's patches, from the manifest, onto the current branch.
crate_commits() {
	python3 - "$manifest" "$DEVMEM_ROOT" "$repo" "$graft" "$work/crate" \
		"$ident_name" "$ident_mail" "$(g log -1 --format=%aD)" <<'PY'
import os, re, subprocess, sys
manifest, root, repo, graft, tmp, name, mail, date = sys.argv[1:]
recs, cur = [], None
for line in open(manifest):
    line = line.rstrip('\n')
    if line.startswith('=== '):
        cur = {'subject': line[4:], 'files': [], 'body': []}
        recs.append(cur)
    elif cur is None:
        continue
    elif line.startswith('files: ') and not cur['body']:
        cur['files'] += line[7:].split()
    else:
        cur['body'].append(line)
# Every file the graft builds from is exported exactly once.
tracked = subprocess.run(['git', '-C', root, 'ls-files', 'Kbuild', 'Kconfig',
                          ':(glob)*.h', 'src', 'kunit', ':(glob)bench/*.c'],
                         capture_output=True, text=True, check=True).stdout.split()
listed = [f for r in recs for f in r['files']]
dup = sorted({f for f in listed if listed.count(f) > 1})
missing = sorted(set(tracked) - set(listed))
extra = sorted(set(listed) - set(tracked))
if dup or missing or extra:
    sys.exit(f'crate.txt: duplicated {dup}, missing {missing}, not in git {extra}')
mod_re = re.compile(r'^\s*pub(\(crate\))?\s+mod\s+(\w+);\s*$')
present = set()
os.makedirs(tmp, exist_ok=True)
for r in recs:
    present.update(r['files'])
    # Rewrite every file so far, so that a parent gains the `mod` line of
    # a child this record adds.
    for f in sorted(present):
        text = open(os.path.join(root, f)).read()
        if f.endswith('.rs'):
            # A child module's file is dir/name/child.rs (or src/child.rs
            # for the crate root): leave out `mod` lines whose file is
            # not in the series yet.
            base = os.path.dirname(f) if f == 'src/devmem_rust.rs' else f[:-3]
            keep = []
            for line in text.splitlines(keepends=True):
                m = mod_re.match(line)
                if m and os.path.join(base, m.group(2) + '.rs') not in present:
                    continue
                keep.append(line)
            text = ''.join(keep)
        dst = os.path.join(repo, graft, f)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        with open(dst, 'w') as fh:
            fh.write(text)
    subprocess.run(['git', '-C', repo, 'add', '-A'], check=True)
    body = '\n'.join(r['body']).strip('\n')
    msg = os.path.join(tmp, 'msg')
    with open(msg, 'w') as fh:
        fh.write(r['subject'] + '\n\n' + body + '\n\n'
                 + f'Signed-off-by: {name} <{mail}>\n')
    subprocess.run(['git', '-C', repo, '-c', f'user.name={name}',
                    '-c', f'user.email={mail}', 'commit', '-q', '-F', msg,
                    f'--date={date}'], check=True,
                   env=dict(os.environ, GIT_COMMITTER_DATE=date))
PY
}

signoff="Signed-off-by: $ident_name <$ident_mail>"
export_series() { # export_series NAME PREFIX FROM TO BASE-NOTE
	local name=$1 prefix=$2 from=$3 to=$4 note=$5 cover=$DEVMEM_ROOT/patches/$1/cover-letter.txt
	local dir=$out/$name n
	[ -f "$cover" ] || die "$cover missing"
	rm -rf "$dir"
	n=$(g rev-list --count "$from..$to")
	g format-patch -q --zero-commit --cover-letter --subject-prefix="$prefix" \
		-o "$dir" "$from..$to"
	# The cover letter: subject and body from cover-letter.txt (its first
	# line and the rest), then the base, shortlog and diffstat git wrote.
	python3 - "$dir/0000-cover-letter.patch" "$cover" "$note" "$signoff" <<'PY'
import sys
path, cover, note, signoff = sys.argv[1:]
text = open(path).read()
lines = open(cover).read().rstrip('\n').split('\n')
subject, body = lines[0], '\n'.join(lines[1:]).strip('\n')
text = text.replace('*** SUBJECT HERE ***', subject, 1)
text = text.replace('*** BLURB HERE ***', body + '\n\n' + note + '\n\n' + signoff, 1)
open(path, 'w').write(text)
PY
	say "series: $name, $n patches, in ${dir#"$DEVMEM_ROOT"/}"
}

# Series 1 and 2, each on plain 7.2.
g checkout -q base
mapfile -t s1 < <(series_patches 1-net-fixes)
am net-fixes "${s1[@]}"
g checkout -q base
mapfile -t s2 < <(series_patches 2-netdevsim)
am netdevsim "${s2[@]}"

# Series 3 on both: series 1, then series 2 in its after-net-fixes form,
# then its own patches with the crate's inserted where the manifest says.
g checkout -q net-fixes
mapfile -t s2c < <(series_apply_list | grep "/patches/2-netdevsim/")
am both "${s2c[@]}"
mapfile -t s3 < <(series_patches 3-rust-devmem)
after=$(sed -n 's/^after: *//p' "$manifest")
g checkout -q -b rust-devmem
for p in "${s3[@]}"; do
	g am -q --committer-date-is-author-date "$p" ||
		die "${p#"$DEVMEM_ROOT"/} does not apply to its base"
	if [ "$(basename "$p" | cut -c1-4)" = "$after" ]; then
		crate_commits || die "crate.txt could not be exported"
	fi
done

mkdir -p "$out"
export_series 1-net-fixes "PATCH net" base net-fixes \
	"Based on Linux $KVER; applies to net."
export_series 2-netdevsim "PATCH net-next" base netdevsim \
	"Based on Linux $KVER; applies to net-next. Independent of the net fixes sent alongside; patch 1 has one trivial conflict with them in __net_devmem_dmabuf_binding_free() (both touch the lines before the dma-buf is unmapped)."
export_series 3-rust-devmem "PATCH net-next" both rust-devmem \
	"Based on Linux $KVER with the net fixes (series 1) and the netdevsim series (series 2) applied."

# The combined tree's order, for series-check: series 1 and 3 as exported,
# series 2 in the form that applies after series 1.
# (Emptied first: a patch added to a series renumbers the ones after it,
# and a stale file would stay in the listing.)
rm -rf "$out/combined"
g format-patch -q --zero-commit -o "$out/combined" base..rust-devmem
ls "$out"/combined/*.patch >"$out/apply-order"
say "series: $(wc -l <"$out/apply-order") patches in the combined order ($out/apply-order)"

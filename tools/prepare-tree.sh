#!/usr/bin/env bash
# Unpack linux-source-7.2, apply the series in patches/ and graft this repository at
# net/core/devmem_rust. Prints the tree's path.
#
# The tree lives at one path and records the key of the kernel package and
# patch series it holds: a changed patch re-prepares it, never leaving it
# stale, and only files whose content changed get a new mtime, so builds stay
# incremental. The graft is a symlink, refreshed on every call, so edits to the
# component are always seen by the build.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

if [ -n "${KSRC:-}" ]; then
	# A tree of the user's own: patches are expected to be applied already.
	[ -f "$KSRC/Makefile" ] || die "KSRC=$KSRC is not a kernel tree"
	ln -sfn "$DEVMEM_ROOT" "$KSRC/net/core/devmem_rust"
	echo "$KSRC"
	exit 0
fi

deb=$DEVMEM_CACHE/debs/linux-source-7.2_${KDEB_VERSION}_all.deb
[ -s "$deb" ] || die "$deb missing: run tools/setup.sh"

pristine=$DEVMEM_CACHE/src/pristine-$KDEB_VERSION
if [ ! -f "$pristine/.unpacked" ]; then
	say "tree: unpacking linux-source $KDEB_VERSION (about 30 s)"
	rm -rf "$pristine" "$pristine.tmp"
	mkdir -p "$pristine.tmp"
	dpkg-deb --fsys-tarfile "$deb" | tar -xO ./usr/src/linux-source-7.2.tar.xz |
		tar -xJ -C "$pristine.tmp" --strip-components=1
	touch "$pristine.tmp/.unpacked"
	mv "$pristine.tmp" "$pristine"
fi

mapfile -t patches < <(series_apply_list)
key=$(content_key "$deb" "${patches[@]}")
# One tree at a fixed path, whatever the series: kbuild's command lines name
# it, so a build dir survives a change of the series and rebuilds only what
# the change touched. The key of the series it holds is in .devmem-key.
tree=$DEVMEM_CACHE/src/linux-$KVER
if [ "$(cat "$tree/.devmem-key" 2>/dev/null)" != "$key" ]; then
	say "tree: preparing $tree (${#patches[@]} patches, series $key)"
	rm -rf "$tree.tmp"
	# Hard links are safe: patch(1) replaces files rather than writing in place.
	cp -al "$pristine" "$tree.tmp"
	rm -f "$tree.tmp/.unpacked"
	for p in "${patches[@]}"; do
		say "tree: applying ${p#"$DEVMEM_ROOT"/patches/}"
		patch -d "$tree.tmp" -p1 -s -N -F0 --no-backup-if-mismatch <"$p" ||
			die "${p#"$DEVMEM_ROOT"/} does not apply"
	done
	if [ -d "$tree" ]; then
		# Bring the tree to the new series by content: a file whose bytes
		# differ is replaced and gets a new mtime (no -t), so kbuild rebuilds
		# what depends on it; identical files keep theirs. The key goes
		# first, so an interrupted sync is redone.
		rm -f "$tree/.devmem-key"
		rsync -rlpD --checksum --delete --exclude=/net/core/devmem_rust \
			"$tree.tmp/" "$tree/"
		rm -rf "$tree.tmp"
	else
		mv "$tree.tmp" "$tree"
	fi
	echo "$key" >"$tree/.devmem-key"
fi
# Trees of the earlier layout, one per series.
rm -rf "$DEVMEM_CACHE/src/linux-$KVER"-*
ln -sfn "$DEVMEM_ROOT" "$tree/net/core/devmem_rust"
echo "$tree"

# Shared settings for the devmem-rs tools. Sourced, not executed.
# shellcheck shell=bash

DEVMEM_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Everything downloaded or built lives here, outside git, so that reruns are quick
# and a clean clone never sees stale output.
DEVMEM_CACHE=${DEVMEM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/devmem-rs}
KVER=7.2.13
KDEB_VERSION=7.2.13-1
# Upstream's next release, for its devmem selftests only (tools/setup.sh).
UP73_DEB_VERSION=7.3~rc7-1~exp1
UP73_DIR=$DEVMEM_CACHE/upstream-7.3
RUST_SRC_DEB_VERSION=1.95.0+dfsg1-2~bpo13+1
RUSTC_VERSION=1.95.0
BINDGEN_VERSION=0.72.1
LIBCLANG_VERSION=18.1.1
VENV=$DEVMEM_CACHE/venv
JOBS=${JOBS:-$(nproc)}

export PATH="$HOME/.cargo/bin:$DEVMEM_CACHE/cargo/bin:$PATH"

say() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { say "error: $*"; exit 1; }

libclang_path() {
	"$VENV/bin/python" - <<'PY'
import os, clang
print(os.path.join(os.path.dirname(clang.__file__), "native"))
PY
}

rust_lib_src() {
	echo "$DEVMEM_CACHE/rust-src/usr/src/rustc-$RUSTC_VERSION/library"
}

# Environment for kernel builds with Rust.
kernel_build_env() {
	export LIBCLANG_PATH
	LIBCLANG_PATH=$(libclang_path)
	export RUST_LIB_SRC
	RUST_LIB_SRC=$(rust_lib_src)
	export BINDGEN="$DEVMEM_CACHE/cargo/bin/bindgen"
}

# A short hash of files' contents (and any extra strings), for cache keys.
content_key() {
	{
		for f in "$@"; do
			if [ -f "$f" ]; then cat "$f"; else printf '%s\n' "$f"; fi
		done
	} | sha256sum | cut -c1-16
}

# The kernel series, as sent: patches/1-net-fixes (for net, on plain 7.2),
# patches/2-netdevsim (for net-next, on plain 7.2), patches/3-rust-devmem (on
# both). Series 1 and 2 touch the same lines of devmem.c, so a patch of
# series 2 that must apply after series 1 has that form in
# patches/2-netdevsim/after-net-fixes/ under the same name (what a merge of
# net into net-next would resolve). The crate's own files are not in patches/:
# tools/series.sh exports them as patches of series 3.
SERIES_DIRS=(1-net-fixes 2-netdevsim 3-rust-devmem)

# The patches of one series, in order, as sent on its own base.
series_patches() {
	local p
	for p in "$DEVMEM_ROOT/patches/$1"/[0-9]*.patch; do
		[ -f "$p" ] && echo "$p"
	done
}

# Every patch in the order the combined tree applies them (series 1, 2, 3),
# with the after-net-fixes form of a series-2 patch where there is one.
series_apply_list() {
	local s p alt
	for s in "${SERIES_DIRS[@]}"; do
		for p in $(series_patches "$s"); do
			alt=$(dirname "$p")/after-net-fixes/$(basename "$p")
			if [ -f "$alt" ]; then echo "$alt"; else echo "$p"; fi
		done
	done
}

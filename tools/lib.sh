# Shared settings for the devmem-rs tools. Sourced, not executed.
# shellcheck shell=bash

DEVMEM_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Everything downloaded or built lives here, outside git, so that reruns are quick
# and a clean clone never sees stale output.
DEVMEM_CACHE=${DEVMEM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/devmem-rs}
KVER=7.2.13
KDEB_VERSION=7.2.13-1
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

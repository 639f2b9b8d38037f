#!/usr/bin/env bash
# Install everything a fresh machine needs to build and test devmem-rs.
# Idempotent: each step checks whether its result is already there.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

mkdir -p "$DEVMEM_CACHE"/{debs,apt}

# clang and bpftool: the BPF objects that upstream's netkit devmem suites
# load (built from the tree), and their map set-up.
APT_PKGS=(qemu-system-x86 flex bison bc libelf-dev libssl-dev cpio kmod iproute2
	ethtool socat python3-venv python3-yaml busybox-static zstd xz-utils
	rsync libcap-dev libmnl-dev pkg-config make gcc git iputils-ping procps
	clang bpftool)

step_apt() {
	local missing=()
	for p in "${APT_PKGS[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
			missing+=("$p")
	done
	if [ ${#missing[@]} -eq 0 ]; then
		say "apt: all ${#APT_PKGS[@]} packages present"
		return
	fi
	say "apt: installing ${missing[*]}"
	local sudo=
	[ "$(id -u)" -eq 0 ] || sudo=sudo
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

step_venv() {
	local want="virtme-ng libclang==$LIBCLANG_VERSION pyyaml jsonschema matplotlib"
	local stamp=$VENV/.devmem-stamp
	if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
		say "venv: ready ($VENV)"
		return
	fi
	say "venv: creating $VENV with $want"
	python3 -m venv "$VENV"
	# shellcheck disable=SC2086
	"$VENV/bin/pip" install -q --disable-pip-version-check $want
	echo "$want" >"$stamp"
}

step_bindgen() {
	local b=$DEVMEM_CACHE/cargo/bin/bindgen
	if [ -x "$b" ] && "$b" --version 2>/dev/null | grep -q " $BINDGEN_VERSION\$"; then
		say "bindgen: $BINDGEN_VERSION ready"
		return
	fi
	say "bindgen: cargo install bindgen-cli@$BINDGEN_VERSION (about 90 s)"
	cargo install -q --locked --root "$DEVMEM_CACHE/cargo" "bindgen-cli@$BINDGEN_VERSION"
}

# apt-get download with a private sources list and state dir: the system's apt
# configuration is never touched.
apt_download() { # suite pkg version
	local suite=$1 pkg=$2 ver=$3 dir=$DEVMEM_CACHE/apt/$1
	mkdir -p "$dir/lists/partial" "$dir/archives/partial"
	cat >"$dir/sources.list" <<SRC
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $suite main
SRC
	touch "$dir/status"
	local opts=(-o "Dir::Etc::sourcelist=$dir/sources.list" -o "Dir::Etc::sourceparts=-"
		-o "Dir::State::Lists=$dir/lists" -o "Dir::State::status=$dir/status"
		-o "Dir::Cache=$dir/cache" -o "APT::Architecture=amd64" -o "Debug::NoLocking=1")
	mkdir -p "$dir/cache"
	apt-get "${opts[@]}" update -qq >/dev/null 2>&1 || return 1
	(cd "$DEVMEM_CACHE/debs" && apt-get "${opts[@]}" download -qq "$pkg=$ver" >/dev/null 2>&1) || return 1
}

deb_file() { # pkg version
	local v=${2//:/%3a}
	echo "$DEVMEM_CACHE/debs/${1}_${v}_all.deb"
}

step_deb() { # suite pkg version
	local f
	f=$(deb_file "$2" "$3")
	if [ -s "$f" ]; then
		say "deb: $2 $3 cached"
		return
	fi
	say "deb: downloading $2 $3 from $1"
	if ! apt_download "$1" "$2" "$3"; then
		local fb
		fb=$DEVMEM_ROOT/../shared/cache/$(basename "$f")
		[ -s "$fb" ] || die "cannot download $2 $3 and no fallback at $fb"
		say "deb: download failed, using $fb"
		cp "$fb" "$f"
	fi
	[ -s "$f" ] || die "$f missing after download"
}

step_rust_src() {
	local have
	have=$(rustc --version | awk '{print $2}')
	[ "$have" = "$RUSTC_VERSION" ] ||
		die "rustc on PATH is $have but rust-src is $RUST_SRC_DEB_VERSION: install rustc $RUSTC_VERSION"
	step_deb trixie-backports rust-src "$RUST_SRC_DEB_VERSION"
	if [ ! -d "$(rust_lib_src)/core" ]; then
		say "rust-src: unpacking"
		rm -rf "$DEVMEM_CACHE/rust-src"
		dpkg -x "$(deb_file rust-src "$RUST_SRC_DEB_VERSION")" "$DEVMEM_CACHE/rust-src"
	fi
	[ -d "$(rust_lib_src)/core" ] || die "rust-src has no library/core"
	say "rust-src: $(rust_lib_src)"
}

# Upstream 7.3's devmem selftests (devmem.py, devmem_lib.py, nk_devmem.py,
# ncdevmem.c), run unchanged beside 7.2's: they are what user space written
# for upstream's rx-page-size does. Taken from Debian experimental's
# linux-source-7.3, or, when experimental has moved on, from the copy of its
# drivers/net/hw directory in ../shared/cache.
UP73_FILES=(devmem.py devmem_lib.py nk_devmem.py ncdevmem.c)
step_upstream73() {
	local hw=tools/testing/selftests/drivers/net/hw f missing=0
	for f in "${UP73_FILES[@]}"; do
		[ -s "$UP73_DIR/hw/$f" ] || missing=1
	done
	if [ $missing = 0 ]; then
		say "upstream 7.3 selftests: cached ($(cat "$UP73_DIR/SOURCE"))"
		return
	fi
	local tmp=$DEVMEM_CACHE/upstream-7.3.tmp deb from
	rm -rf "$tmp" && mkdir -p "$tmp"
	deb=$(deb_file linux-source-7.3 "$UP73_DEB_VERSION")
	if [ -s "$deb" ] || apt_download experimental linux-source-7.3 "$UP73_DEB_VERSION"; then
		say "upstream 7.3 selftests: extracting from $(basename "$deb")"
		dpkg-deb --fsys-tarfile "$deb" | tar -xO ./usr/src/linux-source-7.3.tar.xz |
			tar -xJ -C "$tmp" --strip-components=1 \
				"${UP73_FILES[@]/#/linux-source-7.3/$hw/}"
		from="linux-source-7.3 $UP73_DEB_VERSION from Debian experimental"
	else
		local fb=$DEVMEM_ROOT/../shared/cache/linux-source-7.3_${UP73_DEB_VERSION}-selftests-drivers-net-hw.tar.xz
		[ -s "$fb" ] || die "cannot download linux-source-7.3 $UP73_DEB_VERSION and no fallback at $fb"
		say "upstream 7.3 selftests: download failed, using $fb"
		tar -xJf "$fb" -C "$tmp" "${UP73_FILES[@]/#/$hw/}"
		from="$(basename "$fb")"
	fi
	rm -rf "$UP73_DIR" && mkdir -p "$UP73_DIR/hw"
	for f in "${UP73_FILES[@]}"; do
		[ -s "$tmp/$hw/$f" ] || die "upstream 7.3: $hw/$f missing from $from"
		cp "$tmp/$hw/$f" "$UP73_DIR/hw/$f"
	done
	echo "$from" >"$UP73_DIR/SOURCE"
	rm -rf "$tmp"
	say "upstream 7.3 selftests: $UP73_DIR/hw"
}

step_apt
step_venv
step_bindgen
step_rust_src
step_deb sid linux-source-7.2 "$KDEB_VERSION"
step_upstream73
say "setup: done"

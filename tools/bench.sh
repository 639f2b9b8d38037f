#!/usr/bin/env bash
# The recycling benchmarks: C provider against Rust provider, in one run.
#   tools/bench.sh [FLAVOR...]        (default: c rust; make bench)
# Builds the benchmark kernels (bench-c, bench-rust: the test kernels' tree
# and provider symbols, without their debug options), then boots the flavors
# alternately, c, rust, c, rust, ...: BENCH_BOOTS_ICOUNT (5) boots each under
# QEMU instruction counting (-icount shift=0,sleep=off: guest time is a
# function of instructions executed, so host load does not move it), then
# BENCH_BOOTS_WALL (3) each in plain TCG wall-clock time as a cross-check.
# Each boot runs bench/bench.py (every row, or BENCH_ROWS).
#
# Results go to $DEVMEM_CACHE/results/bench-<time>/: samples.csv (raw),
# bench-summary.tsv, table.md, chart.png, and each boot's VM logs.
# BENCH_DOC=1 (make bench) also writes the table and chart to
# Documentation/performance.md and Documentation/bench-chart.png.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

flavors=${*:-c rust}
boots_icount=${BENCH_BOOTS_ICOUNT:-5}
boots_wall=${BENCH_BOOTS_WALL:-3}
t0=$SECONDS

tree=$("$DEVMEM_ROOT/tools/prepare-tree.sh")
declare -A build
for f in $flavors; do
	build[$f]=$("$DEVMEM_ROOT/tools/build-kernel.sh" "bench-$f")
done
first=${flavors%% *}
tools=$("$DEVMEM_ROOT/tools/build-selftest-tools.sh" "${build[$first]}")
say "bench: kernels ready in $((SECONDS - t0)) s"

results=$DEVMEM_CACHE/results/bench-$(date +%Y%m%d-%H%M%S)
mkdir -p "$results"
samples=$results/samples.csv
echo "flavor,mode,boot,row,value,unit" >"$samples"

# The scale rows (bench.py rows_scale: bind-rx of 1 to 8 GiB) run in boots
# of their own, with the memory those buffers need: BENCH_SCALE_BOOTS_ICOUNT
# (2) and BENCH_SCALE_BOOTS_WALL (1) per flavor, a VM of BENCH_SCALE_MEMORY
# (14G) and udmabuf's size limit raised to match.
rows=${BENCH_ROWS:-pp fill bind tcp niov ring scale}
main_rows=$(tr ' ' '\n' <<<"$rows" | { grep -vx scale || true; } | xargs)
scale_rows=$(tr ' ' '\n' <<<"$rows" | { grep -x scale || true; } | xargs)
scale_icount=${BENCH_SCALE_BOOTS_ICOUNT:-2}
scale_wall=${BENCH_SCALE_BOOTS_WALL:-1}
scale_memory=${BENCH_SCALE_MEMORY:-14G}
nflavors=$(wc -w <<<"$flavors")
total=0
[ -n "$main_rows" ] && total=$(( (boots_icount + boots_wall) * nflavors ))
[ -n "$scale_rows" ] && total=$(( total + (scale_icount + scale_wall) * nflavors ))
k=0
fail=0
# boot MODE INDEX FLAVOR ROWS MEMORY SIZE_LIMIT_MB TIMEOUT
boot() {
	local mode=$1 i=$2 f=$3 brows=$4 mem=$5 limit=$6 tmo=$7 bt=$SECONDS
	local qemu_opts=(-icount shift=0,sleep=off) R got tag=$mode
	[ "$mode" = wall ] && qemu_opts=()
	[ "$brows" = scale ] && tag=scale-$mode
	R=$results/$tag-$f-$i
	k=$((k + 1))
	if ! VM_QEMU_OPTS="${qemu_opts[*]}" VM_MEMORY=$mem \
		VM_APPEND="udmabuf.size_limit_mb=$limit" \
		VM_RODIRS="$tree $VENV $tools" \
		"$DEVMEM_ROOT/tools/vm-run.sh" -t "$tmo" --bench "${build[$f]}" "$R" \
		env DEVMEM_TREE="$tree" DEVMEM_TOOLS="$tools" BENCH_ROWS="$brows" \
		BENCH_SCALE="${BENCH_SCALE:-}" BENCH_TCP_MIB="${BENCH_TCP_MIB:-256}" \
		BENCH_SCALE_MIB="${BENCH_SCALE_MIB:-}" BENCH_PERF="${BENCH_PERF:-}" \
		"$VENV/bin/python" "$DEVMEM_ROOT/bench/bench.py" "$R/bench.out"; then
		say "bench: boot $k/$total ($f, $tag) failed: $(cat "$R/verdict" 2>/dev/null); see $R"
		fail=1
	fi
	# A boot that died keeps the rows it finished (bench.py writes each as
	# it comes).
	local out=$R/bench.out
	[ -f "$out" ] || out=$R/bench.out.part
	[ -f "$out" ] &&
		awk -v f="$f" -v m="$mode" -v b="$i" '{ print f "," m "," b "," $1 "," $2 "," $3 }' \
			"$out" >>"$samples"
	got=0
	[ -f "$out" ] && got=$(wc -l <"$out")
	say "bench: boot $k/$total ($f, $tag #$i): $got numbers in $((SECONDS - bt)) s"
}
for mode in icount wall; do
	n=$boots_icount ns=$scale_icount
	[ $mode = wall ] && n=$boots_wall ns=$scale_wall
	if [ -n "$main_rows" ]; then
		for i in $(seq 1 "$n"); do
			for f in $flavors; do
				# 4 GiB: the 1 GiB bind rows hold up to two 1 GiB
				# buffers (udmabuf pins its memfd's pages). udmabuf
				# refuses buffers over size_limit_mb (64 by default).
				boot $mode "$i" "$f" "$main_rows" 4G 2048 1800
			done
		done
	fi
	if [ -n "$scale_rows" ]; then
		for i in $(seq 1 "$ns"); do
			for f in $flavors; do
				boot $mode "$i" "$f" scale "$scale_memory" 16384 3600
			done
		done
	fi
done

cmd="make bench"
[ -n "${BENCH_ROWS:-}${BENCH_SCALE:-}${BENCH_TCP_MIB:-}${BENCH_SCALE_MIB:-}" ] &&
	cmd="BENCH_ROWS='${BENCH_ROWS:-}' BENCH_SCALE='${BENCH_SCALE:-}' BENCH_TCP_MIB='${BENCH_TCP_MIB:-256}' BENCH_SCALE_MIB='${BENCH_SCALE_MIB:-}' $cmd"
[ "$boots_icount/$boots_wall" != 5/3 ] &&
	cmd="BENCH_BOOTS_ICOUNT=$boots_icount BENCH_BOOTS_WALL=$boots_wall $cmd"
[ "$scale_icount/$scale_wall" != 2/1 ] &&
	cmd="BENCH_SCALE_BOOTS_ICOUNT=$scale_icount BENCH_SCALE_BOOTS_WALL=$scale_wall $cmd"
"$VENV/bin/python" "$DEVMEM_ROOT/bench/report.py" "$results" "$cmd"

if [ "${BENCH_DOC:-0}" = 1 ]; then
	doc=$DEVMEM_ROOT/Documentation/performance.md
	# Sections written by hand (analysis, limits, earlier runs) follow the
	# marker and are kept.
	marker='<!-- Everything below is kept by make bench. -->'
	kept=$(sed -n "/^$marker\$/,\$p" "$doc" 2>/dev/null || true)
	{
		echo "# Performance"
		echo
		echo "Generated by \`tools/bench.sh\` on $(date -u +%Y-%m-%d), $(nproc) host CPUs,"
		echo "$((SECONDS - t0)) s in all (see README.md, Benchmarks, for what each row measures)."
		echo "Rust/C is the ratio of medians over the boots of each flavor."
		echo
		cat "$results/table.md"
		echo
		echo "![Rust/C per row and the fill-level curves](bench-chart.png)"
		if [ -f "$results/projection.md" ]; then
			echo
			echo "## Bind cost and metadata against dma-buf size, projected"
			echo
			cat "$results/projection.md"
		fi
		echo
		if [ -n "$kept" ]; then
			echo "$kept"
		else
			echo "$marker"
		fi
	} >"$doc"
	cp "$results/chart.png" "$DEVMEM_ROOT/Documentation/bench-chart.png"
	say "bench: wrote $doc"
fi
say "bench: done in $((SECONDS - t0)) s; results in $results"
exit $fail

# devmem-rs: entry points. See README.md.
.PHONY: bench check setup series-check

check:
	tools/check.sh

setup:
	tools/setup.sh

# The recycling benchmarks, C against Rust (about 40 min; not part of check).
# Writes Documentation/performance.md and Documentation/bench-chart.png.
bench:
	BENCH_DOC=1 tools/bench.sh

# Builds the kernel at every prefix of patches/ (slow; not part of check).
series-check:
	tools/series-check.sh

kernel-%:
	tools/build-kernel.sh $*

# devmem-rs: entry points. See README.md.
.PHONY: bench check mutation-check quick series series-check setup

# Everything, both flavors (CI runs this). `make check FLAVORS=rust` for one.
check:
	tools/check.sh

# For iterating: KUnit and the netlink suites of one flavor (rust unless
# FLAVORS says otherwise), no lints or driver builds; a few minutes once the
# kernel is built. It says PARTIAL run; CI=true refuses it.
QUICK_SUITES = nl_bind nl_lease nl_fuzz dmabuf_get
quick:
	CHECK_QUICK=1 FLAVORS="$(or $(FLAVORS),rust)" CHECK_SUITES="$(QUICK_SUITES)" tools/check.sh

setup:
	tools/setup.sh

# The benchmarks, C against Rust (about 95 min with the scale boots at the default boot counts;
# 67 min with BENCH_BOOTS_ICOUNT=3 BENCH_BOOTS_WALL=1; not part of check).
# Writes Documentation/performance.md and Documentation/bench-chart.png.
bench:
	BENCH_DOC=1 tools/bench.sh

# The upstream submission: three series with cover letters in results/series.
series:
	tools/series.sh

# Builds every prefix of the exported series, both flavors (about an hour per
# flavor; not part of check). `make series-check FLAVORS=rust` for one.
series-check:
	tools/series-check.sh $(or $(FLAVORS),c rust)

# Deliberate breaks of the Rust provider and netdevsim (tools/mutations/), each run against
# the tests that should catch it; fails if one survives (one VM boot per
# break; not part of check). `make mutation-check MUTATIONS="a b"` for some.
mutation-check:
	tools/mutation-check.sh $(MUTATIONS)

kernel-%:
	tools/build-kernel.sh $*

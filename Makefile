# devmem-rs: entry points. See README.md.
.PHONY: check setup series-check

check:
	tools/check.sh

setup:
	tools/setup.sh

# Builds the kernel at every prefix of patches/ (slow; not part of check).
series-check:
	tools/series-check.sh

kernel-%:
	tools/build-kernel.sh $*

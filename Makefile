# devmem-rs: entry points. See README.md.
.PHONY: check setup kernel-c

check:
	tools/check.sh

setup:
	tools/setup.sh

kernel-%:
	tools/build-kernel.sh $*

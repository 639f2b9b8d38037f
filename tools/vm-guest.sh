#!/bin/bash
# Runs inside the VM (as init's command): run the test command, then collect
# what the host judges the run by. Results go to the shared --rwdir, since
# virtme-ng's own exit status does not reflect the command's.
#   vm-guest.sh RESULT_DIR CMD...
R=$1
shift
here=$(cd "$(dirname "$0")" && pwd)
mountpoint -q /sys/kernel/debug || mount -t debugfs none /sys/kernel/debug
dmesg -n 1 2>/dev/null  # keep the console for the command's output

# What the debug options the verdict depends on are, in effect: the kernel
# command line, the DMA API debug filter and SLUB's checks on one cache.
{
	echo "cmdline $(cat /proc/cmdline)"
	echo "dma_debug_driver $(cat /sys/kernel/debug/dma-api/driver_filter 2>/dev/null)"
	for f in sanity_checks red_zone poison; do
		echo "slub_$f $(cat /sys/kernel/slab/kmalloc-64/$f 2>/dev/null)"
	done
	[ -w /sys/kernel/debug/kmemleak ] && echo "kmemleak on" || echo "kmemleak off"
} >"$R/debug-state"
# The boot's log (KUnit's results among it) at once, for the host to show
# while the command runs; the whole log is read again at the end.
/usr/bin/python3 "$here/kmsg-dump.py" "$R/boot.kmsg" "$R/boot.dmesg"

"$@" >"$R/out.log" 2>&1
echo $? >"$R/status"

# kmemleak ignores objects younger than 5 s: wait, then scan (synchronous)
# twice, as an object is only reported once seen unreferenced.
if [ -w /sys/kernel/debug/kmemleak ]; then
	sleep 6
	echo scan >/sys/kernel/debug/kmemleak
	echo scan >/sys/kernel/debug/kmemleak
	cat /sys/kernel/debug/kmemleak >"$R/kmemleak" 2>&1
else
	echo "kmemleak unavailable" >"$R/kmemleak.missing"
fi
# Every record with its sequence number: the host checks that none was lost
# to the ring wrapping.
/usr/bin/python3 "$here/kmsg-dump.py" "$R/kmsg" "$R/dmesg" &&
	echo done >"$R/finished"

#!/bin/bash
# Runs inside the VM (as init's command): run the test command, then collect
# what the host judges the run by. Results go to the shared --rwdir, since
# virtme-ng's own exit status does not reflect the command's.
#   vm-guest.sh RESULT_DIR CMD...
R=$1
shift
mountpoint -q /sys/kernel/debug || mount -t debugfs none /sys/kernel/debug
dmesg -n 1 2>/dev/null  # keep the console for the command's output

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
dmesg >"$R/dmesg"
echo done >"$R/finished"

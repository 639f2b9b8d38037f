#!/usr/bin/env python3
"""Copy the kernel log out of /dev/kmsg, sequence numbers included.

  kmsg-dump.py RAW_OUT DMESG_OUT

RAW_OUT gets each record as /dev/kmsg gives it ("prio,seq,usec,flags;text"),
so that tools/verdict.py can tell whether the log is whole: the first record
must be number 0 and none may be skipped. A record overwritten before it was
read shows up as a line "lost" (read() fails with EPIPE), and a last line "end" says that the copy
finished. DMESG_OUT gets the
text as dmesg prints it ("[   s.us] text"). Runs in the guest, under the
system's python3.
"""

import errno
import os
import sys


def main():
    raw_path, dmesg_path = sys.argv[1:3]
    fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
    with open(raw_path, "w") as raw, open(dmesg_path, "w") as text:
        while True:
            try:
                rec = os.read(fd, 8192)
            except BlockingIOError:
                break
            except OSError as e:
                if e.errno == errno.EPIPE:
                    raw.write("lost\n")
                    continue
                raise
            line = rec.decode(errors="replace").split("\n", 1)[0]
            raw.write(line + "\n")
            head, _, msg = line.partition(";")
            fields = head.split(",")
            usec = int(fields[2]) if len(fields) > 2 and fields[2].isdigit() else 0
            text.write(f"[{usec // 1000000:5d}.{usec % 1000000:06d}] {msg}\n")
        raw.write("end\n")
    os.close(fd)


if __name__ == "__main__":
    main()

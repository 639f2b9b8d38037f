# SPDX-License-Identifier: GPL-2.0
"""Helpers for the devmem-rs selftests: run inside the test VM, as root.

Netlink goes through the kernel tree's own YNL library and specs
(DEVMEM_TREE), ethtool included, since the distribution's ethtool is older
than the header-split settings. dma-bufs come from udmabuf over a sealed memfd.
"""

import contextlib
import ctypes
import errno
import fcntl
import filecmp
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import traceback

TREE = os.environ["DEVMEM_TREE"]
sys.path.insert(0, os.path.join(TREE, "tools/net/ynl"))
from pyynl.lib import Netlink, NlError, YnlFamily  # noqa: E402

# World-readable copies of the specs, so that tests that drop privileges can
# still open a family (the kernel tree lives under /root).
_SPECS = os.environ.get("DEVMEM_SPECS", "/tmp/devmem-specs")


def _install_specs():
    """Copies the tree's specs, or refreshes a copy that differs: the
    directory outlives a run, and a series that changes a spec (a new
    attribute) must not be tested against the spec of an earlier tree."""
    os.makedirs(f"{_SPECS}/specs", exist_ok=True)
    src = os.path.join(TREE, "Documentation/netlink")
    pairs = [(f"{src}/{f}", f"{_SPECS}/{f}") for f in os.listdir(src)
             if f.endswith(".yaml")]
    pairs += [(f"{src}/specs/{fam}.yaml", f"{_SPECS}/specs/{fam}.yaml")
              for fam in ("netdev", "ethtool", "rt-link")]
    for a, b in pairs:
        if os.path.exists(b) and filecmp.cmp(a, b, shallow=False):
            continue
        # Replaced whole: a reader (another guest's suite) never sees a
        # half-written spec.
        tmp = f"{b}.{os.getpid()}"
        shutil.copy(a, tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, b)
    for root, dirs, files in os.walk(_SPECS):
        os.chmod(root, 0o755)


_install_specs()


# The specs are the tree's own and validated there; skipping the jsonschema
# pass saves seconds per socket under TCG.
def netdev_nl():
    return YnlFamily(f"{_SPECS}/specs/netdev.yaml", schema="")


def ethtool_nl():
    return YnlFamily(f"{_SPECS}/specs/ethtool.yaml", schema="")


def genl_socket(strict=True, rcvbuf=None, timeout=None, bind=False):
    """A raw generic netlink socket with capped and extended acks, for tests
    that send hand-made messages or must see each syscall (a fuzzer, fault
    injection, a receive buffer made to overflow). Unless `bind`, it gets its
    port on its first send, inside that syscall (which fault injection
    counts)."""
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, Netlink.NETLINK_GENERIC)
    s.setsockopt(Netlink.SOL_NETLINK, Netlink.NETLINK_CAP_ACK, 1)
    s.setsockopt(Netlink.SOL_NETLINK, Netlink.NETLINK_EXT_ACK, 1)
    if strict:
        s.setsockopt(Netlink.SOL_NETLINK, Netlink.NETLINK_GET_STRICT_CHK, 1)
    if rcvbuf is not None:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    if timeout is not None:
        s.settimeout(timeout)
    if bind:
        s.bind((0, 0))
    return s


def rtnl():
    return YnlFamily(f"{_SPECS}/specs/rt-link.yaml", schema="")


# ---------------------------------------------------------------------------
# Test registry and KTAP output

class Skip(Exception):
    pass


_tests = []


def test(fn):
    _tests.append(fn)
    return fn


def run_tests(suite):
    """Run the registered tests, print KTAP, exit non-zero on any failure.
    DEVMEM_TESTS (tools/check.sh's CHECK_TESTS, a partial run) names the
    only tests to run."""
    only = os.environ.get("DEVMEM_TESTS", "").split()
    tests = [fn for fn in _tests if not only or fn.__name__ in only]
    print("TAP version 13", flush=True)
    print(f"# suite: {suite}")
    print(f"1..{len(tests)}", flush=True)
    failed = 0
    for i, fn in enumerate(tests, 1):
        name = fn.__name__
        t0 = time.monotonic()
        skip = err = None
        try:
            fn()
        except Skip as e:
            skip = e
        except Exception:
            err = traceback.format_exc()
        except BaseException:
            cleanup_all()
            raise
        # A cleanup that fails is a test that left something behind (a
        # device, a binding, a held frag), or a release check of its own
        # that failed: it fails the test, whatever the test body did.
        left = cleanup_all()
        if err is None and left:
            err = "cleanup failed: " + "; ".join(left)
        if err is not None:
            failed += 1
            for line in err.splitlines():
                print(f"# {line}")
            print(f"not ok {i} {name}", flush=True)
        elif skip is not None:
            print(f"ok {i} {name} # SKIP {skip}", flush=True)
        else:
            print(f"ok {i} {name} # time={time.monotonic() - t0:.2f}s", flush=True)
    # What the tests shared (suite_scoped) goes last; leaving something
    # behind there fails the suite.
    global _cleanups
    _cleanups = _suite_cleanups
    left = cleanup_all()
    if left:
        print(f"# suite cleanup failed: {'; '.join(left)}", flush=True)
    sys.exit(1 if failed or left else 0)


_cleanups = []
_suite_cleanups = []


def suite_cleanup_now():
    """Runs now what suite_scoped deferred: for a test that needs to itself
    what the suite shared (the one netdevsim pair's netns name)."""
    global _cleanups
    saved, _cleanups = _cleanups, _suite_cleanups
    try:
        left = cleanup_all()
    finally:
        _cleanups = saved
    if left:
        raise AssertionError(f"suite cleanup failed: {'; '.join(left)}")


def suite_scoped(make, *args):
    """Makes something a suite's tests share (a netdevsim pair, whose setup
    costs more than most tests): what `make` defers runs once the last test
    is done, not after the test that happened to make it."""
    global _cleanups
    saved, _cleanups = _cleanups, _suite_cleanups
    try:
        return make(*args)
    finally:
        _cleanups = saved


def defer(fn, *args):
    _cleanups.append((fn, args))


def cleanup_all():
    """Runs every deferred cleanup, the last deferred first, even after one
    failed; returns the failures (a description each), which the caller
    must count as a failure of the test they belong to."""
    failures = []
    while _cleanups:
        fn, args = _cleanups.pop()
        try:
            fn(*args)
        except Exception as e:  # keep cleaning up; report it
            print(f"# cleanup {fn.__name__} failed: {e!r}")
            failures.append(f"{fn.__name__}: {e!r}")
    return failures


def eq(a, b, what=""):
    if a != b:
        raise AssertionError(f"{what}: expected {b!r}, got {a!r}")


def nl_error(fn, *args, **kw):
    """Call fn expecting a netlink error; return (errno, extack dict)."""
    try:
        fn(*args, **kw)
    except NlError as e:
        return e.error, dict(e.nl_msg.extack or {})
    raise AssertionError("netlink call succeeded, an error was expected")


def errname(n):
    """Kernel name of an errno (Python calls 95 ENOTSUP; the kernel, EOPNOTSUPP)."""
    if n == errno.EOPNOTSUPP:
        return "EOPNOTSUPP"
    return errno.errorcode.get(n, str(n))


def describe_error(e):
    """One line for an exception: errno name and extack message if netlink."""
    if isinstance(e, NlError):
        ack = dict(e.nl_msg.extack or {})
        return f"{errname(e.error)} {ack.get('msg', '')}".strip()
    if isinstance(e, OSError):
        return errname(e.errno)
    return repr(e).replace("\n", " ")


def expect_nl_error(fn, err, msg=None, **extack):
    """Assert the errno, the extack message and other extack keys."""
    got, ack = nl_error(fn)
    eq(errname(got), errname(err), "errno")
    if msg is not None:
        eq(ack.get("msg"), msg, "extack message")
    for k, v in extack.items():
        key = k.replace("_", "-")
        eq(ack.get(key), v, f"extack {key}")
    return ack


def metric(name, value):
    """Record a measurement for the host to print (DEVMEM_OUT/metrics)."""
    out = os.environ.get("DEVMEM_OUT")
    if out:
        with open(os.path.join(out, "metrics"), "a") as f:
            f.write(f"{name} {value}\n")


def wait_for(cond, what, timeout=5.0):
    """Poll cond() until true; fail after `timeout` seconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def tcp_listening(port):
    """Is anything listening on TCP port `port` (v4 or v6)?"""
    for f in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(f) as fh:
            next(fh)
            for line in fh:
                parts = line.split()
                if int(parts[1].rsplit(":", 1)[1], 16) == port and parts[3] == "0A":
                    return True
    return False


def sh(cmd, check=True):
    r = subprocess.run(cmd, shell=True, capture_output=True, text=True)
    if check and r.returncode:
        raise AssertionError(f"`{cmd}` exited {r.returncode}: {r.stderr.strip()}")
    return r.stdout


# ---------------------------------------------------------------------------
# udmabuf

UDMABUF_CREATE = 0x40187542  # _IOW('u', 0x42, struct udmabuf_create)
F_ADD_SEALS = 1033
F_SEAL_SHRINK = 0x0002
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def udmabuf(pages=16):
    """A dma-buf fd over a sealed memfd of the given size."""
    size = pages * PAGE_SIZE
    memfd = os.memfd_create("devmem-test", os.MFD_ALLOW_SEALING)
    try:
        os.ftruncate(memfd, size)
        fcntl.fcntl(memfd, F_ADD_SEALS, F_SEAL_SHRINK)
        dev = os.open("/dev/udmabuf", os.O_RDWR)
        try:
            arg = struct.pack("IIQQ", memfd, 0, 0, size)
            fd = _ioctl_int(dev, UDMABUF_CREATE, arg)
        finally:
            os.close(dev)
    finally:
        os.close(memfd)
    return fd


THP = "/sys/kernel/mm/transparent_hugepage/shmem_enabled"


class _no_shmem_thp:
    """Huge pages off for shmem (memfd) while a buffer is made, so that its
    pages are 4 KiB ones."""

    def __enter__(self):
        with open(THP) as f:
            self.old = re.search(r"\[(\w+)\]", f.read()).group(1)
        with open(THP, "w") as f:
            f.write("never")

    def __exit__(self, *exc):
        with open(THP, "w") as f:
            f.write(self.old)


def udmabuf_small_pages(size):
    """A udmabuf over 4 KiB shmem pages (huge pages off while it is made);
    pages that happen to be adjacent share a DMA segment."""
    with _no_shmem_thp():
        return udmabuf(pages=size // PAGE_SIZE)


def udmabuf_scattered(size):
    """A udmabuf over 4 KiB pages of which no two are adjacent, so that its
    mapping has one DMA segment per page: the memfd's pages are allocated
    in turn with another memfd's, which is then dropped."""
    with _no_shmem_thp():
        memfd = os.memfd_create("devmem-scattered", os.MFD_ALLOW_SEALING)
        other = os.memfd_create("devmem-gaps")
        try:
            os.ftruncate(memfd, size)
            os.ftruncate(other, size)
            for off in range(0, size, PAGE_SIZE):
                os.pwrite(memfd, b"x", off)
                os.pwrite(other, b"x", off)
            fcntl.fcntl(memfd, F_ADD_SEALS, F_SEAL_SHRINK)
            dev = os.open("/dev/udmabuf", os.O_RDWR)
            try:
                return _ioctl_int(dev, UDMABUF_CREATE,
                                  struct.pack("IIQQ", memfd, 0, 0, size))
            finally:
                os.close(dev)
        finally:
            os.close(other)
            os.close(memfd)


# ---------------------------------------------------------------------------
# dma-buf system heap (CONFIG_DMABUF_HEAPS_SYSTEM)

DMA_HEAP_IOCTL_ALLOC = 0xc0184800  # _IOWR('H', 0, struct dma_heap_allocation_data)


def system_heap(size):
    """A dma-buf of `size` bytes from /dev/dma_heap/system. The heap takes
    the largest of its page orders (8, 4, 0) that fits what is left of the
    size, so the size decides the mix of 1 MiB, 64 KiB and 4 KiB blocks
    (each its own DMA segment unless the memory is short of high orders)."""
    fd = os.open("/dev/dma_heap/system", os.O_RDWR)
    try:
        arg = struct.pack("QIIQ", size, 0, os.O_RDWR | os.O_CLOEXEC, 0)
        buf = ctypes.create_string_buffer(arg, len(arg))
        if _libc.ioctl(fd, ctypes.c_ulong(DMA_HEAP_IOCTL_ALLOC), buf) < 0:
            e = ctypes.get_errno()
            raise OSError(e, os.strerror(e))
        return struct.unpack("QIIQ", buf.raw)[1]
    finally:
        os.close(fd)


_libc = ctypes.CDLL(None, use_errno=True)


# ---------------------------------------------------------------------------
# Fault injection and the kernel log

FAIL_PAGE_ALLOC = "/sys/kernel/debug/fail_page_alloc"


@contextlib.contextmanager
def failing_page_allocs(min_order):
    """Inside the block, every page allocation of this task (not of other
    tasks) of order `min_order` and up fails, quietly: what makes a heap
    fall back to small pages, or kvmalloc() to vmalloc(), as on fragmented
    memory. The attributes are restored afterwards."""
    attrs = ("probability", "interval", "times", "task-filter", "min-order",
             "ignore-gfp-wait", "ignore-gfp-highmem", "verbose")
    saved = {a: open(f"{FAIL_PAGE_ALLOC}/{a}").read().strip() for a in attrs}

    def put(path, value):
        with open(path, "w") as f:
            f.write(value)
    try:
        for a, v in (("verbose", "0"), ("task-filter", "Y"), ("min-order", str(min_order)),
                     ("ignore-gfp-wait", "N"), ("ignore-gfp-highmem", "N"),
                     ("interval", "1"), ("times", "-1"), ("probability", "100")):
            put(f"{FAIL_PAGE_ALLOC}/{a}", v)
        put("/proc/self/make-it-fail", "1")
        try:
            yield
        finally:
            put("/proc/self/make-it-fail", "0")
    finally:
        for a, v in saved.items():
            put(f"{FAIL_PAGE_ALLOC}/{a}", v)


class KernelLog:
    """The kernel log from now on (/dev/kmsg, from its end)."""

    def __init__(self):
        self.fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
        os.lseek(self.fd, 0, os.SEEK_END)

    def lines(self):
        """The messages logged since the last call (or since creation)."""
        out = []
        while True:
            try:
                rec = os.read(self.fd, 8192).decode(errors="replace")
            except BlockingIOError:
                return out
            except OSError as e:  # EPIPE: overwritten records were skipped
                if e.errno != errno.EPIPE:
                    raise
                continue
            out.append(rec.split(";", 1)[-1].rstrip("\n"))

    def close(self):
        os.close(self.fd)


def _ioctl_int(fd, req, arg):
    """ioctl whose return value (a new fd) matters, unlike fcntl.ioctl's."""
    buf = ctypes.create_string_buffer(arg, len(arg))
    r = _libc.ioctl(fd, ctypes.c_ulong(req), buf)
    if r < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return r


# ---------------------------------------------------------------------------
# Privileges and namespaces, in a forked child

CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
NOBODY = 65534
PR_SET_DUMPABLE = 4


def unshare(flags):
    if _libc.unshare(flags) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def map_root_to(uid):
    """Be root in the new user namespace (as `unshare -r`), so that the
    tools it runs keep their capabilities across exec."""
    with open("/proc/self/setgroups", "w") as f:
        f.write("deny")
    for m in ("uid_map", "gid_map"):
        with open(f"/proc/self/{m}", "w") as f:
            f.write(f"0 {uid} 1")


def drop_to_nobody():
    os.setgroups([])
    os.setresgid(NOBODY, NOBODY, NOBODY)
    os.setresuid(NOBODY, NOBODY, NOBODY)
    # A uid change clears "dumpable", which makes /proc/self root's.
    _libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)


def in_child(fn, *, before_exit=None):
    """Run fn in a forked child; return what it wrote as its result line."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            res = fn()
        except BaseException as e:  # report, never return into the runner
            res = f"exception {describe_error(e)}"
        os.write(w, (str(res) + "\n").encode())
        os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        out = f.read().strip()
    os.waitpid(pid, 0)
    return out


def errno_of(fn):
    try:
        fn()
    except Exception as e:
        return describe_error(e).split()[0]
    return "ok"


def dmabuf_attachments(fd):
    """Attached devices of the dma-buf behind fd, from debugfs bufinfo."""
    ino = os.fstat(fd).st_ino
    with open("/sys/kernel/debug/dma_buf/bufinfo") as f:
        text = f.read()
    devs, cur, in_att = [], None, False
    for line in text.splitlines():
        parts = line.split()
        # Buffer lines: size flags mode count exp_name ino name
        if len(parts) >= 6 and parts[0].isdigit() and parts[5].isdigit():
            cur = int(parts[5])
            in_att = False
            continue
        if line.strip().startswith("Attached Devices"):
            in_att = True
            continue
        if in_att and cur == ino:
            s = line.strip()
            if s.startswith("Total"):
                in_att = False
            elif s:
                devs.append(s)
    return devs


def seal_write(fd):
    """F_SEAL_WRITE on the memfd `fd`: 0, or the errno (EBUSY while a page
    of it is pinned or mapped shared and writable)."""
    try:
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_WRITE)
        return 0
    except OSError as e:
        return e.errno


def dmabuf_file_count(fd):
    """The reference count of the dma-buf file behind fd, from bufinfo: the
    user's fd and mappings, and one for each binding that holds it (a
    binding keeps its dma-buf until it is freed)."""
    ino = os.fstat(fd).st_ino
    with open("/sys/kernel/debug/dma_buf/bufinfo") as f:
        for line in f:
            p = line.split()
            if len(p) >= 6 and p[0].isdigit() and p[5].isdigit() and int(p[5]) == ino:
                return int(p[3])
    raise AssertionError(f"dma-buf of fd {fd} not in bufinfo")


def unheld(fd, user_refs=1):
    """No binding holds the dma-buf behind fd any more: no attachment, and
    no reference but the user's `user_refs` (its fds and mappings). A
    binding keeps its dma-buf until it is freed, while an RX binding
    detaches already at unbind, so the attachment alone does not show that
    the binding was freed."""
    return dmabuf_attachments(fd) == [] and dmabuf_file_count(fd) == user_refs


def dma_mappings(ns):
    """Live scatter-gather DMA mappings (a dma-buf's; page pools map single
    pages) of netdevsim bus device `ns`, from CONFIG_DMA_API_DEBUG."""
    name = f"netdevsim{ns.id}"
    with open("/sys/kernel/debug/dma-api/dump") as f:
        return [line for line in f
                if line.split()[1:3] == [name, "scatter-gather"]]


# ---------------------------------------------------------------------------
# netdevsim

NSIM_BUS = "/sys/bus/netdevsim"
NSIM_DFS = "/sys/kernel/debug/netdevsim"
# Bus device IDs are never reused within a boot, across suites: dma-debug
# names mappings by device name, and a binding of an earlier suite's device
# can outlive it until its last net_iovs come back (a deferred skb on an
# idle CPU), so a new device of the same name would see its mappings.
_NSIM_ID_FILE = "/tmp/devmem-nsim-next-id"


def _nsim_next_id():
    fd = os.open(_NSIM_ID_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        nid = int(os.read(fd, 32) or b"100")
        os.lseek(fd, 0, os.SEEK_SET)
        os.ftruncate(fd, 0)
        os.write(fd, str(nid + 1).encode())
        return nid
    finally:
        os.close(fd)


class Nsim:
    """A netdevsim bus device with its ports, deleted at test cleanup."""

    def __init__(self, ports=1, queues=4, ns=None):
        self.id = _nsim_next_id()
        with open(f"{NSIM_BUS}/new_device", "w") as f:
            f.write(f"{self.id} {ports} {queues}")
        self.alive = True
        defer(self.delete)
        self.ifnames = []
        path = f"{NSIM_BUS}/devices/netdevsim{self.id}/net"
        for _ in range(100):
            if os.path.isdir(path) and len(os.listdir(path)) == ports:
                break
            time.sleep(0.05)
        # Ports in port order.
        names = os.listdir(path)
        names.sort(key=lambda n: int(open(f"{path}/{n}/phys_port_name").read()
                                     .strip().lstrip("p") or 0)
                   if os.path.exists(f"{path}/{n}/phys_port_name") else 0)
        self.ifnames = names
        if ns:
            for n in names:
                sh(f"ip link set dev {n} netns {ns}")

    def ifname(self, port=0):
        return self.ifnames[port]

    def ifindex(self, port=0):
        return socket.if_nametoindex(self.ifnames[port])

    def dfs(self, port, name):
        return f"{NSIM_DFS}/netdevsim{self.id}/ports/{port}/{name}"

    def set_dma(self, on, port=0):
        with open(self.dfs(port, "dma"), "w") as f:
            f.write("1" if on else "0")

    def get_dma(self, port=0):
        with open(self.dfs(port, "dma")) as f:
            return f.read().strip() == "y"

    def up(self, port=0):
        sh(f"ip link set dev {self.ifnames[port]} up")

    def delete(self):
        if not self.alive:
            return
        self.alive = False
        with open(f"{NSIM_BUS}/del_device", "w") as f:
            f.write(f"{self.id}")


def dmabuf(pages=16):
    """A udmabuf of `pages` pages, closed at test cleanup."""
    fd = udmabuf(pages)
    defer(os.close, fd)
    return fd


def ready_nsim(queues=4, dma=True, hds=True, up=True):
    """A one-port netdevsim that can take a binding (unless told otherwise)."""
    ns = Nsim(ports=1, queues=queues)
    if dma:
        ns.set_dma(True)
    if hds:
        set_hds(ns.ifindex())
    if up:
        ns.up()
    return ns


def set_hds(ifindex, split="enabled", thresh=0, eth=None):
    eth = eth or ethtool_nl()
    eth.rings_set({"header": {"dev-index": ifindex},
                   "tcp-data-split": split, "hds-thresh": thresh})


def bind_rx(nl, ifindex, fd, queues, rx_page_size=None):
    req = {"ifindex": ifindex, "fd": fd,
           "queues": [{"id": q, "type": "rx"} for q in queues]}
    if rx_page_size is not None:
        req["rx-page-size"] = rx_page_size
    return nl.bind_rx(req)


def dmabuf_get(nl, bid):
    """A binding's state (dmabuf-get), as a dict."""
    return nl.dmabuf_get({"id": bid})


def dmabuf_dump(nl):
    """Every binding the socket may read, by ID."""
    return {b["id"]: b for b in nl.dmabuf_get({}, dump=True)}


def queue_dmabuf(nl, ifindex, q):
    return nl.queue_get({"ifindex": ifindex, "id": q, "type": "rx"}).get("dmabuf")


def page_pools(nl, ifindex):
    return [p for p in nl.page_pool_get({}, dump=True) if p.get("ifindex") == ifindex]


class NsimPair:
    """Two linked one-port netdevsim devices: `local` in this netns, `remote`
    in the named netns REMOTE_NS, addressed and up. The environment a
    NetDrvEpEnv test expects (REMOTE_TYPE=netns), with `queues` queues."""

    REMOTE_NS = "devmem-remote"
    V4 = ("192.0.2.1", "192.0.2.2")
    V6 = ("2001:db8:1::1", "2001:db8:1::2")

    def __init__(self, queues=4):
        sh(f"ip netns add {self.REMOTE_NS}")
        defer(sh, f"ip netns del {self.REMOTE_NS}", False)
        self.local = Nsim(ports=1, queues=queues)
        self.remote = Nsim(ports=1, queues=queues, ns=self.REMOTE_NS)
        self.ifname = self.local.ifname()
        self.remote_ifname = self.remote.ifname()
        rifindex = int(sh(f"ip netns exec {self.REMOTE_NS} cat "
                          f"/sys/class/net/{self.remote_ifname}/ifindex"))
        with open("/proc/self/ns/net") as a, \
                open(f"/run/netns/{self.REMOTE_NS}") as b:
            with open(f"{NSIM_BUS}/link_device", "w") as f:
                f.write(f"{a.fileno()}:{self.local.ifindex()} {b.fileno()}:{rifindex}")
        rx = f"ip netns exec {self.REMOTE_NS} "
        sh(f"ip addr add {self.V4[0]}/24 dev {self.ifname}")
        sh(f"ip -6 addr add {self.V6[0]}/64 dev {self.ifname} nodad")
        sh(f"ip link set dev {self.ifname} up")
        sh(f"{rx}ip addr add {self.V4[1]}/24 dev {self.remote_ifname}")
        sh(f"{rx}ip -6 addr add {self.V6[1]}/64 dev {self.remote_ifname} nodad")
        sh(f"{rx}ip link set dev {self.remote_ifname} up")
        sh(f"{rx}ip link set dev lo up")
        # Ephemeral ports of the remote's own connections from a range the
        # local namespace never hands out: a test that picks a free local
        # port with bind(0) for a remote listener (upstream's rand_port())
        # could otherwise get one a live remote connection holds.
        sh(f"{rx}sysctl -qw net.ipv4.ip_local_port_range='16384 32767'")
        # Upstream's senders also bind the remote end of a connection to
        # the listener's port (socat's bind=ADDR:PORT). The remote closes
        # first, so that port stays in TIME_WAIT there for a minute, where
        # the local bind(0) that picks the next test's port cannot see it:
        # a later test drawing it failed with EADDRINUSE (twice in one CI
        # run, 2026-12-06). A test peer over a simulated link needs no
        # TIME_WAIT, so the remote keeps none.
        sh(f"{rx}sysctl -qw net.ipv4.tcp_max_tw_buckets=0")

    def env(self):
        """NetDrvEpEnv's configuration (what net.config would hold)."""
        return {"NETIF": self.ifname,
                "LOCAL_V4": self.V4[0], "REMOTE_V4": self.V4[1],
                "LOCAL_V6": self.V6[0], "REMOTE_V6": self.V6[1],
                "REMOTE_TYPE": "netns", "REMOTE_ARGS": self.REMOTE_NS}


# ---------------------------------------------------------------------------
# devmem TCP receive from Python (what ncdevmem does, minus the C)

MSG_SOCK_DEVMEM = 0x2000000
SCM_DEVMEM_LINEAR = 78
SCM_DEVMEM_DMABUF = 79
SO_DEVMEM_DONTNEED = 80
DMABUF_CMSG = struct.Struct("QIIII")  # offset, size, token, dmabuf id, flags
SO_DEVMEM_REFILL_RING = 85
DMABUF_CMSG_REFILL_RING = 1


class RefillRing:
    """User space's side of a refill ring (Documentation/refill-ring.md):
    a memfd sealed against shrinking, mapped shared. `request()` is the
    bind-rx nest, `attach(reply)` takes the layout the kernel replied with,
    and `give(offsets, flush)` produces entries at tail, calling `flush`
    (dmabuf-flush) while the ring is full."""

    def __init__(self, entries=1024, line=64):
        import mmap
        self.entries = entries
        self.bytes = 2 * line + 8 * entries
        size = -(-self.bytes // PAGE_SIZE) * PAGE_SIZE
        self.memfd = os.memfd_create("refill-ring", os.MFD_ALLOW_SEALING)
        defer(os.close, self.memfd)
        os.ftruncate(self.memfd, size)
        fcntl.fcntl(self.memfd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SHRINK)
        self.map = mmap.mmap(self.memfd, size)
        self._head = self._tail = self._slots = None
        defer(self.close)
        self.head_off = self.tail_off = self.entries_off = None
        self.tail = 0
        self.given = 0

    def request(self):
        return {"fd": self.memfd, "offset": 0, "entries": self.entries}

    def close(self):
        # The ctypes views export the mapping's buffer: drop them first.
        self._head = self._tail = self._slots = None
        self.map.close()

    def attach(self, reply):
        r = reply["refill-ring"]
        self.head_off = r["head-offset"]
        self.tail_off = r["tail-offset"]
        self.entries_off = r["entries-offset"]
        # Whole, aligned loads and stores, as the kernel's are: ctypes
        # scalars over the mapping, not byte copies that could tear.
        self._head = ctypes.c_uint32.from_buffer(self.map, self.head_off)
        self._tail = ctypes.c_uint32.from_buffer(self.map, self.tail_off)
        self._slots = (ctypes.c_uint64 * self.entries).from_buffer(
            self.map, self.entries_off)
        self.tail = self._tail.value

    def head(self):
        return self._head.value

    def set_tail(self, tail):
        """Publish `tail` (also what a hostile user may write)."""
        self.tail = tail & 0xffffffff
        self._tail.value = self.tail

    def give(self, offsets, flush):
        """Writes one entry per offset. x86 keeps stores in program order,
        so the entry is visible before the tail that publishes it."""
        mask = self.entries - 1
        for off in offsets:
            while (self.tail - self.head()) & 0xffffffff >= self.entries:
                flush()
            self._slots[self.tail & mask] = off
            self.set_tail(self.tail + 1)
            self.given += 1

    def optin(self, sock, dmabuf_id, memfd=None):
        """SO_DEVMEM_REFILL_RING on `sock` (a listener's accepted sockets
        inherit it), proving access with `memfd` (the ring's by default)."""
        sock.setsockopt(socket.SOL_SOCKET, SO_DEVMEM_REFILL_RING,
                        struct.pack("Ii", dmabuf_id,
                                    self.memfd if memfd is None else memfd))


class DevmemRx:
    """A devmem TCP receiver on `pair.local`: header split on, RSS kept off
    queue `queue`, an ntuple rule steering TCP port `port` to it, a dma-buf
    bound to it (`fd`, which it takes over, or a udmabuf of `pages` pages;
    net_iovs of `rx_page_size` if given), and a listening socket.
    `bind(fd)`, if given, makes the binding instead (through a netkit
    lease, say) and returns its ID; the receiver's own netlink socket then
    only reads. Everything is undone at test cleanup."""

    def __init__(self, pair, port, queue=2, pages=1024, fd=None,
                 rx_page_size=None, bind=None, ring=None, optin=True):
        self.pair, self.port, self.queue = pair, port, queue
        # A dma-buf handed in is ours from here, whatever fails below.
        self.fd, self.mem = fd, None
        defer(self.drop_buffer)
        self.user_refs = None
        ifname, ifindex = pair.ifname, pair.local.ifindex()
        pair.local.set_dma(True)
        set_hds(ifindex)
        sh(f"ethtool -X {ifname} equal {queue}")
        defer(sh, f"ethtool -X {ifname} default", False)
        out = sh(f"ethtool -N {ifname} flow-type tcp6 dst-ip {pair.V6[0]} "
                 f"dst-port {port} action {queue}")
        rule = int(out.split("ID")[-1].strip().rstrip("."))
        defer(sh, f"ethtool -N {ifname} delete {rule}", False)
        if self.fd is None:
            self.fd = udmabuf(pages)
        self.size = os.lseek(self.fd, 0, os.SEEK_END)
        os.lseek(self.fd, 0, os.SEEK_SET)
        import mmap
        self.mem = mmap.mmap(self.fd, self.size)
        # The user's own references: its fd, the mapping (and the fd
        # CPython's mmap keeps); a binding adds one until it is freed.
        self.user_refs = dmabuf_file_count(self.fd)
        self.last_frags = []
        self.nl = netdev_nl()
        defer(self.close_binding)
        self.ring = ring
        if ring is not None:
            req = {"ifindex": ifindex, "fd": self.fd,
                   "queues": [{"id": queue, "type": "rx"}],
                   "refill-ring": ring.request()}
            if rx_page_size is not None:
                req["rx-page-size"] = rx_page_size
            reply = self.nl.bind_rx(req)
            ring.attach(reply)
            self.id = reply["id"]
        elif bind is None:
            self.id = bind_rx(self.nl, ifindex, self.fd, [queue],
                              rx_page_size)["id"]
        else:
            self.id = bind(self.fd)
        self.pools = [p["id"] for p in page_pools(self.nl, ifindex)
                      if p.get("dmabuf") == self.id]
        self.lsock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        defer(self.lsock.close)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind((pair.V6[0], port))
        if ring is not None and optin:
            ring.optin(self.lsock, self.id)
        self.lsock.listen(1)
        self.conn = None
        self.ring_frags = []

    def drop_buffer(self):
        """Let go of the dma-buf (mapping and fd), as a user may while it is
        bound; the binding keeps its own reference."""
        if self.mem is not None:
            self.mem.close()
            self.mem = None
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def close_binding(self):
        if self.nl is not None:
            self.nl.close()
            self.nl = None

    def accept(self, timeout=30):
        self.lsock.settimeout(timeout)
        self.conn, _ = self.lsock.accept()
        self.conn.settimeout(timeout)
        defer(self.conn.close)
        return self.conn

    def recv(self, bufsize=65536, read_back=True):
        """One recvmsg(MSG_SOCK_DEVMEM): (payload bytes in order, tokens,
        linear byte count); payload b"" at EOF. The dma-buf frags' (offset,
        size) are left in last_frags. Without read_back (the buffer was
        dropped), a dma-buf frag's bytes come back as zeroes."""
        data, anc, _, _ = self.conn.recvmsg(bufsize, 4096, MSG_SOCK_DEVMEM)
        out, tokens, linear, pos = [], [], 0, 0
        self.last_frags = []
        self.ring_frags = []
        for level, typ, c in anc:
            if level != socket.SOL_SOCKET:
                continue
            off, size, token, dmabuf_id, flags = DMABUF_CMSG.unpack(c[:DMABUF_CMSG.size])
            if typ == SCM_DEVMEM_DMABUF:
                assert dmabuf_id == self.id, f"frag from dma-buf {dmabuf_id}"
                out.append(self.mem[off:off + size] if read_back else bytes(size))
                if flags & DMABUF_CMSG_REFILL_RING:
                    assert token == 0xffffffff, f"ring frag with token {token}"
                    self.ring_frags.append(off)
                else:
                    assert flags == 0, f"cmsg flags {flags:#x}"
                    tokens.append(token)
                self.last_frags.append((off, size))
            elif typ == SCM_DEVMEM_LINEAR:
                out.append(data[pos:pos + size])
                pos += size
                linear += size
        return b"".join(out), tokens, linear

    def flush(self):
        """dmabuf-flush: the kernel drains the ring now."""
        self.nl.dmabuf_flush({"id": self.id})

    def give_back(self, offsets=None):
        """Return ring frags (those of the last recv by default) through
        the ring."""
        self.ring.give(self.ring_frags if offsets is None else offsets,
                       self.flush)

    def dontneed(self, tokens):
        """Give frags back; returns how many the kernel freed."""
        freed = 0
        for i in range(0, len(tokens), 128):
            arr = b"".join(struct.pack("II", t, 1) for t in tokens[i:i + 128])
            freed += _setsockopt_ret(self.conn.fileno(), socket.SOL_SOCKET,
                                     SO_DEVMEM_DONTNEED, arr)
        return freed

    def leftovers(self):
        """What must be gone once the binding is released: the dma-buf's
        attachments, and inflight buffers in the pools that used it."""
        nl = netdev_nl()
        try:
            pools = {p["id"]: p for p in nl.page_pool_get({}, dump=True)}
        finally:
            nl.close()
        inflight = {i: pools[i].get("inflight", 0) for i in self.pools
                    if i in pools and pools[i].get("inflight", 0)}
        held = dmabuf_file_count(self.fd) - self.user_refs
        if held:
            inflight["dma-buf references held by bindings"] = held
        return dmabuf_attachments(self.fd), inflight


def _setsockopt_ret(fd, level, opt, buf):
    """setsockopt whose return value matters (SO_DEVMEM_DONTNEED returns the
    number of frags freed), unlike socket.setsockopt's."""
    b = ctypes.create_string_buffer(buf, len(buf))
    r = _libc.setsockopt(fd, level, opt, b, len(buf))
    if r < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return r


def remote_send(pair, port, nbytes, src="/dev/zero", repeat=False):
    """Start socat in the remote netns sending nbytes of `src` (over and over
    with `repeat`, for a file shorter than nbytes) to the local port;
    returns the Popen, whose process group is killed at test cleanup."""
    feed = (f"while cat {src}; do :; done | head -c {nbytes}" if repeat
            else f"head -c {nbytes} {src}")
    cmd = (f"ip netns exec {pair.REMOTE_NS} sh -c '{feed} | "
           f"socat -u - TCP6:[{pair.V6[0]}]:{port},bind=[{pair.V6[1]}]'")
    p = subprocess.Popen(cmd, shell=True, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True, start_new_session=True)
    defer(_reap, p)
    return p


def remote_receive(pair, port, path):
    """Start socat in the remote netns accepting one TCP connection on
    `port` and writing what it receives to `path` (removed at cleanup);
    returns the Popen, whose process group is killed at test cleanup."""
    defer(lambda: os.path.exists(path) and os.unlink(path))
    cmd = (f"ip netns exec {pair.REMOTE_NS} socat -u "
           f"TCP6-LISTEN:{port},reuseaddr,bind=[{pair.V6[1]}] "
           f"OPEN:{path},creat,trunc")
    p = subprocess.Popen(cmd, shell=True, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)
    defer(_reap, p)
    return p


def _reap(p):
    if p.poll() is None:
        os.killpg(p.pid, signal.SIGKILL)
    p.wait()


# ---------------------------------------------------------------------------
# devmem TCP send from Python (what ncdevmem -z does, minus the C)

SO_ZEROCOPY = 60
MSG_ZEROCOPY = 0x4000000


class _iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


class _msghdr(ctypes.Structure):
    _fields_ = [("name", ctypes.c_void_p), ("namelen", ctypes.c_uint32),
                ("iov", ctypes.POINTER(_iovec)), ("iovlen", ctypes.c_size_t),
                ("control", ctypes.c_void_p), ("controllen", ctypes.c_size_t),
                ("flags", ctypes.c_int)]


def devmem_sendmsg(sock, tx_id, chunks):
    """sendmsg(MSG_ZEROCOPY) of (dma-buf offset, length) chunks from TX
    binding `tx_id`: iov_base carries the offset, as for ncdevmem -z.
    Returns the bytes the kernel took."""
    iov = (_iovec * len(chunks))(*[_iovec(off, ln) for off, ln in chunks])
    # struct cmsghdr (len, level, type) and the binding id, padded to 8.
    ctrl = struct.pack("QiiI4x", 16 + 4, socket.SOL_SOCKET,
                       SCM_DEVMEM_DMABUF, tx_id)
    cbuf = ctypes.create_string_buffer(ctrl, len(ctrl))
    msg = _msghdr(None, 0, iov, len(chunks), ctypes.cast(cbuf, ctypes.c_void_p),
                  len(ctrl), 0)
    r = _libc.sendmsg(sock.fileno(), ctypes.byref(msg), MSG_ZEROCOPY)
    if r < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return r


def drain_completions(sock):
    """Read the zerocopy completions off the error queue (they would fill
    the socket's option memory otherwise)."""
    while True:
        try:
            sock.recvmsg(1, 256, socket.MSG_ERRQUEUE | socket.MSG_DONTWAIT)
        except BlockingIOError:
            return


def tx_connection(pair, port, out):
    """A TCP connection over `pair` to a receiver in the remote namespace
    that writes what it gets to `out`, from a local socket bound to the
    device with SO_ZEROCOPY on, as devmem TX needs: (listener, socket)."""
    rns = f"ip netns exec {pair.REMOTE_NS}"
    listener = remote_receive(pair, port, out)
    wait_for(lambda: f":{port:X} " in sh(f"{rns} cat /proc/net/tcp6"),
             "the remote listener", 30)
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    defer(s.close)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, pair.ifname.encode())
    s.setsockopt(socket.SOL_SOCKET, SO_ZEROCOPY, 1)
    s.connect((pair.V6[1], port))
    return listener, s


def kick_rx_softirq_on_every_cpu():
    """Run NET_RX on every CPU with one loopback datagram each.

    TCP frees a received skb on the CPU that allocated it: from another CPU
    it goes on that CPU's defer list, flushed the next time NET_RX runs there.
    On an idle VM that can be never, and buffers parked there still count as
    in flight for their page pool. A real host flushes them with its next
    packet; this is that packet."""
    cpus = os.sched_getaffinity(0)
    try:
        for cpu in cpus:
            os.sched_setaffinity(0, {cpu})
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.bind(("127.0.0.1", 0))
                s.settimeout(2)
                s.sendto(b"x", s.getsockname())
                s.recv(1)
    finally:
        os.sched_setaffinity(0, cpus)

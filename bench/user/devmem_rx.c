// SPDX-License-Identifier: GPL-2.0
/*
 * The benchmark's devmem TCP receiver (bench/bench.py, ring rows): a loop
 * of recvmsg(MSG_SOCK_DEVMEM) on a socket bench.py accepted on a bound
 * queue, giving every frag back after each call, with SO_DEVMEM_DONTNEED or
 * through the binding's refill ring (Documentation/refill-ring.md). It is C
 * so that what it costs in the kernel is not hidden under an interpreter's
 * own CPU and page faults (the Python receiver's allocations of its
 * receive buffer cost it more system time than the token path itself).
 *
 *   devmem_rx FD dontneed BYTES
 *   devmem_rx FD ring BYTES MEMFD SIZE HEAD TAIL ENTRIES_OFF ENTRIES
 *
 * FD is the connected socket, BYTES what the sender sends; for the ring,
 * the memfd the ring is in, its size, and the offsets and entry count
 * bind-rx replied with (the socket has opted in already). The frags are not
 * read: the row is the cost of receiving and giving back, as in bench.py's
 * niov rows. Prints one line of "key=value" for bench.py and exits 0 once
 * BYTES arrived and every frag was given back.
 *
 * The ring has an entry for every net_iov of the binding (bench.py sizes
 * it so), so it can never be full: a full ring is reported as an error
 * rather than waited on.
 */
/* The uAPI's struct iovec first, and glibc's left out (as ncdevmem does). */
#include <linux/uio.h>
#define __iovec_defined
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>

#ifndef MSG_SOCK_DEVMEM
#define MSG_SOCK_DEVMEM 0x2000000
#endif
#ifndef SO_DEVMEM_LINEAR
#define SO_DEVMEM_LINEAR 78
#endif
#ifndef SO_DEVMEM_DMABUF
#define SO_DEVMEM_DMABUF 79
#endif
#ifndef SO_DEVMEM_DONTNEED
#define SO_DEVMEM_DONTNEED 80
#endif
/* The C flavor's headers do not have the ring's flag. */
#ifndef DMABUF_CMSG_REFILL_RING
#define DMABUF_CMSG_REFILL_RING (1U << 0)
#endif

/* As many tokens as the kernel takes in one SO_DEVMEM_DONTNEED. */
#define MAX_TOKENS 128

static char buf[1 << 20];
static char ctrl[16 << 10];

static double secs(struct timeval tv)
{
	return tv.tv_sec + tv.tv_usec / 1e6;
}

static double now(clockid_t c)
{
	struct timespec ts;

	clock_gettime(c, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

struct ring {
	volatile __u32 *head, *tail;
	volatile __u64 *slots;
	__u32 entries, cached_tail;
};

static int ring_give(struct ring *r, __u64 off)
{
	__u32 head = __atomic_load_n(r->head, __ATOMIC_ACQUIRE);

	if (r->cached_tail - head >= r->entries)
		return -1;
	r->slots[r->cached_tail & (r->entries - 1)] = off;
	r->cached_tail++;
	return 0;
}

static void ring_publish(struct ring *r)
{
	/* Release: the entries before the tail that makes them visible. */
	__atomic_store_n(r->tail, r->cached_tail, __ATOMIC_RELEASE);
}

static int dontneed(int fd, struct dmabuf_token *t, unsigned int n)
{
	int ret = setsockopt(fd, SOL_SOCKET, SO_DEVMEM_DONTNEED, t,
			     n * sizeof(*t));

	if (ret < 0 || (unsigned int)ret != n) {
		fprintf(stderr, "devmem_rx: DONTNEED of %u tokens: %d (%s)\n",
			n, ret, ret < 0 ? strerror(errno) : "short");
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct dmabuf_token tokens[MAX_TOKENS];
	uint64_t want, got = 0, frags = 0, calls = 0, linear = 0;
	struct ring r = { 0 };
	double t0, c0, elapsed, cpu;
	struct rusage ru0, ru;
	int fd, use_ring;

	if (argc < 4 || (strcmp(argv[2], "ring") == 0 && argc != 10)) {
		fprintf(stderr, "usage: devmem_rx FD dontneed|ring BYTES [MEMFD SIZE HEAD TAIL ENTRIES_OFF ENTRIES]\n");
		return 2;
	}
	fd = atoi(argv[1]);
	use_ring = strcmp(argv[2], "ring") == 0;
	want = strtoull(argv[3], NULL, 0);
	/* The socket may come non-blocking (a Python socket with a timeout). */
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)) {
		perror("devmem_rx: F_SETFL");
		return 1;
	}
	if (use_ring) {
		size_t size = strtoull(argv[5], NULL, 0);
		char *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED,
			       atoi(argv[4]), 0);

		if (m == MAP_FAILED) {
			perror("devmem_rx: mmap of the ring");
			return 1;
		}
		r.head = (__u32 *)(m + strtoul(argv[6], NULL, 0));
		r.tail = (__u32 *)(m + strtoul(argv[7], NULL, 0));
		r.slots = (__u64 *)(m + strtoul(argv[8], NULL, 0));
		r.entries = strtoul(argv[9], NULL, 0);
		r.cached_tail = *r.tail;
		if (!r.entries || r.entries & (r.entries - 1)) {
			fprintf(stderr, "devmem_rx: %u entries\n", r.entries);
			return 2;
		}
	}

	getrusage(RUSAGE_SELF, &ru0);
	t0 = now(CLOCK_MONOTONIC);
	c0 = now(CLOCK_PROCESS_CPUTIME_ID);
	for (;;) {
		struct iovec iov = { buf, sizeof(buf) };
		struct msghdr msg = {
			.msg_iov = &iov, .msg_iovlen = 1,
			.msg_control = ctrl, .msg_controllen = sizeof(ctrl),
		};
		unsigned int nt = 0;
		struct cmsghdr *cm;
		ssize_t ret;

		ret = recvmsg(fd, &msg, MSG_SOCK_DEVMEM);
		calls++;
		if (ret < 0) {
			if (errno == EINTR)
				continue;
			perror("devmem_rx: recvmsg");
			return 1;
		}
		if (ret == 0)
			break;
		if (msg.msg_flags & MSG_CTRUNC) {
			fprintf(stderr, "devmem_rx: control data truncated\n");
			return 1;
		}
		for (cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
			struct dmabuf_cmsg *d = (void *)CMSG_DATA(cm);

			if (cm->cmsg_level != SOL_SOCKET)
				continue;
			if (cm->cmsg_type == SO_DEVMEM_LINEAR) {
				linear += d->frag_size;
				continue;
			}
			if (cm->cmsg_type != SO_DEVMEM_DMABUF)
				continue;
			got += d->frag_size;
			frags++;
			if (use_ring) {
				if (!(d->flags & DMABUF_CMSG_REFILL_RING)) {
					fprintf(stderr, "devmem_rx: a token on a ring socket\n");
					return 1;
				}
				if (ring_give(&r, d->frag_offset)) {
					fprintf(stderr, "devmem_rx: the ring is full\n");
					return 1;
				}
				continue;
			}
			tokens[nt].token_start = d->frag_token;
			tokens[nt].token_count = 1;
			if (++nt == MAX_TOKENS) {
				calls++;
				if (dontneed(fd, tokens, nt))
					return 1;
				nt = 0;
			}
		}
		if (use_ring) {
			ring_publish(&r);
		} else if (nt) {
			calls++;
			if (dontneed(fd, tokens, nt))
				return 1;
		}
	}
	elapsed = now(CLOCK_MONOTONIC) - t0;
	cpu = now(CLOCK_PROCESS_CPUTIME_ID) - c0;
	getrusage(RUSAGE_SELF, &ru);
	printf("bytes=%" PRIu64 " linear=%" PRIu64 " frags=%" PRIu64
	       " calls=%" PRIu64 " elapsed=%.6f cpu=%.6f sys=%.6f user=%.6f\n",
	       got, linear, frags, calls, elapsed, cpu,
	       secs(ru.ru_stime) - secs(ru0.ru_stime),
	       secs(ru.ru_utime) - secs(ru0.ru_utime));
	if (got + linear != want) {
		fprintf(stderr, "devmem_rx: %" PRIu64 " bytes of %" PRIu64 "\n",
			got + linear, want);
		return 1;
	}
	return 0;
}

// SPDX-License-Identifier: GPL-2.0
/*
 * Recycling benchmarks for the devmem dma-buf memory provider.
 *
 * Built into the kernel (CONFIG_NET_DEVMEM_BENCH) of both flavors, so the C
 * provider (net/core/devmem.c) and the Rust one are timed by the same code.
 * It reaches the provider only through page_pool and the functions
 * net/core/devmem.h declares, as the KUnit suite does.
 *
 * Driven from user space through debugfs (tools/bench.sh, bench/bench.py):
 * write one command to /sys/kernel/debug/devmem_bench/run, read the results
 * back from the same file, one "name value" line per measurement, values in
 * nanoseconds per element. Under QEMU's -icount shift=0 a guest nanosecond
 * is one instruction, so the same numbers are instruction counts.
 *
 *   pp IFINDEX QUEUE COUNT
 *	page_pool paths on a pool whose memory provider is the binding user
 *	space installed on RX queue QUEUE of IFINDEX (a netdevsim port), and
 *	the same paths on a plain page_pool for reference:
 *	fast (alloc + direct recycle into the pool's cache), ring (alloc +
 *	put into the ptr_ring, taken back by the next alloc), slow (cache and
 *	ring empty: the provider's alloc_netmems, or the page allocator),
 *	release (ring full: the provider's release_netmem, or put_page).
 *
 *   pp IFINDEX QUEUE COUNT HOLD
 *	the same devmem rows (named devmem_heldHOLD_*) with HOLD percent of
 *	the binding's net_iovs taken from the provider first and held for
 *	the whole run, as a stream whose buffers sit in sockets would; no
 *	plain rows. Also prints "devmem_segments N", the number of DMA
 *	segments of the binding's dma-buf (the chunks C's genpool walks).
 *
 *   segs IFINDEX QUEUE
 *	"segments N": the number of DMA segments of the mapping of the binding
 *	installed on RX queue QUEUE of IFINDEX (bench.py records it with each
 *	bind sample, so that rows compare bindings of the same layout).
 *
 *   map IFINDEX FD
 *	"map_cpu_ns N" and "unmap_cpu_ns N": the calling thread's CPU time
 *	to map the dma-buf FD for RX queue 0's DMA device of IFINDEX and to
 *	unmap it, through an attachment of its own and without devmem: the
 *	share of a bind and an unbind that is the exporter's and the DMA
 *	API's, the same code on both flavors (a control for the unbind rows).
 *
 *   fill LAYOUT COUNT MIB
 *	the provider's own allocation and free (net_devmem_alloc_dmabuf,
 *	net_devmem_free_dmabuf): COUNT alloc+free pairs on a binding of MIB
 *	MiB with 0%, 50%, 90% and 99% of its net_iovs held, in that order on
 *	one binding (each level takes more). LAYOUT is "one" (one DMA
 *	segment) or "pages" (one segment per page). The dma-buf is made up
 *	here: devmem reads only the DMA addresses and lengths of its mapping,
 *	so no memory is behind it and the layout is exact.
 */

#include <linux/debugfs.h>
#include <linux/device/faux.h>
#include <linux/dma-buf.h>
#include <linux/fdtable.h>
#include <linux/file.h>
#include <linux/ktime.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/netdevice.h>
#include <linux/scatterlist.h>
#include <linux/sched/cputime.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <net/netdev_netlink.h>
#include <net/netdev_queues.h>
#include <net/netdev_rx_queue.h>
#include <net/netlink.h>
#include <net/page_pool/helpers.h>

#include "devmem.h"

#define BENCH_OUT_SIZE		4096
/* Most iterations of one timed loop (bottom halves are off meanwhile). */
#define BENCH_MAX_COUNT		1000000
/* The ptr_ring of the bench's pools: small, so "ring full" is cheap. */
#define BENCH_RING		256

static DEFINE_MUTEX(bench_lock);
static char bench_out[BENCH_OUT_SIZE];
static size_t bench_out_len;

static void out(const char *name, u64 ns, u64 n)
{
	/* ns per element, with two decimals, as integers. */
	u64 centi = n ? div64_u64(ns * 100, n) : 0;

	bench_out_len += scnprintf(bench_out + bench_out_len,
				   BENCH_OUT_SIZE - bench_out_len,
				   "%s %llu.%02llu\n", name, centi / 100,
				   centi % 100);
}

/* --- page_pool paths ---------------------------------------------------- */

/* alloc + put, @n times. @direct: recycle straight into the pool's lockless
 * cache, as NAPI does; otherwise into the ptr_ring, so that the next alloc
 * finds the cache empty and refills it from the ring.
 */
static int pp_alloc_put(struct page_pool *pp, u32 n, bool direct, u64 *ns)
{
	netmem_ref netmem;
	u64 t0;
	u32 i;

	local_bh_disable();
	t0 = ktime_get_ns();
	for (i = 0; i < n; i++) {
		netmem = page_pool_alloc_netmems(pp, GFP_ATOMIC);
		if (!netmem)
			break;
		page_pool_put_full_netmem(pp, netmem, direct);
	}
	*ns = ktime_get_ns() - t0;
	local_bh_enable();
	return i == n ? 0 : -ENOMEM;
}

/* Takes @n buffers out of a pool whose cache and ring are empty (each one
 * from the provider or the page allocator), times that, then gives them
 * back with the ring full, so each goes to the provider's release (or
 * put_page), and times that too.
 */
static int pp_slow_release(struct page_pool *pp, u32 n, u64 *slow_ns,
			   u64 *release_ns, u32 *released)
{
	netmem_ref *held;
	u32 i, got;
	int err = 0;
	u64 t0;

	held = kvmalloc_array(n + BENCH_RING, sizeof(*held), GFP_KERNEL);
	if (!held)
		return -ENOMEM;

	local_bh_disable();
	t0 = ktime_get_ns();
	for (got = 0; got < n + BENCH_RING; got++) {
		held[got] = page_pool_alloc_netmems(pp, GFP_ATOMIC);
		if (!held[got])
			break;
	}
	*slow_ns = ktime_get_ns() - t0;
	local_bh_enable();
	if (got < n + BENCH_RING) {
		err = -ENOMEM;
		goto put_all;
	}

	/* Fill the ring, then time the puts that overflow it. */
	local_bh_disable();
	for (i = 0; i < BENCH_RING; i++)
		page_pool_put_full_netmem(pp, held[i], false);
	t0 = ktime_get_ns();
	for (; i < got; i++)
		page_pool_put_full_netmem(pp, held[i], false);
	*release_ns = ktime_get_ns() - t0;
	local_bh_enable();
	*released = got - BENCH_RING;
	got = 0;
put_all:
	for (i = 0; i < got; i++)
		page_pool_put_full_netmem(pp, held[i], false);
	kvfree(held);
	return err;
}

static int pp_rows(struct page_pool *pp, const char *prefix, u32 n,
		   u32 slow_n)
{
	char name[48];
	u64 ns, ns2;
	u32 released;
	int err;

	/* Untimed warm-up. A new pool's first allocation goes to the
	 * provider (C hands out one net_iov, Rust refills the cache with a
	 * batch) or the page allocator: a one-off cost that the slow row
	 * measures, and that spread over the fast row's @n iterations would
	 * show as a fraction of an instruction per element.
	 */
	err = pp_alloc_put(pp, BENCH_RING, true, &ns);
	if (err)
		return err;
	err = pp_alloc_put(pp, n, true, &ns);
	if (err)
		return err;
	snprintf(name, sizeof(name), "%s_fast", prefix);
	out(name, ns, n);

	err = pp_alloc_put(pp, n, false, &ns);
	if (err)
		return err;
	snprintf(name, sizeof(name), "%s_ring", prefix);
	out(name, ns, n);

	err = pp_slow_release(pp, slow_n, &ns, &ns2, &released);
	if (err)
		return err;
	snprintf(name, sizeof(name), "%s_slow", prefix);
	out(name, ns, slow_n + BENCH_RING);
	snprintf(name, sizeof(name), "%s_release", prefix);
	out(name, ns2, released);
	return 0;
}

/* Takes @hold net_iovs from @b into @held; returns how many it got. */
static u32 pp_hold(struct net_devmem_dmabuf_binding *b, struct net_iov **held,
		   u32 hold)
{
	u32 i;

	for (i = 0; i < hold; i++) {
		held[i] = net_devmem_alloc_dmabuf(b);
		if (!held[i])
			break;
	}
	return i;
}

/* The binding installed on RX queue @queue of @dev, whose instance lock the
 * caller holds (the binding, and its mapping, stay while it is held: unbind
 * takes it to close the queue first); NULL if there is none.
 */
static struct net_devmem_dmabuf_binding *
bench_queue_binding(struct net_device *dev, u32 queue)
{
	if (queue >= dev->real_num_rx_queues)
		return NULL;
	return __netif_get_rx_queue(dev, queue)->mp_params.mp_priv;
}

static int bench_segs(int ifindex, u32 queue)
{
	struct net_devmem_dmabuf_binding *b;
	netdevice_tracker tracker;
	struct net_device *dev;
	int err = 0;

	dev = netdev_get_by_index(&init_net, ifindex, &tracker, GFP_KERNEL);
	if (!dev)
		return -ENODEV;
	netdev_lock(dev);
	b = bench_queue_binding(dev, queue);
	if (!b) {
		err = -EINVAL;
		goto unlock;
	}
	mutex_lock(&b->lock);
	if (b->sgt)
		bench_out_len += scnprintf(bench_out + bench_out_len,
					   BENCH_OUT_SIZE - bench_out_len,
					   "segments %u\n", b->sgt->nents);
	else
		err = -ENOENT;
	mutex_unlock(&b->lock);
unlock:
	netdev_unlock(dev);
	netdev_put(dev, &tracker);
	return err;
}

static int bench_map(int ifindex, int fd)
{
	struct dma_buf_attachment *att;
	netdevice_tracker tracker;
	struct net_device *dev;
	struct device *dma_dev;
	struct dma_buf *dmabuf;
	struct sg_table *sgt;
	u64 t0, t1, t2;
	int err = 0;

	dmabuf = dma_buf_get(fd);
	if (IS_ERR(dmabuf))
		return PTR_ERR(dmabuf);
	dev = netdev_get_by_index(&init_net, ifindex, &tracker, GFP_KERNEL);
	if (!dev) {
		err = -ENODEV;
		goto put_buf;
	}
	netdev_lock(dev);
	dma_dev = netdev_queue_get_dma_dev(dev, 0, NETDEV_QUEUE_TYPE_RX);
	netdev_unlock(dev);
	if (!dma_dev) {
		err = -EOPNOTSUPP;
		goto put_dev;
	}
	att = dma_buf_attach(dmabuf, dma_dev);
	if (IS_ERR(att)) {
		err = PTR_ERR(att);
		goto put_dev;
	}
	t0 = task_sched_runtime(current);
	sgt = dma_buf_map_attachment_unlocked(att, DMA_FROM_DEVICE);
	t1 = task_sched_runtime(current);
	if (IS_ERR(sgt)) {
		err = PTR_ERR(sgt);
		goto detach;
	}
	dma_buf_unmap_attachment_unlocked(att, sgt, DMA_FROM_DEVICE);
	t2 = task_sched_runtime(current);
	bench_out_len += scnprintf(bench_out + bench_out_len,
				   BENCH_OUT_SIZE - bench_out_len,
				   "map_cpu_ns %llu\nunmap_cpu_ns %llu\n",
				   t1 - t0, t2 - t1);
detach:
	dma_buf_detach(dmabuf, att);
put_dev:
	netdev_put(dev, &tracker);
put_buf:
	dma_buf_put(dmabuf);
	return err;
}

static int bench_pp(int ifindex, u32 queue, u32 n, u32 hold_pct)
{
	struct page_pool_params plain = {
		.order = 0,
		.pool_size = BENCH_RING,
		.nid = NUMA_NO_NODE,
	};
	struct page_pool_params pp = plain;
	struct net_devmem_dmabuf_binding *b;
	struct net_iov **held = NULL;
	struct page_pool *pool;
	struct net_device *dev;
	netdevice_tracker tracker;
	u32 slow_n, hold = 0, got = 0, i;
	char prefix[32] = "devmem";
	int err;

	dev = netdev_get_by_index(&init_net, ifindex, &tracker, GFP_KERNEL);
	if (!dev)
		return -ENODEV;

	netdev_lock(dev);
	b = bench_queue_binding(dev, queue);
	if (!b) {
		netdev_unlock(dev);
		err = -EINVAL;
		goto put_dev;
	}
	/* With net_iovs held, the slow row takes fewer: each of C's slow
	 * allocations walks every full chunk, and the binding must keep room
	 * for them, the ring, the pool's cache and the device's own pool
	 * (netdevsim's ring is 256 buffers): 512 more covers the last two.
	 */
	slow_n = min_t(u32, n, hold_pct ? 512 : 1024);
	if (hold_pct) {
		hold = b->dmabuf->size / PAGE_SIZE * hold_pct / 100;
		if (hold + slow_n + BENCH_RING + 512 >
		    b->dmabuf->size / PAGE_SIZE) {
			netdev_unlock(dev);
			err = -ENOSPC;
			goto put_dev;
		}
		snprintf(prefix, sizeof(prefix), "devmem_held%u", hold_pct);
		bench_out_len += scnprintf(bench_out + bench_out_len,
					   BENCH_OUT_SIZE - bench_out_len,
					   "devmem_segments %u\n",
					   b->sgt->nents);
	}
	pp.flags = PP_FLAG_DMA_MAP | PP_FLAG_DMA_SYNC_DEV |
		   PP_FLAG_ALLOW_UNREADABLE_NETMEM;
	pp.dev = netdev_queue_get_dma_dev(dev, queue, NETDEV_QUEUE_TYPE_RX);
	pp.netdev = dev;
	pp.queue_idx = queue;
	pp.dma_dir = DMA_FROM_DEVICE;
	pp.max_len = PAGE_SIZE;
	pool = page_pool_create(&pp);
	netdev_unlock(dev);
	if (IS_ERR(pool)) {
		err = PTR_ERR(pool);
		goto put_dev;
	}
	/* The pool holds the binding; the net_iovs held here go back to it
	 * before the pool is destroyed.
	 */
	if (hold) {
		held = kvmalloc_array(hold, sizeof(*held), GFP_KERNEL);
		if (!held) {
			err = -ENOMEM;
			goto destroy;
		}
		got = pp_hold(b, held, hold);
		if (got < hold) {
			err = -ENOMEM;
			goto destroy;
		}
	}
	err = pp_rows(pool, prefix, n, slow_n);
destroy:
	for (i = 0; i < got; i++)
		net_devmem_free_dmabuf(held[i]);
	kvfree(held);
	page_pool_destroy(pool);
	if (err || hold_pct)
		goto put_dev;

	pool = page_pool_create(&plain);
	if (IS_ERR(pool)) {
		err = PTR_ERR(pool);
		goto put_dev;
	}
	err = pp_rows(pool, "plain", n, slow_n);
	page_pool_destroy(pool);
put_dev:
	netdev_put(dev, &tracker);
	return err;
}

/* --- provider alloc/free against fill level and layout ------------------ */

struct fill_exporter {
	size_t size;
	unsigned int nsegs;
};

static struct sg_table *fill_map(struct dma_buf_attachment *att,
				 enum dma_data_direction dir)
{
	struct fill_exporter *exp = att->dmabuf->priv;
	size_t seg_len = exp->size / exp->nsegs;
	struct scatterlist *sg;
	struct sg_table *sgt;
	unsigned int i;

	sgt = kzalloc_obj(*sgt);
	if (!sgt)
		return ERR_PTR(-ENOMEM);
	if (sg_alloc_table(sgt, exp->nsegs, GFP_KERNEL)) {
		kfree(sgt);
		return ERR_PTR(-ENOMEM);
	}
	/* Segments apart from each other, as scattered pages are. */
	for_each_sgtable_sg(sgt, sg, i) {
		sg_dma_address(sg) = (1ULL << 32) + (u64)i * 2 * seg_len;
		sg_dma_len(sg) = seg_len;
	}
	sgt->nents = exp->nsegs;
	return sgt;
}

static void fill_unmap(struct dma_buf_attachment *att, struct sg_table *sgt,
		       enum dma_data_direction dir)
{
	sg_free_table(sgt);
	kfree(sgt);
}

static void fill_release(struct dma_buf *dmabuf)
{
	kfree(dmabuf->priv);
}

static const struct dma_buf_ops fill_dmabuf_ops = {
	.map_dma_buf = fill_map,
	.unmap_dma_buf = fill_unmap,
	.release = fill_release,
};

static int fill_fd(size_t size, unsigned int nsegs)
{
	DEFINE_DMA_BUF_EXPORT_INFO(info);
	struct fill_exporter *exp;
	struct dma_buf *dmabuf;
	int fd;

	exp = kzalloc_obj(*exp);
	if (!exp)
		return -ENOMEM;
	exp->size = size;
	exp->nsegs = nsegs;
	info.ops = &fill_dmabuf_ops;
	info.size = size;
	info.flags = O_RDWR;
	info.priv = exp;
	dmabuf = dma_buf_export(&info);
	if (IS_ERR(dmabuf)) {
		kfree(exp);
		return PTR_ERR(dmabuf);
	}
	fd = dma_buf_fd(dmabuf, O_CLOEXEC);
	if (fd < 0)
		dma_buf_put(dmabuf);
	return fd;
}

static const u32 fill_levels[] = { 0, 50, 90, 99 };

static int bench_fill(bool per_page, u32 n, u32 mib)
{
	size_t size = (size_t)mib << 20;
	unsigned int nsegs = per_page ? size / PAGE_SIZE : 1;
	u32 total = size / PAGE_SIZE, hold = 0, want, i, l;
	struct net_devmem_dmabuf_binding *b;
	struct netlink_ext_ack extack = {};
	struct netdev_nl_sock sock;
	struct faux_device *fdev;
	struct net_device *dev;
	struct net_iov **held;
	struct net_iov *niov;
	char name[48];
	int fd, err = 0;
	u64 t0, ns;

	if (!mib || mib > 1024)
		return -EINVAL;
	held = kvmalloc_array(total, sizeof(*held), GFP_KERNEL);
	if (!held)
		return -ENOMEM;
	fdev = faux_device_create("devmem_bench", NULL, NULL);
	if (!fdev) {
		err = -ENOMEM;
		goto free_held;
	}
	dev = alloc_netdev(0, "devmembench%d", NET_NAME_UNKNOWN, ether_setup);
	if (!dev) {
		err = -ENOMEM;
		goto destroy_fdev;
	}
	fd = fill_fd(size, nsegs);
	if (fd < 0) {
		err = fd;
		goto free_dev;
	}
	mutex_init(&sock.lock);
	INIT_LIST_HEAD(&sock.bindings);

	/* As netdev-genl binds: socket, then device instance lock. */
	mutex_lock(&sock.lock);
	netdev_lock(dev);
	b = net_devmem_bind_dmabuf(dev, NULL, &fdev->dev, false,
				   DMA_FROM_DEVICE, PAGE_SHIFT, fd, NULL, &sock,
				   &extack);
	netdev_unlock(dev);
	mutex_unlock(&sock.lock);
	if (IS_ERR(b)) {
		err = PTR_ERR(b);
		goto close;
	}

	for (l = 0; l < ARRAY_SIZE(fill_levels); l++) {
		want = total * fill_levels[l] / 100;
		for (; hold < want; hold++) {
			held[hold] = net_devmem_alloc_dmabuf(b);
			if (!held[hold]) {
				err = -ENOMEM;
				goto free_niovs;
			}
		}

		local_bh_disable();
		t0 = ktime_get_ns();
		for (i = 0; i < n; i++) {
			niov = net_devmem_alloc_dmabuf(b);
			if (!niov)
				break;
			net_devmem_free_dmabuf(niov);
		}
		ns = ktime_get_ns() - t0;
		local_bh_enable();
		if (i < n) {
			err = -ENOMEM;
			goto free_niovs;
		}
		snprintf(name, sizeof(name), "fill_%s_%u",
			 per_page ? "pages" : "one", fill_levels[l]);
		out(name, ns, n);
	}

free_niovs:
	for (i = 0; i < hold; i++)
		net_devmem_free_dmabuf(held[i]);
	mutex_lock(&sock.lock);
	netdev_lock(dev);
	net_devmem_unbind_dmabuf(b);
	netdev_unlock(dev);
	mutex_unlock(&sock.lock);
	/* Let the binding's free (after an RCU grace period, then from a work
	 * item) be queued before the next run carves another one. It pins
	 * the DMA device and never looks at the netdev again.
	 */
	rcu_barrier();
close:
	close_fd(fd);
free_dev:
	free_netdev(dev);
destroy_fdev:
	faux_device_destroy(fdev);
free_held:
	kvfree(held);
	return err;
}

/* --- debugfs ------------------------------------------------------------ */

static ssize_t bench_write(struct file *file, const char __user *ubuf,
			   size_t count, loff_t *ppos)
{
	char cmd[64], layout[8];
	u32 a, n, mib, hold = 0;
	int ifindex, fd, err;

	if (count >= sizeof(cmd))
		return -EINVAL;
	if (copy_from_user(cmd, ubuf, count))
		return -EFAULT;
	cmd[count] = '\0';

	/* Each loop runs with bottom halves disabled: keep it short. */
	mutex_lock(&bench_lock);
	bench_out_len = 0;
	bench_out[0] = '\0';
	if (sscanf(cmd, "pp %d %u %u %u", &ifindex, &a, &n, &hold) >= 3 &&
	    n && n <= BENCH_MAX_COUNT && hold < 100)
		err = bench_pp(ifindex, a, n, hold);
	else if (sscanf(cmd, "segs %d %u", &ifindex, &a) == 2)
		err = bench_segs(ifindex, a);
	else if (sscanf(cmd, "map %d %d", &ifindex, &fd) == 2)
		err = bench_map(ifindex, fd);
	else if (sscanf(cmd, "fill %7s %u %u", layout, &n, &mib) == 3 && n &&
		 n <= BENCH_MAX_COUNT &&
		 (!strcmp(layout, "one") || !strcmp(layout, "pages")))
		err = bench_fill(!strcmp(layout, "pages"), n, mib);
	else
		err = -EINVAL;
	mutex_unlock(&bench_lock);
	return err ? err : count;
}

static ssize_t bench_read(struct file *file, char __user *ubuf, size_t count,
			  loff_t *ppos)
{
	ssize_t ret;

	mutex_lock(&bench_lock);
	ret = simple_read_from_buffer(ubuf, count, ppos, bench_out,
				      bench_out_len);
	mutex_unlock(&bench_lock);
	return ret;
}

static const struct file_operations bench_fops = {
	.owner = THIS_MODULE,
	.write = bench_write,
	.read = bench_read,
	.llseek = default_llseek,
};

static int __init devmem_bench_init(void)
{
	struct dentry *dir = debugfs_create_dir("devmem_bench", NULL);

	debugfs_create_file("run", 0600, dir, NULL, &bench_fops);
	return 0;
}
late_initcall(devmem_bench_init);

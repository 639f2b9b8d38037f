// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit tests for the devmem dma-buf memory provider.
 *
 * They drive the provider only through the functions net/core/devmem.h and
 * mp_dmabuf_devmem.h declare, so the same suite tests the C implementation
 * (net/core/devmem.c) and the Rust one (CONFIG_NET_DEVMEM_RUST): the C flavor
 * proves the expectations right.
 *
 * A test-local dma-buf exporter hands out a made-up scatterlist with several
 * DMA segments (no memory behind them: devmem only reads DMA addresses and
 * lengths) and counts attach, map, unmap (with the direction), detach and
 * release, which tells exactly when the provider lets go of the buffer.
 */

#include <kunit/device.h>
#include <kunit/test.h>
#include <linux/dma-buf.h>
#include <linux/fdtable.h>
#include <linux/iosys-map.h>
#include <linux/kthread.h>
#include <linux/file.h>
#include <linux/genalloc.h>
#include <linux/netdevice.h>
#include <linux/rcupdate.h>
#include <linux/refcount.h>
#include <linux/scatterlist.h>
#include <linux/vmalloc.h>
#include <net/netdev_netlink.h>
#include <net/netdev_queues.h>
#include <net/netdev_rx_queue.h>
#include <net/netlink.h>
#include <net/page_pool/helpers.h>
#include <net/page_pool/types.h>

#include "devmem.h"
#include "mp_dmabuf_devmem.h"

/* Enough for a dma-buf of more than 2^32 pages (devmem_too_many_niovs). */
#define TEST_MAX_SEGS 4097

/* Shared by a test and its dma-buf, which may be released after the test
 * ends (fput from a kthread is deferred): freed by whichever goes last.
 */
struct test_exporter {
	refcount_t users;
	unsigned int nsegs;
	dma_addr_t seg_addr[TEST_MAX_SEGS];
	size_t seg_len[TEST_MAX_SEGS];
	atomic_t attached, detached, mapped, unmapped, released;
	enum dma_data_direction map_dir, unmap_dir;
	/* Memory behind the buffer, for kernel mappings. */
	void *vaddr;
	atomic_t vmapped, vunmapped;
};

static int test_attach(struct dma_buf *dmabuf, struct dma_buf_attachment *att)
{
	struct test_exporter *exp = dmabuf->priv;

	atomic_inc(&exp->attached);
	return 0;
}

static void test_detach(struct dma_buf *dmabuf, struct dma_buf_attachment *att)
{
	struct test_exporter *exp = dmabuf->priv;

	atomic_inc(&exp->detached);
}

static struct sg_table *test_map(struct dma_buf_attachment *att,
				 enum dma_data_direction dir)
{
	struct test_exporter *exp = att->dmabuf->priv;
	struct scatterlist *sg;
	struct sg_table *sgt;
	unsigned int i;

	sgt = kzalloc_obj(*sgt, GFP_KERNEL);
	if (!sgt)
		return ERR_PTR(-ENOMEM);
	if (sg_alloc_table(sgt, exp->nsegs, GFP_KERNEL)) {
		kfree(sgt);
		return ERR_PTR(-ENOMEM);
	}
	for_each_sgtable_sg(sgt, sg, i) {
		sg_dma_address(sg) = exp->seg_addr[i];
		sg_dma_len(sg) = exp->seg_len[i];
	}
	sgt->nents = exp->nsegs;
	exp->map_dir = dir;
	atomic_inc(&exp->mapped);
	return sgt;
}

static void test_unmap(struct dma_buf_attachment *att, struct sg_table *sgt,
		       enum dma_data_direction dir)
{
	struct test_exporter *exp = att->dmabuf->priv;

	exp->unmap_dir = dir;
	atomic_inc(&exp->unmapped);
	sg_free_table(sgt);
	kfree(sgt);
}

static int test_vmap(struct dma_buf *dmabuf, struct iosys_map *map)
{
	struct test_exporter *exp = dmabuf->priv;

	atomic_inc(&exp->vmapped);
	iosys_map_set_vaddr(map, exp->vaddr);
	return 0;
}

static void test_vunmap(struct dma_buf *dmabuf, struct iosys_map *map)
{
	struct test_exporter *exp = dmabuf->priv;

	atomic_inc(&exp->vunmapped);
}

static void test_exporter_put(struct test_exporter *exp)
{
	if (refcount_dec_and_test(&exp->users)) {
		vfree(exp->vaddr);
		kvfree(exp);
	}
}

static void test_release(struct dma_buf *dmabuf)
{
	struct test_exporter *exp = dmabuf->priv;

	atomic_inc(&exp->released);
	test_exporter_put(exp);
}

static const struct dma_buf_ops test_dmabuf_ops = {
	.attach = test_attach,
	.detach = test_detach,
	.map_dma_buf = test_map,
	.unmap_dma_buf = test_unmap,
	.release = test_release,
	.vmap = test_vmap,
	.vunmap = test_vunmap,
};

/* An exporter that cannot map its buffer into the kernel. */
static const struct dma_buf_ops test_dmabuf_ops_no_vmap = {
	.attach = test_attach,
	.detach = test_detach,
	.map_dma_buf = test_map,
	.unmap_dma_buf = test_unmap,
	.release = test_release,
};

/* Queue management ops of a device that moves data with the CPU. */
static const struct netdev_queue_mgmt_ops test_cpu_access_ops = {
	.netmem_cpu_access = true,
};

/* Everything one test needs: an exporter, a dma-buf fd, a DMA device, an
 * unregistered netdev and a netlink socket's devmem state.
 */
struct test_ctx {
	struct test_exporter *exp;
	int fd;
	struct dma_buf *dmabuf;	/* @fd's, valid while @fd is open */
	struct device *dma_dev;
	struct net_device *netdev;
	struct netdev_nl_sock sock;
	struct netlink_ext_ack extack;
};

static void test_ctx_exit(void *data)
{
	struct test_ctx *ctx = data;

	if (ctx->fd >= 0)
		close_fd(ctx->fd);
	flush_delayed_fput();
	test_exporter_put(ctx->exp);
	free_netdev(ctx->netdev);
}

/* Segments are given in pages, with an extra byte count for the last one
 * (to make it unaligned); size_extra is added to the dma-buf's size.
 */
static struct test_ctx *__test_ctx_new(struct kunit *test, unsigned int nsegs,
				       const unsigned int *pages,
				       size_t last_extra, size_t size_extra,
				       const struct dma_buf_ops *ops)
{
	DEFINE_DMA_BUF_EXPORT_INFO(info);
	struct dma_buf *dmabuf;
	struct test_ctx *ctx;
	size_t size = 0;
	unsigned int i;

	ctx = kunit_kzalloc(test, sizeof(*ctx), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, ctx);
	ctx->fd = -1;
	ctx->dma_dev = kunit_device_register(test, "devmem-kunit");
	KUNIT_ASSERT_NOT_ERR_OR_NULL(test, ctx->dma_dev);
	ctx->netdev = alloc_netdev(0, "devmemkunit%d", NET_NAME_UNKNOWN,
				   ether_setup);
	KUNIT_ASSERT_NOT_NULL(test, ctx->netdev);
	mutex_init(&ctx->sock.lock);
	INIT_LIST_HEAD(&ctx->sock.bindings);
	ctx->exp = kvzalloc_obj(*ctx->exp, GFP_KERNEL);
	if (!ctx->exp)
		free_netdev(ctx->netdev);
	KUNIT_ASSERT_NOT_NULL(test, ctx->exp);
	refcount_set(&ctx->exp->users, 1);
	KUNIT_ASSERT_EQ(test, 0, kunit_add_action_or_reset(test, test_ctx_exit, ctx));

	ctx->exp->nsegs = nsegs;
	for (i = 0; i < nsegs; i++) {
		/* Far apart and out of order, to catch index/address mix-ups. */
		ctx->exp->seg_addr[i] = 0x40000000ULL * (nsegs - i);
		ctx->exp->seg_len[i] = pages[i] * PAGE_SIZE;
		size += ctx->exp->seg_len[i];
	}
	ctx->exp->seg_len[nsegs - 1] += last_extra;
	size += last_extra + size_extra;

	info.ops = ops;
	info.size = size;
	info.flags = O_RDWR;
	info.priv = ctx->exp;
	dmabuf = dma_buf_export(&info);
	KUNIT_ASSERT_NOT_ERR_OR_NULL(test, dmabuf);
	refcount_inc(&ctx->exp->users);	/* the dma-buf's, dropped by release */
	ctx->fd = dma_buf_fd(dmabuf, O_CLOEXEC);
	if (ctx->fd < 0)
		dma_buf_put(dmabuf);
	KUNIT_ASSERT_GE(test, ctx->fd, 0);
	ctx->dmabuf = dmabuf;
	return ctx;
}

static struct test_ctx *test_ctx_new(struct kunit *test, unsigned int nsegs,
				     const unsigned int *pages,
				     size_t last_extra, size_t size_extra)
{
	return __test_ctx_new(test, nsegs, pages, last_extra, size_extra,
			      &test_dmabuf_ops);
}

static struct net_devmem_dmabuf_binding *
test_bind_sized(struct test_ctx *ctx, enum dma_data_direction dir,
		unsigned int niov_shift)
{
	enum netdev_queue_type qtype = dir == DMA_TO_DEVICE ?
				       NETDEV_QUEUE_TYPE_TX : NETDEV_QUEUE_TYPE_RX;
	struct net_devmem_dmabuf_binding *b;
	bool cpu_access;

	/* As netdev-genl calls it: socket, then device instance lock. */
	mutex_lock(&ctx->sock.lock);
	netdev_lock(ctx->netdev);
	cpu_access = netdev_queue_cpu_access(ctx->netdev, 0, qtype);
	b = net_devmem_bind_dmabuf(ctx->netdev, NULL, ctx->dma_dev, cpu_access,
				   dir, niov_shift, ctx->fd, NULL, &ctx->sock,
				   &ctx->extack);
	netdev_unlock(ctx->netdev);
	mutex_unlock(&ctx->sock.lock);
	return b;
}

static struct net_devmem_dmabuf_binding *
test_bind(struct test_ctx *ctx, enum dma_data_direction dir)
{
	return test_bind_sized(ctx, dir, PAGE_SHIFT);
}

static void test_unbind(struct test_ctx *ctx, struct net_devmem_dmabuf_binding *b)
{
	mutex_lock(&ctx->sock.lock);
	netdev_lock(ctx->netdev);
	net_devmem_unbind_dmabuf(b);
	netdev_unlock(ctx->netdev);
	mutex_unlock(&ctx->sock.lock);
}

/* A TX binding, unbound while an skb holds a reference on its first
 * net_iov, which is returned; *@bp is the binding, alive until that
 * reference is put (net_devmem_put_net_iov()).
 */
static struct net_iov *test_unbind_tx_held(struct kunit *test,
					   struct test_ctx *ctx,
					   struct net_devmem_dmabuf_binding **bp)
{
	struct net_devmem_dmabuf_binding *b;
	struct net_iov *niov;

	b = test_bind(ctx, DMA_TO_DEVICE);
	KUNIT_ASSERT_NOT_ERR_OR_NULL(test, b);
	niov = net_devmem_get_niov_at(b, 0, &(size_t){0}, &(size_t){0});
	KUNIT_ASSERT_NOT_NULL(test, niov);
	net_devmem_get_net_iov(niov);
	test_unbind(ctx, b);
	*bp = b;
	return niov;
}

/* The binding is freed from a work item scheduled by an RCU callback. */
static bool test_wait_detached(struct test_exporter *exp)
{
	int i;

	for (i = 0; i < 500; i++) {
		rcu_barrier();
		if (atomic_read(&exp->detached))
			return true;
		usleep_range(10000, 20000);
	}
	return false;
}

/* The binding is freed from a work item scheduled by an RCU callback; it
 * holds a reference on the dma-buf until then (RX bindings detach at
 * unbind already, so the detach does not tell). The fd must be open.
 */
static bool test_wait_freed(struct test_ctx *ctx)
{
	int i;

	for (i = 0; i < 500; i++) {
		rcu_barrier();
		if (atomic_read(&ctx->exp->detached) &&
		    file_count(ctx->dmabuf->file) == 1)
			return true;
		usleep_range(10000, 20000);
	}
	return false;
}

/* Give a (wrongly) scheduled free every chance to run before checking that
 * it did not.
 */
static void test_settle(void)
{
	rcu_barrier();
	msleep(50);
	rcu_barrier();
	msleep(50);
}

static const unsigned int three_segs[] = { 4, 2, 3 };

/* The DMA address a driver would post for @niov, from its page pool. */
static dma_addr_t test_dma(struct net_iov *niov)
{
	return page_pool_get_dma_addr_netmem(net_iov_to_netmem(niov));
}

/* How many net_iovs @b can hand out now: takes them all, then gives them
 * back. The providers keep free net_iovs differently (C: the genpool's
 * bitmap; Rust: a free list), so this asks the way a user would.
 */
static unsigned int test_free_niovs(struct net_devmem_dmabuf_binding *b)
{
	struct net_iov *niovs[16];
	unsigned int n = 0, i;

	while (n < ARRAY_SIZE(niovs)) {
		niovs[n] = net_devmem_alloc_dmabuf(b);
		if (!niovs[n])
			break;
		n++;
	}
	for (i = 0; i < n; i++)
		net_devmem_free_dmabuf(niovs[i]);
	return n;
}

static void devmem_carves_every_segment(struct kunit *test)
{
	struct test_ctx *ctx = test_ctx_new(test, 3, three_segs, 0, 0);
	struct net_iov *niovs[9] = {}, *extra;
	struct net_devmem_dmabuf_binding *b;
	unsigned long seen_virt = 0;
	unsigned int i, n;

	b = test_bind(ctx, DMA_FROM_DEVICE);
	KUNIT_ASSERT_NOT_ERR_OR_NULL(test, b);
	KUNIT_EXPECT_EQ(test, atomic_read(&ctx->exp->mapped), 1);
	KUNIT_EXPECT_EQ(test, ctx->exp->map_dir, DMA_FROM_DEVICE);
	KUNIT_EXPECT_GT(test, b->id, 0);
	KUNIT_EXPECT_PTR_EQ(test, b->dev, ctx->netdev);
	KUNIT_EXPECT_TRUE(test, list_is_first(&b->list, &ctx->sock.bindings));
	KUNIT_EXPECT_EQ(test, net_devmem_dmabuf_niovs(b), 9);

	/* Exactly nine net_iovs, each with its segment's DMA address and the
	 * dma-buf offset of its page.
	 */
	for (n = 0; n < ARRAY_SIZE(niovs); n++) {
		niovs[n] = net_devmem_alloc_dmabuf(b);
		KUNIT_ASSERT_NOT_NULL(test, niovs[n]);
	}
	extra = net_devmem_alloc_dmabuf(b);
	KUNIT_EXPECT_NULL(test, extra);
	KUNIT_EXPECT_EQ(test, test_free_niovs(b), 0);

	for (i = 0; i < n; i++) {
		struct net_iov *niov = niovs[i];
		struct dmabuf_genpool_chunk_owner *owner =
			net_devmem_iov_to_chunk_owner(niov);
		unsigned long virt = net_iov_virtual_addr(niov);
		unsigned int seg, page = virt / PAGE_SIZE, first = 0;

		KUNIT_EXPECT_TRUE(test, net_is_devmem_iov(niov));
		KUNIT_EXPECT_PTR_EQ(test, net_devmem_iov_binding(niov), b);
		KUNIT_EXPECT_EQ(test, net_devmem_iov_binding_id(niov), b->id);
		KUNIT_EXPECT_EQ(test, niov->desc.pp_magic, 0);
		KUNIT_EXPECT_NULL(test, niov->desc.pp);
		KUNIT_ASSERT_LT(test, page, 9);
		for (seg = 0; page >= first + three_segs[seg]; seg++)
			first += three_segs[seg];
		KUNIT_EXPECT_EQ(test, owner->base_dma_addr, ctx->exp->seg_addr[seg]);
		KUNIT_EXPECT_EQ(test, owner->area.base_virtual, first * PAGE_SIZE);
		KUNIT_EXPECT_EQ(test, owner->area.num_niovs, three_segs[seg]);
		KUNIT_EXPECT_EQ(test, niov->desc.dma_addr,
				ctx->exp->seg_addr[seg] + (page - first) * PAGE_SIZE);
		KUNIT_EXPECT_FALSE(test, seen_virt & BIT(page));
		seen_virt |= BIT(page);
		/* A NIC that DMAs gets no kernel mapping. */
		KUNIT_EXPECT_NULL(test, net_iov_dma_to_cpu(niov, test_dma(niov),
							   PAGE_SIZE));
	}
	KUNIT_EXPECT_EQ(test, seen_virt, GENMASK(8, 0));
	KUNIT_EXPECT_EQ(test, atomic_read(&ctx->exp->vmapped), 0);

	for (i = 0; i < n; i++)
		net_devmem_free_dmabuf(niovs[i]);
	KUNIT_EXPECT_EQ(test, test_free_niovs(b), 9);

	test_unbind(ctx, b);
	KUNIT_EXPECT_TRUE(test, list_empty(&ctx->sock.bindings));
	KUNIT_EXPECT_TRUE(test, test_wait_freed(ctx));
}

/* A device without DMA gets the dma-buf mapped into the kernel for the
 * binding's life, and each net_iov's DMA address resolved, through the
 * mapping's segments (here at falling DMA addresses), to that net_iov's
 * bytes.
 */
static void devmem_cpu_access_maps_the_buffer(struct kunit *test)
{
	struct test_ctx *ctx = test_ctx_new(test, 3, three_segs, 0, 0);
	struct net_iov *niovs[9] = {};
	struct net_devmem_dmabuf_binding *b;
	u8 *buf, *va;
	unsigned int i;

	buf = vzalloc(9 * PAGE_SIZE);
	KUNIT_ASSERT_NOT_NULL(test, buf);
	ctx->exp->vaddr = buf;
	ctx->netdev->queue_mgmt_ops = &test_cpu_access_ops;

	b = test_bind(ctx, DMA_FROM_DEVICE);
	KUNIT_ASSERT_NOT_ERR_OR_NULL(test, b);
	KUNIT_EXPECT_EQ(test, atomic_read(&ctx->exp->vmapped), 1);

	for (i = 0; i < ARRAY_SIZE(niovs); i++) {
		niovs[i] = net_devmem_alloc_dmabuf(b);
		KUNIT_ASSERT_NOT_NULL(test, niovs[i]);
		va = net_iov_dma_to_cpu(niovs[i], test_dma(niovs[i]), PAGE_SIZE);
		KUNIT_EXPECT_PTR_EQ(test, va,
				    buf + net_iov_virtual_addr(niovs[i]));
		if (va) {
			/* Both ends of the page, seen through the buffer. */
			va[0] = i + 1;
			va[PAGE_SIZE - 1] = i + 1;
		}
	}
	/* The address decides, not the net_iov it is asked for: another
	 * net_iov's address reaches that net_iov's bytes, as a NIC's DMA
	 * would. Outside every segment, or across a segment's end, there is
	 * nothing to reach. Segment 0 is the first 4 pages of the buffer,
	 * 1 the next 2, 2 the last 3.
	 */
	KUNIT_EXPECT_PTR_EQ(test,
			    net_iov_dma_to_cpu(niovs[0], test_dma(niovs[1]), 1),
			    buf + net_iov_virtual_addr(niovs[1]));
	KUNIT_EXPECT_PTR_EQ(test,
			    net_iov_dma_to_cpu(niovs[0], ctx->exp->seg_addr[2] +
					       3 * PAGE_SIZE - 1, 1),
			    buf + 9 * PAGE_SIZE - 1);
	KUNIT_EXPECT_NULL(test, net_iov_dma_to_cpu(niovs[0],
						   ctx->exp->seg_addr[0] +
						   4 * PAGE_SIZE, 1));
	KUNIT_EXPECT_NULL(test, net_iov_dma_to_cpu(niovs[0],
						   ctx->exp->seg_addr[1] +
						   PAGE_SIZE, PAGE_SIZE + 1));
	KUNIT_EXPECT_NULL(test, net_iov_dma_to_cpu(niovs[0],
						   ctx->exp->seg_addr[2] - 1, 1));

	for (i = 0; i < ARRAY_SIZE(niovs); i++) {
		unsigned long off = net_iov_virtual_addr(niovs[i]);

		KUNIT_EXPECT_EQ(test, buf[off], i + 1);
		KUNIT_EXPECT_EQ(test, buf[off + PAGE_SIZE - 1], i + 1);
		net_devmem_free_dmabuf(niovs[i]);
	}

	test_unbind(ctx, b);
	KUNIT_EXPECT_TRUE(test, test_wait_freed(ctx));
	KUNIT_EXPECT_EQ(test, atomic_read(&ctx->exp->vunmapped), 1);
}

/* An exporter that cannot map the buffer fails the bind of such a device,
 * and the bind gives back everything it took.
 */
static void devmem_cpu_access_refused(struct kunit *test)
{
	struct test_ctx *ctx = __test_ctx_new(test, 3, three_segs, 0, 0,
					      &test_dmabuf_ops_no_vmap);
	struct net_devmem_dmabuf_binding *b;

	ctx->netdev->queue_mgmt_ops = &test_cpu_access_ops;
	b = test_bind(ctx, DMA_TO_DEVICE);
	KUNIT_ASSERT_TRUE(test, IS_ERR(b));
	KUNIT_EXPECT_EQ(test, PTR_ERR(b), -EINVAL);
	KUNIT_ASSERT_NOT_NULL(test, ctx->extack._msg);
	KUNIT_EXPECT_STREQ(test, ctx->extack._msg,
			   "Failed to map dmabuf for CPU access");
	KUNIT_EXPECT_EQ(test, atomic_read(&ctx->exp->unmapped), 1);
	KUNIT_EXPECT_EQ(test, atomic_read(&ctx->exp->detached), 1);
	KUNIT_EXPECT_EQ(test, atomic_read(&ctx->exp->vunmapped), 0);
	KUNIT_EXPECT_TRUE(test, list_empty(&ctx->sock.bindings));
}

static void devmem_rejects_unaligned_segment(struct kunit *test)
{
	struct test_ctx *ctx = test_ctx_new(test, 3, three_segs, 100, 0);
	struct net_devmem_dmabuf_binding *b;

	b = test_bind(ctx, DMA_FROM_DEVICE);
	KUNIT_ASSERT_TRUE(test, IS_ERR(b));
	KUNIT_EXPECT_EQ(test, PTR_ERR(b), -EINVAL);
	KUNIT_ASSERT_NOT_NULL(test, ctx->extack._msg);
	KUNIT_EXPECT_STREQ(test, ctx->extack._msg,
			   "dma-buf SG length must be PAGE_SIZE aligned");
	/* Everything taken was given back, at once. */
	KUNIT_EXPECT_EQ(test, atomic_read(&ctx->exp->unmapped), 1);
	KUNIT_EXPECT_EQ(test, atomic_read(&ctx->exp->detached), 1);
	KUNIT_EXPECT_TRUE(test, list_empty(&ctx->sock.bindings));
}

static void devmem_rejects_unaligned_tx_size(struct kunit *test)
{
	struct test_ctx *ctx = test_ctx_new(test, 3, three_segs, 0, 100);
	struct net_devmem_dmabuf_binding *b;

	b = test_bind(ctx, DMA_TO_DEVICE);
	KUNIT_ASSERT_TRUE(test, IS_ERR(b));
	KUNIT_EXPECT_EQ(test, PTR_ERR(b), -EINVAL);
	KUNIT_ASSERT_NOT_NULL(test, ctx->extack._msg);
	KUNIT_EXPECT_STREQ(test, ctx->extack._msg,
			   "TX dma-buf size must be a multiple of PAGE_SIZE");
	KUNIT_EXPECT_EQ(test, atomic_read(&ctx->exp->unmapped), 1);
	KUNIT_EXPECT_EQ(test, ctx->exp->unmap_dir, DMA_TO_DEVICE);
	KUNIT_EXPECT_EQ(test, atomic_read(&ctx->exp->detached), 1);
}

/* A TX dma-buf whose exporter maps more than it exported: the binding's
 * net_iov table has one entry per page of the buffer, and the bind used to
 * fill it past its end, one entry per mapped page. Now refused, before
 * anything is carved.
 */
static void devmem_rejects_tx_mapping_past_the_buffer(struct kunit *test)
{
	struct test_ctx *ctx = test_ctx_new(test, 3, three_segs, 0, 0);
	struct net_devmem_dmabuf_binding *b;

	/* The last segment maps two pages more than the buffer has. */
	ctx->exp->seg_len[2] += 2 * PAGE_SIZE;
	b = test_bind(ctx, DMA_TO_DEVICE);
	KUNIT_ASSERT_TRUE(test, IS_ERR(b));
	KUNIT_EXPECT_EQ(test, PTR_ERR(b), -EINVAL);
	KUNIT_ASSERT_NOT_NULL(test, ctx->extack._msg);
	KUNIT_EXPECT_STREQ(test, ctx->extack._msg,
			   "TX dma-buf mapping is larger than the dma-buf");
	KUNIT_EXPECT_EQ(test, atomic_read(&ctx->exp->unmapped), 1);
	KUNIT_EXPECT_EQ(test, atomic_read(&ctx->exp->detached), 1);
	KUNIT_EXPECT_TRUE(test, list_empty(&ctx->sock.bindings));
}

static void devmem_rejects_missing_dma_device(struct kunit *test)
{
	struct test_ctx *ctx = test_ctx_new(test, 3, three_segs, 0, 0);
	struct net_devmem_dmabuf_binding *b;

	mutex_lock(&ctx->sock.lock);
	netdev_lock(ctx->netdev);
	b = net_devmem_bind_dmabuf(ctx->netdev, NULL, NULL, false,
				   DMA_FROM_DEVICE, PAGE_SHIFT, ctx->fd, NULL,
				   &ctx->sock, &ctx->extack);
	netdev_unlock(ctx->netdev);
	mutex_unlock(&ctx->sock.lock);
	KUNIT_ASSERT_TRUE(test, IS_ERR(b));
	KUNIT_EXPECT_EQ(test, PTR_ERR(b), -EOPNOTSUPP);
	KUNIT_ASSERT_NOT_NULL(test, ctx->extack._msg);
	KUNIT_EXPECT_STREQ(test, ctx->extack._msg, "Device doesn't support DMA");
	KUNIT_EXPECT_EQ(test, atomic_read(&ctx->exp->attached), 0);
}

static void devmem_tx_lookup_and_pages(struct kunit *test)
{
	struct test_ctx *ctx = test_ctx_new(test, 3, three_segs, 0, 0);
	struct net_devmem_dmabuf_binding *b, *found;
	struct net_iov *niov;
	size_t off, size;
	u32 id;

	b = test_bind(ctx, DMA_TO_DEVICE);
	KUNIT_ASSERT_NOT_ERR_OR_NULL(test, b);
	id = b->id;

	found = net_devmem_lookup_dmabuf(id);
	KUNIT_EXPECT_PTR_EQ(test, found, b);
	if (found)
		net_devmem_dmabuf_binding_put(found);

	/* Byte 5 pages + 7 lies in the second segment, one page in. */
	niov = net_devmem_get_niov_at(b, 5 * PAGE_SIZE + 7, &off, &size);
	KUNIT_ASSERT_NOT_NULL(test, niov);
	KUNIT_EXPECT_EQ(test, off, 7);
	KUNIT_EXPECT_EQ(test, size, PAGE_SIZE - 7);
	KUNIT_EXPECT_EQ(test, net_iov_virtual_addr(niov), 5 * PAGE_SIZE);
	KUNIT_EXPECT_EQ(test, niov->desc.dma_addr, ctx->exp->seg_addr[1] + PAGE_SIZE);
	/* The last byte is in the last page; one past it is in none. */
	niov = net_devmem_get_niov_at(b, 9 * PAGE_SIZE - 1, &off, &size);
	KUNIT_EXPECT_NOT_NULL(test, niov);
	KUNIT_EXPECT_EQ(test, size, 1);
	KUNIT_EXPECT_NULL(test, net_devmem_get_niov_at(b, 9 * PAGE_SIZE, &off, &size));

	test_unbind(ctx, b);
	KUNIT_EXPECT_NULL(test, net_devmem_lookup_dmabuf(id));
	KUNIT_EXPECT_TRUE(test, test_wait_freed(ctx));
	KUNIT_EXPECT_EQ(test, ctx->exp->unmap_dir, DMA_TO_DEVICE);
}

static void devmem_rx_binding_is_not_for_tx(struct kunit *test)
{
	struct test_ctx *ctx = test_ctx_new(test, 3, three_segs, 0, 0);
	struct net_devmem_dmabuf_binding *b;

	b = test_bind(ctx, DMA_FROM_DEVICE);
	KUNIT_ASSERT_NOT_ERR_OR_NULL(test, b);
	KUNIT_EXPECT_NULL(test, b->tx_vec);
	test_unbind(ctx, b);
	KUNIT_EXPECT_TRUE(test, test_wait_freed(ctx));
	KUNIT_EXPECT_EQ(test, ctx->exp->unmap_dir, DMA_FROM_DEVICE);
}

static void devmem_pool_init_checks(struct kunit *test)
{
	struct test_ctx *ctx = test_ctx_new(test, 3, three_segs, 0, 0);
	struct net_devmem_dmabuf_binding *b;
	struct page_pool *pool;

	pool = kunit_kzalloc(test, sizeof(*pool), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, pool);

	pool->dma_sync = true;
	pool->dma_sync_for_cpu = true;
	KUNIT_EXPECT_EQ(test, mp_dmabuf_devmem_init(pool), -EINVAL);

	b = test_bind(ctx, DMA_FROM_DEVICE);
	KUNIT_ASSERT_NOT_ERR_OR_NULL(test, b);
	pool->mp_priv = b;
	pool->p.order = 1;
	KUNIT_EXPECT_EQ(test, mp_dmabuf_devmem_init(pool), -E2BIG);
	KUNIT_EXPECT_FALSE(test, pool->dma_sync);
	KUNIT_EXPECT_FALSE(test, pool->dma_sync_for_cpu);

	pool->p.order = 0;
	KUNIT_ASSERT_EQ(test, mp_dmabuf_devmem_init(pool), 0);

	/* The pool's reference keeps the binding past unbind, but not the
	 * mapping or the attachment: unbind closed every queue, so nothing
	 * DMAs into the buffer any more. The last put frees the binding,
	 * which undoes neither again.
	 */
	test_unbind(ctx, b);
	KUNIT_EXPECT_EQ(test, atomic_read(&ctx->exp->unmapped), 1);
	KUNIT_EXPECT_EQ(test, atomic_read(&ctx->exp->detached), 1);
	KUNIT_EXPECT_NULL(test, READ_ONCE(b->dev));
	test_settle();
	KUNIT_EXPECT_EQ(test, test_free_niovs(b), 9);
	mp_dmabuf_devmem_destroy(pool);
	KUNIT_EXPECT_TRUE(test, test_wait_freed(ctx));
	KUNIT_EXPECT_EQ(test, atomic_read(&ctx->exp->unmapped), 1);
	KUNIT_EXPECT_EQ(test, atomic_read(&ctx->exp->detached), 1);
}

/* rx-page-size: with 16 KiB net_iovs, segments of 16, 8 and 4 pages give
 * 4 + 2 + 1 net_iovs, each 16 KiB apart in the dma-buf and in its segment's
 * DMA addresses, and only a pool of order 2 may use the binding.
 */
static const unsigned int big_segs[] = { 16, 8, 4 };

static void devmem_large_niovs(struct kunit *test)
{
	struct test_ctx *ctx = test_ctx_new(test, 3, big_segs, 0, 0);
	const unsigned int shift = PAGE_SHIFT + 2, n = 7;
	struct net_devmem_dmabuf_binding *b;
	struct net_iov *niovs[7];
	unsigned long seen = 0;
	struct page_pool *pool;
	unsigned int i;

	b = test_bind_sized(ctx, DMA_FROM_DEVICE, shift);
	KUNIT_ASSERT_NOT_ERR_OR_NULL(test, b);
	KUNIT_EXPECT_EQ(test, b->niov_shift, shift);
	KUNIT_EXPECT_EQ(test, net_devmem_rx_page_size(b), 1U << shift);

	for (i = 0; i < n; i++) {
		struct dmabuf_genpool_chunk_owner *owner;
		unsigned long virt, first = 0;
		unsigned int seg, k;

		niovs[i] = net_devmem_alloc_dmabuf(b);
		KUNIT_ASSERT_NOT_NULL(test, niovs[i]);
		owner = net_devmem_iov_to_chunk_owner(niovs[i]);
		virt = net_iov_virtual_addr(niovs[i]);
		KUNIT_EXPECT_EQ(test, virt % (1UL << shift), 0);
		k = virt >> shift;
		KUNIT_ASSERT_LT(test, k, n);
		for (seg = 0; virt >= first + big_segs[seg] * PAGE_SIZE; seg++)
			first += big_segs[seg] * PAGE_SIZE;
		KUNIT_EXPECT_EQ(test, owner->area.base_virtual, first);
		KUNIT_EXPECT_EQ(test, owner->area.num_niovs,
				big_segs[seg] * PAGE_SIZE >> shift);
		KUNIT_EXPECT_EQ(test, niovs[i]->desc.dma_addr,
				ctx->exp->seg_addr[seg] + (virt - first));
		KUNIT_EXPECT_FALSE(test, seen & BIT(k));
		seen |= BIT(k);
	}
	KUNIT_EXPECT_EQ(test, seen, GENMASK(n - 1, 0));
	KUNIT_EXPECT_NULL(test, net_devmem_alloc_dmabuf(b));
	for (i = 0; i < n; i++)
		net_devmem_free_dmabuf(niovs[i]);
	KUNIT_EXPECT_EQ(test, test_free_niovs(b), n);

	pool = kunit_kzalloc(test, sizeof(*pool), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, pool);
	pool->mp_priv = b;
	pool->p.order = 0;
	KUNIT_EXPECT_EQ(test, mp_dmabuf_devmem_init(pool), -E2BIG);
	pool->p.order = 2;
	KUNIT_ASSERT_EQ(test, mp_dmabuf_devmem_init(pool), 0);
	mp_dmabuf_devmem_destroy(pool);
	test_unbind(ctx, b);
	KUNIT_EXPECT_TRUE(test, test_wait_freed(ctx));
}

/* A segment that is not a whole number of net_iovs is refused, and so is
 * every other size than a page for TX.
 */
static const unsigned int odd_segs[] = { 16, 6 };

static void devmem_large_niovs_unaligned(struct kunit *test)
{
	struct test_ctx *ctx = test_ctx_new(test, 2, odd_segs, 0, 0);
	struct net_devmem_dmabuf_binding *b;

	b = test_bind_sized(ctx, DMA_TO_DEVICE, PAGE_SHIFT + 1);
	KUNIT_ASSERT_TRUE(test, IS_ERR(b));
	KUNIT_EXPECT_EQ(test, PTR_ERR(b), -EINVAL);
	KUNIT_EXPECT_EQ(test, atomic_read(&ctx->exp->attached), 0);

	b = test_bind_sized(ctx, DMA_FROM_DEVICE, PAGE_SHIFT + 2);
	KUNIT_ASSERT_TRUE(test, IS_ERR(b));
	KUNIT_EXPECT_EQ(test, PTR_ERR(b), -EINVAL);
	KUNIT_ASSERT_NOT_NULL(test, ctx->extack._msg);
	KUNIT_EXPECT_STREQ(test, ctx->extack._msg,
			   "dma-buf SG entry not aligned to rx-page-size");
	KUNIT_EXPECT_EQ(test, atomic_read(&ctx->exp->unmapped), 1);
	KUNIT_EXPECT_EQ(test, atomic_read(&ctx->exp->detached), 1);
	KUNIT_EXPECT_TRUE(test, list_empty(&ctx->sock.bindings));

	/* 8 KiB divides both segments. */
	atomic_set(&ctx->exp->detached, 0);
	b = test_bind_sized(ctx, DMA_FROM_DEVICE, PAGE_SHIFT + 1);
	KUNIT_ASSERT_NOT_ERR_OR_NULL(test, b);
	KUNIT_EXPECT_EQ(test, test_free_niovs(b), 11);
	test_unbind(ctx, b);
	KUNIT_EXPECT_TRUE(test, test_wait_freed(ctx));
}

/* A pool whose cache ran dry asks the provider for buffers. C hands out
 * one net_iov per call; Rust also refills the pool's cache, under one lock,
 * with up to a refill's worth but never more than a quarter of what is
 * free. Either way every net_iov is accounted for: returned, cached in the
 * pool (lent to it), or still free.
 */
static void devmem_refill_fills_cache(struct kunit *test)
{
	struct test_ctx *ctx = test_ctx_new(test, 3, three_segs, 0, 0);
	netmem_ref got[9] = {};
	struct net_devmem_dmabuf_binding *b;
	unsigned int n = 0, cached, i, j;
	struct page_pool *pool;

	pool = kunit_kzalloc(test, sizeof(*pool), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, pool);
	b = test_bind(ctx, DMA_FROM_DEVICE);
	KUNIT_ASSERT_NOT_ERR_OR_NULL(test, b);
	pool->mp_priv = b;
	KUNIT_ASSERT_EQ(test, mp_dmabuf_devmem_init(pool), 0);

	got[n++] = mp_dmabuf_devmem_alloc_netmems(pool, GFP_ATOMIC);
	KUNIT_ASSERT_NE(test, got[0], 0);
	cached = pool->alloc.count;
	/* Rust takes at most a quarter of the free net_iovs: 2 of 9. */
	if (IS_ENABLED(CONFIG_NET_DEVMEM_RUST))
		KUNIT_EXPECT_EQ(test, cached, 1);
	else
		KUNIT_EXPECT_EQ(test, cached, 0);
	KUNIT_EXPECT_EQ(test, 1 + cached + test_free_niovs(b), 9);

	/* Each one a distinct net_iov of the binding, lent to this pool. */
	while (pool->alloc.count)
		got[n++] = pool->alloc.cache[--pool->alloc.count];
	for (i = 0; i < n; i++) {
		struct net_iov *niov;

		KUNIT_ASSERT_TRUE(test, netmem_is_net_iov(got[i]));
		niov = netmem_to_net_iov(got[i]);
		KUNIT_EXPECT_PTR_EQ(test, net_devmem_iov_binding(niov), b);
		KUNIT_EXPECT_PTR_EQ(test, niov->desc.pp, pool);
		for (j = 0; j < i; j++)
			KUNIT_EXPECT_NE(test, got[i], got[j]);
	}

	/* Given back as page_pool gives them: its last reference held. */
	for (i = 0; i < n; i++) {
		atomic_long_set(netmem_get_pp_ref_count_ref(got[i]), 1);
		KUNIT_EXPECT_FALSE(test, mp_dmabuf_devmem_release_page(pool, got[i]));
	}
	KUNIT_EXPECT_EQ(test, test_free_niovs(b), 9);

	mp_dmabuf_devmem_destroy(pool);
	test_unbind(ctx, b);
	KUNIT_EXPECT_TRUE(test, test_wait_freed(ctx));
}

static netmem_ref test_pool_take(struct page_pool *pool)
{
	if (pool->alloc.count)
		return pool->alloc.cache[--pool->alloc.count];
	return mp_dmabuf_devmem_alloc_netmems(pool, GFP_ATOMIC);
}

/* Two queues' pools share a binding of 64 net_iovs, taking one buffer each
 * in turn until neither gets any: both make progress, each gets at least a
 * quarter, and all 64 are handed out once. A bulk refill that took a whole
 * refill's worth (64) into the first pool's cache left the second nothing.
 */
static void devmem_refill_leaves_other_queues(struct kunit *test)
{
	static const unsigned int seg64[] = { 64 };
	struct test_ctx *ctx = test_ctx_new(test, 1, seg64, 0, 0);
	struct net_devmem_dmabuf_binding *b;
	unsigned int n[2] = {}, i, k;
	struct page_pool *pools[2];
	netmem_ref (*got)[64];
	bool more = true;

	got = kunit_kcalloc(test, 2, sizeof(*got), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, got);
	b = test_bind(ctx, DMA_FROM_DEVICE);
	KUNIT_ASSERT_NOT_ERR_OR_NULL(test, b);
	for (k = 0; k < 2; k++) {
		pools[k] = kunit_kzalloc(test, sizeof(*pools[k]), GFP_KERNEL);
		KUNIT_ASSERT_NOT_NULL(test, pools[k]);
		pools[k]->mp_priv = b;
		KUNIT_ASSERT_EQ(test, mp_dmabuf_devmem_init(pools[k]), 0);
	}

	while (more) {
		more = false;
		for (k = 0; k < 2; k++) {
			netmem_ref nm = test_pool_take(pools[k]);

			if (!nm)
				continue;
			KUNIT_ASSERT_LT(test, n[k], 64);
			got[k][n[k]++] = nm;
			more = true;
		}
		if (n[0] + n[1] == 2)
			KUNIT_EXPECT_EQ(test, n[1], 1);
	}
	KUNIT_EXPECT_GE(test, n[0], 16);
	KUNIT_EXPECT_GE(test, n[1], 16);
	KUNIT_EXPECT_EQ(test, n[0] + n[1], 64);

	for (k = 0; k < 2; k++) {
		for (i = 0; i < n[k]; i++) {
			atomic_long_set(netmem_get_pp_ref_count_ref(got[k][i]), 1);
			KUNIT_EXPECT_FALSE(test, mp_dmabuf_devmem_release_page(pools[k],
									       got[k][i]));
		}
		mp_dmabuf_devmem_destroy(pools[k]);
	}
	KUNIT_EXPECT_EQ(test, test_free_niovs(b), 16);
	test_unbind(ctx, b);
	KUNIT_EXPECT_TRUE(test, test_wait_freed(ctx));
}

struct test_churn {
	struct net_devmem_dmabuf_binding *b;
	unsigned long *owned;	/* one bit per net_iov, set while taken */
	atomic_t twice, lost;
	bool bh;		/* as NAPI: bottom halves disabled */
	struct completion done;
};

/* Takes and gives back net_iovs in a loop, up to three held at a time. */
static int test_churn_fn(void *data)
{
	struct test_churn *c = data;
	struct net_iov *held[3] = {};
	unsigned int i, k;

	for (i = 0; i < 20000; i++) {
		k = i % ARRAY_SIZE(held);
		if (c->bh)
			local_bh_disable();
		if (held[k]) {
			clear_bit(net_iov_virtual_addr(held[k]) / PAGE_SIZE,
				  c->owned);
			net_devmem_free_dmabuf(held[k]);
		}
		held[k] = net_devmem_alloc_dmabuf(c->b);
		if (held[k] && test_and_set_bit(net_iov_virtual_addr(held[k]) /
						PAGE_SIZE, c->owned))
			atomic_inc(&c->twice);
		if (c->bh)
			local_bh_enable();
		if (!held[k])
			atomic_inc(&c->lost);
		cond_resched();
	}
	for (k = 0; k < ARRAY_SIZE(held); k++) {
		if (held[k]) {
			clear_bit(net_iov_virtual_addr(held[k]) / PAGE_SIZE,
				  c->owned);
			net_devmem_free_dmabuf(held[k]);
		}
	}
	complete(&c->done);
	return 0;
}

/* Two CPUs, one in process context and one as NAPI would, share a binding
 * of nine net_iovs, each holding up to three: no net_iov is ever handed out
 * twice, none is refused (six held at most), and all nine are free after.
 */
static void devmem_free_list_two_cpus(struct kunit *test)
{
	struct test_ctx *ctx = test_ctx_new(test, 3, three_segs, 0, 0);
	struct test_churn churn[2] = {};
	struct net_devmem_dmabuf_binding *b;
	struct task_struct *t;
	unsigned long owned = 0;
	unsigned int i;

	b = test_bind(ctx, DMA_FROM_DEVICE);
	KUNIT_ASSERT_NOT_ERR_OR_NULL(test, b);
	for (i = 0; i < 2; i++) {
		churn[i].b = b;
		churn[i].owned = &owned;
		churn[i].bh = i;
		init_completion(&churn[i].done);
		t = kthread_run_on_cpu(test_churn_fn, &churn[i],
				       i % num_online_cpus(), "devmem-churn/%u");
		KUNIT_EXPECT_FALSE(test, IS_ERR(t));
		if (IS_ERR(t))
			complete(&churn[i].done);	/* nothing to wait for */
	}
	/* Both threads use this frame: wait for them before any assert. */
	for (i = 0; i < 2; i++) {
		wait_for_completion(&churn[i].done);
		KUNIT_EXPECT_EQ(test, atomic_read(&churn[i].twice), 0);
		KUNIT_EXPECT_EQ(test, atomic_read(&churn[i].lost), 0);
	}
	KUNIT_EXPECT_EQ(test, owned, 0);
	KUNIT_EXPECT_EQ(test, test_free_niovs(b), 9);
	test_unbind(ctx, b);
	KUNIT_EXPECT_TRUE(test, test_wait_freed(ctx));
}

static void devmem_release_at_last_put(struct kunit *test)
{
	struct test_ctx *ctx = test_ctx_new(test, 3, three_segs, 0, 0);
	struct net_devmem_dmabuf_binding *b;
	struct net_iov *niov;

	/* An skb's reference on a TX net_iov outlives unbind and the fd. */
	niov = test_unbind_tx_held(test, ctx, &b);
	close_fd(ctx->fd);
	ctx->fd = -1;
	test_settle();
	flush_delayed_fput();
	KUNIT_EXPECT_EQ(test, atomic_read(&ctx->exp->detached), 0);
	KUNIT_EXPECT_EQ(test, atomic_read(&ctx->exp->released), 0);
	KUNIT_EXPECT_EQ(test, test_free_niovs(b), 9);

	net_devmem_put_net_iov(niov);
	KUNIT_EXPECT_TRUE(test, test_wait_detached(ctx->exp));
	KUNIT_EXPECT_EQ(test, atomic_read(&ctx->exp->unmapped), 1);
	/* The binding's was the last reference: the release follows its
	 * (possibly deferred) fput.
	 */
	flush_delayed_fput();
	KUNIT_EXPECT_EQ(test, atomic_read(&ctx->exp->released), 1);
}

/* Links the owner for a free after the walk, which holds rcu_read_lock()
 * (a vmalloc'ed array cannot be freed there), as the providers do.
 */
static void test_collect_chunk_owner(struct gen_pool *pool,
				     struct gen_pool_chunk *chunk, void *owners)
{
	struct dmabuf_genpool_chunk_owner *owner = chunk->owner;

	__llist_add(&owner->free_node, owners);
}

/* A net_iov still out when its binding is freed: the free warns and leaks
 * the genpool (C) or the arena (Rust), and the net_iov, with the chunk owner
 * it points to, stays as its holder left it (they used to be freed before
 * the check). The test then frees what was leaked, which only it still
 * knows about.
 */
static void devmem_leaked_niov_outlives_binding(struct kunit *test)
{
	static const unsigned int one_seg[] = { 4 };
	struct test_ctx *ctx = test_ctx_new(test, 1, one_seg, 0, 0);
	struct dmabuf_genpool_chunk_owner *owner, *next;
	struct net_devmem_dmabuf_binding *b;
	struct gen_pool *pool;
	struct net_iov *niov;
	LLIST_HEAD(owners);
	bool freed;

	b = test_bind(ctx, DMA_FROM_DEVICE);
	KUNIT_ASSERT_NOT_ERR_OR_NULL(test, b);
	niov = net_devmem_alloc_dmabuf(b);
	KUNIT_ASSERT_NOT_NULL(test, niov);
	pool = b->chunk_pool;
	/* The warning below must be this test's. */
	KUNIT_ASSERT_FALSE(test, test_taint(TAINT_WARN));

	pr_info("devmem_kunit: expected WARNING begin: can't destroy genpool\n");
	test_unbind(ctx, b);
	freed = test_wait_freed(ctx);
	pr_info("devmem_kunit: expected WARNING end\n");
	KUNIT_ASSERT_TRUE(test, freed);
	KUNIT_EXPECT_TRUE(test, test_taint(TAINT_WARN));

	/* Slab poisoning (slub_debug=P) makes freed memory fail these. */
	KUNIT_ASSERT_EQ(test, niov->type, NET_IOV_DMABUF);
	owner = container_of(niov->owner, struct dmabuf_genpool_chunk_owner,
			     area);
	KUNIT_ASSERT_EQ(test, owner->area.num_niovs, 4);
	KUNIT_ASSERT_PTR_EQ(test, owner->area.niovs + net_iov_idx(niov), niov);
	KUNIT_ASSERT_EQ(test, owner->base_dma_addr, ctx->exp->seg_addr[0]);

	/* The Rust provider has no genpool: its arena leaked the owner and the
	 * block of net_iovs the owner's area starts (this binding's only one).
	 */
	if (IS_ENABLED(CONFIG_NET_DEVMEM_RUST)) {
		KUNIT_EXPECT_NULL(test, pool);
		KUNIT_EXPECT_EQ(test, net_iov_idx(niov), 0);
		kvfree(owner->area.niovs);
		kfree(owner);
		return;
	}

	/* C's provider allocates from the genpool's bitmap: give it back what
	 * it still counts as out.
	 */
	if (gen_pool_avail(pool) != gen_pool_size(pool))
		gen_pool_free(pool, owner->base_dma_addr +
			      ((dma_addr_t)net_iov_idx(niov) << PAGE_SHIFT),
			      PAGE_SIZE);
	KUNIT_EXPECT_EQ(test, gen_pool_avail(pool), gen_pool_size(pool));
	gen_pool_for_each_chunk(pool, test_collect_chunk_owner, &owners);
	llist_for_each_entry_safe(owner, next, __llist_del_all(&owners),
				  free_node) {
		kvfree(owner->area.niovs);
		kfree(owner);
	}
	gen_pool_destroy(pool);
}

#if IS_ENABLED(CONFIG_NET_DEVMEM_RUST)
/* The Rust provider names a binding's net_iovs by 32-bit slots, so a dma-buf
 * of more (16 TiB of pages, made up here: 4097 segments of just under 4 GiB,
 * the most an SG entry's length holds) is refused, with its reason, before
 * anything is allocated for it. C's provider has no such bound: it would
 * try to allocate every net_iov and run out of memory first.
 */
static void devmem_too_many_niovs_refused(struct kunit *test)
{
	const unsigned int nsegs = TEST_MAX_SEGS;
	struct net_devmem_dmabuf_binding *b;
	struct test_ctx *ctx;
	unsigned int *pages, i;

	pages = kunit_kmalloc_array(test, nsegs, sizeof(*pages), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, pages);
	for (i = 0; i < nsegs; i++)
		pages[i] = U32_MAX >> PAGE_SHIFT;
	KUNIT_ASSERT_GT(test, (u64)nsegs * pages[0], (u64)U32_MAX + 1);
	ctx = test_ctx_new(test, nsegs, pages, 0, 0);

	b = test_bind(ctx, DMA_FROM_DEVICE);
	KUNIT_ASSERT_TRUE(test, IS_ERR(b));
	KUNIT_EXPECT_EQ(test, PTR_ERR(b), -EINVAL);
	KUNIT_ASSERT_NOT_NULL(test, ctx->extack._msg);
	KUNIT_EXPECT_STREQ(test, ctx->extack._msg,
			   "dma-buf has more net_iovs than a binding can index");
	KUNIT_EXPECT_EQ(test, atomic_read(&ctx->exp->unmapped), 1);
	KUNIT_EXPECT_EQ(test, atomic_read(&ctx->exp->detached), 1);
	KUNIT_EXPECT_TRUE(test, list_empty(&ctx->sock.bindings));
}

/* A net_iov given back twice: the Rust provider's free list refuses the
 * second free with a warning (WARN_ON, as a free of an address outside the
 * pool warns in C) and hands the net_iov out once, not twice. C's genpool
 * has no such check (gen_pool_free() hits its BUG_ON on a double free), so
 * this case is the Rust provider's only. The warning's window is checked by
 * the VM runner: exactly one WARNING inside it.
 */
static void devmem_double_free_refused(struct kunit *test)
{
	static const unsigned int one_seg[] = { 4 };
	struct test_ctx *ctx = test_ctx_new(test, 1, one_seg, 0, 0);
	struct net_devmem_dmabuf_binding *b;
	struct net_iov *niov, *other, *got[3];
	unsigned int i, j;

	b = test_bind(ctx, DMA_FROM_DEVICE);
	KUNIT_ASSERT_NOT_ERR_OR_NULL(test, b);
	/* Two out, so that the free list has room for a duplicate: with the
	 * list full, only its capacity would refuse the second free.
	 */
	niov = net_devmem_alloc_dmabuf(b);
	KUNIT_ASSERT_NOT_NULL(test, niov);
	other = net_devmem_alloc_dmabuf(b);
	KUNIT_ASSERT_NOT_NULL(test, other);
	net_devmem_free_dmabuf(niov);

	pr_info("devmem_kunit: expected WARNING begin: net_iov freed twice\n");
	net_devmem_free_dmabuf(niov);
	pr_info("devmem_kunit: expected WARNING end\n");
	KUNIT_EXPECT_TRUE(test, test_taint(TAINT_WARN));
	KUNIT_EXPECT_EQ(test, test_free_niovs(b), 3);

	/* Three free net_iovs, each handed out once: three distinct ones,
	 * none of them the one still out, then none.
	 */
	for (i = 0; i < ARRAY_SIZE(got); i++) {
		got[i] = net_devmem_alloc_dmabuf(b);
		KUNIT_ASSERT_NOT_NULL(test, got[i]);
		KUNIT_EXPECT_PTR_NE(test, got[i], other);
		for (j = 0; j < i; j++)
			KUNIT_EXPECT_PTR_NE(test, got[i], got[j]);
	}
	KUNIT_EXPECT_NULL(test, net_devmem_alloc_dmabuf(b));
	for (i = 0; i < ARRAY_SIZE(got); i++)
		net_devmem_free_dmabuf(got[i]);
	net_devmem_free_dmabuf(other);
	KUNIT_EXPECT_EQ(test, test_free_niovs(b), 4);
	test_unbind(ctx, b);
	KUNIT_EXPECT_TRUE(test, test_wait_freed(ctx));
}

/* A binding is installed as a queue's provider only if it is an RX binding
 * and the queue is one of its own device's: unbind closes the queues of the
 * binding's device only, so a queue of another device would keep naming a
 * binding that is freed. The Rust provider refuses both with EINVAL before
 * it touches the queue; netdev-genl never asks for either, and C does not
 * check (these reach netif_mp_open_rxq(), which refuses this test device for
 * lacking queue management ops: EOPNOTSUPP).
 */
static void devmem_install_only_own_rx_queues(struct kunit *test)
{
	static const unsigned int one_seg[] = { 4 };
	struct test_ctx *ctx = test_ctx_new(test, 1, one_seg, 0, 0);
	struct net_devmem_dmabuf_binding *rx, *tx;
	struct net_device *other;
	int err, i;

	other = alloc_netdev(0, "devmemkunit%d", NET_NAME_UNKNOWN, ether_setup);
	KUNIT_ASSERT_NOT_NULL(test, other);
	rx = test_bind(ctx, DMA_FROM_DEVICE);
	tx = test_bind(ctx, DMA_TO_DEVICE);
	if (IS_ERR_OR_NULL(rx) || IS_ERR_OR_NULL(tx))
		free_netdev(other);
	KUNIT_ASSERT_NOT_ERR_OR_NULL(test, rx);
	KUNIT_ASSERT_NOT_ERR_OR_NULL(test, tx);

	mutex_lock(&ctx->sock.lock);
	/* A TX binding, on a queue of its own device. */
	netdev_lock(ctx->netdev);
	err = net_devmem_bind_dmabuf_to_queue(ctx->netdev, 0, tx, &ctx->extack);
	netdev_unlock(ctx->netdev);
	KUNIT_EXPECT_EQ(test, err, -EINVAL);
	/* An RX binding, on a queue of another device. */
	netdev_lock(other);
	err = net_devmem_bind_dmabuf_to_queue(other, 0, rx, &ctx->extack);
	netdev_unlock(other);
	KUNIT_EXPECT_EQ(test, err, -EINVAL);
	mutex_unlock(&ctx->sock.lock);

	KUNIT_EXPECT_TRUE(test, xa_empty(&rx->bound_rxqs));
	KUNIT_EXPECT_TRUE(test, xa_empty(&tx->bound_rxqs));
	KUNIT_EXPECT_NULL(test, __netif_get_rx_queue(other, 0)->mp_params.mp_priv);
	KUNIT_EXPECT_NULL(test,
			  __netif_get_rx_queue(ctx->netdev, 0)->mp_params.mp_priv);
	test_unbind(ctx, tx);
	test_unbind(ctx, rx);
	for (i = 0; i < 500 && atomic_read(&ctx->exp->detached) < 2; i++) {
		rcu_barrier();
		usleep_range(10000, 20000);
	}
	KUNIT_EXPECT_EQ(test, atomic_read(&ctx->exp->detached), 2);
	free_netdev(other);
}
#endif

/* A TX binding lets go of its device, and unmaps and detaches its dma-buf,
 * when that device unregisters, also once it is unbound but still held (an
 * skb's net_iov); a binding on another device is left alone.
 */
static void devmem_tx_device_unregisters(struct kunit *test)
{
	struct test_ctx *ctx = test_ctx_new(test, 3, three_segs, 0, 0);
	struct net_devmem_dmabuf_binding *b;
	struct net_device *other;
	struct net_iov *niov;

	b = test_bind(ctx, DMA_TO_DEVICE);
	KUNIT_ASSERT_NOT_ERR_OR_NULL(test, b);
	KUNIT_EXPECT_PTR_EQ(test, READ_ONCE(b->dev), ctx->netdev);

	other = alloc_netdev(0, "devmemkunit%d", NET_NAME_UNKNOWN, ether_setup);
	KUNIT_ASSERT_NOT_NULL(test, other);
	net_devmem_unregister_netdev(other);
	free_netdev(other);
	KUNIT_EXPECT_PTR_EQ(test, READ_ONCE(b->dev), ctx->netdev);
	KUNIT_EXPECT_EQ(test, atomic_read(&ctx->exp->unmapped), 0);

	net_devmem_unregister_netdev(ctx->netdev);
	KUNIT_EXPECT_NULL(test, READ_ONCE(b->dev));
	KUNIT_EXPECT_EQ(test, atomic_read(&ctx->exp->unmapped), 1);
	KUNIT_EXPECT_EQ(test, ctx->exp->unmap_dir, DMA_TO_DEVICE);
	KUNIT_EXPECT_EQ(test, atomic_read(&ctx->exp->detached), 1);

	/* Unbind without a device; the free undoes neither again. */
	test_unbind(ctx, b);
	KUNIT_EXPECT_TRUE(test, test_wait_freed(ctx));
	KUNIT_EXPECT_EQ(test, atomic_read(&ctx->exp->unmapped), 1);
	KUNIT_EXPECT_EQ(test, atomic_read(&ctx->exp->detached), 1);

	/* Unbound first, an skb still holding one of its net_iovs: the
	 * binding is out of the table, and its device's unregister must
	 * still find it.
	 */
	niov = test_unbind_tx_held(test, ctx, &b);
	test_settle();
	KUNIT_EXPECT_EQ(test, atomic_read(&ctx->exp->unmapped), 1);
	KUNIT_EXPECT_EQ(test, atomic_read(&ctx->exp->detached), 1);
	net_devmem_unregister_netdev(ctx->netdev);
	KUNIT_EXPECT_NULL(test, READ_ONCE(b->dev));
	KUNIT_EXPECT_EQ(test, atomic_read(&ctx->exp->unmapped), 2);
	KUNIT_EXPECT_EQ(test, atomic_read(&ctx->exp->detached), 2);
	/* The last put frees it, off the unbound list first. */
	net_devmem_put_net_iov(niov);
	KUNIT_EXPECT_TRUE(test, test_wait_freed(ctx));
	KUNIT_EXPECT_EQ(test, atomic_read(&ctx->exp->unmapped), 2);
	KUNIT_EXPECT_EQ(test, atomic_read(&ctx->exp->detached), 2);
}

static struct kunit_case devmem_cases[] = {
	KUNIT_CASE(devmem_carves_every_segment),
	KUNIT_CASE(devmem_cpu_access_maps_the_buffer),
	KUNIT_CASE(devmem_cpu_access_refused),
	KUNIT_CASE(devmem_rejects_unaligned_segment),
	KUNIT_CASE(devmem_rejects_unaligned_tx_size),
	KUNIT_CASE(devmem_rejects_tx_mapping_past_the_buffer),
	KUNIT_CASE(devmem_rejects_missing_dma_device),
	KUNIT_CASE(devmem_tx_lookup_and_pages),
	KUNIT_CASE(devmem_rx_binding_is_not_for_tx),
	KUNIT_CASE(devmem_pool_init_checks),
	KUNIT_CASE(devmem_refill_fills_cache),
	KUNIT_CASE(devmem_refill_leaves_other_queues),
	KUNIT_CASE(devmem_free_list_two_cpus),
	KUNIT_CASE(devmem_release_at_last_put),
	KUNIT_CASE(devmem_leaked_niov_outlives_binding),
#if IS_ENABLED(CONFIG_NET_DEVMEM_RUST)
	/* After the case above: both taint the kernel with a WARN. */
	KUNIT_CASE(devmem_double_free_refused),
	KUNIT_CASE(devmem_install_only_own_rx_queues),
	KUNIT_CASE(devmem_too_many_niovs_refused),
#endif
	KUNIT_CASE(devmem_tx_device_unregisters),
	KUNIT_CASE(devmem_large_niovs),
	KUNIT_CASE(devmem_large_niovs_unaligned),
	{}
};

static struct kunit_suite devmem_suite = {
	.name = "net_devmem",
	.test_cases = devmem_cases,
};

kunit_test_suite(devmem_suite);

MODULE_DESCRIPTION("KUnit tests for the devmem dma-buf memory provider");
MODULE_LICENSE("GPL");

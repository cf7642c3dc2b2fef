/* Byte-exact netlink messages, written out by hand from the kernel's
 * nf_tables ABI (linux/netfilter/nf_tables.h, nfnetlink.h), as ell's
 * test-rtnl does: a regression in what we send to the kernel shows here
 * before it shows as a refused batch. Host byte order is little endian on
 * every machine we build on (checked below). */
#include "harness.h"

#include "agent/dataplane/dataplane.h"
#include "agent/nl/nft.h"

#include <linux/netlink.h>

/* nlmsghdr: len, type, flags, seq 100+k, pid 0; then nfgenmsg */
#define HDR(len, type, flags, seq, fam) \
	len, 0, 0, 0, (type) & 0xff, (type) >> 8, (flags) & 0xff, (flags) >> 8, seq, 0, 0, 0, 0, 0, 0, 0, fam, 0, 0, 0

static const uint8_t batch_begin[] = { HDR(20, 0x10, 0x001, 100, 0) };
/* the begin message carries res_id NFNL_SUBSYS_NFTABLES (10), big endian */
static const uint8_t table_add[] = {
	HDR(28, 0x0a00, 0x401, 101, 1),  /* NEWTABLE, REQUEST|CREATE, inet */
	6, 0, 1, 0, 't', 0, 0, 0,        /* NFTA_TABLE_NAME "t" */
};
static const uint8_t elems_add[] = {
	HDR(84, 0x0a0c, 0x601, 102, 1),            /* NEWSETELEM, REQUEST|CREATE|EXCL */
	9, 0, 2, 0, 'p', '1', '_', '4', 0, 0, 0, 0, /* NFTA_SET_ELEM_LIST_SET */
	6, 0, 1, 0, 't', 0, 0, 0,                  /* NFTA_SET_ELEM_LIST_TABLE */
	44, 0, 3, 0x80,                            /* NFTA_SET_ELEM_LIST_ELEMENTS, nested */
	16, 0, 1, 0x80,                            /* element 1: the start */
	12, 0, 1, 0x80,                            /* NFTA_SET_ELEM_KEY */
	8, 0, 1, 0, 10, 0, 0, 1,                   /* NFTA_DATA_VALUE 10.0.0.1 */
	24, 0, 2, 0x80,                            /* element 2: the end, one past 10.0.0.2 */
	8, 0, 3, 0, 0, 0, 0, 1,                    /* NFTA_SET_ELEM_FLAGS INTERVAL_END */
	12, 0, 1, 0x80, 8, 0, 1, 0, 10, 0, 0, 3,   /* key 10.0.0.3 */
};
static const uint8_t rule_add[] = {
	HDR(0x08, 0x0a06, 0xc05, 103, 1), /* NEWRULE, REQUEST|ACK|CREATE|APPEND: only the
	                                     last message asks for an ack; len patched below */
	6, 0, 1, 0, 't', 0, 0, 0,
	11, 0, 2, 0, 'i', 'n', 'g', '_', 'g', '1', 0, 0, /* NFTA_RULE_CHAIN */
	224, 0, 4, 0x80,                          /* NFTA_RULE_EXPRESSIONS */
	/* meta load nfproto => reg 1 */
	36, 0, 1, 0x80, 9, 0, 1, 0, 'm', 'e', 't', 'a', 0, 0, 0, 0, 20, 0, 2, 0x80,
	8, 0, 2, 0, 0, 0, 0, 15,                 /* NFTA_META_KEY NFT_META_NFPROTO */
	8, 0, 1, 0, 0, 0, 0, 1,                  /* NFTA_META_DREG 1 */
	/* cmp eq reg 1 0x02 (NFPROTO_IPV4) */
	44, 0, 1, 0x80, 8, 0, 1, 0, 'c', 'm', 'p', 0, 32, 0, 2, 0x80,
	8, 0, 1, 0, 0, 0, 0, 1,                  /* SREG */
	8, 0, 2, 0, 0, 0, 0, 0,                  /* OP eq */
	12, 0, 3, 0x80, 5, 0, 1, 0, 2, 0, 0, 0,  /* DATA { VALUE 02 } */
	/* payload load 4b @ network header + 12 => reg 1 (ip saddr) */
	52, 0, 1, 0x80, 12, 0, 1, 0, 'p', 'a', 'y', 'l', 'o', 'a', 'd', 0, 36, 0, 2, 0x80,
	8, 0, 1, 0, 0, 0, 0, 1,                  /* DREG */
	8, 0, 2, 0, 0, 0, 0, 1,                  /* BASE network */
	8, 0, 3, 0, 0, 0, 0, 12,                 /* OFFSET */
	8, 0, 4, 0, 0, 0, 0, 4,                  /* LEN */
	/* lookup reg 1 set p1_4 */
	40, 0, 1, 0x80, 11, 0, 1, 0, 'l', 'o', 'o', 'k', 'u', 'p', 0, 0, 24, 0, 2, 0x80,
	8, 0, 2, 0, 0, 0, 0, 1,                  /* NFTA_LOOKUP_SREG */
	9, 0, 1, 0, 'p', '1', '_', '4', 0, 0, 0, 0, /* NFTA_LOOKUP_SET */
	/* immediate reg 0 accept */
	48, 0, 1, 0x80, 14, 0, 1, 0, 'i', 'm', 'm', 'e', 'd', 'i', 'a', 't', 'e', 0, 0, 0, 28, 0, 2, 0x80,
	8, 0, 1, 0, 0, 0, 0, 0,                  /* DREG verdict */
	16, 0, 2, 0x80, 12, 0, 2, 0x80, 8, 0, 1, 0, 0, 0, 0, 1, /* DATA { VERDICT { CODE NF_ACCEPT } } */
};
static const uint8_t batch_end[] = { HDR(20, 0x11, 0x001, 104, 0) };

static void check_part(const uint8_t *got, const uint8_t *want, size_t n, const char *what)
{
	for (size_t i = 0; i < n; i++)
		if (got[i] != want[i]) {
			fprintf(stderr, "%s: byte %zu is 0x%02x, expected 0x%02x\n", what, i, got[i], want[i]);
			fail();
		}
}

/* Replies are matched to a batch across the wrap of the 32-bit sequence
 * number (a socket's numbers start anywhere), and the batch's messages are
 * numbered through it. */
static void sequence_numbers_wrap(void **st)
{
	uint32_t seq0 = UINT32_MAX - 1;
	assert_true(nft_seq_in_batch(seq0, seq0, 3));
	assert_true(nft_seq_in_batch(UINT32_MAX, seq0, 3));
	assert_true(nft_seq_in_batch(0, seq0, 3));
	assert_true(nft_seq_in_batch(1, seq0, 3));
	assert_false(nft_seq_in_batch(2, seq0, 3));
	assert_false(nft_seq_in_batch(seq0 - 1, seq0, 3));
	struct rs_set *s = rs_set_new("wrap", RS_KEY_V4);
	struct dp_txn t = { .table = "corral" };
	dp_txn_push(&t, (struct dp_op){ .kind = OP_TABLE_ADD });
	dp_txn_push(&t, (struct dp_op){ .kind = OP_SET_ADD, .set = s });
	size_t len;
	uint8_t *b = nft_txn_build(&t, seq0, &len);
	uint32_t want[] = { seq0, UINT32_MAX, 0, 1 }; /* begin, two messages, end */
	size_t off = 0, i = 0;
	while (off + sizeof(struct nlmsghdr) <= len && i < 4) {
		const struct nlmsghdr *h = (const void *)(b + off);
		assert_int_equal(h->nlmsg_seq, want[i++]);
		off += NLMSG_ALIGN(h->nlmsg_len);
	}
	assert_int_equal(i, 4);
	free(b);
	free(t.ops);
	rs_set_put(s);
}

static void messages_byte_exact(void **st)
{
	uint16_t probe = 1;
	assert_int_equal(*(uint8_t *)&probe, 1); /* little endian host */
	uint8_t keys[8] = { 10, 0, 0, 1, 10, 0, 0, 2 };
	struct rs_set set = { .name = "p1_4", .key = RS_KEY_V4, .interval = true, .n = 1, .keys = keys, .refs = 1 };
	struct rs_rule rule = { .kind = RR_MATCH, .family = 4, .src = true, .set = "p1_4" };
	struct rs_chain chain = { .name = "ing_g1" };
	struct dp_op ops[] = {
		{ .kind = OP_TABLE_ADD },
		{ .kind = OP_ELEM_ADD, .set = &set, .count = 1 },
		{ .kind = OP_RULE_ADD, .chain = &chain, .rule = &rule },
	};
	struct dp_txn t = { .table = "t", .ops = ops, .n = 3 };
	size_t len;
	uint8_t *buf = nft_txn_build(&t, 100, &len);
	uint8_t rule_want[sizeof(rule_add)];
	memcpy(rule_want, rule_add, sizeof(rule_add));
	rule_want[0] = (uint8_t)sizeof(rule_add), rule_want[1] = (uint8_t)(sizeof(rule_add) >> 8);
	assert_int_equal(sizeof(rule_add), 264);
	size_t off = 0;
	assert_int_equal(len, sizeof(batch_begin) + sizeof(table_add) + sizeof(elems_add) + sizeof(rule_add) +
				      sizeof(batch_end));
	check_part(buf + off, batch_begin, 16 + 2, "batch begin");
	assert_int_equal(buf[18], 0), assert_int_equal(buf[19], 10); /* res_id */
	off += sizeof(batch_begin);
	check_part(buf + off, table_add, sizeof(table_add), "NEWTABLE");
	off += sizeof(table_add);
	check_part(buf + off, elems_add, sizeof(elems_add), "NEWSETELEM");
	off += sizeof(elems_add);
	check_part(buf + off, rule_want, sizeof(rule_want), "NEWRULE");
	off += sizeof(rule_add);
	check_part(buf + off, batch_end, 16, "batch end");
	free(buf);
}

/* A large element list is split into several messages, each well under
 * the 64 KiB a netlink attribute length can describe. */
static void large_lists_are_split(void **st)
{
	size_t n = 20000;
	uint8_t *keys = xmalloc(n * 8);
	for (size_t i = 0; i < n; i++) {
		uint32_t a = 0x0a000000u + (uint32_t)i * 4;
		for (int k = 0; k < 4; k++)
			keys[i * 8 + (size_t)k] = keys[i * 8 + 4 + (size_t)k] = (uint8_t)(a >> (24 - 8 * k));
	}
	struct rs_set set = { .name = "big", .key = RS_KEY_V4, .interval = true, .n = n, .keys = keys, .refs = 1 };
	struct dp_op op = { .kind = OP_ELEM_ADD, .set = &set, .count = n };
	struct dp_txn t = { .table = "t", .ops = &op, .n = 1 };
	size_t len, msgs = 0, elems = 0;
	uint8_t *buf = nft_txn_build(&t, 1, &len);
	for (size_t off = 0; off < len;) {
		uint32_t ml = (uint32_t)buf[off] | (uint32_t)buf[off + 1] << 8 | (uint32_t)buf[off + 2] << 16;
		assert_true(ml < 60000);
		if (buf[off + 4] == 0x0c && buf[off + 5] == 0x0a) {
			msgs++;
			/* count element nests: each range is a start and an end */
			for (size_t p = off + 20; p + 4 <= off + ml;) {
				uint16_t al = (uint16_t)(buf[p] | buf[p + 1] << 8);
				if ((buf[p + 2] | (buf[p + 3] & 0x7f) << 8) == 3) {
					for (size_t q = p + 4; q < p + al;) {
						uint16_t el = (uint16_t)(buf[q] | buf[q + 1] << 8);
						elems++;
						q += (el + 3u) & ~3u;
					}
				}
				p += (al + 3u) & ~3u;
			}
		}
		off += (ml + 3) & ~3u;
	}
	assert_true(msgs > 1);
	assert_int_equal(elems, 2 * n);
	free(buf);
	free(keys);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(sequence_numbers_wrap),
		cmocka_unit_test(messages_byte_exact),
		cmocka_unit_test(large_lists_are_split),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

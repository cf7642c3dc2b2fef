/* Every message corral sends to nf_tables is built here, with libnftnl,
 * and sent here, with libmnl, as one batch per transaction.
 *
 * Facts relied on (linux net/netfilter/nfnetlink.c, nf_tables_api.c):
 *   - a batch between NFNL_MSG_BATCH_BEGIN and _END is applied atomically:
 *     any failing message aborts the whole batch;
 *   - every message flagged NLM_F_ACK gets an NLMSG_ERROR reply (0 on
 *     success), delivered after the batch, in order, carrying its sequence
 *     number, so a failure is mapped back to the operation that caused it;
 *   - the whole batch travels in one sendmsg(), which must fit the socket's
 *     send buffer; replies queue on the receive buffer while the kernel
 *     processes the batch, so both are sized before sending;
 *   - a netlink attribute length is 16 bits: element lists are split into
 *     messages well under 64 KiB;
 *   - sets created earlier in the same batch are found by name.
 * Nothing else in corral includes libnftnl or libmnl. */
#include "agent/nl/nft.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <libnftnl/batch.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <libnftnl/udata.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct nft_sock {
	struct mnl_socket *nl;
	uint32_t portid, seq;
};

struct nft_sock *nft_sock_open(void)
{
	struct nft_sock *s = xcalloc(1, sizeof(*s));
	int one = 1;
	s->nl = mnl_socket_open(NETLINK_NETFILTER);
	if (!s->nl || mnl_socket_bind(s->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		int e = errno;
		if (s->nl)
			mnl_socket_close(s->nl);
		free(s);
		errno = e;
		return NULL;
	}
	/* errors quote only the header of the failed message, not its 64 KiB
	 * of elements; extended acks carry the kernel's reason when it has one */
	mnl_socket_setsockopt(s->nl, NETLINK_CAP_ACK, &one, sizeof(one));
	mnl_socket_setsockopt(s->nl, NETLINK_EXT_ACK, &one, sizeof(one));
	s->portid = mnl_socket_get_portid(s->nl);
	/* any start will do: replies are matched across the wrap */
	if (getrandom(&s->seq, sizeof(s->seq), GRND_NONBLOCK) != sizeof(s->seq))
		s->seq = 1;
	return s;
}

void nft_sock_close(struct nft_sock *s)
{
	if (!s)
		return;
	mnl_socket_close(s->nl);
	free(s);
}

/* ---------- expressions ---------- */

static void add(struct nftnl_rule *r, struct nftnl_expr *e)
{
	nftnl_rule_add_expr(r, e);
}

static void e_meta(struct nftnl_rule *r, uint32_t key, uint32_t dreg)
{
	struct nftnl_expr *e = nftnl_expr_alloc("meta");
	nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, key);
	nftnl_expr_set_u32(e, NFTNL_EXPR_META_DREG, dreg);
	add(r, e);
}

static void e_cmp(struct nftnl_rule *r, uint32_t op, const void *data, uint32_t len)
{
	struct nftnl_expr *e = nftnl_expr_alloc("cmp");
	nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, op);
	nftnl_expr_set(e, NFTNL_EXPR_CMP_DATA, data, len);
	add(r, e);
}

static void e_payload(struct nftnl_rule *r, uint32_t base, uint32_t off, uint32_t len, uint32_t dreg)
{
	struct nftnl_expr *e = nftnl_expr_alloc("payload");
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE, base);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, off);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, len);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_DREG, dreg);
	add(r, e);
}

static void e_lookup(struct nftnl_rule *r, const char *set, bool vmap)
{
	struct nftnl_expr *e = nftnl_expr_alloc("lookup");
	nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SREG, NFT_REG_1);
	nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, set);
	if (vmap)
		nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_DREG, NFT_REG_VERDICT);
	add(r, e);
}

/* reg 1 not in set */
static void e_lookup_inv(struct nftnl_rule *r, const char *set)
{
	struct nftnl_expr *e = nftnl_expr_alloc("lookup");
	nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SREG, NFT_REG_1);
	nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, set);
	nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_FLAGS, NFT_LOOKUP_F_INV);
	add(r, e);
}

static void e_verdict(struct nftnl_rule *r, int verdict)
{
	struct nftnl_expr *e = nftnl_expr_alloc("immediate");
	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, (uint32_t)verdict);
	add(r, e);
}

/* goto (or jump) chain */
static void e_chain(struct nftnl_rule *r, int verdict, const char *chain)
{
	struct nftnl_expr *e = nftnl_expr_alloc("immediate");
	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, (uint32_t)verdict);
	nftnl_expr_set_str(e, NFTNL_EXPR_IMM_CHAIN, chain);
	add(r, e);
}

static void e_goto(struct nftnl_rule *r, const char *chain)
{
	e_chain(r, NFT_GOTO, chain);
}

/* fib saddr . iif oif missing: no route back to the packet's source
 * through the interface it came in on */
static void e_no_route_back(struct nftnl_rule *r)
{
	uint32_t none = 0;
	struct nftnl_expr *e = nftnl_expr_alloc("fib");
	nftnl_expr_set_u32(e, NFTNL_EXPR_FIB_FLAGS, NFTA_FIB_F_SADDR | NFTA_FIB_F_IIF | NFTA_FIB_F_PRESENT);
	nftnl_expr_set_u32(e, NFTNL_EXPR_FIB_RESULT, NFT_FIB_RESULT_OIF);
	nftnl_expr_set_u32(e, NFTNL_EXPR_FIB_DREG, NFT_REG_1);
	add(r, e);
	e_cmp(r, NFT_CMP_EQ, &none, 4);
}

/* NFT_REG_1 &= mask (len bytes) */
static void e_and(struct nftnl_rule *r, const void *mask, uint32_t len)
{
	static const uint8_t zero[4];
	struct nftnl_expr *e = nftnl_expr_alloc("bitwise");
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_SREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_DREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_LEN, len);
	nftnl_expr_set(e, NFTNL_EXPR_BITWISE_MASK, mask, len);
	nftnl_expr_set(e, NFTNL_EXPR_BITWISE_XOR, zero, len);
	add(r, e);
}

/* ct <key> into NFT_REG_1, & mask */
static void e_ct_masked(struct nftnl_rule *r, uint32_t key, uint32_t mask)
{
	struct nftnl_expr *e = nftnl_expr_alloc("ct");
	nftnl_expr_set_u32(e, NFTNL_EXPR_CT_KEY, key);
	nftnl_expr_set_u32(e, NFTNL_EXPR_CT_DREG, NFT_REG_1);
	add(r, e);
	e_and(r, &mask, 4);
}

/* ct state & mask != 0 */
static void e_ct_state(struct nftnl_rule *r, uint32_t mask)
{
	uint32_t zero = 0;
	e_ct_masked(r, NFT_CT_STATE, mask);
	e_cmp(r, NFT_CMP_NEQ, &zero, 4);
}

/* ct mark & bits == bits */
static void e_ct_mark(struct nftnl_rule *r, uint32_t bits)
{
	e_ct_masked(r, NFT_CT_MARK, bits);
	e_cmp(r, NFT_CMP_EQ, &bits, 4);
}

static void e_family(struct nftnl_rule *r, uint8_t family)
{
	uint8_t nfproto = family == 4 ? NFPROTO_IPV4 : NFPROTO_IPV6;
	e_meta(r, NFT_META_NFPROTO, NFT_REG_1);
	e_cmp(r, NFT_CMP_EQ, &nfproto, 1);
}

/* ip saddr / ip6 daddr ... into NFT_REG_1; returns the 32-bit register
 * that follows it (concatenations continue there). */
static uint32_t e_addr(struct nftnl_rule *r, uint8_t family, bool src)
{
	uint32_t off = family == 4 ? (src ? 12 : 16) : (src ? 8 : 24), len = family == 4 ? 4 : 16;
	e_payload(r, NFT_PAYLOAD_NETWORK_HEADER, off, len, NFT_REG_1);
	return NFT_REG32_00 + len / 4;
}

/* meta l4proto . th dport, from 32-bit register reg on */
static void e_proto_port(struct nftnl_rule *r, uint32_t reg)
{
	e_meta(r, NFT_META_L4PROTO, reg == NFT_REG32_00 ? NFT_REG_1 : reg);
	e_payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, reg + 1);
}

static void rule_comment(struct nftnl_rule *r, const char *text)
{
	struct nftnl_udata_buf *ud = nftnl_udata_buf_alloc(NFT_USERDATA_MAXLEN);
	nftnl_udata_put_strz(ud, NFTNL_UDATA_RULE_COMMENT, text);
	nftnl_rule_set_data(r, NFTNL_RULE_USERDATA, nftnl_udata_buf_data(ud), nftnl_udata_buf_len(ud));
	nftnl_udata_buf_free(ud);
}

static void rule_exprs(struct nftnl_rule *r, const struct rs_rule *x)
{
	switch (x->kind) {
	case RR_CT_ESTABLISHED:
		e_ct_state(r, NF_CT_STATE_BIT(IP_CT_ESTABLISHED) | NF_CT_STATE_BIT(IP_CT_RELATED));
		e_verdict(r, NF_ACCEPT);
		break;
	case RR_CT_INVALID:
		e_ct_state(r, NF_CT_STATE_INVALID_BIT);
		e_verdict(r, NF_DROP);
		break;
	case RR_TCP_UNTRACKED: {
		/* ct state new, meta l4proto tcp, tcp flags & 0x17 != 0x02 */
		uint8_t tcp = IPPROTO_TCP, mask = 0x17, syn = 0x02;
		e_ct_state(r, NF_CT_STATE_BIT(IP_CT_NEW));
		e_meta(r, NFT_META_L4PROTO, NFT_REG_1);
		e_cmp(r, NFT_CMP_EQ, &tcp, 1);
		e_payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 13, 1, NFT_REG_1);
		e_and(r, &mask, 1);
		e_cmp(r, NFT_CMP_NEQ, &syn, 1);
		e_goto(r, x->set);
		break;
	}
	case RR_CT_REVOKED:
		e_ct_mark(r, x->mark);
		e_verdict(r, NF_DROP);
		break;
	case RR_SRC_CHECK: {
		/* fib saddr . iif oif missing: no route back to the source
		 * through the interface the packet came in on (nf_tables'
		 * fib allows an oif result in forward only with F_IIF) */
		e_no_route_back(r);
		e_goto(r, x->set);
		break;
	}
	case RR_LOCAL_SRC: {
		/* fib saddr type local: the source is one of the node's own
		 * addresses (RTN_LOCAL), so the node itself sent the packet */
		uint32_t local = RTN_LOCAL;
		struct nftnl_expr *e = nftnl_expr_alloc("fib");
		nftnl_expr_set_u32(e, NFTNL_EXPR_FIB_FLAGS, NFTA_FIB_F_SADDR);
		nftnl_expr_set_u32(e, NFTNL_EXPR_FIB_RESULT, NFT_FIB_RESULT_ADDRTYPE);
		nftnl_expr_set_u32(e, NFTNL_EXPR_FIB_DREG, NFT_REG_1);
		add(r, e);
		e_cmp(r, NFT_CMP_EQ, &local, 4);
		e_verdict(r, NF_ACCEPT);
		break;
	}
	case RR_ND: {
		/* neighbour solicitation (135) and advertisement (136) with
		 * hop limit 255 (RFC 4861 7.1.1, 7.1.2): in forward, only a
		 * bridged packet can still carry 255, since a routed one was
		 * decremented before the hook (ip6_forward) */
		uint8_t icmp6 = 58, lo = 135, hi = 136, hops = 255;
		e_family(r, 6);
		e_meta(r, NFT_META_L4PROTO, NFT_REG_1);
		e_cmp(r, NFT_CMP_EQ, &icmp6, 1);
		e_payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 0, 1, NFT_REG_1);
		e_cmp(r, NFT_CMP_GTE, &lo, 1);
		e_cmp(r, NFT_CMP_LTE, &hi, 1);
		e_payload(r, NFT_PAYLOAD_NETWORK_HEADER, 7, 1, NFT_REG_1);
		e_cmp(r, NFT_CMP_EQ, &hops, 1);
		/* payload length: what is longer than the message and its
		 * usual options carries data (ruleset.h, DP_ND_MAX_LEN) */
		uint16_t maxlen = htons(DP_ND_MAX_LEN);
		e_payload(r, NFT_PAYLOAD_NETWORK_HEADER, 4, 2, NFT_REG_1);
		e_cmp(r, NFT_CMP_LTE, &maxlen, 2);
		e_verdict(r, NF_ACCEPT);
		break;
	}
	case RR_BR_NOT_PORT: {
		e_meta(r, NFT_META_IIFNAME, NFT_REG_1);
		struct nftnl_expr *e = nftnl_expr_alloc("lookup");
		nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SREG, NFT_REG_1);
		nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, x->set);
		nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_FLAGS, NFT_LOOKUP_F_INV);
		add(r, e);
		if (x->ports)
			e_goto(r, x->ports);
		else
			e_verdict(r, NF_ACCEPT);
		break;
	}
	case RR_BR_IF:
		e_meta(r, x->oif ? NFT_META_OIFNAME : NFT_META_IIFNAME, NFT_REG_1);
		e_lookup(r, x->set, false);
		e_verdict(r, NF_ACCEPT);
		break;
	case RR_BR_ARP_ANY: {
		uint16_t et = htons(0x0806);
		e_payload(r, NFT_PAYLOAD_LL_HEADER, 12, 2, NFT_REG_1);
		e_cmp(r, NFT_CMP_EQ, &et, 2);
		e_verdict(r, NF_ACCEPT);
		break;
	}
	case RR_BR_ND_LONG:
	case RR_BR_ND: {
		/* neighbour solicitation or advertisement (135-136) */
		uint16_t et = htons(0x86dd), maxlen = htons(DP_ND_MAX_LEN);
		uint8_t icmp6 = 58, lo = 135, hi = 136, hops = 255;
		e_payload(r, NFT_PAYLOAD_LL_HEADER, 12, 2, NFT_REG_1);
		e_cmp(r, NFT_CMP_EQ, &et, 2);
		e_meta(r, NFT_META_L4PROTO, NFT_REG_1);
		e_cmp(r, NFT_CMP_EQ, &icmp6, 1);
		e_payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 0, 1, NFT_REG_1);
		e_cmp(r, NFT_CMP_GTE, &lo, 1);
		e_cmp(r, NFT_CMP_LTE, &hi, 1);
		if (x->kind == RR_BR_ND_LONG) {
			/* payload length: longer than the message and its usual
			 * options, it carries data (DP_ND_MAX_LEN) */
			e_payload(r, NFT_PAYLOAD_NETWORK_HEADER, 4, 2, NFT_REG_1);
			e_cmp(r, NFT_CMP_GT, &maxlen, 2);
			e_goto(r, x->ports);
		} else {
			e_payload(r, NFT_PAYLOAD_NETWORK_HEADER, 7, 1, NFT_REG_1);
			e_cmp(r, NFT_CMP_EQ, &hops, 1);
			e_verdict(r, NF_ACCEPT);
		}
		break;
	}
	case RR_BR_MCAST6: {
		/* ip6 daddr ff00::/8, ICMPv6 130-136 (MLD query, report, done,
		 * router and neighbour discovery) or one type */
		uint16_t et = htons(0x86dd);
		uint8_t icmp6 = 58, mc = 0xff, lo = 130, hi = 136;
		e_payload(r, NFT_PAYLOAD_LL_HEADER, 12, 2, NFT_REG_1);
		e_cmp(r, NFT_CMP_EQ, &et, 2);
		e_payload(r, NFT_PAYLOAD_NETWORK_HEADER, 24, 1, NFT_REG_1);
		e_cmp(r, NFT_CMP_EQ, &mc, 1);
		e_meta(r, NFT_META_L4PROTO, NFT_REG_1);
		e_cmp(r, NFT_CMP_EQ, &icmp6, 1);
		e_payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 0, 1, NFT_REG_1);
		if (x->icmp) {
			e_cmp(r, NFT_CMP_EQ, &x->icmp, 1);
		} else {
			e_cmp(r, NFT_CMP_GTE, &lo, 1);
			e_cmp(r, NFT_CMP_LTE, &hi, 1);
		}
		e_verdict(r, NF_ACCEPT);
		break;
	}
	case RR_BR_BIND:
	case RR_BR_ARP: {
		/* ether type, then iifname (16 bytes: registers 00-03) . source
		 * address from register 04 */
		uint16_t et = htons(x->kind == RR_BR_ARP ? 0x0806 : x->family == 4 ? 0x0800 : 0x86dd);
		e_payload(r, NFT_PAYLOAD_LL_HEADER, 12, 2, NFT_REG_1);
		e_cmp(r, NFT_CMP_EQ, &et, 2);
		if (x->kind == RR_BR_ARP) {
			/* Ethernet (1), IPv4, 6- and 4-byte addresses: where the
			 * sender's IPv4 address is at offset 14 */
			static const uint8_t eth_ip[6] = { 0, 1, 8, 0, 6, 4 };
			e_payload(r, NFT_PAYLOAD_NETWORK_HEADER, 0, 6, NFT_REG_1);
			e_cmp(r, NFT_CMP_EQ, eth_ip, 6);
		}
		e_meta(r, x->oif ? NFT_META_OIFNAME : NFT_META_IIFNAME, NFT_REG_1);
		if (x->kind == RR_BR_ARP)
			e_payload(r, NFT_PAYLOAD_NETWORK_HEADER, 14, 4, NFT_REG32_04);
		else if (x->oif)
			e_payload(r, NFT_PAYLOAD_NETWORK_HEADER, x->family == 4 ? 16 : 24, x->family == 4 ? 4 : 16,
				  NFT_REG32_04);
		else
			e_payload(r, NFT_PAYLOAD_NETWORK_HEADER, x->family == 4 ? 12 : 8, x->family == 4 ? 4 : 16,
				  NFT_REG32_04);
		e_lookup(r, x->set, false);
		e_verdict(r, NF_ACCEPT);
		break;
	}
	case RR_BR_NA_TARGET: {
		uint16_t et = htons(0x86dd);
		uint8_t icmp6 = 58, na = 136;
		e_payload(r, NFT_PAYLOAD_LL_HEADER, 12, 2, NFT_REG_1);
		e_cmp(r, NFT_CMP_EQ, &et, 2);
		e_meta(r, NFT_META_L4PROTO, NFT_REG_1);
		e_cmp(r, NFT_CMP_EQ, &icmp6, 1);
		e_payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 0, 1, NFT_REG_1);
		e_cmp(r, NFT_CMP_EQ, &na, 1);
		e_meta(r, NFT_META_IIFNAME, NFT_REG_1);
		e_payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 8, 16, NFT_REG32_04); /* the target address */
		struct nftnl_expr *e = nftnl_expr_alloc("lookup");
		nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SREG, NFT_REG_1);
		nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, x->set);
		nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_FLAGS, NFT_LOOKUP_F_INV);
		add(r, e);
		e_goto(r, x->ports);
		break;
	}
	case RR_BR_UNSPEC6: {
		uint16_t et = htons(0x86dd);
		uint8_t icmp6 = 58, zero[16] = { 0 };
		e_payload(r, NFT_PAYLOAD_LL_HEADER, 12, 2, NFT_REG_1);
		e_cmp(r, NFT_CMP_EQ, &et, 2);
		e_payload(r, NFT_PAYLOAD_NETWORK_HEADER, 8, 16, NFT_REG_1);
		e_cmp(r, NFT_CMP_EQ, zero, 16);
		e_meta(r, NFT_META_L4PROTO, NFT_REG_1);
		e_cmp(r, NFT_CMP_EQ, &icmp6, 1);
		e_payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 0, 1, NFT_REG_1);
		e_cmp(r, NFT_CMP_EQ, &x->icmp, 1);
		e_payload(r, NFT_PAYLOAD_NETWORK_HEADER, 7, 1, NFT_REG_1);
		e_cmp(r, NFT_CMP_EQ, &x->hops, 1);
		e_verdict(r, NF_ACCEPT);
		break;
	}
	case RR_BR_LL_PROTO:
	case RR_BR_LL_ICMP: {
		/* ip6 saddr|daddr fe80::/10: the first 16 bits masked to 10 */
		uint16_t et = htons(0x86dd), ll = htons(0xfe80), mask = htons(0xffc0), zero = 0;
		uint8_t icmp6 = 58, lo = 130, hi = 136, mld = 143;
		e_payload(r, NFT_PAYLOAD_LL_HEADER, 12, 2, NFT_REG_1);
		e_cmp(r, NFT_CMP_EQ, &et, 2);
		e_payload(r, NFT_PAYLOAD_NETWORK_HEADER, x->src ? 8 : 24, 2, NFT_REG_1);
		struct nftnl_expr *e = nftnl_expr_alloc("bitwise");
		nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_SREG, NFT_REG_1);
		nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_DREG, NFT_REG_1);
		nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_LEN, 2);
		nftnl_expr_set(e, NFTNL_EXPR_BITWISE_MASK, &mask, 2);
		nftnl_expr_set(e, NFTNL_EXPR_BITWISE_XOR, &zero, 2);
		add(r, e);
		e_cmp(r, NFT_CMP_EQ, &ll, 2);
		e_meta(r, NFT_META_L4PROTO, NFT_REG_1);
		if (x->kind == RR_BR_LL_PROTO) {
			e_cmp(r, NFT_CMP_NEQ, &icmp6, 1);
		} else {
			e_cmp(r, NFT_CMP_EQ, &icmp6, 1);
			e_payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 0, 1, NFT_REG_1);
			e = nftnl_expr_alloc("range");
			nftnl_expr_set_u32(e, NFTNL_EXPR_RANGE_SREG, NFT_REG_1);
			nftnl_expr_set_u32(e, NFTNL_EXPR_RANGE_OP, NFT_RANGE_NEQ);
			nftnl_expr_set(e, NFTNL_EXPR_RANGE_FROM_DATA, &lo, 1);
			nftnl_expr_set(e, NFTNL_EXPR_RANGE_TO_DATA, &hi, 1);
			add(r, e);
			e_cmp(r, NFT_CMP_NEQ, &mld, 1);
		}
		e_goto(r, x->ports);
		break;
	}
	case RR_GOTO: {
		e_chain(r, x->ret ? NFT_JUMP : NFT_GOTO, x->set);
		break;
	}
	case RR_IIF_SRC_CHECK: {
		/* iifname != @set, then the check of RR_SRC_CHECK (nf_tables'
		 * fib takes an oif result in the input hook with F_IIF too) */
		e_meta(r, NFT_META_IIFNAME, NFT_REG_1);
		e_lookup_inv(r, x->set);
		e_no_route_back(r);
		e_goto(r, x->ports);
		break;
	}
	case RR_UNCLASSIFIED: {
		/* iifname|oifname != @dset [ip6 saddr != fe80::/10] ip[6] saddr|daddr != @set */
		e_meta(r, x->src ? NFT_META_IIFNAME : NFT_META_OIFNAME, NFT_REG_1);
		e_lookup_inv(r, x->dset);
		e_family(r, x->family);
		if (x->src && x->family == 6) {
			/* the whole address masked to /10, as nft encodes a
			 * negated prefix (lists as `ip6 saddr != fe80::/10`) */
			uint8_t ll[16] = { 0xfe, 0x80 }, mask[16] = { 0xff, 0xc0 }, zero[16] = { 0 };
			e_payload(r, NFT_PAYLOAD_NETWORK_HEADER, 8, 16, NFT_REG_1);
			struct nftnl_expr *e = nftnl_expr_alloc("bitwise");
			nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_SREG, NFT_REG_1);
			nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_DREG, NFT_REG_1);
			nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_LEN, 16);
			nftnl_expr_set(e, NFTNL_EXPR_BITWISE_MASK, mask, 16);
			nftnl_expr_set(e, NFTNL_EXPR_BITWISE_XOR, zero, 16);
			add(r, e);
			e_cmp(r, NFT_CMP_NEQ, ll, 16);
		}
		e_addr(r, x->family, x->src);
		e_lookup_inv(r, x->set);
		e_goto(r, x->ports);
		break;
	}
	case RR_VMAP:
		e_family(r, x->family);
		e_addr(r, x->family, x->src);
		e_lookup(r, x->set, true);
		break;
	case RR_MATCH:
		if (x->family)
			e_family(r, x->family);
		if (x->set) {
			e_addr(r, x->family, x->src);
			e_lookup(r, x->set, false);
		}
		if (x->ports) {
			e_proto_port(r, NFT_REG32_00);
			e_lookup(r, x->ports, false);
		}
		if (x->named) {
			e_proto_port(r, e_addr(r, x->family, false));
			e_lookup(r, x->named, false);
		}
		e_verdict(r, x->ret ? NFT_RETURN : NF_ACCEPT);
		break;
	case RR_LOG_DROP: {
		struct nftnl_expr *e = nftnl_expr_alloc("limit");
		nftnl_expr_set_u64(e, NFTNL_EXPR_LIMIT_RATE, x->rate);
		nftnl_expr_set_u64(e, NFTNL_EXPR_LIMIT_UNIT, 1);
		nftnl_expr_set_u32(e, NFTNL_EXPR_LIMIT_BURST, x->burst);
		nftnl_expr_set_u32(e, NFTNL_EXPR_LIMIT_TYPE, NFT_LIMIT_PKTS);
		nftnl_expr_set_u32(e, NFTNL_EXPR_LIMIT_FLAGS, 0);
		add(r, e);
		e = nftnl_expr_alloc("log");
		nftnl_expr_set_str(e, NFTNL_EXPR_LOG_PREFIX, x->prefix);
		nftnl_expr_set_u16(e, NFTNL_EXPR_LOG_GROUP, x->group);
		add(r, e);
		break;
	}
	case RR_COUNTER_DROP:
		add(r, nftnl_expr_alloc("counter"));
		e_verdict(r, NF_DROP);
		break;
	case RR_DNS_REDIRECT: {
		uint8_t l4 = x->l4;
		uint16_t port = htons(x->nat_port);
		size_t al = x->family == 4 ? 4 : 16;
		e_family(r, x->family);
		e_addr(r, x->family, true);
		e_lookup(r, x->set, false);
		e_addr(r, x->family, false);
		e_lookup(r, x->dset, false);
		e_proto_port(r, NFT_REG32_00);
		e_lookup(r, x->ports, false);
		e_meta(r, NFT_META_L4PROTO, NFT_REG_1);
		e_cmp(r, NFT_CMP_EQ, &l4, 1);
		struct nftnl_expr *e = nftnl_expr_alloc("immediate");
		nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_1);
		nftnl_expr_set(e, NFTNL_EXPR_IMM_DATA, x->nat_addr, (uint32_t)al);
		add(r, e);
		e = nftnl_expr_alloc("immediate");
		nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_2);
		nftnl_expr_set(e, NFTNL_EXPR_IMM_DATA, &port, 2);
		add(r, e);
		e = nftnl_expr_alloc("nat");
		nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_TYPE, NFT_NAT_DNAT);
		nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_FAMILY, x->family == 4 ? NFPROTO_IPV4 : NFPROTO_IPV6);
		nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_REG_ADDR_MIN, NFT_REG_1);
		nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_REG_ADDR_MAX, NFT_REG_1);
		nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_REG_PROTO_MIN, NFT_REG_2);
		nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_REG_PROTO_MAX, NFT_REG_2);
		/* NF_NAT_RANGE_MAP_IPS | NF_NAT_RANGE_PROTO_SPECIFIED, as nft sends it */
		nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_FLAGS, 0x3);
		add(r, e);
		break;
	}
	}
	if (x->comment)
		rule_comment(r, x->comment);
}

/* ---------- objects ---------- */

static uint32_t key_type(enum rs_key k)
{
	/* nft's datatype ids (ipv4_addr 7, ipv6_addr 8, inet_proto 12,
	 * inet_service 13), concatenated 6 bits each, so that
	 * `nft list` shows the types */
	switch (k) {
	case RS_KEY_V4: return 7;
	case RS_KEY_V6: return 8;
	case RS_KEY_PORTS: return 12 << 6 | 13;
	case RS_KEY_NAMED_V4: return (7 << 6 | 12) << 6 | 13;
	case RS_KEY_NAMED_V6: return (8 << 6 | 12) << 6 | 13;
	case RS_KEY_IFNAME: return 41;
	case RS_KEY_IF_V4: return 41 << 6 | 7;
	case RS_KEY_IF_V6: return 41 << 6 | 8;
	}
	return 0;
}

static bool key_concat(enum rs_key k)
{
	return k != RS_KEY_V4 && k != RS_KEY_V6 && k != RS_KEY_IFNAME;
}

static uint8_t txn_family(const struct dp_txn *t)
{
	return t->bridge ? NFPROTO_BRIDGE : NFPROTO_INET;
}

static struct nftnl_set *set_obj(const struct dp_txn *t, const struct rs_set *s, bool full, uint32_t id)
{
	struct nftnl_set *o = nftnl_set_alloc();
	nftnl_set_set_str(o, NFTNL_SET_TABLE, t->table);
	nftnl_set_set_str(o, NFTNL_SET_NAME, s->name);
	nftnl_set_set_u32(o, NFTNL_SET_FAMILY, txn_family(t));
	if (!full)
		return o;
	nftnl_set_set_u32(o, NFTNL_SET_ID, id); /* the kernel requires one on creation */
	uint32_t flags = s->map ? NFT_SET_MAP : 0;
	if (s->timeout)
		flags |= NFT_SET_TIMEOUT;
	if (s->interval)
		flags |= NFT_SET_INTERVAL | (key_concat(s->key) ? NFT_SET_CONCAT : 0);
	nftnl_set_set_u32(o, NFTNL_SET_FLAGS, flags);
	nftnl_set_set_u32(o, NFTNL_SET_KEY_TYPE, key_type(s->key));
	nftnl_set_set_u32(o, NFTNL_SET_KEY_LEN, (uint32_t)rs_key_len(s->key));
	/* a size lets the kernel pick a presized hash (and caps the set: the
	 * renderer gives headroom and renames the set when it outgrows it) */
	if (s->size)
		nftnl_set_set_u32(o, NFTNL_SET_DESC_SIZE, s->size);
	if (s->map) {
		nftnl_set_set_u32(o, NFTNL_SET_DATA_TYPE, NFT_DATA_VERDICT);
		nftnl_set_set_u32(o, NFTNL_SET_DATA_LEN, 0); /* as nft sends it */
	}
	if (s->interval && key_concat(s->key)) {
		uint8_t f[NFT_REG32_COUNT] = { 0 };
		int n = 0;
		if (s->key != RS_KEY_PORTS)
			f[n++] = s->key == RS_KEY_NAMED_V4 ? 4 : 16;
		f[n++] = 1;
		f[n++] = 2;
		nftnl_set_set_data(o, NFTNL_SET_DESC_CONCAT, f, (uint32_t)n + 1);
	}
	struct nftnl_udata_buf *ud = nftnl_udata_buf_alloc(NFT_USERDATA_MAXLEN);
	/* key byte order for nft's printer: network order (2) for addresses */
	nftnl_udata_put_u32(ud, NFTNL_UDATA_SET_KEYBYTEORDER,
			    key_concat(s->key) ? 0 : s->key == RS_KEY_IFNAME ? 1 : 2);
	if (s->comment)
		nftnl_udata_put_strz(ud, NFTNL_UDATA_SET_COMMENT, s->comment);
	nftnl_set_set_data(o, NFTNL_SET_USERDATA, nftnl_udata_buf_data(ud), nftnl_udata_buf_len(ud));
	nftnl_udata_buf_free(ud);
	return o;
}

static void elem_key(struct nftnl_set_elem *e, uint16_t attr, const uint8_t *k, size_t kl)
{
	nftnl_set_elem_set(e, attr, k, (uint32_t)kl);
}

/* The element after key k (k + 1 in network order); false at the top. */
static bool key_succ(const uint8_t *k, size_t kl, uint8_t *out)
{
	memcpy(out, k, kl);
	for (size_t i = kl; i-- > 0;)
		if (++out[i])
			return true;
	return false;
}

/* CORRAL_FAULT_NO_ELEM_EXPIRATION=1 (tests): no expiration on elements,
 * as a kernel without element timeout updates (before 6.10) ignores it:
 * an element added again keeps its first expiry (agent.dns checks the
 * liveness refresh holds there too). */
static bool no_expiration(void)
{
	static int v = -1;
	if (v < 0) {
		const char *e = getenv("CORRAL_FAULT_NO_ELEM_EXPIRATION");
		v = e && !strcmp(e, "1");
	}
	return v;
}

/* Elements [i, j) of s into set object o. */
static void set_elems(struct nftnl_set *o, const struct rs_set *s, size_t i, size_t j)
{
	size_t kl = rs_key_len(s->key);
	for (; i < j; i++) {
		const uint8_t *lo = s->keys + i * 2 * kl, *hi = lo + kl;
		struct nftnl_set_elem *e = nftnl_set_elem_alloc();
		elem_key(e, NFTNL_SET_ELEM_KEY, lo, kl);
		if (s->map) {
			nftnl_set_elem_set_u32(e, NFTNL_SET_ELEM_VERDICT, (uint32_t)(s->jump ? NFT_JUMP : NFT_GOTO));
			nftnl_set_elem_set_str(e, NFTNL_SET_ELEM_CHAIN, s->chain[i]);
		} else if (s->interval && key_concat(s->key)) {
			elem_key(e, NFTNL_SET_ELEM_KEY_END, hi, kl);
		}
		if (s->timeouts) { /* ms (nf_tables_api.c: NFTA_SET_ELEM_TIMEOUT in ms on the wire) */
			nftnl_set_elem_set_u64(e, NFTNL_SET_ELEM_TIMEOUT, s->timeouts[i]);
			/* and the expiration: added again, an element keeps its
			 * old expiry unless the message carries one (kernels with
			 * element timeout update, 6.10 on; seen on 6.18: the DNS
			 * redirect's liveness lapsed for up to a second every 3 s,
			 * and a re-resolved address expired with its first answer) */
			if (!no_expiration())
				nftnl_set_elem_set_u64(e, NFTNL_SET_ELEM_EXPIRATION, s->timeouts[i]);
		}
		if (s->comments && s->comments[i]) {
			struct nftnl_udata_buf *ud = nftnl_udata_buf_alloc(NFT_USERDATA_MAXLEN);
			nftnl_udata_put_strz(ud, NFTNL_UDATA_SET_ELEM_COMMENT, s->comments[i]);
			nftnl_set_elem_set(e, NFTNL_SET_ELEM_USERDATA, nftnl_udata_buf_data(ud), nftnl_udata_buf_len(ud));
			nftnl_udata_buf_free(ud);
		}
		nftnl_set_elem_add(o, e);
		uint8_t end[24];
		if (s->interval && !key_concat(s->key) && key_succ(hi, kl, end)) {
			/* single-field intervals are a start and an end element */
			e = nftnl_set_elem_alloc();
			elem_key(e, NFTNL_SET_ELEM_KEY, end, kl);
			nftnl_set_elem_set_u32(e, NFTNL_SET_ELEM_FLAGS, NFT_SET_ELEM_INTERVAL_END);
			nftnl_set_elem_add(o, e);
		}
	}
}

/* Elements per message: a generous bound of the encoded size of one
 * range keeps every message far below the 64 KiB attribute limit. */
static size_t elems_per_msg(const struct rs_set *s)
{
	size_t kl = (rs_key_len(s->key) + 3) & ~(size_t)3;
	size_t one = 4 + 2 * (8 + kl) + 8 + (s->map ? 4 + 12 + 4 + 260 : 0) + (s->timeouts ? 12 : 0) +
		     (s->comments ? 8 + 260 : 0);
	return (48 * 1024) / (2 * one);
}

static struct nftnl_chain *chain_obj(const struct dp_txn *t, const struct rs_chain *c, bool full)
{
	struct nftnl_chain *o = nftnl_chain_alloc();
	nftnl_chain_set_str(o, NFTNL_CHAIN_TABLE, t->table);
	nftnl_chain_set_str(o, NFTNL_CHAIN_NAME, c->name);
	nftnl_chain_set_u32(o, NFTNL_CHAIN_FAMILY, txn_family(t));
	if (full && c->bridge_base) {
		/* bridge prerouting at filter (-200): every frame a port brings
		 * in, bridged or routed on, before br_netfilter (0) hands it to
		 * the inet hooks; forward (a frame bridged from one port to
		 * another) and output (one the node sends out of a port) see the
		 * port a frame leaves by */
		nftnl_chain_set_u32(o, NFTNL_CHAIN_HOOKNUM, c->br_hook);
		nftnl_chain_set_s32(o, NFTNL_CHAIN_PRIO, -200);
		nftnl_chain_set_str(o, NFTNL_CHAIN_TYPE, "filter");
		nftnl_chain_set_u32(o, NFTNL_CHAIN_POLICY, NF_ACCEPT);
	}
	if (full && c->base) {
		static const uint32_t hook[] = { [RS_HOOK_FORWARD] = NF_INET_FORWARD, [RS_HOOK_INPUT] = NF_INET_LOCAL_IN,
						 [RS_HOOK_OUTPUT] = NF_INET_LOCAL_OUT };
		nftnl_chain_set_u32(o, NFTNL_CHAIN_HOOKNUM, hook[c->hook]);
		nftnl_chain_set_s32(o, NFTNL_CHAIN_PRIO, 0); /* filter */
		nftnl_chain_set_str(o, NFTNL_CHAIN_TYPE, "filter");
		nftnl_chain_set_u32(o, NFTNL_CHAIN_POLICY, NF_ACCEPT);
	}
	if (full && c->nat) {
		/* dstnat - 10: among nat chains the first that sets a DNAT wins
		 * (nf_nat_core.c, nf_nat_inet_fn), so ours runs before kube-proxy's
		 * (dstnat) and sees the DNS Service address the pod asked */
		nftnl_chain_set_u32(o, NFTNL_CHAIN_HOOKNUM, NF_INET_PRE_ROUTING);
		nftnl_chain_set_s32(o, NFTNL_CHAIN_PRIO, -110);
		nftnl_chain_set_str(o, NFTNL_CHAIN_TYPE, "nat");
		nftnl_chain_set_u32(o, NFTNL_CHAIN_POLICY, NF_ACCEPT);
	}
	if (full && c->comment) {
		struct nftnl_udata_buf *ud = nftnl_udata_buf_alloc(NFT_USERDATA_MAXLEN);
		nftnl_udata_put_strz(ud, NFTNL_UDATA_CHAIN_COMMENT, c->comment);
		nftnl_chain_set_data(o, NFTNL_CHAIN_USERDATA, nftnl_udata_buf_data(ud), nftnl_udata_buf_len(ud));
		nftnl_udata_buf_free(ud);
	}
	return o;
}

/* ---------- batch ---------- */

struct built {
	struct nftnl_batch *b;
	uint32_t seq0, nmsgs;
	struct nlmsghdr *last; /* the one message that asks for an ack */
	uint8_t *zlo, *zhi;    /* batch buffer already zeroed */
	uint8_t family;
	size_t *op_of; /* message index -> operation index */
	size_t cap;
};

/* libmnl 1.0.4 leaves attribute padding unwritten and batch pages are not
 * zeroed: zero ahead of each message so that what we send is
 * deterministic (and carries no stale heap bytes). A message is at most
 * 64 KiB and a page always has its 128 KiB overrun free past the tail. */
static void *zeroed_tail(struct built *bt)
{
	uint8_t *p = nftnl_batch_buffer(bt->b), *end = p + 66 * 1024;
	if (p < bt->zlo || p > bt->zhi) /* a new page */
		bt->zlo = bt->zhi = p;
	if (end > bt->zhi) {
		memset(bt->zhi, 0, (size_t)(end - bt->zhi));
		bt->zhi = end;
	}
	return p;
}

static struct nlmsghdr *msg(struct built *bt, size_t op, uint16_t type, uint16_t flags)
{
	if (bt->nmsgs == bt->cap) {
		bt->cap = bt->cap ? 2 * bt->cap : 256;
		bt->op_of = xrealloc(bt->op_of, bt->cap * sizeof(*bt->op_of));
	}
	bt->op_of[bt->nmsgs] = op;
	uint32_t seq = bt->seq0 + 1 + bt->nmsgs++;
	return bt->last = nftnl_nlmsg_build_hdr(zeroed_tail(bt), type, bt->family, flags, seq);
}

static void op_build(struct built *bt, const struct dp_txn *t, size_t i)
{
	const struct dp_op *op = &t->ops[i];
	struct nlmsghdr *nlh;
	switch (op->kind) {
	case OP_TABLE_ADD:
	case OP_TABLE_DEL: {
		struct nftnl_table *o = nftnl_table_alloc();
		nftnl_table_set_str(o, NFTNL_TABLE_NAME, t->table);
		nftnl_table_set_u32(o, NFTNL_TABLE_FAMILY, txn_family(t));
		nlh = op->kind == OP_TABLE_ADD ? msg(bt, i, NFT_MSG_NEWTABLE, NLM_F_CREATE) : msg(bt, i, NFT_MSG_DELTABLE, 0);
		nftnl_table_nlmsg_build_payload(nlh, o);
		nftnl_table_free(o);
		nftnl_batch_update(bt->b);
		break;
	}
	case OP_SET_ADD:
	case OP_SET_DEL: {
		struct nftnl_set *o = set_obj(t, op->set, op->kind == OP_SET_ADD, (uint32_t)i + 1);
		nlh = op->kind == OP_SET_ADD ? msg(bt, i, NFT_MSG_NEWSET, NLM_F_CREATE | NLM_F_EXCL)
					     : msg(bt, i, NFT_MSG_DELSET, 0);
		nftnl_set_nlmsg_build_payload(nlh, o);
		nftnl_set_free(o);
		nftnl_batch_update(bt->b);
		break;
	}
	case OP_ELEM_ADD:
	case OP_ELEM_DEL: {
		size_t per = elems_per_msg(op->set), end = op->first + op->count;
		for (size_t k = op->first; k < end; k += per) {
			struct nftnl_set *o = set_obj(t, op->set, false, 0);
			set_elems(o, op->set, k, k + per < end ? k + per : end);
			/* a timeout set's element may be there already: added again
			 * without NLM_F_EXCL, its timeout is refreshed (Linux 6.10+) */
			uint16_t fl = NLM_F_CREATE | (op->set->timeout ? 0 : NLM_F_EXCL);
			nlh = op->kind == OP_ELEM_ADD ? msg(bt, i, NFT_MSG_NEWSETELEM, fl)
						      : msg(bt, i, NFT_MSG_DELSETELEM, 0);
			nftnl_set_elems_nlmsg_build_payload(nlh, o);
			nftnl_set_free(o);
			nftnl_batch_update(bt->b);
		}
		break;
	}
	case OP_SET_FLUSH: { /* NFT_MSG_DELSETELEM with no element list */
		struct nftnl_set *o = set_obj(t, op->set, false, 0);
		nlh = msg(bt, i, NFT_MSG_DELSETELEM, 0);
		nftnl_set_elems_nlmsg_build_payload(nlh, o);
		nftnl_set_free(o);
		nftnl_batch_update(bt->b);
		break;
	}
	case OP_CHAIN_ADD:
	case OP_CHAIN_DEL: {
		struct nftnl_chain *o = chain_obj(t, op->chain, op->kind == OP_CHAIN_ADD);
		nlh = op->kind == OP_CHAIN_ADD ? msg(bt, i, NFT_MSG_NEWCHAIN, NLM_F_CREATE | NLM_F_EXCL)
					       : msg(bt, i, NFT_MSG_DELCHAIN, 0);
		nftnl_chain_nlmsg_build_payload(nlh, o);
		nftnl_chain_free(o);
		nftnl_batch_update(bt->b);
		break;
	}
	case OP_CHAIN_FLUSH:
	case OP_RULE_ADD: {
		struct nftnl_rule *o = nftnl_rule_alloc();
		nftnl_rule_set_str(o, NFTNL_RULE_TABLE, t->table);
		nftnl_rule_set_str(o, NFTNL_RULE_CHAIN, op->chain->name);
		nftnl_rule_set_u32(o, NFTNL_RULE_FAMILY, txn_family(t));
		if (op->kind == OP_RULE_ADD) {
			rule_exprs(o, op->rule);
			nlh = msg(bt, i, NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND);
		} else {
			nlh = msg(bt, i, NFT_MSG_DELRULE, 0); /* no handle: every rule of the chain */
		}
		nftnl_rule_nlmsg_build_payload(nlh, o);
		nftnl_rule_free(o);
		nftnl_batch_update(bt->b);
		break;
	}
	}
}

static void build(struct built *bt, const struct dp_txn *t, uint32_t seq0)
{
	memset(bt, 0, sizeof(*bt));
	/* pages of 1 MiB; a message may overrun a page by up to 128 KiB */
	bt->b = nftnl_batch_alloc(1 << 20, 128 * 1024);
	bt->seq0 = seq0;
	bt->family = txn_family(t);
	nftnl_batch_begin(zeroed_tail(bt), seq0);
	nftnl_batch_update(bt->b);
	for (size_t i = 0; i < t->n; i++)
		op_build(bt, t, i);
	/* Only the last message asks for an acknowledgement: errors are
	 * reported whatever the flags, all of them after the whole batch
	 * was processed and in order, so the last ack ends the replies. One
	 * ack per message would need a receive buffer of about 1 KiB of skb
	 * per message. */
	if (bt->last)
		bt->last->nlmsg_flags |= NLM_F_ACK;
	nftnl_batch_end(zeroed_tail(bt), seq0 + 1 + bt->nmsgs);
	nftnl_batch_update(bt->b);
}

void *nft_txn_build(const struct dp_txn *t, uint32_t seq0, size_t *len)
{
	struct built bt;
	build(&bt, t, seq0);
	int n = nftnl_batch_iovec_len(bt.b);
	struct iovec *iov = xmalloc((size_t)n * sizeof(*iov));
	nftnl_batch_iovec(bt.b, iov, (uint32_t)n);
	size_t total = 0;
	for (int i = 0; i < n; i++)
		total += iov[i].iov_len;
	uint8_t *out = xmalloc(total ? total : 1), *p = out;
	for (int i = 0; i < n; i++) {
		memcpy(p, iov[i].iov_base, iov[i].iov_len);
		p += iov[i].iov_len;
	}
	*len = total;
	free(iov);
	free(bt.op_of);
	nftnl_batch_free(bt.b);
	return out;
}

/* ---------- send and acknowledge ---------- */

static void size_buffers(struct nft_sock *s, size_t sendlen, uint32_t nmsgs)
{
	int snd = (int)(sendlen + 64 * 1024), rcv = (int)(nmsgs < 4096 ? 4096 : nmsgs) * 64 + 1024 * 1024;
	int fd = mnl_socket_get_fd(s->nl);
	/* socket-level options (mnl_socket_setsockopt is SOL_NETLINK); the
	 * FORCE variants need CAP_NET_ADMIN, which the agent has anyway */
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &snd, sizeof(snd)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &snd, sizeof(snd));
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof(rcv)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
}

struct acks {
	uint32_t seq0, nmsgs;
	bool done;
	int err;            /* first error */
	uint32_t err_seq;
	char ext[256];      /* extended ack message, if any */
};

static void ack_one(struct acks *a, const struct nlmsghdr *nlh)
{
	if (nlh->nlmsg_type != NLMSG_ERROR || nlh->nlmsg_len < NLMSG_LENGTH(sizeof(struct nlmsgerr)))
		return;
	const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
	uint32_t seq = e->msg.nlmsg_seq;
	if (!nft_seq_in_batch(seq, a->seq0, a->nmsgs))
		return; /* not ours (a reply from an earlier, abandoned batch) */
	/* the last message's ack ends the replies; an error quoting the batch
	 * header (ENOMEM while queueing errors) ends them too */
	if (seq == (uint32_t)(a->seq0 + a->nmsgs) || seq == a->seq0)
		a->done = true;
	if (e->error && !a->err) {
		a->err = e->error;
		a->err_seq = seq;
		if (nlh->nlmsg_flags & NLM_F_ACK_TLVS) {
			/* TLVs follow the quoted header (capped ack) */
			size_t off = sizeof(*e);
			const struct nlattr *at;
			mnl_attr_for_each(at, nlh, off) {
				if (mnl_attr_get_type(at) == NLMSGERR_ATTR_MSG)
					snprintf(a->ext, sizeof(a->ext), "%s", mnl_attr_get_str(at));
			}
		}
	}
}

static int read_acks(struct nft_sock *s, struct acks *a)
{
	static uint8_t buf[1 << 16];
	struct pollfd p = { mnl_socket_get_fd(s->nl), POLLIN, 0 };
	while (!a->done) {
		int r = poll(&p, 1, 30000);
		if (r <= 0)
			return r == 0 ? -ETIMEDOUT : -errno;
		ssize_t n = mnl_socket_recvfrom(s->nl, buf, sizeof(buf));
		if (n < 0)
			return -errno; /* ENOBUFS: replies lost; the caller resyncs fully */
		const struct nlmsghdr *nlh = (const struct nlmsghdr *)buf;
		int len = (int)n;
		for (; mnl_nlmsg_ok(nlh, len); nlh = mnl_nlmsg_next(nlh, &len))
			ack_one(a, nlh);
	}
	return 0;
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int nft_txn_commit(struct nft_sock *s, const struct dp_txn *t, struct nft_txn_info *info, char **err)
{
	struct built bt;
	uint32_t seq0 = s->seq;
	double t0 = now_ms();
	info->refused_op = -1;
	info->kernel_msg[0] = 0;
	build(&bt, t, seq0);
	s->seq += bt.nmsgs + 2;
	int n = nftnl_batch_iovec_len(bt.b);
	struct iovec *iov = xmalloc((size_t)n * sizeof(*iov));
	nftnl_batch_iovec(bt.b, iov, (uint32_t)n);
	size_t total = 0;
	for (int i = 0; i < n; i++)
		total += iov[i].iov_len;
	size_buffers(s, total, bt.nmsgs);
	double t1 = now_ms();
	struct sockaddr_nl snl = { .nl_family = AF_NETLINK };
	struct msghdr mh = { .msg_name = &snl, .msg_namelen = sizeof(snl), .msg_iov = iov, .msg_iovlen = (size_t)n };
	struct acks a = { .seq0 = seq0, .nmsgs = bt.nmsgs };
	int rc = 0;
	if (sendmsg(mnl_socket_get_fd(s->nl), &mh, 0) < 0) {
		rc = -errno;
		*err = xasprintf("sending the netlink batch (%zu bytes, %u messages): %s", total, bt.nmsgs,
				 strerror(errno));
	} else if ((rc = read_acks(s, &a)) < 0) {
		*err = xasprintf("reading the acknowledgement of %u messages: %s", a.nmsgs, strerror(-rc));
	} else if (a.err) {
		rc = a.err;
		info->refused_op = a.err_seq == seq0 ? -1 : (long)bt.op_of[(uint32_t)(a.err_seq - seq0) - 1];
		snprintf(info->kernel_msg, sizeof(info->kernel_msg), "%s", a.ext);
	}
	info->msgs = bt.nmsgs;
	info->bytes = total;
	info->build_ms = t1 - t0;
	info->kernel_ms = now_ms() - t1;
	free(iov);
	free(bt.op_of);
	nftnl_batch_free(bt.b);
	return rc;
}

/* ---------- reading counters ---------- */

struct ctr_acc {
	uint64_t packets, bytes;
	bool per_chain; /* nft_table_counters: one entry per chain in out */
	struct nft_chain_ctr *out;
	size_t n, cap;
};

static int ctr_expr(struct nftnl_expr *e, void *data)
{
	uint64_t *pb = data;
	if (!strcmp(nftnl_expr_get_str(e, NFTNL_EXPR_NAME), "counter")) {
		pb[0] += nftnl_expr_get_u64(e, NFTNL_EXPR_CTR_PACKETS);
		pb[1] += nftnl_expr_get_u64(e, NFTNL_EXPR_CTR_BYTES);
	}
	return 0;
}

static int ctr_rule(const struct nlmsghdr *nlh, void *data)
{
	struct ctr_acc *a = data;
	struct nftnl_rule *r = nftnl_rule_alloc();
	uint64_t pb[2] = { 0, 0 };
	if (nftnl_rule_nlmsg_parse(nlh, r) == 0)
		nftnl_expr_foreach(r, ctr_expr, pb);
	a->packets += pb[0];
	a->bytes += pb[1];
	const char *chain = a->per_chain ? nftnl_rule_get_str(r, NFTNL_RULE_CHAIN) : NULL;
	if (chain) { /* the kernel sends the rules chain by chain */
		if (!a->n || strcmp(a->out[a->n - 1].chain, chain)) {
			if (a->n == a->cap) {
				a->cap = a->cap ? 2 * a->cap : 32;
				a->out = xrealloc(a->out, a->cap * sizeof(*a->out));
			}
			a->out[a->n++] = (struct nft_chain_ctr){ xstrdup(chain), 0, 0 };
		}
		a->out[a->n - 1].packets += pb[0];
		a->out[a->n - 1].bytes += pb[1];
	}
	nftnl_rule_free(r);
	return MNL_CB_OK;
}

static void acc_reset(struct ctr_acc *a)
{
	for (size_t i = 0; i < a->n; i++)
		free(a->out[i].chain);
	a->n = 0;
	a->packets = a->bytes = 0;
}

/* Dumps the rules of table (and chain, if given) into acc. The receive
 * buffer is allocated per call, not static: a second thread reads counters
 * on a socket of its own. A dump the kernel marks interrupted (the ruleset
 * changed meanwhile: EINTR) is read again from the start, a few times. */
static int dump_rules(struct nft_sock *s, const char *table, const char *chain, struct ctr_acc *acc, uint16_t family)
{
	uint8_t buf[MNL_SOCKET_BUFFER_SIZE];
	uint8_t *rbuf = xmalloc(1 << 16);
	int rc = 0;
	for (int attempt = 0; attempt < 5; attempt++) {
		uint32_t seq = s->seq++;
		struct nlmsghdr *nlh =
			nftnl_nlmsg_build_hdr((char *)buf, NFT_MSG_GETRULE, family, NLM_F_DUMP, seq);
		struct nftnl_rule *r = nftnl_rule_alloc();
		nftnl_rule_set_str(r, NFTNL_RULE_TABLE, table);
		if (chain)
			nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, chain);
		nftnl_rule_nlmsg_build_payload(nlh, r);
		nftnl_rule_free(r);
		acc_reset(acc);
		if (mnl_socket_sendto(s->nl, nlh, nlh->nlmsg_len) < 0) {
			rc = -errno;
			break;
		}
		int ret;
		do {
			ssize_t n = mnl_socket_recvfrom(s->nl, rbuf, 1 << 16);
			ret = n < 0 ? -1 : mnl_cb_run(rbuf, (size_t)n, seq, s->portid, ctr_rule, acc);
		} while (ret > 0);
		rc = ret < 0 ? -errno : 0;
		if (rc != -EINTR)
			break;
	}
	free(rbuf);
	return rc;
}

int nft_chain_counters(struct nft_sock *s, const char *table, const char *chain, uint64_t *packets,
		       uint64_t *bytes)
{
	struct ctr_acc acc = { 0 };
	int rc = dump_rules(s, table, chain, &acc, NFPROTO_INET);
	if (rc < 0)
		return rc;
	*packets = acc.packets;
	*bytes = acc.bytes;
	return 0;
}

int nft_table_counters(struct nft_sock *s, const char *table, bool bridge, struct nft_chain_ctr **out, size_t *n)
{
	struct ctr_acc acc = { .per_chain = true };
	int rc = dump_rules(s, table, NULL, &acc, bridge ? NFPROTO_BRIDGE : NFPROTO_INET);
	if (rc < 0) {
		acc_reset(&acc);
		free(acc.out);
		acc.out = NULL;
	}
	*out = acc.out;
	*n = rc < 0 ? 0 : acc.n;
	return rc;
}

void nft_chain_ctrs_free(struct nft_chain_ctr *c, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(c[i].chain);
	free(c);
}

int nft_table_exists(struct nft_sock *s, const char *table)
{
	uint8_t buf[MNL_SOCKET_BUFFER_SIZE];
	uint32_t seq = s->seq++;
	struct nlmsghdr *nlh = nftnl_nlmsg_build_hdr((char *)buf, NFT_MSG_GETTABLE, NFPROTO_INET, NLM_F_ACK, seq);
	struct nftnl_table *t = nftnl_table_alloc();
	nftnl_table_set_str(t, NFTNL_TABLE_NAME, table);
	nftnl_table_nlmsg_build_payload(nlh, t);
	nftnl_table_free(t);
	if (mnl_socket_sendto(s->nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	int ret;
	do {
		ssize_t n = mnl_socket_recvfrom(s->nl, buf, sizeof(buf));
		ret = n < 0 ? -1 : mnl_cb_run(buf, (size_t)n, seq, s->portid, NULL, NULL);
	} while (ret > 0);
	if (ret < 0)
		return errno == ENOENT ? 0 : -errno;
	return 1;
}

/* ---------- reading timeout sets back ---------- */

struct dump_ctx {
	struct vec sets; /* struct nftnl_set* (timeout sets), or elements' set */
	void (*fn)(const struct nft_timed_elem *e, void *arg);
	void *arg;
	const char *set, *set_comment;
};

struct udata_want {
	uint8_t type;
	const char *out;
};

static int udata_comment(const struct nftnl_udata *attr, void *data)
{
	struct udata_want *w = data;
	if (nftnl_udata_type(attr) == w->type && nftnl_udata_len(attr) > 0) {
		const char *v = nftnl_udata_get(attr);
		if (v[nftnl_udata_len(attr) - 1] == 0) /* a C string, as nft writes it */
			w->out = v;
	}
	return 0;
}

/* The comment (userdata of type type: a set's or an element's) or "". */
static const char *comment_of(const void *ud, uint32_t len, uint8_t type)
{
	struct udata_want w = { type, "" };
	if (ud && len)
		nftnl_udata_parse(ud, len, udata_comment, &w);
	return w.out;
}

static int set_cb(const struct nlmsghdr *nlh, void *data)
{
	struct dump_ctx *c = data;
	struct nftnl_set *o = nftnl_set_alloc();
	if (nftnl_set_nlmsg_parse(nlh, o) == 0 && (nftnl_set_get_u32(o, NFTNL_SET_FLAGS) & NFT_SET_TIMEOUT))
		vec_push(&c->sets, o);
	else
		nftnl_set_free(o);
	return MNL_CB_OK;
}

static int elem_cb(struct nftnl_set_elem *e, void *data)
{
	struct dump_ctx *c = data;
	struct nft_timed_elem x = { .set = c->set, .set_comment = c->set_comment };
	uint32_t kl = 0, ul = 0;
	const void *k = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &kl);
	const void *ud = nftnl_set_elem_get(e, NFTNL_SET_ELEM_USERDATA, &ul);
	if (!k || kl > sizeof(x.key))
		return 0;
	memcpy(x.key, k, kl);
	x.key_len = kl;
	x.timeout_ms = nftnl_set_elem_get_u64(e, NFTNL_SET_ELEM_TIMEOUT);
	x.expires_ms = nftnl_set_elem_get_u64(e, NFTNL_SET_ELEM_EXPIRATION);
	x.comment = comment_of(ud, ul, NFTNL_UDATA_SET_ELEM_COMMENT);
	c->fn(&x, c->arg);
	return 0;
}

static int elems_cb(const struct nlmsghdr *nlh, void *data)
{
	struct dump_ctx *c = data;
	struct nftnl_set *o = nftnl_set_alloc();
	if (nftnl_set_elems_nlmsg_parse(nlh, o) == 0)
		nftnl_set_elem_foreach(o, elem_cb, c);
	nftnl_set_free(o);
	return MNL_CB_OK;
}

/* One dump request (NLM_F_DUMP) and its replies; ENOENT (no such table
 * or set) reads as nothing. */
static int dump(struct nft_sock *s, uint16_t type, struct nftnl_set *what, bool elems, mnl_cb_t cb, void *data)
{
	uint8_t buf[MNL_SOCKET_BUFFER_SIZE];
	uint32_t seq = s->seq++;
	struct nlmsghdr *nlh = nftnl_nlmsg_build_hdr((char *)buf, type, NFPROTO_INET, NLM_F_DUMP | NLM_F_ACK, seq);
	if (elems)
		nftnl_set_elems_nlmsg_build_payload(nlh, what);
	else
		nftnl_set_nlmsg_build_payload(nlh, what);
	if (mnl_socket_sendto(s->nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	static uint8_t rbuf[1 << 16];
	int ret;
	do {
		ssize_t n = mnl_socket_recvfrom(s->nl, rbuf, sizeof(rbuf));
		if (n < 0)
			return -errno;
		ret = mnl_cb_run(rbuf, (size_t)n, seq, s->portid, cb, data);
	} while (ret > 0);
	return ret < 0 ? (errno == ENOENT ? 0 : -errno) : 0;
}

int nft_timed_elems(struct nft_sock *s, const char *table, void (*fn)(const struct nft_timed_elem *e, void *arg),
		    void *arg)
{
	struct dump_ctx c = { .fn = fn, .arg = arg };
	struct nftnl_set *q = nftnl_set_alloc();
	nftnl_set_set_str(q, NFTNL_SET_TABLE, table);
	nftnl_set_set_u32(q, NFTNL_SET_FAMILY, NFPROTO_INET);
	int rc = dump(s, NFT_MSG_GETSET, q, false, set_cb, &c);
	nftnl_set_free(q);
	for (size_t i = 0; i < c.sets.n; i++) {
		struct nftnl_set *o = c.sets.v[i];
		uint32_t ul = 0;
		const void *ud = nftnl_set_get_data(o, NFTNL_SET_USERDATA, &ul);
		c.set = nftnl_set_get_str(o, NFTNL_SET_NAME);
		c.set_comment = comment_of(ud, ul, NFTNL_UDATA_SET_COMMENT);
		q = nftnl_set_alloc();
		nftnl_set_set_str(q, NFTNL_SET_TABLE, table);
		nftnl_set_set_str(q, NFTNL_SET_NAME, c.set);
		nftnl_set_set_u32(q, NFTNL_SET_FAMILY, NFPROTO_INET);
		if (rc == 0)
			rc = dump(s, NFT_MSG_GETSETELEM, q, true, elems_cb, &c);
		nftnl_set_free(q);
	}
	for (size_t i = 0; i < c.sets.n; i++)
		nftnl_set_free(c.sets.v[i]);
	vec_free(&c.sets);
	return rc;
}

/* ctnetlink, with libmnl: the conntrack table read in one dump and the
 * entries a caller chooses marked revoked, many requests per sendmsg().
 *
 * Facts relied on (linux net/netfilter/nf_conntrack_netlink.c):
 *   - IPCTNL_MSG_CT_GET with NLM_F_DUMP and nfgen_family AF_UNSPEC dumps
 *     the entries of every layer-3 family; each carries CTA_TUPLE_ORIG and
 *     CTA_TUPLE_REPLY (nested CTA_TUPLE_IP, CTA_TUPLE_PROTO), CTA_ID and,
 *     when not the default zone, CTA_ZONE;
 *   - IPCTNL_MSG_CT_NEW without NLM_F_CREATE changes the existing entry
 *     of CTA_TUPLE_ORIG, or without it of CTA_TUPLE_REPLY (read in the
 *     family of the message's nfgen_family and the zone of CTA_ZONE), else
 *     ENOENT: CTA_MARK under CTA_MARK_MASK sets only the mask's bits,
 *     CTA_TIMEOUT (seconds) the time left (EPERM for an entry with a fixed
 *     timeout, ETIME for a dying one: then nothing else changes), and
 *     CTA_PROTOINFO_TCP_STATE a TCP entry's state; it does not read CTA_ID;
 *   - a TCP entry in TIME_WAIT stays there on further ACKs and data, and
 *     each refreshes it to nf_conntrack_tcp_timeout_time_wait (120 s), not
 *     to the established timeout (5 days; kube-proxy sets 24 hours);
 *   - the forward hook sees the original direction's source (SNAT comes
 *     after it, in postrouting) and the destination after DNAT (before it,
 *     in prerouting), which is the reply direction's source.
 * Nothing else in corral talks ctnetlink. */
#include "agent/nl/conntrack.h"

#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nf_conntrack_tcp.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "policy/util.h"

struct ct_sock {
	struct mnl_socket *nl;
	uint32_t portid, seq;
};

struct ct_sock *ct_sock_open(void)
{
	struct ct_sock *s = xcalloc(1, sizeof(*s));
	int one = 1, rcv = 4 << 20;
	s->nl = mnl_socket_open(NETLINK_NETFILTER);
	if (!s->nl || mnl_socket_bind(s->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		int e = errno;
		if (s->nl)
			mnl_socket_close(s->nl);
		free(s);
		errno = e;
		return NULL;
	}
	/* acks quote only the header of the request they answer */
	mnl_socket_setsockopt(s->nl, NETLINK_CAP_ACK, &one, sizeof(one));
	/* a dump of a busy table and a burst of acks queue here */
	if (setsockopt(mnl_socket_get_fd(s->nl), SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof(rcv)) < 0)
		setsockopt(mnl_socket_get_fd(s->nl), SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
	s->portid = mnl_socket_get_portid(s->nl);
	s->seq = (uint32_t)time(NULL);
	return s;
}

void ct_sock_close(struct ct_sock *s)
{
	if (!s)
		return;
	mnl_socket_close(s->nl);
	free(s);
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ---------- reading entries ---------- */

/* The attributes of a doomed entry that name it (CTA_TUPLE_REPLY,
 * CTA_ZONE), copied as they came, after its family and flags. */
struct doomed {
	uint8_t *buf; /* records: family (1), flags (1, REC_*), length (2, host order), attributes */
	size_t len, cap, n;
};
#define REC_TCP 1         /* a TCP entry */
#define REC_TIME_WAIT 2   /* in TIME_WAIT when read */
#define REC_ESTABLISHED 4 /* ESTABLISHED when read */

struct dump_ctx {
	bool (*doomed)(const struct ct_flow *f, void *arg);
	void *arg;
	struct doomed *out, *back, *del; /* to mark; marked, to clear; closed, to delete */
	uint32_t mark;
	size_t tracked, marked;
};

static int attr_index(const struct nlattr *a, void *data)
{
	const struct nlattr **tb = data;
	uint16_t t = mnl_attr_get_type(a);
	if (t <= CTA_MAX) /* CTA_MAX is the largest of every nest used here */
		tb[t] = a;
	return MNL_CB_OK;
}

/* One direction's addresses and ports (CTA_TUPLE_IP, CTA_TUPLE_PROTO). */
static bool tuple_read(const struct nlattr *t, uint8_t family, uint8_t *src, uint8_t *dst, uint8_t *proto,
		       uint16_t *sport, uint16_t *dport)
{
	const struct nlattr *tb[CTA_MAX + 1] = { 0 }, *ip[CTA_MAX + 1] = { 0 }, *pr[CTA_MAX + 1] = { 0 };
	if (!t || mnl_attr_parse_nested(t, attr_index, tb) < 0 || !tb[CTA_TUPLE_IP] || !tb[CTA_TUPLE_PROTO] ||
	    mnl_attr_parse_nested(tb[CTA_TUPLE_IP], attr_index, ip) < 0 ||
	    mnl_attr_parse_nested(tb[CTA_TUPLE_PROTO], attr_index, pr) < 0 || !pr[CTA_PROTO_NUM])
		return false;
	size_t al = family == 4 ? 4 : 16;
	const struct nlattr *s = ip[family == 4 ? CTA_IP_V4_SRC : CTA_IP_V6_SRC];
	const struct nlattr *d = ip[family == 4 ? CTA_IP_V4_DST : CTA_IP_V6_DST];
	if (!s || !d || mnl_attr_get_payload_len(s) != al || mnl_attr_get_payload_len(d) != al)
		return false;
	memcpy(src, mnl_attr_get_payload(s), al);
	memcpy(dst, mnl_attr_get_payload(d), al);
	*proto = mnl_attr_get_u8(pr[CTA_PROTO_NUM]);
	*sport = pr[CTA_PROTO_SRC_PORT] ? ntohs(mnl_attr_get_u16(pr[CTA_PROTO_SRC_PORT])) : 0;
	*dport = pr[CTA_PROTO_DST_PORT] ? ntohs(mnl_attr_get_u16(pr[CTA_PROTO_DST_PORT])) : 0;
	return true;
}

#define REC_HDR 4

static void doomed_put(struct doomed *d, uint8_t family, uint8_t flags, const struct nlattr *const *attrs, size_t n)
{
	size_t len = 0;
	for (size_t i = 0; i < n; i++)
		if (attrs[i])
			len += MNL_ALIGN(attrs[i]->nla_len);
	if (d->len + REC_HDR + len > d->cap) {
		d->cap = (d->len + REC_HDR + len) * 2 + 4096;
		d->buf = xrealloc(d->buf, d->cap);
	}
	uint8_t *p = d->buf + d->len;
	p[0] = family;
	p[1] = flags;
	memcpy(p + 2, &(uint16_t){ (uint16_t)len }, 2);
	p += REC_HDR;
	for (size_t i = 0; i < n; i++)
		if (attrs[i]) {
			memset(p, 0, MNL_ALIGN(attrs[i]->nla_len));
			memcpy(p, attrs[i], attrs[i]->nla_len);
			p += MNL_ALIGN(attrs[i]->nla_len);
		}
	d->len += REC_HDR + len;
	d->n++;
}

/* A TCP entry's state (CTA_PROTOINFO), or TCP_CONNTRACK_NONE. */
static uint8_t tcp_state(const struct nlattr *pi)
{
	const struct nlattr *tb[CTA_MAX + 1] = { 0 }, *tcp[CTA_MAX + 1] = { 0 };
	if (pi && mnl_attr_parse_nested(pi, attr_index, tb) >= 0 && tb[CTA_PROTOINFO_TCP] &&
	    mnl_attr_parse_nested(tb[CTA_PROTOINFO_TCP], attr_index, tcp) >= 0 && tcp[CTA_PROTOINFO_TCP_STATE] &&
	    mnl_attr_get_payload_len(tcp[CTA_PROTOINFO_TCP_STATE]) == 1)
		return mnl_attr_get_u8(tcp[CTA_PROTOINFO_TCP_STATE]);
	return TCP_CONNTRACK_NONE;
}

static int entry_cb(const struct nlmsghdr *nlh, void *data)
{
	struct dump_ctx *c = data;
	const struct nfgenmsg *nfg = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *tb[CTA_MAX + 1] = { 0 };
	struct ct_flow f = { 0 };
	uint8_t rdst[16], p2;
	uint16_t osport, odport, rdport;
	c->tracked++;
	if (nfg->nfgen_family != AF_INET && nfg->nfgen_family != AF_INET6)
		return MNL_CB_OK;
	f.family = nfg->nfgen_family == AF_INET ? 4 : 6;
	if (mnl_attr_parse(nlh, sizeof(*nfg), attr_index, tb) < 0 ||
	    !tuple_read(tb[CTA_TUPLE_ORIG], f.family, f.src, rdst, &f.proto, &osport, &odport) ||
	    !tuple_read(tb[CTA_TUPLE_REPLY], f.family, f.dst, rdst, &p2, &f.dport, &rdport))
		return MNL_CB_OK;
	f.sport = osport;
	if (f.proto != IPPROTO_TCP && f.proto != IPPROTO_UDP && f.proto != IPPROTO_SCTP &&
	    f.proto != IPPROTO_UDPLITE && f.proto != IPPROTO_DCCP)
		f.sport = f.dport = 0; /* ICMP ids are not ports */
	f.revoked = tb[CTA_MARK] && mnl_attr_get_payload_len(tb[CTA_MARK]) == 4 &&
		    (ntohl(mnl_attr_get_u32(tb[CTA_MARK])) & c->mark) == c->mark;
	c->marked += f.revoked;
	uint8_t st = f.proto == IPPROTO_TCP ? tcp_state(tb[CTA_PROTOINFO]) : TCP_CONNTRACK_NONE;
	/* every TCP entry but an ESTABLISHED one (closing, closed, opening) */
	bool closed = !f.revoked && f.proto == IPPROTO_TCP && st != TCP_CONNTRACK_ESTABLISHED;
	/* named by the reply tuple, which holds the destination judged (after
	 * DNAT): a flow since to another backend is another entry */
	const struct nlattr *keep[] = { tb[CTA_TUPLE_REPLY], tb[CTA_ZONE] };
	if (c->doomed(&f, c->arg) != f.revoked) /* to revoke, or revoked and allowed again */
		/* a TCP entry not ESTABLISHED is deleted, not marked: marked, it
		 * went on through FIN states to TIME_WAIT, could not be told from
		 * one the pass put there, and restored to ESTABLISHED it trapped a
		 * new connection reusing its ports; deleted, its segments start
		 * nothing (DP_UNTRACKED_CHAIN) and a SYN meets the policies */
		doomed_put(closed ? c->del : f.revoked ? c->back : c->out, f.family,
			   (uint8_t)((f.proto == IPPROTO_TCP ? REC_TCP : 0) |
				     (st == TCP_CONNTRACK_TIME_WAIT ? REC_TIME_WAIT : 0) |
				     (st == TCP_CONNTRACK_ESTABLISHED ? REC_ESTABLISHED : 0)),
			   keep, 2);
	return MNL_CB_OK;
}

static int dump(struct ct_sock *s, struct dump_ctx *c)
{
	static uint8_t buf[1 << 16];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	nlh->nlmsg_seq = ++s->seq;
	struct nfgenmsg *nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
	nfg->nfgen_family = AF_UNSPEC; /* every family */
	nfg->version = NFNETLINK_V0;
	if (mnl_socket_sendto(s->nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	int ret;
	do {
		ssize_t n = mnl_socket_recvfrom(s->nl, buf, sizeof(buf));
		if (n < 0)
			return -errno; /* ENOBUFS: the dump lost entries; the caller retries later */
		ret = mnl_cb_run(buf, (size_t)n, s->seq, s->portid, entry_cb, c);
	} while (ret > 0);
	return ret < 0 ? -errno : 0;
}

/* ---------- marking ---------- */

struct acks {
	uint32_t first, last;
	size_t got, ok, gone;
	int err;
};

static int read_acks(struct ct_sock *s, struct acks *a, size_t want)
{
	static uint8_t buf[1 << 16];
	struct pollfd p = { mnl_socket_get_fd(s->nl), POLLIN, 0 };
	while (a->got < want) {
		int r = poll(&p, 1, 10000);
		if (r <= 0)
			return r == 0 ? -ETIMEDOUT : -errno;
		ssize_t n = mnl_socket_recvfrom(s->nl, buf, sizeof(buf));
		if (n < 0)
			return -errno;
		int len = (int)n;
		for (const struct nlmsghdr *nlh = (const void *)buf; mnl_nlmsg_ok(nlh, len);
		     nlh = mnl_nlmsg_next(nlh, &len)) {
			if (nlh->nlmsg_type != NLMSG_ERROR || nlh->nlmsg_seq < a->first || nlh->nlmsg_seq > a->last)
				continue;
			const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
			a->got++;
			if (!e->error)
				a->ok++;
			else if (e->error == -ENOENT || e->error == -ETIME)
				a->gone++; /* ended (or dying) since the dump */
			else if (!a->err)
				a->err = e->error;
		}
	}
	return 0;
}

/* What a revoked entry gets besides the mark: its time left, and an
 * ESTABLISHED TCP entry the TIME_WAIT state, so that the packets its ends
 * still send keep it (and the drop) only that long after the last of them; the
 * ruleset drops a TCP segment that would start a flow in mid-stream once
 * the entry is gone (dataplane.h DP_UNTRACKED_CHAIN). One allowed again
 * gets the mark's bits cleared and, still in TIME_WAIT, ESTABLISHED back
 * (its next packet gives it that state's time). The time is set by a
 * message of its own, after the mark: the kernel applies CTA_TIMEOUT
 * first and refuses the whole change for an entry with a fixed timeout
 * (EPERM) or a dying one (ETIME), which must not cost the mark. */
#define REVOKED_TIMEOUT_S 120
#define MARK_ATTRS_MAX 64 /* CTA_MARK, CTA_MARK_MASK, CTA_PROTOINFO nest */

enum op { OP_MARK, OP_CLEAR, OP_TIME, OP_DELETE };

/* Sends the records in batches of requests, each acknowledged, all of
 * them even when some fail; ok and gone (ENOENT, ETIME: ended since the
 * dump) counted, the first other error returned (OP_TIME: none). */
static int send_all(struct ct_sock *s, const struct doomed *d, uint32_t mark, enum op op, size_t *ok, size_t *gone)
{
	static uint8_t buf[32 * 1024];
	size_t off = 0;
	int rc = 0;
	while (off < d->len) {
		size_t used = 0, nmsg = 0;
		struct acks a = { .first = s->seq + 1 };
		while (off < d->len) {
			uint16_t len;
			memcpy(&len, d->buf + off + 2, 2);
			size_t need = MNL_ALIGN(sizeof(struct nlmsghdr)) + MNL_ALIGN(sizeof(struct nfgenmsg)) + len +
				      MARK_ATTRS_MAX;
			if (used + need > sizeof(buf))
				break;
			struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf + used);
			nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) |
					  (op == OP_DELETE ? IPCTNL_MSG_CT_DELETE : IPCTNL_MSG_CT_NEW);
			nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK; /* no NLM_F_CREATE: only an existing entry */
			nlh->nlmsg_seq = ++s->seq;
			struct nfgenmsg *nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
			nfg->nfgen_family = d->buf[off] == 4 ? AF_INET : AF_INET6;
			nfg->version = NFNETLINK_V0;
			memcpy((uint8_t *)nlh + nlh->nlmsg_len, d->buf + off + REC_HDR, len);
			nlh->nlmsg_len += len;
			uint8_t flags = d->buf[off + 1];
			if (op == OP_TIME) {
				mnl_attr_put_u32(nlh, CTA_TIMEOUT, htonl(REVOKED_TIMEOUT_S));
			} else if (op != OP_DELETE) {
				mnl_attr_put_u32(nlh, CTA_MARK, op == OP_CLEAR ? 0 : htonl(mark));
				mnl_attr_put_u32(nlh, CTA_MARK_MASK, htonl(mark));
				/* an ESTABLISHED TCP entry to TIME_WAIT (another, half
				 * closed or opening, keeps its state); back to
				 * ESTABLISHED only from TIME_WAIT. (A half-closed one
				 * that reached TIME_WAIT while marked is put back in
				 * ESTABLISHED too: it then lives at most its time left,
				 * unless a packet comes.) */
				if ((flags & REC_TCP) &&
				    (op == OP_MARK ? (flags & REC_ESTABLISHED) : (flags & REC_TIME_WAIT))) {
					struct nlattr *pi = mnl_attr_nest_start(nlh, CTA_PROTOINFO);
					struct nlattr *tcp = mnl_attr_nest_start(nlh, CTA_PROTOINFO_TCP);
					mnl_attr_put_u8(nlh, CTA_PROTOINFO_TCP_STATE,
							op == OP_CLEAR ? TCP_CONNTRACK_ESTABLISHED : TCP_CONNTRACK_TIME_WAIT);
					mnl_attr_nest_end(nlh, tcp);
					mnl_attr_nest_end(nlh, pi);
				}
			}
			used += nlh->nlmsg_len;
			off += REC_HDR + len;
			nmsg++;
		}
		a.last = s->seq;
		if (mnl_socket_sendto(s->nl, buf, used) < 0)
			return -errno;
		int r = read_acks(s, &a, nmsg);
		*ok += a.ok;
		*gone += a.gone;
		if (r < 0)
			return r; /* the socket, not an entry: the rest would fare no better */
		if (!rc && a.err && op != OP_TIME)
			rc = a.err;
	}
	return rc;
}

int ct_revoke(struct ct_sock *s, uint32_t mark, bool (*doomed)(const struct ct_flow *f, void *arg), void *arg,
	      struct ct_revoke_stats *st)
{
	struct doomed d = { 0 }, b = { 0 }, x = { 0 };
	struct dump_ctx c = { doomed, arg, &d, &b, &x, mark, 0, 0 };
	memset(st, 0, sizeof(*st));
	double t0 = now_ms();
	int rc = dump(s, &c);
	st->tracked = c.tracked;
	st->marked_before = c.marked;
	double t1 = now_ms();
	st->dump_ms = t1 - t0;
	size_t gone = 0, timed = 0;
	if (d.n) {
		int r = send_all(s, &d, mark, OP_MARK, &st->revoked, &st->gone);
		if (!rc)
			rc = r;
		r = send_all(s, &d, mark, OP_TIME, &timed, &gone);
		if (!rc && r < 0)
			rc = r;
	}
	if (x.n) {
		int r = send_all(s, &x, mark, OP_DELETE, &st->revoked, &st->gone);
		if (!rc)
			rc = r;
	}
	if (b.n) {
		int r = send_all(s, &b, mark, OP_CLEAR, &st->restored, &gone);
		if (!rc)
			rc = r;
	}
	st->mark_ms = now_ms() - t1;
	free(d.buf);
	free(b.buf);
	return rc;
}

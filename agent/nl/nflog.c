/* The drop listener: packets the ruleset's `log group N` statements send
 * over nfnetlink_log (NETLINK_NETFILTER, subsystem NFNL_SUBSYS_ULOG).
 * Binding a group needs CAP_NET_ADMIN; one listener per group and network
 * namespace (linux net/netfilter/nfnetlink_log.c). */
#include "agent/nl/nflog.h"
#include "policy/util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_log.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/util.h"

struct nflog {
	struct mnl_socket *nl;
	uint32_t portid;
	uint16_t group;
};

static int config(struct nflog *l, uint16_t group, const void *attr, uint16_t type, size_t len)
{
	uint8_t buf[256];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_CONFIG;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	nlh->nlmsg_seq = 1;
	struct nfgenmsg *g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
	g->nfgen_family = AF_UNSPEC;
	g->version = NFNETLINK_V0;
	g->res_id = htons(group);
	mnl_attr_put(nlh, type, len, attr);
	if (mnl_socket_sendto(l->nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	ssize_t n = mnl_socket_recvfrom(l->nl, buf, sizeof(buf));
	if (n < 0)
		return -errno;
	if (mnl_cb_run(buf, (size_t)n, 1, l->portid, NULL, NULL) < 0)
		return -errno;
	return 0;
}

struct nflog *nflog_open(uint16_t group, char **err)
{
	struct nflog *l = xcalloc(1, sizeof(*l));
	struct nfulnl_msg_config_cmd bind = { NFULNL_CFG_CMD_BIND };
	/* headers are enough to name a flow: IPv6 (40) + ports, with room */
	struct nfulnl_msg_config_mode mode = { htonl(128), NFULNL_COPY_PACKET, 0 };
	int rc;
	l->group = group;
	l->nl = mnl_socket_open(NETLINK_NETFILTER);
	if (!l->nl || mnl_socket_bind(l->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		*err = xasprintf("NFLOG: netlink socket: %s", strerror(errno));
		goto fail;
	}
	l->portid = mnl_socket_get_portid(l->nl);
	if ((rc = config(l, group, &bind, NFULA_CFG_CMD, sizeof(bind))) < 0) {
		*err = xasprintf("NFLOG: binding group %u: %s%s", group, strerror(-rc),
				 rc == -EBUSY ? " (another listener holds it)" : rc == -EPERM ? " (needs CAP_NET_ADMIN)" : "");
		goto fail;
	}
	if ((rc = config(l, group, &mode, NFULA_CFG_MODE, sizeof(mode))) < 0) {
		*err = xasprintf("NFLOG: setting copy mode on group %u: %s", group, strerror(-rc));
		goto fail;
	}
	/* deliver each packet at once: by default the kernel batches log
	 * messages for up to a second (NFULNL_TIMEOUT_DEFAULT) */
	uint32_t qthresh = htonl(1), timeout = htonl(1); /* 10 ms */
	if ((rc = config(l, group, &qthresh, NFULA_CFG_QTHRESH, sizeof(qthresh))) < 0 ||
	    (rc = config(l, group, &timeout, NFULA_CFG_TIMEOUT, sizeof(timeout))) < 0) {
		*err = xasprintf("NFLOG: configuring group %u: %s", group, strerror(-rc));
		goto fail;
	}
	int on = 1; /* losing log messages under load is fine: never block the kernel */
	mnl_socket_setsockopt(l->nl, NETLINK_NO_ENOBUFS, &on, sizeof(on));
	return l;
fail:
	nflog_close(l);
	return NULL;
}

void nflog_close(struct nflog *l)
{
	if (!l)
		return;
	if (l->nl)
		mnl_socket_close(l->nl);
	free(l);
}

int nflog_fd(const struct nflog *l)
{
	return mnl_socket_get_fd(l->nl);
}

struct cbctx {
	nflog_cb cb;
	void *arg;
};

struct attrs {
	const struct nlattr *tb[NFULA_MAX + 1];
	const char *end; /* the message's last byte + 1 (nlmsg_len) */
};

/* libmnl lets an attribute run to the message's aligned end, up to 3
 * bytes past nlmsg_len and so past the bytes read (found by fuzz-nflog):
 * such an attribute is taken as absent. */
static int attr_cb(const struct nlattr *a, void *data)
{
	struct attrs *at = data;
	int type = mnl_attr_get_type(a);
	if (type <= NFULA_MAX && (const char *)a + a->nla_len <= at->end)
		at->tb[type] = a;
	return MNL_CB_OK;
}

static int msg_cb(const struct nlmsghdr *nlh, void *data)
{
	struct cbctx *c = data;
	struct attrs at = { .end = (const char *)nlh + nlh->nlmsg_len };
	const struct nlattr **tb = at.tb;
	if ((nlh->nlmsg_type & 0xff) != NFULNL_MSG_PACKET)
		return MNL_CB_OK;
	const struct nfgenmsg *g = mnl_nlmsg_get_payload(nlh);
	mnl_attr_parse(nlh, sizeof(*g), attr_cb, &at);
	if (!tb[NFULA_PAYLOAD])
		return MNL_CB_OK;
	struct nflog_pkt p = { 0 };
	/* a prefix not ended by its NUL inside the attribute is none: the
	 * reader (sscanf in the agent) would run past the message */
	p.prefix = tb[NFULA_PREFIX] && mnl_attr_validate(tb[NFULA_PREFIX], MNL_TYPE_NUL_STRING) == 0
			   ? mnl_attr_get_str(tb[NFULA_PREFIX])
			   : "";
	p.payload = mnl_attr_get_payload(tb[NFULA_PAYLOAD]);
	p.len = mnl_attr_get_payload_len(tb[NFULA_PAYLOAD]);
	if (nflog_parse(p.payload, p.len, &p) == 0)
		c->cb(&p, c->arg);
	return MNL_CB_OK;
}

int nflog_read(struct nflog *l, nflog_cb cb, void *arg)
{
	static uint8_t buf[1 << 16];
	ssize_t n = mnl_socket_recvfrom(l->nl, buf, sizeof(buf));
	if (n < 0)
		return errno == EAGAIN || errno == ENOBUFS ? 0 : -errno;
	return nflog_parse_msgs(buf, (size_t)n, cb, arg);
}

/* Whether every message's length fits the buffer: 1 yes; 0 yes, but the
 * last one's aligned end does not (libmnl reads attributes up to the
 * aligned end, so it is read from a zero-padded copy); -1 a length does
 * not fit. libmnl 1.0.4's mnl_nlmsg_ok() compares nlmsg_len as an int, so
 * a length above 2^31 passes it and the walk runs off the buffer (found by
 * fuzz-nflog); the kernel never sends one, but nothing read is trusted to
 * be well formed. */
static int msgs_well_formed(const uint8_t *p, size_t len)
{
	while (len >= sizeof(struct nlmsghdr)) {
		uint32_t n;
		memcpy(&n, p, sizeof(n));
		if (n < sizeof(struct nlmsghdr) || n > len)
			return -1;
		if (MNL_ALIGN(n) > len)
			return 0;
		p += MNL_ALIGN(n);
		len -= MNL_ALIGN(n);
	}
	return 1;
}

int nflog_parse_msgs(const void *buf, size_t len, nflog_cb cb, void *arg)
{
	struct cbctx c = { cb, arg };
	int wf = msgs_well_formed(buf, len);
	if (wf < 0)
		return -EBADMSG;
	uint8_t *copy = NULL;
	if (wf == 0) {
		copy = xcalloc(1, MNL_ALIGN(len));
		memcpy(copy, buf, len);
		buf = copy;
		len = MNL_ALIGN(len);
	}
	int rc = mnl_cb_run(buf, len, 0, 0, msg_cb, &c);
	int err = errno;
	free(copy);
	return rc < 0 ? -err : 0;
}

int nflog_parse(const uint8_t *pkt, size_t len, struct nflog_pkt *out)
{
	size_t l4;
	if (len < 1)
		return -EINVAL;
	if (pkt[0] >> 4 == 4) {
		if (len < 20 || (size_t)(pkt[0] & 15) * 4 < 20)
			return -EINVAL;
		out->family = 4;
		memcpy(out->src, pkt + 12, 4);
		memcpy(out->dst, pkt + 16, 4);
		out->proto = pkt[9];
		l4 = (size_t)(pkt[0] & 15) * 4;
	} else if (pkt[0] >> 4 == 6) {
		if (len < 40)
			return -EINVAL;
		out->family = 6;
		memcpy(out->src, pkt + 8, 16);
		memcpy(out->dst, pkt + 24, 16);
		out->proto = pkt[6]; /* extension headers are not followed */
		l4 = 40;
	} else {
		return -EINVAL;
	}
	out->sport = out->dport = 0;
	if ((out->proto == IPPROTO_TCP || out->proto == IPPROTO_UDP || out->proto == IPPROTO_SCTP) && len >= l4 + 4) {
		out->sport = (uint16_t)(pkt[l4] << 8 | pkt[l4 + 1]);
		out->dport = (uint16_t)(pkt[l4 + 2] << 8 | pkt[l4 + 3]);
	}
	return 0;
}

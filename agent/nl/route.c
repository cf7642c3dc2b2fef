/* rtnetlink, with libmnl: one RTM_GETADDR dump of every family.
 * (linux net/ipv4/devinet.c, net/ipv6/addrconf.c: IFA_LOCAL is the
 * interface's own address on point-to-point links, where IFA_ADDRESS is
 * the peer's; elsewhere IFA_ADDRESS alone is set, and is our own.)
 * Nothing else in corral talks rtnetlink. */
#include "agent/nl/route.h"

#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/if_addr.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "policy/util.h"

struct route_sock {
	struct mnl_socket *nl;
	uint32_t portid, seq;
};

struct route_sock *route_sock_open(void)
{
	struct route_sock *s = xcalloc(1, sizeof(*s));
	s->nl = mnl_socket_open(NETLINK_ROUTE);
	if (!s->nl || mnl_socket_bind(s->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		int e = errno;
		if (s->nl)
			mnl_socket_close(s->nl);
		free(s);
		errno = e;
		return NULL;
	}
	s->portid = mnl_socket_get_portid(s->nl);
	s->seq = (uint32_t)time(NULL);
	return s;
}

void route_sock_close(struct route_sock *s)
{
	if (!s)
		return;
	mnl_socket_close(s->nl);
	free(s);
}

struct addrs {
	struct route_addr *v;
	size_t n, cap;
};

static int addr_attr(const struct nlattr *a, void *data)
{
	const struct nlattr **tb = data;
	if (mnl_attr_get_type(a) <= IFA_MAX)
		tb[mnl_attr_get_type(a)] = a;
	return MNL_CB_OK;
}

static int addr_cb(const struct nlmsghdr *nlh, void *data)
{
	struct addrs *out = data;
	const struct ifaddrmsg *ifa = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *tb[IFA_MAX + 1] = { 0 };
	if (ifa->ifa_family != AF_INET && ifa->ifa_family != AF_INET6)
		return MNL_CB_OK;
	mnl_attr_parse(nlh, sizeof(*ifa), addr_attr, tb);
	const struct nlattr *a = tb[IFA_LOCAL] ? tb[IFA_LOCAL] : tb[IFA_ADDRESS];
	size_t al = ifa->ifa_family == AF_INET ? 4 : 16;
	if (!a || mnl_attr_get_payload_len(a) != al)
		return MNL_CB_OK;
	if (out->n == out->cap) {
		out->cap = out->cap ? 2 * out->cap : 16;
		out->v = xrealloc(out->v, out->cap * sizeof(*out->v));
	}
	struct route_addr *r = &out->v[out->n++];
	memset(r, 0, sizeof(*r));
	r->family = al == 4 ? 4 : 6;
	memcpy(r->a, mnl_attr_get_payload(a), al);
	return MNL_CB_OK;
}

int route_addrs_local(struct route_sock *s, struct route_addr **out, size_t *n)
{
	static uint8_t buf[1 << 16];
	struct addrs got = { 0 };
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_GETADDR;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	nlh->nlmsg_seq = ++s->seq;
	struct ifaddrmsg *ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	ifa->ifa_family = AF_UNSPEC;
	int ret = mnl_socket_sendto(s->nl, nlh, nlh->nlmsg_len) < 0 ? -1 : 1;
	while (ret > 0) {
		ssize_t r = mnl_socket_recvfrom(s->nl, buf, sizeof(buf));
		ret = r < 0 ? -1 : mnl_cb_run(buf, (size_t)r, s->seq, s->portid, addr_cb, &got);
	}
	if (ret < 0) {
		int e = errno;
		free(got.v);
		return -e;
	}
	*out = got.v;
	*n = got.n;
	return 0;
}

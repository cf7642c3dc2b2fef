/* rtnetlink with libnl-3: caches of the node's links, addresses, routes
 * and neighbours (a cache manager: the kernel's notifications keep them
 * current) and the pod interfaces derived from them (link.h).
 *
 * Facts relied on (linux net/core/rtnetlink.c, net/core/net_namespace.c,
 * net/ipv4/devinet.c, net/ipv6/addrconf.c, net/netlink/af_netlink.c):
 *   - a veth whose peer is in another namespace carries IFLA_LINK (the
 *     peer's ifindex there) and IFLA_LINK_NETNSID (that namespace's id
 *     here, allocated when the link is first reported);
 *   - RTM_GETADDR dumps take IFA_TARGET_NETNSID (since 4.20; the caller
 *     needs CAP_NET_ADMIN over that namespace) and then dump the
 *     addresses of the namespace the id names, but only from a socket
 *     with NETLINK_GET_STRICT_CHK (otherwise the attribute is ignored
 *     and our own namespace is dumped);
 *   - a socket with NETLINK_LISTEN_ALL_NSID receives the notifications of
 *     every namespace that has an id in its own, each with a control
 *     message carrying that id (none for its own namespace); it needs
 *     CAP_NET_BROADCAST. Without it the pods' namespaces are read again
 *     on a timer instead (LINK_POLL_MS; every tick while a port is
 *     young, LINK_POLL_ALL_TICKS ticks for the others).
 * Nothing but this file and route.c talks rtnetlink. */
#include "agent/nl/link.h"

#include <errno.h>
#include <linux/if_addr.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <netlink/cache.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/neighbour.h>
#include <netlink/route/route.h>
#include <netlink/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "policy/util.h"

#ifndef NETLINK_LISTEN_ALL_NSID
#define NETLINK_LISTEN_ALL_NSID 8
#endif
#ifndef NETLINK_GET_STRICT_CHK
#define NETLINK_GET_STRICT_CHK 12
#endif

struct link_watch {
	struct nl_cache_mngr *mngr;
	struct nl_cache *links, *addrs, *routes, *neigh;
	struct nl_sock *dump;   /* requests: pod namespaces' addresses, cache refills */
	struct nl_sock *nsev;   /* address notifications of every namespace with an id */
	int ep;
	int tfd;                /* without NETLINK_LISTEN_ALL_NSID: the pods' namespaces are polled */
	uint64_t ticks;
	bool dirty;             /* a cache changed since the ports were derived */
	bool redump_all;        /* notifications of pod namespaces were lost */
	int32_t *dirty_ns;      /* namespaces whose addresses changed */
	size_t ndirty_ns, cap_ns;
	struct link_port *ports;
	size_t nports;
	struct link_other *others; /* ports of bridges that are no pod's */
	size_t nothers;
	char **node;            /* the node's own interfaces' names, sorted */
	size_t nnode;
	struct link_stats st;
};

#define LINK_POLL_MS 100
#define LINK_POLL_YOUNG_S 30
#define LINK_POLL_ALL_TICKS 20

static void on_change(struct nl_cache *c, struct nl_object *o, int action, void *arg)
{
	struct link_watch *w = arg;
	w->st.changes++;
	/* pod interfaces come from links and routes only (the address and
	 * neighbour caches change often and are kept for status) */
	if (c == w->links || c == w->routes)
		w->dirty = true;
}

static int ep_add(int ep, int fd)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };
	return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

static bool port_changed(const struct link_port *a, const struct link_port *b)
{
	return a->ifindex != b->ifindex || strcmp(a->name, b->name) || a->kind != b->kind ||
	       strcmp(a->bridge, b->bridge) || a->known != b->known || a->naddr != b->naddr ||
	       memcmp(a->addr, b->addr, a->naddr * sizeof(a->addr[0]));
}

static int addr_cmp(const void *x, const void *y)
{
	const struct link_addr *a = x, *b = y;
	if (a->family != b->family)
		return a->family - b->family;
	return memcmp(a->a, b->a, sizeof(a->a));
}

static void port_add_addr(struct link_port *p, uint8_t family, const void *bytes)
{
	struct link_addr a = { .family = family };
	memcpy(a.a, bytes, family == 4 ? 4 : 16);
	for (size_t i = 0; i < p->naddr; i++)
		if (!addr_cmp(&p->addr[i], &a))
			return;
	if (p->naddr == LINK_PORT_ADDRS) {
		p->truncated = true;
		return;
	}
	p->addr[p->naddr++] = a;
}

static int port_name_cmp(const void *x, const void *y)
{
	return strcmp(((const struct link_port *)x)->name, ((const struct link_port *)y)->name);
}

static struct link_port *port_by_index(struct link_port *v, size_t n, int ifindex)
{
	for (size_t i = 0; i < n; i++)
		if (v[i].ifindex == ifindex)
			return &v[i];
	return NULL;
}

/* ---------- the pods' namespaces ---------- */

struct dump_ctx {
	struct link_port *ports;
	size_t n;
	int32_t nsid;
};

static int dump_cb(struct nl_msg *msg, void *arg)
{
	struct dump_ctx *d = arg;
	struct nlmsghdr *nlh = nlmsg_hdr(msg);
	struct nlattr *tb[IFA_MAX + 1];
	if (nlh->nlmsg_type != RTM_NEWADDR || nlmsg_parse(nlh, sizeof(struct ifaddrmsg), tb, IFA_MAX, NULL) < 0)
		return NL_OK;
	const struct ifaddrmsg *ifa = nlmsg_data(nlh);
	if (ifa->ifa_family != AF_INET && ifa->ifa_family != AF_INET6)
		return NL_OK;
	struct nlattr *a = tb[IFA_LOCAL] ? tb[IFA_LOCAL] : tb[IFA_ADDRESS];
	int al = ifa->ifa_family == AF_INET ? 4 : 16;
	if (!a || nla_len(a) != al)
		return NL_OK;
	for (size_t i = 0; i < d->n; i++) {
		struct link_port *p = &d->ports[i];
		if (p->kind == LINK_BRIDGED && p->netnsid == d->nsid && p->peer_ifindex == (int)ifa->ifa_index)
			port_add_addr(p, al == 4 ? 4 : 6, nla_data(a));
	}
	return NL_OK;
}

/* The addresses of every bridged port into namespace nsid, read again. */
static void dump_ns(struct link_watch *w, struct link_port *ports, size_t n, int32_t nsid)
{
	for (size_t i = 0; i < n; i++)
		if (ports[i].kind == LINK_BRIDGED && ports[i].netnsid == nsid)
			ports[i].naddr = 0, ports[i].truncated = false;
	struct nl_msg *m = nlmsg_alloc_simple(RTM_GETADDR, NLM_F_DUMP);
	struct ifaddrmsg ifa = { .ifa_family = AF_UNSPEC };
	struct dump_ctx d = { ports, n, nsid };
	int rc = -NLE_NOMEM;
	if (m && nlmsg_append(m, &ifa, sizeof(ifa), NLMSG_ALIGNTO) == 0 &&
	    nla_put_s32(m, IFA_TARGET_NETNSID, nsid) == 0)
		rc = nl_send_auto(w->dump, m);
	nlmsg_free(m);
	if (rc >= 0) {
		struct nl_cb *cb = nl_cb_alloc(NL_CB_DEFAULT);
		nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, dump_cb, &d);
		rc = nl_recvmsgs(w->dump, cb);
		nl_cb_put(cb);
	}
	w->st.pod_dumps++;
	/* a namespace gone meanwhile answers with an error: no addresses,
	 * and the port itself goes with the next link notification */
	for (size_t i = 0; i < n; i++)
		if (ports[i].kind == LINK_BRIDGED && ports[i].netnsid == nsid) {
			ports[i].known = rc >= 0;
			qsort(ports[i].addr, ports[i].naddr, sizeof(ports[i].addr[0]), addr_cmp);
		}
}

static void mark_ns(struct link_watch *w, int32_t nsid)
{
	for (size_t i = 0; i < w->ndirty_ns; i++)
		if (w->dirty_ns[i] == nsid)
			return;
	if (w->ndirty_ns == w->cap_ns) {
		w->cap_ns = w->cap_ns ? 2 * w->cap_ns : 16;
		w->dirty_ns = xrealloc(w->dirty_ns, w->cap_ns * sizeof(*w->dirty_ns));
	}
	w->dirty_ns[w->ndirty_ns++] = nsid;
}

/* Address notifications of other namespaces: which namespace changed. */
static void read_ns_events(struct link_watch *w)
{
	static uint8_t buf[1 << 16];
	int fd = nl_socket_get_fd(w->nsev);
	for (;;) {
		union {
			struct cmsghdr h;
			uint8_t b[CMSG_SPACE(sizeof(int)) * 2];
		} ctl;
		struct iovec iov = { buf, sizeof(buf) };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &ctl, .msg_controllen = sizeof(ctl) };
		ssize_t r = recvmsg(fd, &mh, MSG_DONTWAIT);
		if (r < 0) {
			if (errno == ENOBUFS) { /* lost some: read every pod's again */
				w->redump_all = true;
				w->st.resyncs++;
				continue;
			}
			return; /* EAGAIN, or nothing more to learn now */
		}
		int32_t nsid = -1;
		bool have = false;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
			if (c->cmsg_level == SOL_NETLINK && c->cmsg_type == NETLINK_LISTEN_ALL_NSID) {
				memcpy(&nsid, CMSG_DATA(c), sizeof(nsid));
				have = true;
			}
		if (!have)
			continue; /* our own namespace: the caches have it */
		struct nlmsghdr *nlh = (struct nlmsghdr *)buf;
		int len = (int)r;
		for (; nlmsg_ok(nlh, len); nlh = nlmsg_next(nlh, &len))
			if (nlh->nlmsg_type == RTM_NEWADDR || nlh->nlmsg_type == RTM_DELADDR)
				mark_ns(w, nsid);
	}
}

/* ---------- deriving the pod interfaces ---------- */

static void routed_addrs(struct link_watch *w, struct link_port *ports, size_t n)
{
	for (struct nl_object *o = nl_cache_get_first(w->routes); o; o = nl_cache_get_next(o)) {
		struct rtnl_route *r = (struct rtnl_route *)o;
		struct nl_addr *dst = rtnl_route_get_dst(r);
		if (!dst || rtnl_route_get_type(r) != RTN_UNICAST || rtnl_route_get_nnexthops(r) != 1)
			continue;
		int fam = nl_addr_get_family(dst);
		unsigned plen = nl_addr_get_prefixlen(dst);
		if (!((fam == AF_INET && plen == 32 && nl_addr_get_len(dst) == 4) ||
		      (fam == AF_INET6 && plen == 128 && nl_addr_get_len(dst) == 16)))
			continue;
		struct link_port *p = port_by_index(ports, n, rtnl_route_nh_get_ifindex(rtnl_route_nexthop_n(r, 0)));
		if (p && p->kind == LINK_ROUTED)
			port_add_addr(p, fam == AF_INET ? 4 : 6, nl_addr_get_binary_addr(dst));
	}
	for (size_t i = 0; i < n; i++)
		if (ports[i].kind == LINK_ROUTED)
			qsort(ports[i].addr, ports[i].naddr, sizeof(ports[i].addr[0]), addr_cmp);
}

static int other_cmp(const void *x, const void *y)
{
	return strcmp(((const struct link_other *)x)->name, ((const struct link_other *)y)->name);
}

static int str_cmp(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

static void free_names(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static bool has_int(const int *v, size_t n, int x)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == x)
			return true;
	return false;
}

/* The interfaces (ifindexes into *out, malloc'd) through which a route of
 * the node leads to a network (not one address: shorter than /32 or
 * /128, default included; not link-local): what an uplink or a wire
 * between namespaces has (its subnet, the default route), and a pod's
 * veth never gets (the CNI routes single addresses to it). */
static size_t network_ifaces(struct link_watch *w, int **out)
{
	size_t n = 0, cap = 16;
	int *v = xmalloc(cap * sizeof(*v));
	for (struct nl_object *o = nl_cache_get_first(w->routes); o; o = nl_cache_get_next(o)) {
		struct rtnl_route *r = (struct rtnl_route *)o;
		struct nl_addr *dst = rtnl_route_get_dst(r);
		if (rtnl_route_get_type(r) != RTN_UNICAST || rtnl_route_get_table(r) == RT_TABLE_LOCAL)
			continue;
		int fam = rtnl_route_get_family(r);
		unsigned plen = dst ? nl_addr_get_prefixlen(dst) : 0;
		if ((fam == AF_INET && plen >= 32) || (fam == AF_INET6 && plen >= 128) ||
		    (fam != AF_INET && fam != AF_INET6))
			continue;
		if (fam == AF_INET6 && dst && plen >= 10 && nl_addr_get_len(dst) == 16) {
			const uint8_t *b = nl_addr_get_binary_addr(dst);
			if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80)
				continue; /* fe80::/64: every IPv6 interface has it */
		}
		for (int i = 0; i < rtnl_route_get_nnexthops(r); i++) {
			int x = rtnl_route_nh_get_ifindex(rtnl_route_nexthop_n(r, i));
			if (has_int(v, n, x))
				continue; /* a few interfaces, however many routes */
			if (n == cap)
				v = xrealloc(v, (cap *= 2) * sizeof(*v));
			v[n++] = x;
		}
	}
	*out = v;
	return n;
}


/* Every link that is not a pod interface (ports: n of them), by name;
 * true when the list changed. A veth into another namespace that carries
 * a network route counts as the node's (a kind node's eth0, a wire
 * between test nodes). */
static bool node_ifaces(struct link_watch *w, const struct link_port *ports, size_t n)
{
	size_t cap = (size_t)nl_cache_nitems(w->links) + 1, m = 0;
	char **v = xcalloc(cap, sizeof(*v));
	int *net;
	size_t nnet = network_ifaces(w, &net);
	for (struct nl_object *o = nl_cache_get_first(w->links); o && m < cap; o = nl_cache_get_next(o)) {
		struct rtnl_link *l = (struct rtnl_link *)o;
		const char *name = rtnl_link_get_name(l);
		const char *type = rtnl_link_get_type(l);
		bool pod = false;
		/* the links themselves (AF_UNSPEC), and bridges, which libnl
		 * files under AF_BRIDGE (from their kind); not the per-family
		 * entries (AF_INET6 link notifications), which outlive their
		 * link: a stale name must never make a new pod's veth the
		 * node's */
		int fam = rtnl_link_get_family(l);
		if (!name || !*name ||
		    !(fam == AF_UNSPEC || (fam == AF_BRIDGE && type && !strcmp(type, "bridge"))))
			continue;
		for (size_t i = 0; i < n && !pod; i++)
			pod = ports[i].ifindex == rtnl_link_get_ifindex(l);
		if (!pod || has_int(net, nnet, rtnl_link_get_ifindex(l)))
			v[m++] = xstrdup(name);
	}
	free(net);
	qsort(v, m, sizeof(*v), str_cmp);
	size_t kept = 0;
	for (size_t i = 0; i < m; i++) {
		if (kept && !strcmp(v[kept - 1], v[i])) {
			free(v[i]);
			continue;
		}
		v[kept++] = v[i];
	}
	m = kept;
	bool changed = m != w->nnode;
	for (size_t i = 0; !changed && i < m; i++)
		changed = strcmp(v[i], w->node[i]) != 0;
	free_names(w->node, w->nnode);
	w->node = v;
	w->nnode = m;
	return changed;
}

static bool refresh(struct link_watch *w)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	size_t cap = (size_t)nl_cache_nitems(w->links) + 1, n = 0, no = 0;
	struct link_port *v = xcalloc(cap, sizeof(*v));
	struct link_other *ov = xcalloc(cap, sizeof(*ov));
	for (struct nl_object *o = nl_cache_get_first(w->links); o && n < cap; o = nl_cache_get_next(o)) {
		struct rtnl_link *l = (struct rtnl_link *)o;
		const char *type = rtnl_link_get_type(l);
		int32_t nsid;
		if (rtnl_link_get_family(l) != AF_UNSPEC)
			continue;
		if (!type || strcmp(type, "veth") || rtnl_link_get_link_netnsid(l, &nsid) < 0 || nsid < 0) {
			/* not a pod's: if it is a bridge's port, the bridge table
			 * lets it be (an uplink, a tunnel, the node's own veth) */
			int m = rtnl_link_get_master(l);
			struct rtnl_link *br = m > 0 ? rtnl_link_get(w->links, m) : NULL;
			if (br && rtnl_link_get_type(br) && !strcmp(rtnl_link_get_type(br), "bridge") &&
			    rtnl_link_get_name(l)) {
				struct link_other *x = &ov[no++];
				snprintf(x->name, sizeof(x->name), "%s", rtnl_link_get_name(l));
				snprintf(x->bridge, sizeof(x->bridge), "%s", rtnl_link_get_name(br));
			}
			rtnl_link_put(br);
			continue;
		}
		struct link_port *p = &v[n++];
		p->ifindex = rtnl_link_get_ifindex(l);
		snprintf(p->name, sizeof(p->name), "%s", rtnl_link_get_name(l) ? rtnl_link_get_name(l) : "");
		p->netnsid = nsid;
		p->peer_ifindex = rtnl_link_get_link(l);
		p->kind = LINK_ROUTED;
		p->since = now;
		int master = rtnl_link_get_master(l);
		struct rtnl_link *br = master > 0 ? rtnl_link_get(w->links, master) : NULL;
		if (br && rtnl_link_get_type(br) && !strcmp(rtnl_link_get_type(br), "bridge")) {
			p->kind = LINK_BRIDGED;
			snprintf(p->bridge, sizeof(p->bridge), "%s", rtnl_link_get_name(br));
		}
		rtnl_link_put(br);
		struct link_port *old = port_by_index(w->ports, w->nports, p->ifindex);
		if (old && !strcmp(old->name, p->name) && old->netnsid == p->netnsid)
			p->since = old->since;
		if (p->kind == LINK_BRIDGED) {
			/* the pod's addresses carry over unless its namespace changed or
			 * was never read */
			if (old && old->kind == LINK_BRIDGED && old->known && old->netnsid == nsid &&
			    old->peer_ifindex == p->peer_ifindex && !w->redump_all) {
				p->known = true;
				p->naddr = old->naddr;
				p->truncated = old->truncated;
				memcpy(p->addr, old->addr, sizeof(p->addr));
			} else {
				mark_ns(w, nsid);
			}
		}
	}
	w->redump_all = false;
	routed_addrs(w, v, n);
	for (size_t i = 0; i < w->ndirty_ns; i++)
		dump_ns(w, v, n, w->dirty_ns[i]);
	w->ndirty_ns = 0;
	qsort(v, n, sizeof(*v), port_name_cmp);
	qsort(ov, no, sizeof(*ov), other_cmp);
	bool changed = n != w->nports || no != w->nothers || (no && memcmp(ov, w->others, no * sizeof(*ov)));
	for (size_t i = 0; !changed && i < n; i++)
		changed = port_changed(&v[i], &w->ports[i]);
	changed |= node_ifaces(w, v, n);
	free(w->ports);
	w->ports = v;
	w->nports = n;
	free(w->others);
	w->others = ov;
	w->nothers = no;
	w->dirty = false;
	w->st.routed = w->st.bridged = 0;
	for (size_t i = 0; i < n; i++)
		*(v[i].kind == LINK_ROUTED ? &w->st.routed : &w->st.bridged) += 1;
	return changed;
}

/* ---------- the watch ---------- */

static int add_cache(struct link_watch *w, const char *name, struct nl_cache **c, char **err)
{
	int rc = nl_cache_mngr_add(w->mngr, name, on_change, w, c);
	if (rc < 0)
		*err = xasprintf("rtnetlink (libnl-3): cache %s: %s", name, nl_geterror(rc));
	return rc;
}

struct link_watch *link_watch_open(char **err)
{
	struct link_watch *w = xcalloc(1, sizeof(*w));
	int one = 1, rc;
	w->tfd = -1;
	w->ep = epoll_create1(EPOLL_CLOEXEC);
	if (w->ep < 0) {
		*err = xasprintf("rtnetlink: epoll: %s", strerror(errno));
		goto fail;
	}
	if ((rc = nl_cache_mngr_alloc(NULL, NETLINK_ROUTE, 0, &w->mngr)) < 0) {
		*err = xasprintf("rtnetlink (libnl-3): cache manager: %s", nl_geterror(rc));
		goto fail;
	}
	if (add_cache(w, "route/link", &w->links, err) < 0 || add_cache(w, "route/addr", &w->addrs, err) < 0 ||
	    add_cache(w, "route/route", &w->routes, err) < 0 || add_cache(w, "route/neigh", &w->neigh, err) < 0)
		goto fail;
	w->dump = nl_socket_alloc();
	w->nsev = nl_socket_alloc();
	if (!w->dump || !w->nsev || (rc = nl_connect(w->dump, NETLINK_ROUTE)) < 0 ||
	    (rc = nl_connect(w->nsev, NETLINK_ROUTE)) < 0) {
		*err = xasprintf("rtnetlink (libnl-3): socket: %s", w->dump && w->nsev ? nl_geterror(rc) : "out of memory");
		goto fail;
	}
	/* IFA_TARGET_NETNSID is read only from a strictly checked dump
	 * request (inet_valid_dump_ifaddr_req, inet6_valid_dump_ifaddr_req):
	 * without it the kernel dumps our own namespace */
	if (setsockopt(nl_socket_get_fd(w->dump), SOL_NETLINK, NETLINK_GET_STRICT_CHK, &one, sizeof(one)) < 0) {
		*err = xasprintf("rtnetlink: NETLINK_GET_STRICT_CHK (pods' addresses): %s", strerror(errno));
		goto fail;
	}
	nl_socket_disable_seq_check(w->nsev);
	if ((rc = nl_socket_add_memberships(w->nsev, RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV6_IFADDR, 0)) < 0 ||
	    (rc = nl_socket_set_nonblocking(w->nsev)) < 0) {
		*err = xasprintf("rtnetlink (libnl-3): address notifications: %s", nl_geterror(rc));
		goto fail;
	}
	if (setsockopt(nl_socket_get_fd(w->nsev), SOL_NETLINK, NETLINK_LISTEN_ALL_NSID, &one, sizeof(one)) < 0) {
		if (errno != EPERM) {
			*err = xasprintf("rtnetlink: NETLINK_LISTEN_ALL_NSID (pods' addresses): %s", strerror(errno));
			goto fail;
		}
		/* no CAP_NET_BROADCAST: poll the pods' namespaces */
		struct itimerspec it = { { 0, LINK_POLL_MS * 1000000L }, { 0, LINK_POLL_MS * 1000000L } };
		w->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
		if (w->tfd < 0 || timerfd_settime(w->tfd, 0, &it, NULL) < 0 || ep_add(w->ep, w->tfd) < 0) {
			*err = xasprintf("rtnetlink: timer: %s", strerror(errno));
			goto fail;
		}
		w->st.polling = true;
	}
	if (ep_add(w->ep, nl_cache_mngr_get_fd(w->mngr)) < 0 || ep_add(w->ep, nl_socket_get_fd(w->nsev)) < 0) {
		*err = xasprintf("rtnetlink: epoll: %s", strerror(errno));
		goto fail;
	}
	refresh(w);
	return w;
fail:
	link_watch_close(w);
	return NULL;
}

void link_watch_close(struct link_watch *w)
{
	if (!w)
		return;
	if (w->mngr)
		nl_cache_mngr_free(w->mngr); /* frees its caches */
	nl_socket_free(w->dump);
	nl_socket_free(w->nsev);
	if (w->ep >= 0)
		close(w->ep);
	if (w->tfd >= 0)
		close(w->tfd);
	free(w->dirty_ns);
	free(w->ports);
	free(w->others);
	free_names(w->node, w->nnode);
	free(w);
}

int link_watch_fd(const struct link_watch *w)
{
	return w->ep;
}

bool link_watch_dispatch(struct link_watch *w)
{
	int rc = nl_cache_mngr_data_ready(w->mngr);
	if (rc < 0) {
		/* notifications lost (ENOBUFS): read every cache again */
		struct nl_cache *all[] = { w->links, w->addrs, w->routes, w->neigh };
		for (size_t i = 0; i < ARRAY_SIZE(all); i++)
			if (nl_cache_refill(w->dump, all[i]) < 0)
				w->redump_all = true; /* tried again at the next notification */
		w->dirty = w->redump_all = true;
		w->st.resyncs++;
	}
	read_ns_events(w);
	uint64_t fired;
	if (w->tfd >= 0 && read(w->tfd, &fired, sizeof(fired)) == sizeof(fired)) {
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		bool all = ++w->ticks % LINK_POLL_ALL_TICKS == 0;
		for (size_t i = 0; i < w->nports; i++)
			if (w->ports[i].kind == LINK_BRIDGED &&
			    (all || now.tv_sec - w->ports[i].since.tv_sec < LINK_POLL_YOUNG_S))
				mark_ns(w, w->ports[i].netnsid);
	}
	if (!w->dirty && !w->ndirty_ns && !w->redump_all)
		return false;
	return refresh(w);
}

const struct link_port *link_watch_ports(const struct link_watch *w, size_t *n)
{
	*n = w->nports;
	return w->ports;
}

const struct link_other *link_watch_bridge_others(const struct link_watch *w, size_t *n)
{
	*n = w->nothers;
	return w->others;
}

const char *const *link_watch_node_ifaces(const struct link_watch *w, size_t *n)
{
	*n = w->nnode;
	return (const char *const *)w->node;
}

void link_watch_stats(const struct link_watch *w, struct link_stats *st)
{
	*st = w->st;
	st->links = (size_t)nl_cache_nitems(w->links);
	st->addrs = (size_t)nl_cache_nitems(w->addrs);
	st->routes = (size_t)nl_cache_nitems(w->routes);
	st->neighbours = (size_t)nl_cache_nitems(w->neigh);
}

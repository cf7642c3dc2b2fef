/* rtnetlink with libnl-3: the node's links, addresses, routes and
 * neighbours, kept in caches that change callbacks keep current, and the
 * local pods' interfaces and addresses learned from them.
 *
 * A pod interface is the host side of a veth whose peer lives in another
 * network namespace (IFLA_LINK_NETNSID). Its addresses:
 *   - routed CNI: every /32 and /128 route of the node that points at it
 *     (the node's own routing decides where such an address goes);
 *   - bridged CNI (the veth is a bridge port): the addresses configured on
 *     its peer interface inside the pod's namespace, read with an
 *     RTM_GETADDR dump aimed at that namespace (IFA_TARGET_NETNSID, Linux
 *     4.20) and read again whenever an address changes there (a second
 *     socket with NETLINK_LISTEN_ALL_NSID hears every namespace that has
 *     an id here, and says which; without CAP_NET_BROADCAST, on a 100 ms
 *     timer while the port is young and every 2 s after). Neighbour entries and the bridge's
 *     forwarding database are never used for this: a pod writes them with
 *     its own ARP and frames.
 * Nothing but this file and route.c talks rtnetlink. */
#ifndef CORRAL_NL_LINK_H
#define CORRAL_NL_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define LINK_PORT_ADDRS 16 /* addresses kept per pod interface (more: the rest are not bound) */

struct link_addr {
	uint8_t family; /* 4 or 6 */
	uint8_t a[16];  /* network order; IPv4 in the first 4 bytes */
};

enum link_kind {
	LINK_ROUTED,  /* a veth to a pod with no bridge: addresses from the node's routes */
	LINK_BRIDGED, /* a veth to a pod, port of a bridge: addresses from the pod's namespace */
};

struct link_port {
	int ifindex;
	char name[16];      /* IFNAMSIZ */
	enum link_kind kind;
	char bridge[16];    /* LINK_BRIDGED: the bridge's name */
	int32_t netnsid;    /* the peer's namespace, as this namespace names it */
	int peer_ifindex;   /* the peer interface, in that namespace */
	bool known;         /* LINK_BRIDGED: the pod's addresses were read at least once */
	size_t naddr;
	struct link_addr addr[LINK_PORT_ADDRS]; /* sorted: family, then bytes */
	bool truncated;     /* it had more than LINK_PORT_ADDRS */
	struct timespec since; /* CLOCK_MONOTONIC: when the interface was first seen */
};

/* A port of a bridge that is not a pod's interface: an uplink, a tunnel,
 * a veth whose peer is in the node's own namespace. */
struct link_other {
	char name[16];
	char bridge[16];
};

struct link_stats {
	size_t links, addrs, routes, neighbours; /* entries of the caches */
	size_t routed, bridged;                  /* pod interfaces */
	uint64_t changes;                        /* cache change callbacks */
	uint64_t pod_dumps;                      /* address dumps of pod namespaces */
	uint64_t resyncs;                        /* lost notifications, caches read again */
	bool polling;  /* no CAP_NET_BROADCAST: pods' namespaces read on a timer, not on notification */
};

struct link_watch;

/* Opens the caches (a cache manager on its own socket), the socket that
 * hears the pods' namespaces and the one that dumps them, in the calling
 * thread's network namespace, and reads everything once. NULL with *err. */
struct link_watch *link_watch_open(char **err);
void link_watch_close(struct link_watch *w);

/* One descriptor for the event loop (an epoll set of the sockets). */
int link_watch_fd(const struct link_watch *w);

/* Reads what is pending and brings the pod interfaces up to date: true
 * when they changed (interfaces or their addresses), or the node's own
 * interfaces (link_watch_node_ifaces) did. Never blocks on the
 * notification sockets (the dumps of pod namespaces it triggers do). */
bool link_watch_dispatch(struct link_watch *w);

/* The pod interfaces, sorted by name; valid until the next dispatch. */
const struct link_port *link_watch_ports(const struct link_watch *w, size_t *n);
/* The ports of bridges that are no pod's, sorted by name; valid until the
 * next dispatch. Every port of a bridge is either here or a LINK_BRIDGED
 * pod interface: the bridge table treats a port in neither (one the
 * watch has not heard of yet) as a pod's that has no address yet. */
const struct link_other *link_watch_bridge_others(const struct link_watch *w, size_t *n);
void link_watch_stats(const struct link_watch *w, struct link_stats *st);
/* The node's own interfaces: the names of every link that is not a pod
 * interface (lo, uplinks, bridges, tunnels, kube-ipvs0, ...), sorted;
 * valid until the next dispatch. */
const char *const *link_watch_node_ifaces(const struct link_watch *w, size_t *n);

#endif

/* The one place that talks rtnetlink (libmnl): the node's own addresses. */
#ifndef CORRAL_NL_ROUTE_H
#define CORRAL_NL_ROUTE_H

#include <stddef.h>
#include <stdint.h>

struct route_sock;

/* A NETLINK_ROUTE socket in the caller's network namespace. NULL + errno. */
struct route_sock *route_sock_open(void);
void route_sock_close(struct route_sock *s);

struct route_addr {
	uint8_t family; /* 4 or 6 */
	uint8_t a[16];  /* network order; IPv4 in the first 4 bytes */
};

/* Every address assigned to an interface of the namespace (the node's
 * own: traffic to or from them takes the input and output paths, never
 * forward). *out is malloc'd. 0 or a negative errno. */
int route_addrs_local(struct route_sock *s, struct route_addr **out, size_t *n);

#endif

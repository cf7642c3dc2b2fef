/* The one place that talks ctnetlink (libmnl): the conntrack table of the
 * agent's network namespace, read and pruned. */
#ifndef CORRAL_NL_CONNTRACK_H
#define CORRAL_NL_CONNTRACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ct_sock;

/* A NETLINK_NETFILTER socket in the caller's network namespace. NULL +
 * errno. */
struct ct_sock *ct_sock_open(void);
void ct_sock_close(struct ct_sock *s);

/* One tracked flow, as the forward hook saw its first packet: the source
 * of the original direction, and the destination after DNAT (the reply
 * direction's source), with that destination's port. Addresses are in
 * network order, 4 or 16 bytes. */
struct ct_flow {
	uint8_t family; /* 4 or 6 */
	uint8_t proto;  /* IPPROTO_* */
	uint8_t src[16], dst[16];
	uint16_t sport, dport; /* 0 for protocols without ports */
};

struct ct_prune_stats {
	size_t tracked; /* entries read */
	size_t deleted; /* entries the callback chose and the kernel deleted */
	size_t gone;    /* chosen, but ended before they could be deleted */
	double dump_ms, delete_ms;
};

/* Reads every entry of both families, asks doomed() of each, then
 * deletes the chosen ones (each exactly that entry: by its original
 * tuple, zone and id, so a new flow with the same addresses is left).
 * 0 or a negative errno (then some chosen entries may remain). */
int ct_prune(struct ct_sock *s, bool (*doomed)(const struct ct_flow *f, void *arg), void *arg,
	     struct ct_prune_stats *st);

#endif

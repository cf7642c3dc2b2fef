/* The one place that talks ctnetlink (libmnl): the conntrack table of the
 * agent's network namespace, read, and the entries of revoked flows
 * marked. */
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
	bool revoked;          /* its entry carries the mark's bits (ct_revoke) */
};

struct ct_revoke_stats {
	size_t tracked;       /* entries read */
	size_t marked_before; /* of them, marked already */
	size_t revoked;       /* entries the callback chose and the kernel marked (TCP not ESTABLISHED: deleted) */
	size_t restored;      /* marked entries the callback no longer chose: cleared */
	size_t gone;          /* chosen, but ended before they could be marked */
	double dump_ms, mark_ms;
};

/* Reads every entry of both families, asks doomed() of each (f->revoked
 * tells whether it carries the mark already), deletes the chosen TCP
 * ones that are not ESTABLISHED, then sets mark's bits on the other chosen
 * ones not marked yet (by reply tuple and zone), with 120 s to live and an
 * ESTABLISHED TCP entry in TIME_WAIT, and clears them on the marked ones
 * not chosen (a change allowed them again: a TCP entry in TIME_WAIT back
 * in ESTABLISHED). The entry
 * is kept rather than deleted: deleted, the next packet of the flow would
 * start a new entry, and one from the responder would start it reversed,
 * as a flow the policies may well allow; kept and marked, the ruleset
 * drops its packets both ways (dataplane.h DP_REVOKED_MARK) while the
 * entry lives, and a TCP segment that would start a flow in mid-stream
 * after that (DP_UNTRACKED_CHAIN). 0 or a negative errno (then some chosen entries may remain
 * unmarked). */
int ct_revoke(struct ct_sock *s, uint32_t mark, bool (*doomed)(const struct ct_flow *f, void *arg), void *arg,
	      struct ct_revoke_stats *st);

#endif

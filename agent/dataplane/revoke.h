/* Revocation: after a transaction that may have removed an allow, the
 * conntrack entries of flows the new ruleset would no longer admit are
 * marked (conntrack.h ct_revoke), and the ruleset drops every packet of a
 * marked entry, both ways. They are not deleted: the next packet would
 * then start a new entry, and when the responder sent it (an echo, an
 * ACK, a server push) the flow came back reversed, from the responder, as
 * a flow the policies allow (seen 2026-11-30: agent.e2e failed in CI on
 * it, and conntrack showed the revoked flows reversed and established).
 *
 * "Would the new ruleset admit it" is asked of the engine's evaluator
 * (policy/eval.c, which explain uses and which walks the IR the renderer
 * turned into the table): for a flow that crosses this node's forward hook
 * and touches a pod of this node, egress at the source if the source is
 * a local pod, ingress at the destination if the destination is one; the
 * other node enforces (and revokes) the other side. Flows to or from the
 * node's own addresses take the input and output paths, which the table
 * never filters, and are left alone. */
#ifndef CORRAL_REVOKE_H
#define CORRAL_REVOKE_H

#include "agent/nl/conntrack.h"
#include "agent/nl/route.h"
#include "policy/eval.h"

/* One revoked flow, as the forward hook saw it. */
struct revoked {
	ip128 src, dst;
	uint8_t proto;
	uint16_t dport;
	enum dir dir;                 /* the side that no longer admits it */
	const struct ir_group *group; /* that side's group (NULL: quarantined) */
};

struct revoke_stats {
	size_t tracked;    /* conntrack entries read */
	size_t considered; /* of them, forwarded flows touching a local pod */
	size_t marked_before; /* revoked by an earlier pass (judged again) */
	size_t restored;   /* of those, allowed again: the mark cleared */
	size_t kept;       /* of those, judged and still not allowed (the others: not this node's to judge) */
	size_t revoked;    /* marked */
	size_t gone;       /* chosen, but ended before they could be marked */
	double ms, dump_ms, mark_ms;
};

/* each (may be NULL) sees every flow chosen, while the engine's state it
 * points into is valid; mark: the ruleset's (dp_config revoked_mark). 0
 * or a negative errno. */
int revoke_flows(const struct engine *e, struct ct_sock *ct, struct route_sock *rt, uint32_t mark,
		 void (*each)(const struct revoked *r, void *arg), void *arg, struct revoke_stats *st);

/* Whether the transaction described by st may have removed an allow. */
struct dp_stats;
bool revoke_needed(const struct dp_stats *st);

#endif

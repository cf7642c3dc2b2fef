/* The evaluator behind explain and matrix: it walks the same IR the
 * renderer turns into nftables, in the order the kernel does. */
#ifndef CORRAL_EVAL_H
#define CORRAL_EVAL_H

#include "engine.h"

struct endpoint {
	struct pod *pod; /* NULL: an address outside the cluster's pods */
	ip128 addr;
};

struct rule_check {
	const struct ir_rule *rule;
	bool peer_ok, port_ok;
};

/* One side: egress at the source, ingress at the destination. */
struct dir_verdict {
	bool enforced;  /* the side is an active pod: some node enforces it */
	bool quarantined; /* the side's address is claimed by several live pods:
			     dropped, whatever the policies say (engine.h) */
	bool remote;    /* ... another node's agent (its group is computed here) */
	struct ir_group *own; /* the computed group of a remote pod */
	const struct ir_group *group; /* NULL: not isolated in this direction */
	bool allowed;
	const struct ir_rule *by; /* the first rule that allowed it */
	uint32_t nchecks;
	struct rule_check *checks;
};

struct verdict {
	bool allowed;
	bool loopback; /* a pod to itself never crosses the forward hook */
	struct dir_verdict side[DIR_COUNT]; /* [DIR_EGRESS] src, [DIR_INGRESS] dst */
};

/* proto is PROTO_TCP/UDP/SCTP, port 1..65535. */
void policy_eval(const struct engine *e, const struct endpoint *src, const struct endpoint *dst, int proto,
		 int port, struct verdict *v);
/* The same for a flow already established: a host rule also admits an
 * address learned for its name that expired since (ir_peerset_had), as
 * the kernel keeps such a flow (conntrack) after the element times out;
 * revocation judges with this. */
void policy_eval_established(const struct engine *e, const struct endpoint *src, const struct endpoint *dst,
			     int proto, int port, struct verdict *v);
void verdict_free(struct verdict *v);

/* Whether one rule admits traffic to dst (pod or NULL) on proto/port. */
bool ir_rule_ports_ok(const struct ir_rule *r, const struct pod *dst, int proto, int port);

#endif

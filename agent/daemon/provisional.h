/* Provisional verdicts (issue 14): a new pod's address exists on the node
 * (the CNI made its interface, address and route) before the API says
 * which pod has it. From the node's pod interfaces (agent/nl/link.c) the
 * agent knows the address at once; the pods scheduled to this node that
 * have no address yet are the candidates, and the address gets a verdict
 * that is never looser than its true one:
 *
 *   - every candidate alike (same namespace, labels and container ports:
 *     every selector and named port treats them the same, as the replicas
 *     of one workload): the address is given to one of them (a "twin" of
 *     its spec with the address, in the engine): its groups, its peer
 *     sets on this node, its named ports, exactly what the API will say;
 *   - candidates that differ but would each get the same verdicts here
 *     (engine_pods_equivalent: the same policies isolating them, the
 *     same peer sets, the same ports): a twin of the first, as above;
 *   - candidates of several kinds otherwise: the intersection of their
 *     verdicts. The twin of one of them (a name to hold the address
 *     under) that also meets every candidate (engine_pod_upsert_meet): in
 *     each direction the flow must pass the group of each kind isolated
 *     there (a meet group; allowed both ways if none is), it is in a peer
 *     set of this node only if every candidate would be, and a named port
 *     counts only where every candidate names it alike;
 *   - no candidate (an address no pending pod explains: host-network
 *     tricks, a stale interface): deny-all both ways by default
 *     (denyUnexplainedAddresses: true), nothing with false.
 *
 * Only this node's pods own a local address: one a pod of another node
 * holds (moved, terminating) is unexplained here.
 *
 * Fresh enough (api, --source kube): the pod watch may be behind, and a
 * new pod it has not brought is no candidate: its address would get a
 * known candidate's verdicts, looser than its own. So an address is
 * denied both ways until a read of this node's pods (prov_node_pods,
 * kube_client_node_pods: a consistent LIST) asked for after both the
 * interface and the entry were first seen; its owner was bound here
 * before the CNI made the interface, so the read has it. The candidates
 * are the read's waiting pods, each of which must be in the engine as a
 * candidate alike to the read's version; a waiting pod the engine lacks
 * or has otherwise, or a pod of the read holding the address, denies. The
 * folder source (!api) has no watch to lag behind: the engine's waiting
 * pods of this node (engine_node_pods, an index) are the candidates.
 *
 * When the API reports the address, the twin gives way to the pod's own
 * spec in the engine, or the deny entry to the pod's verdicts, before the
 * next transaction: one transaction replaces the provisional entry by the
 * real one (no gap, no packet judged by neither). */
#ifndef CORRAL_PROVISIONAL_H
#define CORRAL_PROVISIONAL_H

#include <jansson.h>
#include <stdbool.h>
#include <time.h>

#include "agent/nl/link.h"
#include "policy/engine.h"

struct prov;

/* api: the pods come from the API (a watch that may be behind), and a
 * twin needs a read of this node's pods newer than the address. */
struct prov *prov_new(bool api);
/* Gives back every twin's pod its own spec (the engine keeps working). */
void prov_free(struct prov *pv, struct engine *e);

/* Brings the provisional entries up to date with the node's pod
 * interfaces and the engine's pods: twins made or undone in the engine,
 * and *denied (malloc'd, *ndenied) the addresses to deny both ways. */
void prov_reconcile(struct prov *pv, struct engine *e, const struct link_port *ports, size_t nports,
		    bool deny_unexplained, ip128 **denied, size_t *ndenied);

/* Whether the last prov_reconcile wants a read of this node's pods newer
 * than what prov_node_pods() gave (kube_client_node_pods()). */
bool prov_wants_read(const struct prov *pv);
/* What such a read answered; asked: when it was asked for
 * (CLOCK_MONOTONIC). Takes ownership of pods and of the array. */
void prov_node_pods(struct prov *pv, const struct timespec *asked, struct pod_spec **pods, size_t n);

struct prov_stats {
	size_t entries;             /* addresses provisional now */
	uint64_t resolved;          /* entries the API has since explained */
	double resolved_seconds;    /* the time they were provisional, summed */
};
void prov_stats(const struct prov *pv, struct prov_stats *st);

/* Why address a is provisional ("twin of x/new: the only kind of pod
 * waiting for an address on this node"), or NULL when it is not. */
const char *prov_why(const struct prov *pv, ip128 a);

/* Status: the entries as JSON, and one text line each. */
json_t *prov_status(const struct prov *pv, struct sbuf *text);

#endif

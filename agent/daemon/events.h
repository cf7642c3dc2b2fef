/* Drops as Kubernetes Events on the pod whose policy dropped them, so that
 * `kubectl describe pod` and `kubectl get events` show them (reason
 * PolicyDrop). The same flow (peer, protocol, port) dropped again raises
 * the count of its Event; writes to the API are rate-limited per pod and
 * set of policies (and per node), and a writer thread makes them: the
 * event loop never waits for the API server. */
#ifndef CORRAL_AGENT_EVENTS_H
#define CORRAL_AGENT_EVENTS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "kube/kubeconfig.h"
#include "policy/model.h"

/* One dropped packet, as the NFLOG listener named it. */
struct drop_event {
	const char *ns, *pod;    /* the pod whose policies dropped it (its own direction) */
	enum dir dir;            /* ingress: pod is the destination; egress: the source */
	const char *peer;        /* "ns/pod (ip)" or an address */
	const char *src, *dst;   /* as agentctl explain takes them */
	uint8_t proto;
	uint16_t port;
	const char *policies;    /* "AccessPolicy x/p, NetworkPolicy x/q" */
};

struct drop_events_opts {
	const char *node;    /* source.host of the Events */
	uint32_t per_minute; /* writes per pod and set of policies, a minute (also the burst) */
};

struct drop_events;

/* Copies what it needs of auth. */
struct drop_events *drop_events_new(const struct kube_auth *auth, const struct drop_events_opts *o);
/* Stops the writer (waits for a write in progress) and frees. NULL ok. */
void drop_events_free(struct drop_events *x);
/* Counts a drop; never blocks on the API. */
void drop_events_record(struct drop_events *x, const struct drop_event *d);
void drop_events_set_rate(struct drop_events *x, uint32_t per_minute);
/* {"written", "failed", "refused", "pending", "last_error"} */
json_t *drop_events_status(struct drop_events *x);

#endif

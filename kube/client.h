/* The Kubernetes API client: for Pods, Namespaces, NetworkPolicies and
 * AccessPolicies, cluster-wide, a paginated LIST then a WATCH from its
 * resourceVersion (bookmarks, resume, relist on 410 with deletes for what
 * vanished), all on one curl multi loop, with back-off and token reload.
 * Objects are decoded into the policy model and kept in informer caches;
 * handlers see every change with the old and the new object. */
#ifndef CORRAL_KUBE_CLIENT_H
#define CORRAL_KUBE_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kube/decode.h"
#include "kube/kubeconfig.h"
#include "policy/model.h"

/* KRES_APISERVER: the EndpointSlices of the Service default/kubernetes
 * (the kube-apiserver entity), decoded as node_specs with apiserver set. */
enum kube_res { KRES_NAMESPACES, KRES_PODS, KRES_NETPOLS, KRES_ACCESS, KRES_NODES, KRES_APISERVER, KRES_COUNT };
const char *kube_res_name(enum kube_res r);
const char *kube_res_path(enum kube_res r); /* "/api/v1/pods", cluster-wide */
/* The query a list or watch of r starts with (a label selector), or NULL. */
const char *kube_res_query(enum kube_res r);
/* Decodes an object listed or watched from r as that resource: typed
 * lists carry no kind and apiVersion on their items, so both are set on o
 * from r first, never guessed. As kube_decode otherwise. */
int kube_decode_listed(enum kube_res r, json_t *o, const struct decode_opts *opts, struct diags *d,
		       struct decoded *out);

struct kube_handlers {
	/* old/new: struct ns_spec*, pod_spec*, policy_spec* or node_spec* (NULL when
	 * absent: old NULL = added, new NULL = deleted). Both stay owned by
	 * the cache; to keep new, take a reference (kube_obj_ref). */
	void (*changed)(void *arg, enum kube_res r, const void *old, void *new);
	/* every resource has its initial list in */
	void (*synced)(void *arg);
	/* something went wrong and is being recovered from (for logs) */
	void (*trouble)(void *arg, enum kube_res r, const char *what);
	/* an object the API server holds could not be read as written; it is
	 * enforced fail-closed (what names object, field and reason) */
	void (*unreadable)(void *arg, enum kube_res r, const char *what);
	void *arg;
};

struct kube_client_opts {
	double backoff_base, backoff_cap; /* seconds: 0.8, 30 */
	double healthy_after;             /* a watch this long resets the back-off: 30 */
	unsigned watch_timeout;           /* timeoutSeconds asked of the server: 300 */
	unsigned idle_timeout;            /* no byte for this long ends a watch: watch_timeout x 1.25 + 30 */
	unsigned page_limit;              /* LIST page size: 500 */
	unsigned token_reload;            /* re-read a token file this often: 60 */
	bool initial_events;              /* try sendInitialEvents (falls back to LIST) */
	const char *app_label;            /* decoding: the application label keys; copied */
	bool jansson_only;                /* pods decoded with jansson only, never scanned
					     (kube/podscan.h): the reference, for benchmarks */
};

struct kube_stats {
	uint64_t lists, relists, watches, watch_restarts, events, errors, unauthorized;
	uint64_t rejected; /* objects that could not even be identified (no name or namespace) */
	/* CLOCK_MONOTONIC seconds: when the loop last woke with data to read,
	 * and when watch bytes last came in: where a change's latency starts */
	double woke_s, read_s;
};

struct kube_client;

/* Takes ownership of auth. */
struct kube_client *kube_client_new(struct kube_auth *auth, const struct kube_client_opts *o,
				    const struct kube_handlers *h);
void kube_client_free(struct kube_client *c);
/* Runs the loop once: waits up to max_ms for the API, or for extra_fd
 * (-1: none) to become readable, then handles what arrived and starts
 * what is due. */
void kube_client_step(struct kube_client *c, int extra_fd, int max_ms);
bool kube_client_synced(const struct kube_client *c);
const struct kube_stats *kube_client_stats(const struct kube_client *c);
size_t kube_client_count(const struct kube_client *c, enum kube_res r);
/* Watch events that changed an object of r (added, modified, deleted), since the start. */
uint64_t kube_client_changes(const struct kube_client *c, enum kube_res r);
/* The cache's object for ns/name (ns NULL for namespaces), or NULL. */
const void *kube_client_get(const struct kube_client *c, enum kube_res r, const char *ns, const char *name);
/* The last error of a resource (NULL if healthy): TLS, HTTP, decoding. */
const char *kube_client_error(const struct kube_client *c, enum kube_res r);

/* Takes one more reference on a cached object (for the engine). */
void kube_obj_ref(enum kube_res r, void *obj);

/* A consistent read of the pods bound to node (a LIST with fieldSelector
 * spec.nodeName and no resourceVersion: the API server answers with what
 * is stored now, never from a cache that may be behind), apart from the
 * watches, on the same loop. cb gets the pods decoded, and owns each spec
 * and the array; or rc < 0, no pods and what went wrong (a body past
 * LIST_PAGE_MAX is refused: -EFBIG). One at a time: -EBUSY while a read is
 * in flight. */
typedef void (*kube_node_pods_cb)(void *arg, int rc, struct pod_spec **pods, size_t n, const char *err);
int kube_client_node_pods(struct kube_client *c, const char *node, kube_node_pods_cb cb, void *arg);

/* Test and benchmark hook: feeds bytes as if they came from r's watch. */
int kube_client_feed(struct kube_client *c, enum kube_res r, const char *data, size_t len);

#endif

/* The cluster read once: every Namespace, Pod, NetworkPolicy and
 * AccessPolicy, listed page by page (LIST with limit and continue, no
 * watch) and decoded as the agent decodes what it lists (DECODE_API: an
 * object that cannot be read is enforced fail-closed, never dropped). For
 * agentctl's live-cluster mode. */
#ifndef CORRAL_KUBE_LIST_H
#define CORRAL_KUBE_LIST_H

#include "kube/client.h"
#include "kube/manifest.h"

struct kube_list_opts {
	const char *app_label; /* the application label keys, a comma list (APP_LABELS_DEFAULT) */
	unsigned page_limit;   /* 500 */
	long timeout_s;        /* each request: 60 */
};

/* Every object into out (set->objects counts them, problems go to
 * out->diags). 0, or -1 with *err (to free) naming the resource and what
 * went wrong (credentials, certificates, RBAC, the server). A cluster
 * without the AccessPolicy CRD simply has none: *warn (to free) says so. */
int kube_list_all(const struct kube_auth *a, const struct kube_list_opts *o, struct manifest_set *out, char **warn,
		  char **err);

/* One LIST page of resource r: its items decoded into out, *cont (to
 * free) the continue token, NULL on the last page. 0, or -EINVAL with
 * *err (to free) when the body is not a List. The fuzz target's entry. */
int kube_list_page(enum kube_res r, const char *body, size_t len, const struct decode_opts *o,
		   struct manifest_set *out, char **cont, char **err);

#endif

/* One read of the cluster (see list.h). The list/watch client (client.c)
 * keeps caches up to date for ever; agentctl needs the objects once, so
 * this lists each resource to its end and stops: no watch, no back-off,
 * and an error that names its cause at once instead of a retry. */
#define _GNU_SOURCE
#include "kube/list.h"
#include "kube/yaml.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "kube/http.h"
#include "kube/podscan.h"

static void take(struct manifest_set *out, const struct decoded *d)
{
	if (d->type == OBJ_NAMESPACE)
		vec_push(&out->nss, d->ns);
	else if (d->type == OBJ_POD)
		vec_push(&out->pods, d->pod);
	else if (d->type == OBJ_POLICY)
		vec_push(&out->policies, d->pol);
	else if (d->type == OBJ_NODE)
		vec_push(&out->nodes, d->node);
	else
		return;
	out->objects++;
}

struct page_ctx {
	enum kube_res r;
	const struct decode_opts *o;
	struct manifest_set *out;
	json_t *list;
	size_t i;
};

static void page_item(json_t *x, void *arg)
{
	struct page_ctx *p = arg;
	struct decoded d;
	size_t i = p->i++;
	if (!json_is_object(x)) {
		diags_add(&p->out->diags, false, "api", NULL, NULL, NULL, "list %s: item %zu is not an object",
			  kube_res_name(p->r), i);
		return;
	}
	if (kube_decode_listed(p->r, x, p->o, &p->out->diags, &d) == 0)
		take(p->out, &d);
}

/* A pod read from its text when the scan is sure of it (kube/podscan.h),
 * as page_item would have decoded it. */
static size_t page_raw(const char *b, size_t n, void *arg)
{
	struct page_ctx *p = arg;
	struct pod_scan s;
	size_t used = kube_pod_scan_prefix(b, n, p->o, &s);
	if (used) {
		p->i++;
		free(s.rv);
		take(p->out, &(struct decoded){ .type = OBJ_POD, .pod = s.pod });
	}
	return used;
}

static void page_list(json_t *list, void *arg)
{
	struct page_ctx *p = arg;
	json_decref(p->list);
	p->list = json_incref(list);
}

/* Items one by one, as the agent reads them (kube/client.c): a NUL in a
 * string is accepted by the parser and refused by the decoder in a field
 * it reads, so one object cannot make the whole List unreadable. */
int kube_list_page(enum kube_res r, const char *body, size_t len, const struct decode_opts *o,
		   struct manifest_set *out, char **cont, char **err)
{
	struct page_ctx p = { r, o, out, NULL, 0 };
	char *perr = NULL;
	int rc = kube_json_list_each_raw(body, len, JSON_ALLOW_NUL, r == KRES_PODS ? page_raw : NULL, page_item, page_list,
					 &p, &perr);
	json_t *items = json_object_get(p.list, "items"), *md = json_object_get(p.list, "metadata");
	*cont = NULL;
	if (rc < 0 || !json_is_array(items) || !json_is_object(md)) {
		*err = rc < 0 ? xasprintf("list %s: malformed JSON: %s", kube_res_name(r), perr)
			      : xasprintf("list %s: the answer is not a List (no items or metadata)", kube_res_name(r));
		free(perr);
		json_decref(p.list);
		return -EINVAL;
	}
	const char *c = json_string_value(json_object_get(md, "continue"));
	if (c && *c) /* only a non-empty continue means more */
		*cont = xstrdup(c);
	json_decref(p.list);
	return 0;
}

static void set_clear(struct manifest_set *s)
{
	manifest_set_free(s);
	memset(s, 0, sizeof(*s));
}

static void set_move(struct manifest_set *to, struct manifest_set *from)
{
	for (size_t i = 0; i < from->nss.n; i++)
		vec_push(&to->nss, from->nss.v[i]);
	for (size_t i = 0; i < from->pods.n; i++)
		vec_push(&to->pods, from->pods.v[i]);
	for (size_t i = 0; i < from->policies.n; i++)
		vec_push(&to->policies, from->policies.v[i]);
	for (size_t i = 0; i < from->nodes.n; i++) /* Nodes, and the API server's EndpointSlices */
		vec_push(&to->nodes, from->nodes.v[i]);
	for (size_t i = 0; i < from->diags.v.n; i++)
		vec_push(&to->diags.v, from->diags.v.v[i]);
	to->diags.errors += from->diags.errors;
	to->diags.warnings += from->diags.warnings;
	to->objects += from->objects;
	from->nss.n = from->pods.n = from->policies.n = from->nodes.n = from->diags.v.n = 0;
	set_clear(from);
}

/* Every page of one resource into out; an expired continue token (410)
 * starts the list over, as the reflector does. */
static int list_one(struct kube_http *h, enum kube_res r, const struct decode_opts *d, unsigned limit,
		    struct manifest_set *out, bool *absent, char **err)
{
	struct manifest_set got = { 0 };
	struct sbuf resp = { 0 };
	char *cont = NULL, *what = xasprintf("list %s", kube_res_name(r));
	int restarts = 0, rc = -1;
	for (;;) {
		char *path, *herr = NULL;
		if (cont) {
			char *ct = curl_easy_escape(NULL, cont, 0);
			path = xasprintf("%s?%s%slimit=%u&continue=%s", kube_res_path(r), kube_res_query(r) ? kube_res_query(r) : "",
					 kube_res_query(r) ? "&" : "", limit, ct);
			curl_free(ct);
		} else {
			path = xasprintf("%s?%s%slimit=%u", kube_res_path(r), kube_res_query(r) ? kube_res_query(r) : "",
					 kube_res_query(r) ? "&" : "", limit);
		}
		long status = kube_http_do(h, "GET", path, NULL, NULL, &resp, &herr);
		free(path);
		if (status == 410 && cont && restarts++ < 3) {
			free(cont);
			cont = NULL;
			set_clear(&got);
			continue;
		}
		if (((status == 404 && r == KRES_ACCESS) ||
		     ((status == 403 || status == 404) && (r == KRES_NODES || r == KRES_APISERVER))) &&
		    !cont) { /* the CRD is not installed; nodes and endpoints may not be readable to this user */
			*absent = true;
			rc = 0;
			break;
		}
		if (status != 200) {
			*err = kube_http_explain(h, what, status, &resp, herr);
			free(herr);
			break;
		}
		free(cont);
		if (kube_list_page(r, resp.s, resp.n, d, &got, &cont, err) < 0)
			break;
		if (!cont) {
			set_move(out, &got);
			rc = 0;
			break;
		}
	}
	free(cont);
	free(what);
	sbuf_free(&resp);
	set_clear(&got);
	return rc;
}

int kube_list_all(const struct kube_auth *a, const struct kube_list_opts *o, struct manifest_set *out, char **warn,
		  char **err)
{
	struct decode_opts d = { DECODE_API, false, o && o->app_label ? o->app_label : APP_LABELS_DEFAULT, "default" };
	struct kube_http *h = kube_http_new(a, o && o->timeout_s ? o->timeout_s : 60);
	unsigned limit = o && o->page_limit ? o->page_limit : 500;
	bool absent[KRES_COUNT] = { false };
	int rc = 0;
	*warn = NULL;
	for (int r = 0; r < KRES_COUNT && rc == 0; r++)
		rc = list_one(h, (enum kube_res)r, &d, limit, out, &absent[r], err);
	if (rc == 0 && absent[KRES_ACCESS])
		*warn = xasprintf("the AccessPolicy CRD (accesspolicies.corral.dev) is not installed in the cluster at "
				  "%s: no AccessPolicies read", a->server);
	else if (rc == 0 && absent[KRES_NODES])
		*warn = xasprintf("the nodes of the cluster at %s cannot be listed (forbidden): the nodes and world "
				  "entities are empty here", a->server);
	else if (rc == 0 && absent[KRES_APISERVER])
		*warn = xasprintf("the endpoints of the Service default/kubernetes at %s cannot be listed (forbidden): "
				  "the kube-apiserver entity holds only --apiserver-addresses here", a->server);
	kube_http_free(h);
	return rc;
}

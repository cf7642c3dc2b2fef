/* List/watch reflectors on one curl multi handle (see client.h).
 *
 * Per resource, a small state machine:
 *   LIST page by page (limit/continue; an expired continue restarts it),
 *     then deletes for cached objects the list did not return;
 *   WATCH from the list's resourceVersion (allowWatchBookmarks), resuming
 *     from the last version seen; the body is parsed as a byte stream;
 *   410 (HTTP status or ERROR event) -> LIST again;
 *   anything else going wrong -> back off (0.8 s doubling to 30 s, with
 *     jitter, at least Retry-After) and WATCH again; a healthy watch resets
 *     the back-off; a watch that ends in under a second with no event
 *     counts as a failure (no spinning).
 * Facts from the Kubernetes "API Concepts" reference and client-go's
 * reflector (brief: kube-api.md). */
#define _GNU_SOURCE
#include "kube/client.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kube/decode.h"
#include "kube/podscan.h"
#include "kube/http.h"
#include "kube/stream.h"
#include "kube/yaml.h"

/* Every object is read as the resource it was listed or watched from:
 * typed lists (PodList, NetworkPolicyList, ...) carry no kind and no
 * apiVersion on their items, so both come from this table, never from a
 * guess (recorded answers of a real server: tests/kube/real-shapes/). */
static const struct {
	const char *name, *path, *kind, *api_version, *query;
} resources[KRES_COUNT] = {
	[KRES_NAMESPACES] = { "namespaces", "/api/v1/namespaces", "Namespace", "v1", NULL },
	[KRES_PODS] = { "pods", "/api/v1/pods", "Pod", "v1", NULL },
	[KRES_NETPOLS] = { "networkpolicies", "/apis/networking.k8s.io/v1/networkpolicies", "NetworkPolicy",
			   "networking.k8s.io/v1", NULL },
	[KRES_ACCESS] = { "accesspolicies", "/apis/corral.dev/v1/accesspolicies", "AccessPolicy", "corral.dev/v1", NULL },
	[KRES_NODES] = { "nodes", "/api/v1/nodes", "Node", "v1", NULL },
	[KRES_APISERVER] = { "endpointslices", "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices",
			     "EndpointSlice", "discovery.k8s.io/v1", "labelSelector=kubernetes.io%2Fservice-name%3Dkubernetes" },
};

const char *kube_res_query(enum kube_res r)
{
	return resources[r].query;
}

const char *kube_res_name(enum kube_res r)
{
	return resources[r].name;
}

const char *kube_res_path(enum kube_res r)
{
	return resources[r].path;
}

int kube_decode_listed(enum kube_res r, json_t *o, const struct decode_opts *opts, struct diags *d,
		       struct decoded *out)
{
	json_object_set_new(o, "kind", json_string(resources[r].kind));
	json_object_set_new(o, "apiVersion", json_string(resources[r].api_version));
	return kube_decode(o, "api", opts, d, out);
}

/* One allocation per cached object, 24 bytes (32 with malloc's header):
 * 150,000 pods make every byte count. Its key is the decoded object's own
 * namespace and name. */
struct centry {
	void *obj;
	union {
		uint64_t n; /* resourceVersion when it is a number (etcd's are) */
		char *s;    /* otherwise the opaque string */
	} rv;
	uint32_t mark; /* relist generation that saw it (its low bits) */
	bool rv_str;
};

/* ns is "" for a Namespace (cluster-scoped). */
struct ckey {
	enum kube_res res;
	const char *ns, *name;
};

static bool rv_numeric(const char *rv, uint64_t *n)
{
	char *end;
	if (!rv || !*rv || *rv == '0' || strlen(rv) > 19)
		return false;
	errno = 0;
	unsigned long long v = strtoull(rv, &end, 10);
	*n = v;
	return !*end && !errno;
}

static bool rv_same(const struct centry *e, const char *rv)
{
	uint64_t n;
	if (!rv)
		return false;
	if (rv_numeric(rv, &n))
		return !e->rv_str && e->rv.n == n;
	return e->rv_str && !strcmp(e->rv.s, rv);
}

static void rv_store(struct centry *e, const char *rv)
{
	if (e->rv_str)
		free(e->rv.s);
	e->rv_str = false;
	e->rv.n = 0;
	uint64_t n;
	if (rv && rv_numeric(rv, &n)) {
		e->rv.n = n;
	} else if (rv) {
		e->rv.s = xstrdup(rv);
		e->rv_str = true;
	}
}

static void centry_free(struct centry *e)
{
	if (e->rv_str)
		free(e->rv.s);
	free(e);
}

enum rstate { R_WAIT, R_LIST, R_WATCH };

#define LIST_PAGE_MAX (32u << 20) /* bytes of one LIST page */

struct reflector {
	struct kube_client *c;
	enum kube_res res;
	enum rstate st;
	struct htab cache; /* struct centry by namespace and name */
	char *rv;          /* last version seen */
	char *cont;        /* continue token of the list in progress */
	uint64_t mark;
	CURL *easy;
	struct curl_slist *headers;
	struct sbuf body;
	struct kube_stream stream;
	long status;
	double retry_after, next_at, started;
	unsigned failures;
	size_t events;     /* in this watch */
	uint64_t changes;  /* ADDED, MODIFIED and DELETED events, every watch */
	bool synced, gone, broken, initial_stream, no_initial, need_list;
	bool error_event; /* the watch ended with an ERROR event other than 410 */
	bool oversized;   /* the LIST page went past LIST_PAGE_MAX: asked again, smaller */
	unsigned limit;   /* items a LIST page asks for: halved after an oversized page */
	json_t *list;     /* a LIST page's List without its items, while it is read */
	char errbuf[CURL_ERROR_SIZE];
	char *error;
};

/* kube_client_node_pods(): one read at a time */
struct node_read {
	CURL *easy;
	struct curl_slist *headers;
	struct sbuf body;
	bool oversized;
	kube_node_pods_cb cb;
	void *arg;
	char errbuf[CURL_ERROR_SIZE];
};

struct kube_client {
	struct kube_auth auth;
	struct node_read nr;
	struct kube_client_opts o;
	struct kube_handlers h;
	struct decode_opts dopts;
	CURLM *multi;
	struct reflector r[KRES_COUNT];
	char *token;
	double token_at;
	bool synced;
	struct kube_stats stats;
	uint64_t rng;
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double jitter(struct kube_client *c)
{
	c->rng ^= c->rng << 13;
	c->rng ^= c->rng >> 7;
	c->rng ^= c->rng << 17;
	return (double)(c->rng % 1000) / 1000.0;
}

static void obj_names(enum kube_res r, const void *o, const char **ns, const char **name)
{
	if (r == KRES_NAMESPACES) {
		*ns = "";
		*name = ((const struct ns_spec *)o)->name;
	} else if (r == KRES_NODES) { /* cluster-scoped, as namespaces */
		*ns = "";
		*name = ((const struct node_spec *)o)->name;
	} else if (r == KRES_APISERVER) { /* only namespace default is read */
		*ns = "default";
		*name = ((const struct node_spec *)o)->name;
	} else if (r == KRES_PODS) {
		*ns = ((const struct pod_spec *)o)->ns;
		*name = ((const struct pod_spec *)o)->name;
	} else {
		*ns = ((const struct policy_spec *)o)->ns;
		*name = ((const struct policy_spec *)o)->name;
	}
}

static uint64_t ckey_hash(const struct ckey *k)
{
	return hash_bytes(k->name, strlen(k->name), hash_str(k->ns));
}

static bool centry_eq(const void *item, const void *key)
{
	const struct ckey *k = key;
	const char *ns, *name;
	obj_names(k->res, ((const struct centry *)item)->obj, &ns, &name);
	return !strcmp(name, k->name) && !strcmp(ns, k->ns);
}

static struct centry *cache_find(const struct reflector *r, const struct ckey *k)
{
	return htab_find(&r->cache, ckey_hash(k), centry_eq, k);
}

/* ---------- objects ---------- */

static void obj_free(enum kube_res r, void *o)
{
	if (r == KRES_NAMESPACES)
		ns_spec_free(o);
	else if (r == KRES_PODS)
		pod_spec_free(o);
	else if (r == KRES_NODES || r == KRES_APISERVER)
		node_spec_free(o);
	else
		policy_spec_free(o);
}

void kube_obj_ref(enum kube_res r, void *obj)
{
	if (r == KRES_NAMESPACES)
		((struct ns_spec *)obj)->refs++;
	else if (r == KRES_PODS)
		((struct pod_spec *)obj)->refs++;
	else if (r == KRES_NODES || r == KRES_APISERVER)
		((struct node_spec *)obj)->refs++;
	else
		((struct policy_spec *)obj)->refs++;
}

/* The key of an object as the API sent it, read as the decoder reads it
 * (a namespaced object without a namespace is in "default"); false when it
 * has no name. */
static bool obj_key(const struct reflector *r, json_t *o, struct ckey *k)
{
	json_t *md = json_object_get(o, "metadata");
	const char *ns = json_string_value(json_object_get(md, "namespace"));
	k->res = r->res;
	k->name = json_string_value(json_object_get(md, "name"));
	k->ns = r->res == KRES_NAMESPACES || r->res == KRES_NODES ? "" : ns ? ns : r->c->dopts.default_ns;
	return k->name != NULL;
}

static const char *obj_rv(json_t *o)
{
	return json_string_value(json_object_get(json_object_get(o, "metadata"), "resourceVersion"));
}

static void set_str(char **dst, const char *s)
{
	char *n = s ? xstrdup(s) : NULL;
	free(*dst);
	*dst = n;
}

static void trouble(struct reflector *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void trouble(struct reflector *r, const char *fmt, ...)
{
	va_list ap;
	char *m;
	va_start(ap, fmt);
	if (vasprintf(&m, fmt, ap) < 0)
		abort();
	va_end(ap);
	free(r->error);
	r->error = m;
	r->c->stats.errors++;
	if (r->c->h.trouble)
		r->c->h.trouble(r->c->h.arg, r->res, m);
}

static void cache_delete(struct reflector *r, struct centry *e)
{
	struct kube_client *c = r->c;
	struct ckey k = { r->res, NULL, NULL };
	obj_names(r->res, e->obj, &k.ns, &k.name);
	htab_remove(&r->cache, ckey_hash(&k), centry_eq, &k);
	if (c->h.changed)
		c->h.changed(c->h.arg, r->res, e->obj, NULL);
	obj_free(r->res, e->obj);
	centry_free(e);
}

/* Each decoding problem, one message each: errors (the object is enforced
 * fail-closed) and warnings go to their own handlers. */
static void report_diags(struct reflector *r, const struct diags *d)
{
	struct kube_client *c = r->c;
	for (size_t i = 0; i < d->v.n; i++) {
		const struct diag *x = d->v.v[i];
		void (*h)(void *, enum kube_res, const char *) = x->warning ? c->h.trouble : c->h.unreadable;
		if (!h)
			continue;
		char *m = diag_format(x);
		h(c->h.arg, r->res, m);
		free(m);
	}
}

/* obj (decoded) into the cache, in e's place if there is one, and to the
 * handler. */
static void cache_put(struct reflector *r, struct centry *e, void *obj, const char *rv)
{
	struct kube_client *c = r->c;
	void *old = e ? e->obj : NULL;
	if (!e) {
		e = xcalloc(1, sizeof(*e));
		e->obj = obj;
		struct ckey k = { r->res, NULL, NULL }; /* the decoded names, as centry_eq reads them */
		obj_names(r->res, obj, &k.ns, &k.name);
		htab_insert(&r->cache, ckey_hash(&k), e);
	}
	e->obj = obj;
	rv_store(e, rv);
	e->mark = (uint32_t)r->mark;
	if (c->h.changed)
		c->h.changed(c->h.arg, r->res, old, obj);
	if (old)
		obj_free(r->res, old);
}

/* An object as the API sent it: decoded, cached, handed to the handler.
 * The API server accepted it, so what the decoder cannot read fails
 * closed (see kube_decode): never dropped, never read as gone. Only an
 * object that cannot be identified at all is refused; a cached version
 * of it, if any, stays in force. */
static void upsert(struct reflector *r, json_t *o)
{
	struct kube_client *c = r->c;
	struct ckey key;
	if (!obj_key(r, o, &key))
		return;
	struct centry *e = cache_find(r, &key);
	const char *rv = obj_rv(o);
	if (e && rv_same(e, rv)) { /* duplicate (relist, repeated ADDED) */
		e->mark = (uint32_t)r->mark;
		return;
	}
	struct diags d = { 0 };
	struct decoded dec;
	int rc = kube_decode_listed(r->res, o, &c->dopts, &d, &dec);
	report_diags(r, &d);
	diags_free(&d);
	void *obj = rc < 0 ? NULL : dec.type == OBJ_NAMESPACE ? (void *)dec.ns : dec.type == OBJ_POD ? (void *)dec.pod
							  : dec.type == OBJ_NODE ? (void *)dec.node : (void *)dec.pol;
	if (rc < 0 || !obj) {
		c->stats.rejected++;
		if (e) /* this version cannot be identified: keep the last one in force */
			e->mark = (uint32_t)r->mark;
		return;
	}
	cache_put(r, e, obj, rv);
}

/* A pod read straight from its text (kube/podscan.h), as upsert would
 * have decoded it: the key is its decoded names, which upsert's obj_key
 * reads the same when the scan is sure of them. */
static void upsert_scanned(struct reflector *r, struct pod_scan *s)
{
	struct ckey key = { r->res, s->pod->ns, s->pod->name };
	struct centry *e = cache_find(r, &key);
	if (e && rv_same(e, s->rv)) {
		e->mark = (uint32_t)r->mark;
		pod_spec_free(s->pod);
	} else {
		cache_put(r, e, s->pod, s->rv);
	}
}

static void delete_obj(struct reflector *r, json_t *o)
{
	struct ckey key;
	struct centry *e = obj_key(r, o, &key) ? cache_find(r, &key) : NULL;
	if (e)
		cache_delete(r, e);
}

/* After a full list: what the list did not return is gone. */
static void sweep(struct reflector *r)
{
	struct vec gone = { 0 };
	struct centry *e;
	htab_foreach(&r->cache, e) if (e->mark != (uint32_t)r->mark) vec_push(&gone, e);
	for (size_t i = 0; i < gone.n; i++)
		cache_delete(r, gone.v[i]);
	vec_free(&gone);
}

static void mark_synced(struct reflector *r)
{
	struct kube_client *c = r->c;
	r->synced = true;
	for (int i = 0; i < KRES_COUNT; i++)
		if (!c->r[i].synced)
			return;
	if (!c->synced) {
		c->synced = true;
		if (c->h.synced)
			c->h.synced(c->h.arg);
	}
}

/* ---------- watch events ---------- */

static int on_event(const struct kube_event *ev, void *arg)
{
	struct reflector *r = arg;
	struct kube_client *c = r->c;
	json_t *o = ev->object;
	c->stats.events++;
	r->events++;
	r->changes += ev->type == KEV_ADDED || ev->type == KEV_MODIFIED || ev->type == KEV_DELETED;
	switch (ev->type) {
	case KEV_ADDED:
	case KEV_MODIFIED:
		upsert(r, o);
		break;
	case KEV_DELETED:
		delete_obj(r, o);
		break;
	case KEV_BOOKMARK: {
		json_t *ann = json_object_get(json_object_get(o, "metadata"), "annotations");
		if (r->initial_stream && json_is_string(json_object_get(ann, "k8s.io/initial-events-end"))) {
			r->initial_stream = false;
			sweep(r);
			mark_synced(r);
		}
		break;
	}
	case KEV_ERROR: {
		json_int_t code = json_integer_value(json_object_get(o, "code"));
		const char *msg = json_string_value(json_object_get(o, "message"));
		if (code == 410) {
			r->gone = true;
		} else {
			/* e.g. 500 from etcd at the compaction boundary (watch cache
			 * off): watching again from the same version would get the
			 * same answer at once, so list again, after a back-off (as
			 * client-go's reflector does) */
			trouble(r, "watch ERROR event %lld: %s: listing again", (long long)code, msg ? msg : "?");
			r->error_event = true;
		}
		return 1; /* the stream ends here */
	}
	}
	const char *rv = obj_rv(o);
	if (rv && *rv)
		set_str(&r->rv, rv);
	return 0;
}

/* A pod's ADDED or MODIFIED event scanned from its line (kube/stream.h's
 * raw), as on_event would have read it; false leaves it to on_event. */
static bool watch_raw(const char *line, size_t len, void *arg)
{
	struct reflector *r = arg;
	struct kube_client *c = r->c;
	struct pod_scan s;
	if (!kube_pod_scan_event(line, len, &c->dopts, &s))
		return false;
	c->stats.events++;
	r->events++;
	r->changes++;
	upsert_scanned(r, &s);
	if (s.rv && *s.rv)
		set_str(&r->rv, s.rv);
	free(s.rv);
	return true;
}

int kube_client_feed(struct kube_client *c, enum kube_res res, const char *data, size_t len)
{
	struct reflector *r = &c->r[res];
	char *err = NULL;
	int rc = kube_stream_feed(&r->stream, data, len, on_event, r, &err);
	if (rc < 0) {
		trouble(r, "%s", err);
		free(err);
	}
	return rc;
}

/* ---------- requests ---------- */

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
	struct reflector *r = arg;
	size_t len = size * n;
	if (!r->status)
		curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->status);
	if (r->st == R_WATCH && r->status == 200) {
		char *err = NULL;
		r->c->stats.read_s = now_s();
		int rc = kube_stream_feed(&r->stream, data, len, on_event, r, &err);
		if (rc < 0) {
			trouble(r, "%s; dropping the stream", err);
			free(err);
			r->broken = true;
			return 0; /* abort the transfer */
		}
		return rc ? 0 : len;
	}
	if (r->body.n + len > LIST_PAGE_MAX) {
		r->oversized = true; /* done() asks for the page again, with fewer items */
		return 0;
	}
	sbuf_addn(&r->body, data, len);
	return len;
}

static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
	struct reflector *r = arg;
	size_t len = size * n;
	if (len > 12 && !strncasecmp(data, "retry-after:", 12))
		r->retry_after = atof(data + 12);
	return len;
}

static const char *token(struct kube_client *c, bool force)
{
	if (c->auth.token_file && (force || !c->token || now_s() - c->token_at >= c->o.token_reload)) {
		FILE *f = fopen(c->auth.token_file, "r");
		char buf[8192];
		size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
		if (f)
			fclose(f);
		while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
			n--;
		buf[n] = 0;
		if (n)
			set_str(&c->token, buf);
		c->token_at = now_s();
	}
	return c->token ? c->token : c->auth.token;
}

static void start(struct reflector *r, bool watch)
{
	struct kube_client *c = r->c;
	struct sbuf url = { 0 };
	sbuf_addf(&url, "%s%s?", c->auth.server, resources[r->res].path);
	if (resources[r->res].query)
		sbuf_addf(&url, "%s&", resources[r->res].query);
	if (watch) {
		char *rv = r->rv ? curl_easy_escape(NULL, r->rv, 0) : NULL;
		unsigned t = c->o.watch_timeout + (unsigned)(jitter(c) * c->o.watch_timeout / 4);
		sbuf_addf(&url, "watch=1&allowWatchBookmarks=true&timeoutSeconds=%u", t);
		if (r->initial_stream)
			sbuf_add(&url, "&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&resourceVersion=");
		else if (rv)
			sbuf_addf(&url, "&resourceVersion=%s", rv);
		curl_free(rv);
		c->stats.watches++;
	} else {
		sbuf_addf(&url, "limit=%u", r->limit ? r->limit : c->o.page_limit);
		if (r->cont) {
			char *ct = curl_easy_escape(NULL, r->cont, 0);
			sbuf_addf(&url, "&continue=%s", ct);
			curl_free(ct);
		} else {
			c->stats.lists++;
			r->mark++;
		}
	}
	r->st = watch ? R_WATCH : R_LIST;
	r->status = 0;
	r->retry_after = 0;
	r->events = 0;
	r->gone = r->broken = r->error_event = r->oversized = false;
	r->body.n = 0;
	kube_stream_reset(&r->stream);
	r->started = now_s();
	CURL *e = r->easy = curl_easy_init();
	if (!e) /* only out of memory: small allocations abort (CONTRIBUTING.md) */
		abort();
	curl_easy_setopt(e, CURLOPT_URL, url.s);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(e, CURLOPT_PRIVATE, r);
	r->errbuf[0] = 0;
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
	curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L); /* share one HTTP/2 connection */
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
	/* a watch that goes silent (no byte, not even a bookmark) is dead */
	curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, (long)c->o.idle_timeout);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L); /* a peer that vanished: found in about a minute */
	curl_easy_setopt(e, CURLOPT_TCP_KEEPIDLE, 30L);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPINTVL, 10L);
	if (!watch)
		curl_easy_setopt(e, CURLOPT_TIMEOUT, 120L);
	kube_http_tls(e, &c->auth);
	curl_slist_free_all(r->headers);
	r->headers = curl_slist_append(NULL, "Accept: application/json");
	const char *tok = token(c, false);
	if (tok) {
		char *h = xasprintf("Authorization: Bearer %s", tok);
		r->headers = curl_slist_append(r->headers, h);
		free(h);
	}
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
	curl_multi_add_handle(c->multi, e);
	free(url.s);
}

static void wait_then(struct reflector *r, double delay)
{
	r->st = R_WAIT;
	r->next_at = now_s() + delay;
}

static void backoff(struct reflector *r)
{
	struct kube_client *c = r->c;
	r->failures++;
	double d = c->o.backoff_base;
	for (unsigned i = 1; i < r->failures && d < c->o.backoff_cap; i++)
		d *= 2;
	if (d > c->o.backoff_cap)
		d = c->o.backoff_cap;
	d *= 0.8 + 0.4 * jitter(c); /* no stampede on a restarted server */
	if (r->retry_after > d)
		d = r->retry_after;
	c->stats.watch_restarts++;
	wait_then(r, d);
}

static void relist(struct reflector *r, double delay)
{
	r->c->stats.relists++;
	set_str(&r->cont, NULL);
	r->need_list = true;
	wait_then(r, delay);
}

/* Pages are bounded in bytes as well as in items: one past LIST_PAGE_MAX
 * is asked again with half the items; small pages let the number grow
 * back to the configured one. (A page of 500 pods with 256 KiB
 * annotations each is over 250 MB: a node's memory limit.) */
static void page_adapt(struct reflector *r)
{
	unsigned max = r->c->o.page_limit;
	if (r->limit && r->limit < max && r->body.n < LIST_PAGE_MAX / 8)
		r->limit = r->limit * 2 > max ? max : r->limit * 2;
}

static void list_item(json_t *item, void *arg)
{
	upsert(arg, item);
}

/* A pod of a LIST page read from its text when the scan is sure of it;
 * else jansson reads it (list_item). */
static size_t list_raw(const char *b, size_t n, void *arg)
{
	struct reflector *r = arg;
	struct pod_scan s;
	size_t used = kube_pod_scan_prefix(b, n, &r->c->dopts, &s);
	if (used) {
		upsert_scanned(r, &s);
		free(s.rv);
	}
	return used;
}

static void list_meta(json_t *list, void *arg)
{
	struct reflector *r = arg;
	json_decref(r->list);
	r->list = json_incref(list);
}

/* A LIST page arrived whole. Its items are parsed and applied one by one
 * (a page of large objects never becomes one big JSON tree). */
static void list_done(struct reflector *r)
{
	char *err = NULL;
	int rc = kube_json_list_each_raw(r->body.s ? r->body.s : "", r->body.n, JSON_ALLOW_NUL /* see stream.c */,
					 r->res == KRES_PODS && !r->c->o.jansson_only ? list_raw : NULL, list_item, list_meta, r, &err);
	json_t *o = r->list;
	r->list = NULL;
	json_t *items = json_object_get(o, "items");
	const char *rv = json_string_value(json_object_get(json_object_get(o, "metadata"), "resourceVersion"));
	const char *cont = json_string_value(json_object_get(json_object_get(o, "metadata"), "continue"));
	if (rc < 0 || !json_is_array(items) || !rv) {
		trouble(r, "LIST: malformed response: %s", rc < 0 ? err : "no items or resourceVersion");
		free(err);
		json_decref(o);
		set_str(&r->cont, NULL);
		backoff(r);
		return;
	}
	page_adapt(r);
	if (cont && *cont) { /* only a non-empty continue means more */
		set_str(&r->cont, cont);
		json_decref(o);
		start(r, false);
		return;
	}
	set_str(&r->cont, NULL);
	set_str(&r->rv, rv);
	json_decref(o);
	sweep(r);
	r->need_list = false;
	free(r->error);
	r->error = NULL;
	mark_synced(r);
	start(r, true);
}

static void done(struct reflector *r, CURLcode res)
{
	struct kube_client *c = r->c;
	double lasted = now_s() - r->started;
	bool watch = r->st == R_WATCH;
	if (!r->status) /* no body came: the status is known all the same */
		curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->status);
	curl_multi_remove_handle(c->multi, r->easy);
	curl_easy_cleanup(r->easy);
	r->easy = NULL;
	if (r->status == 401) {
		c->stats.unauthorized++;
		const char *old = c->token ? c->token : "";
		char *was = xstrdup(old);
		token(c, true); /* rotated? read it again */
		bool changed = c->token && strcmp(was, c->token);
		free(was);
		trouble(r, "401 Unauthorized%s", changed ? ": token re-read" : "");
		if (changed)
			wait_then(r, 0);
		else
			backoff(r);
		return;
	}
	if (!watch && r->oversized) {
		unsigned was = r->limit ? r->limit : c->o.page_limit;
		if (was <= 1) {
			trouble(r, "LIST: one object is larger than %u MiB; listing again later", LIST_PAGE_MAX >> 20);
			backoff(r);
			return;
		}
		r->limit = was / 2;
		trouble(r, "LIST: a page of %u items went past %u MiB: asking for %u at a time", was, LIST_PAGE_MAX >> 20,
			r->limit);
		wait_then(r, 0); /* the same page (same continue token), smaller */
		return;
	}
	if (watch && r->error_event) {
		r->c->stats.relists++;
		set_str(&r->cont, NULL);
		r->need_list = true;
		r->initial_stream = false;
		backoff(r);
		return;
	}
	if (r->status == 410 || r->gone) {
		/* expired resourceVersion or continue token: start over */
		trouble(r, "%s: resource version or continue token expired (410): listing again",
			watch ? "WATCH" : "LIST");
		relist(r, 0);
		return;
	}
	if (watch && r->status == 422 && r->initial_stream) {
		r->initial_stream = false;
		r->no_initial = true; /* the server does not stream initial lists */
		r->need_list = true;
		wait_then(r, 0);
		return;
	}
	if (res != CURLE_OK && !(watch && res == CURLE_WRITE_ERROR && !r->broken)) {
		if (!r->broken) /* a malformed stream was reported as it was read */
			trouble(r, "%s %s: %s", watch ? "WATCH" : "LIST", c->auth.server,
				r->errbuf[0] ? r->errbuf : curl_easy_strerror(res));
		if (watch && r->initial_stream) {
			r->initial_stream = false;
			r->need_list = true;
		}
		backoff(r);
		return;
	}
	if (r->status != 200) {
		json_t *st = json_loadb(r->body.s ? r->body.s : "", r->body.n, 0, NULL);
		const char *msg = json_string_value(json_object_get(st, "message"));
		trouble(r, "%s: HTTP %ld%s%s%s", watch ? "WATCH" : "LIST", r->status, msg ? ": " : "", msg ? msg : "",
			r->retry_after > 0 ? " (Retry-After honoured)" : "");
		json_decref(st);
		if (watch && r->initial_stream) {
			r->initial_stream = false;
			r->no_initial = true;
			r->need_list = true;
		}
		backoff(r);
		return;
	}
	if (!watch) {
		list_done(r);
		return;
	}
	/* a watch that ended */
	char *err = NULL;
	if (kube_stream_end(&r->stream, &err) < 0) {
		trouble(r, "%s", err);
		free(err);
	}
	if (r->initial_stream) { /* ended before the initial events did: list */
		r->initial_stream = false;
		r->need_list = true;
		backoff(r);
		return;
	}
	if (r->events == 0 && lasted < 1.0) {
		trouble(r, "WATCH ended after %.2f s without an event", lasted);
		backoff(r);
		return;
	}
	if (lasted >= c->o.healthy_after || r->events)
		r->failures = 0;
	wait_then(r, 0); /* watch again from the last version */
}

static void begin(struct reflector *r)
{
	struct kube_client *c = r->c;
	if (r->need_list && c->o.initial_events && !r->no_initial && !r->synced) {
		r->initial_stream = true;
		r->mark++;
		c->stats.lists++;
		start(r, true);
	} else if (r->need_list) {
		start(r, false);
	} else {
		start(r, true);
	}
}

/* ---------- a read of one node's pods ---------- */

static size_t nr_body(char *data, size_t size, size_t n, void *arg)
{
	struct node_read *nr = arg;
	size_t len = size * n;
	if (nr->body.n + len > LIST_PAGE_MAX) {
		nr->oversized = true;
		return 0;
	}
	sbuf_addn(&nr->body, data, len);
	return len;
}

static void nr_end(struct kube_client *c)
{
	curl_multi_remove_handle(c->multi, c->nr.easy);
	curl_easy_cleanup(c->nr.easy);
	c->nr.easy = NULL;
	curl_slist_free_all(c->nr.headers);
	c->nr.headers = NULL;
	sbuf_free(&c->nr.body);
}

static void node_read_done(struct kube_client *c, CURLcode res)
{
	struct node_read *nr = &c->nr;
	long status = 0;
	curl_easy_getinfo(nr->easy, CURLINFO_RESPONSE_CODE, &status);
	kube_node_pods_cb cb = nr->cb;
	void *arg = nr->arg;
	struct vec pods = { 0 };
	char *err = NULL;
	int rc = 0;
	if (nr->oversized) {
		rc = -EFBIG;
		err = xasprintf("the pods of this node are more than %u MiB", LIST_PAGE_MAX >> 20);
	} else if (res != CURLE_OK) {
		rc = -EIO;
		err = xasprintf("%s", *nr->errbuf ? nr->errbuf : curl_easy_strerror(res));
	} else if (status != 200) {
		/* the API server's Status says why (reason, message) */
		rc = -EIO;
		json_t *o = json_loadb(nr->body.s ? nr->body.s : "", nr->body.n, JSON_ALLOW_NUL, NULL);
		const char *reason = json_string_value(json_object_get(o, "reason"));
		const char *msg = json_string_value(json_object_get(o, "message"));
		err = xasprintf("HTTP %ld%s%s%s%s", status, reason ? " " : "", reason ? reason : "", msg ? ": " : "",
				msg ? msg : "");
		json_decref(o);
	} else {
		json_error_t je;
		json_t *o = json_loadb(nr->body.s ? nr->body.s : "", nr->body.n, JSON_ALLOW_NUL, &je);
		json_t *items = json_object_get(o, "items");
		if (!json_is_array(items)) {
			rc = -EINVAL;
			err = xasprintf("malformed list: %s", o ? "no items" : je.text);
		}
		size_t i;
		json_t *it;
		json_array_foreach(items, i, it) {
			struct diags d = { 0 };
			struct decoded dec;
			int drc = kube_decode_listed(KRES_PODS, it, &c->dopts, &d, &dec);
			if (drc < 0 || dec.type != OBJ_POD || !dec.pod) {
				/* a pod that cannot even be named: nothing about this
				 * node's pods is known for sure */
				char *why = d.v.n ? diag_format(d.v.v[0]) : NULL;
				if (rc == 0)
					err = xasprintf("items[%zu] of the list cannot be identified as a pod%s%s", i,
							why ? ": " : "", why ? why : "");
				rc = -EINVAL;
				free(why);
				diags_free(&d);
				continue;
			}
			diags_free(&d);
			vec_push(&pods, dec.pod);
		}
		json_decref(o);
	}
	nr_end(c);
	if (rc < 0) {
		for (size_t i = 0; i < pods.n; i++)
			pod_spec_free(pods.v[i]);
		vec_free(&pods);
		cb(arg, rc, NULL, 0, err);
	} else {
		cb(arg, 0, (struct pod_spec **)pods.v, pods.n, NULL); /* the array is the callee's */
	}
	free(err);
}

int kube_client_node_pods(struct kube_client *c, const char *node, kube_node_pods_cb cb, void *arg)
{
	struct node_read *nr = &c->nr;
	if (nr->easy)
		return -EBUSY;
	char *sel = xasprintf("spec.nodeName=%s", node);
	char *esc = curl_easy_escape(NULL, sel, 0);
	char *url = xasprintf("%s%s?fieldSelector=%s", c->auth.server, resources[KRES_PODS].path, esc);
	curl_free(esc);
	free(sel);
	nr->cb = cb;
	nr->arg = arg;
	nr->oversized = false;
	nr->body.n = 0;
	nr->errbuf[0] = 0;
	CURL *e = nr->easy = curl_easy_init();
	if (!e)
		abort();
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, nr_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, nr);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, nr->errbuf);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
	curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT, 30L);
	curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
	kube_http_tls(e, &c->auth);
	nr->headers = curl_slist_append(NULL, "Accept: application/json");
	const char *tok = token(c, false);
	if (tok) {
		char *h = xasprintf("Authorization: Bearer %s", tok);
		nr->headers = curl_slist_append(nr->headers, h);
		free(h);
	}
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, nr->headers);
	curl_multi_add_handle(c->multi, e);
	free(url);
	return 0;
}

void kube_client_step(struct kube_client *c, int extra_fd, int max_ms)
{
	double now = now_s();
	int wait = max_ms;
	for (int i = 0; i < KRES_COUNT; i++)
		if (c->r[i].st == R_WAIT) {
			double d = (c->r[i].next_at - now) * 1000;
			if (d < wait)
				wait = d < 0 ? 0 : (int)d + 1;
		}
	struct curl_waitfd w = { extra_fd, CURL_WAIT_POLLIN, 0 };
	int running;
	curl_multi_poll(c->multi, extra_fd >= 0 ? &w : NULL, extra_fd >= 0 ? 1 : 0, wait, NULL);
	c->stats.woke_s = now_s();
	curl_multi_perform(c->multi, &running);
	CURLMsg *m;
	int left;
	while ((m = curl_multi_info_read(c->multi, &left))) {
		if (m->msg != CURLMSG_DONE)
			continue;
		if (m->easy_handle == c->nr.easy) {
			node_read_done(c, m->data.result);
			continue;
		}
		struct reflector *r;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
		done(r, m->data.result);
	}
	now = now_s();
	for (int i = 0; i < KRES_COUNT; i++)
		if (c->r[i].st == R_WAIT && c->r[i].next_at <= now)
			begin(&c->r[i]);
}

struct kube_client *kube_client_new(struct kube_auth *auth, const struct kube_client_opts *o,
				    const struct kube_handlers *h)
{
	static bool inited;
	if (!inited) {
		curl_global_init(CURL_GLOBAL_DEFAULT);
		inited = true;
	}
	struct kube_client *c = xcalloc(1, sizeof(*c));
	c->auth = *auth;
	memset(auth, 0, sizeof(*auth));
	if (o)
		c->o = *o;
	if (c->o.backoff_base <= 0)
		c->o.backoff_base = 0.8;
	if (c->o.backoff_cap <= 0)
		c->o.backoff_cap = 30;
	if (c->o.healthy_after <= 0)
		c->o.healthy_after = 30;
	if (!c->o.watch_timeout)
		c->o.watch_timeout = 300;
	/* the server ends a watch by itself after timeoutSeconds (at most
	 * 1.25 x watch_timeout with the jitter) and sends a bookmark about
	 * once a minute before that, or only just before the end: a quiet
	 * resource may send nothing for the whole watch. Silence longer than
	 * the watch itself means a dead stream; a dead connection is found
	 * sooner by TCP keepalive. */
	if (!c->o.idle_timeout)
		c->o.idle_timeout = c->o.watch_timeout + c->o.watch_timeout / 4 + 30;
	if (!c->o.page_limit)
		c->o.page_limit = 500;
	if (!c->o.token_reload)
		c->o.token_reload = 60;
	if (h)
		c->h = *h;
	/* our own copy: the agent frees its configuration on every SIGHUP */
	c->o.app_label = xstrdup(c->o.app_label ? c->o.app_label : APP_LABELS_DEFAULT);
	c->dopts = (struct decode_opts){ DECODE_API, false, c->o.app_label, "default" };
	c->multi = curl_multi_init();
	if (!c->multi)
		abort();
	curl_multi_setopt(c->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
	c->rng = (uint64_t)now_s() * 2654435761u | 1;
	for (int i = 0; i < KRES_COUNT; i++) {
		struct reflector *r = &c->r[i];
		r->c = c;
		r->res = (enum kube_res)i;
		if (r->res == KRES_PODS && !c->o.jansson_only)
			r->stream.raw = watch_raw;
		r->need_list = true;
		wait_then(r, 0);
	}
	return c;
}

void kube_client_free(struct kube_client *c)
{
	if (!c)
		return;
	for (int i = 0; i < KRES_COUNT; i++) {
		struct reflector *r = &c->r[i];
		if (r->easy) {
			curl_multi_remove_handle(c->multi, r->easy);
			curl_easy_cleanup(r->easy);
		}
		curl_slist_free_all(r->headers);
		struct centry *e;
		htab_foreach(&r->cache, e) {
			obj_free(r->res, e->obj);
			centry_free(e);
		}
		htab_free(&r->cache);
		sbuf_free(&r->body);
		kube_stream_reset(&r->stream);
		free(r->rv);
		free(r->cont);
		json_decref(r->list);
		free(r->error);
	}
	if (c->nr.easy)
		nr_end(c);
	curl_multi_cleanup(c->multi);
	kube_auth_free(&c->auth);
	free((char *)c->o.app_label);
	free(c->token);
	free(c);
}

bool kube_client_synced(const struct kube_client *c)
{
	return c->synced;
}

const struct kube_stats *kube_client_stats(const struct kube_client *c)
{
	return &c->stats;
}

size_t kube_client_count(const struct kube_client *c, enum kube_res r)
{
	return c->r[r].cache.n;
}

uint64_t kube_client_changes(const struct kube_client *c, enum kube_res r)
{
	return c->r[r].changes;
}

const void *kube_client_get(const struct kube_client *c, enum kube_res r, const char *ns, const char *name)
{
	struct ckey key = { r, r == KRES_NAMESPACES || r == KRES_NODES ? "" : ns ? ns : "", name };
	const struct centry *e = cache_find(&c->r[r], &key);
	return e ? e->obj : NULL;
}

const char *kube_client_error(const struct kube_client *c, enum kube_res r)
{
	return c->r[r].error;
}

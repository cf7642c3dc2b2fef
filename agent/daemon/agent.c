/* corral-agent: objects in, enforcement out.
 *
 * Modules start in dependency order (config and logs; network namespace;
 * netlink; source; data plane; control socket; metrics) and the event loop
 * ties them together:
 *   source change -> engine (incremental) -> debounce -> one transaction
 *   NFLOG packet  -> drop ring (-> followers of `agentctl drops -f`)
 *   control socket request -> status / explain / drops / dump
 *   SIGTERM, SIGINT -> exit, leaving the ruleset in the kernel (fail-static)
 *   SIGHUP -> reload the configuration file
 * Nothing is changed in the kernel before the source's first full read:
 * a table left by a previous run keeps enforcing until the first
 * transaction replaces it, atomically. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <malloc.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "corral-version.h"
#include "agent/daemon/config.h"
#include "agent/daemon/events.h"
#include "agent/dataplane/dataplane.h"
#include "agent/daemon/log.h"
#include "agent/daemon/metrics.h"
#include "agent/nl/nflog.h"
#include "agent/nl/nft.h"
#include "agent/report/report.h"
#include "agent/daemon/src_files.h"
#include "kube/client.h"

#define DROP_RING 1024
#define MAX_FOLLOWERS 16

struct drop {
	struct timespec when;
	char src[48], dst[48], src_pod[160], dst_pod[160];
	uint8_t proto;
	uint16_t dport;
	enum dir dir;
	uint32_t group;
	char policies[512];
};

struct agent {
	struct agent_config cfg;
	const char *config_path, *source_arg, *node, *netns, *socket_path, *kubeconfig, *context;
	struct kube_client *kube;
	struct drop_events *events; /* --source kube: drops as Events on pods */
	struct engine *e;
	struct dp *dp;
	struct nft_sock *nft;
	struct nflog *nflog;
	struct src_files *files;
	struct metrics metrics;
	int ep, sig_fd, sync_timer, scan_timer, ctl_fd;
	bool synced, sync_armed, scan_armed, stop;
	uint64_t generation;
	/* last transaction */
	struct dp_stats last;
	struct timespec last_time;
	char *last_error;
	uint32_t retry_ms;
	/* drops */
	struct drop *ring; /* DROP_RING entries */
	uint64_t ndrops;
	int followers[MAX_FOLLOWERS];
	bool follow_explain[MAX_FOLLOWERS];
	int nfollowers;
};

/* ---------- engine and transactions ---------- */

static struct engine *new_engine(struct agent *a)
{
	struct engine_config ec = { a->node, a->cfg.app_label, a->cfg.dns_default };
	return engine_new(&ec);
}

static void arm(int fd, uint32_t ms)
{
	struct itimerspec it = { { 0, 0 }, { ms / 1000, (long)(ms % 1000) * 1000000L + (ms ? 0 : 1) } };
	timerfd_settime(fd, 0, &it, NULL);
}

static void want_sync(struct agent *a)
{
	if (!a->sync_armed && a->synced) {
		arm(a->sync_timer, a->cfg.debounce_ms);
		a->sync_armed = true;
	}
}

static size_t source_errors(const struct agent *a)
{
	size_t n = a->files ? src_files_errors(a->files) : 0;
	for (int r = 0; a->kube && r < KRES_COUNT; r++)
		n += kube_client_error(a->kube, (enum kube_res)r) != NULL;
	return n;
}

/* Gauges that follow the objects: read once per transaction. */
static void update_gauges(struct agent *a)
{
	struct engine_unreadable u;
	engine_unreadable_counts(a->e, &u);
	pthread_mutex_lock(&a->metrics.mu);
	for (int k = 0; k < POLICY_KINDS; k++)
		for (int v = 0; v < 2; v++)
			a->metrics.policies[k][v] = engine_policy_count(a->e, (enum policy_kind)k, v);
	a->metrics.unreadable[0] = u.namespaces;
	a->metrics.unreadable[1] = u.pods;
	a->metrics.unreadable[2] = u.policies[KIND_NETPOL];
	a->metrics.unreadable[3] = u.policies[KIND_ACCESS];
	a->metrics.rejected = a->kube ? kube_client_stats(a->kube)->rejected : 0;
	pthread_mutex_unlock(&a->metrics.mu);
}

static void do_sync(struct agent *a, bool full)
{
	update_gauges(a);
	struct dp_stats st;
	char *err = NULL;
	int rc = dp_sync(a->dp, a->e, a->nft, full, &st, &err);
	double secs = (st.render_ms + st.apply_ms) / 1e3;
	metrics_observe_sync(&a->metrics, secs, rc == 0, st.full);
	clock_gettime(CLOCK_REALTIME, &a->last_time);
	a->last = st;
	free(a->last_error);
	a->last_error = err;
	a->generation++;
	if (rc < 0) {
		log_msg(LOG_ERROR, "sync", "%s; the previous ruleset stays in force, retrying with a full replace", err);
		a->retry_ms = a->retry_ms ? (a->retry_ms * 2 > 30000 ? 30000 : a->retry_ms * 2) : 500;
		arm(a->sync_timer, a->retry_ms);
		a->sync_armed = true;
		return;
	}
	a->retry_ms = 0;
	if (st.msgs || st.full)
		log_msg(st.full ? LOG_INFO : LOG_DEBUG, "sync",
			"%s: %u messages, +%llu/-%llu elements, %u chains written, %llu elements in the table, %.2f ms",
			st.full ? "full replace" : "update", st.msgs, (unsigned long long)st.elems_added,
			(unsigned long long)st.elems_deleted, st.chains_written, (unsigned long long)st.elems_total,
			st.render_ms + st.apply_ms);
	if (st.full) /* give back what the initial lists' JSON left free */
		malloc_trim(0);
	pthread_mutex_lock(&a->metrics.mu);
	a->metrics.elements = st.elems_total;
	if (!a->metrics.ready)
		log_msg(LOG_INFO, "ready", "enforcing on node %s", a->node);
	a->metrics.ready = true;
	pthread_mutex_unlock(&a->metrics.mu);
}

/* A scan in ms at the latest: an armed timer is moved earlier, never later
 * (a stream of events must not postpone the scan for ever). */
static void arm_scan(struct agent *a, uint32_t ms)
{
	struct itimerspec cur;
	if (a->scan_armed && timerfd_gettime(a->scan_timer, &cur) == 0 &&
	    (uint64_t)cur.it_value.tv_sec * 1000 + (uint64_t)cur.it_value.tv_nsec / 1000000 <= ms)
		return;
	arm(a->scan_timer, ms);
	a->scan_armed = true;
}

static void scan(struct agent *a)
{
	if (!a->files)
		return;
	size_t changed = src_files_scan(a->files, a->e);
	if (changed)
		want_sync(a);
	long next = src_files_next_ms(a->files); /* a file written in place, due later */
	if (next >= 0)
		arm_scan(a, (uint32_t)next);
}

static struct src_files *files_open(struct agent *a, char **err)
{
	const struct agent_config *c = &a->cfg;
	struct src_files_opts o = { c->app_label,
				    { c->files_max_file_bytes, c->files_max_total_bytes, c->files_max_files, 0,
				      c->files_max_doc_nodes },
				    c->files_settle_ms };
	return src_files_new(a->source_arg + 6, &o, err);
}

/* ---------- the Kubernetes source ---------- */

/* The informer's objects go to the engine, which shares them (one more
 * reference each) instead of copying. */
static void kube_changed(void *arg, enum kube_res r, const void *old, void *new)
{
	struct agent *a = arg;
	if (new) {
		kube_obj_ref(r, new);
		if (r == KRES_NAMESPACES)
			engine_ns_upsert(a->e, new);
		else if (r == KRES_PODS)
			engine_pod_upsert(a->e, new);
		else
			engine_policy_upsert(a->e, new);
	} else if (r == KRES_NAMESPACES) {
		engine_ns_delete(a->e, ((const struct ns_spec *)old)->name);
	} else if (r == KRES_PODS) {
		const struct pod_spec *p = old;
		engine_pod_delete(a->e, p->ns, p->name);
	} else {
		const struct policy_spec *p = old;
		engine_policy_delete(a->e, p->kind, p->ns, p->name);
	}
	want_sync(a); /* policies are counted once per transaction, not per event */
}

static void kube_synced(void *arg)
{
	struct agent *a = arg;
	log_msg(LOG_INFO, "source", "every initial list is in: %zu namespaces, %zu pods", engine_ns_count(a->e),
		engine_pod_count(a->e));
	if (!a->synced) {
		a->synced = true;
		do_sync(a, true);
	}
}

static void kube_trouble(void *arg, enum kube_res r, const char *what)
{
	(void)arg;
	log_msg(LOG_WARN, "source", "%s: %s", kube_res_name(r), what);
}

/* The API server holds an object we cannot read: an error, since we then
 * enforce it fail-closed rather than as written (status names it). */
static void kube_unreadable(void *arg, enum kube_res r, const char *what)
{
	(void)arg;
	log_msg(LOG_ERROR, "source", "%s: could not read, enforcing fail-closed: %s", kube_res_name(r), what);
}

static int kube_start(struct agent *a, char **err)
{
	struct kube_auth auth;
	int rc = !a->kubeconfig && getenv("KUBERNETES_SERVICE_HOST") ? kube_auth_in_cluster(&auth, NULL, err)
								     : kube_auth_kubeconfig(&auth, a->kubeconfig, a->context, err);
	if (rc < 0)
		return -1;
	struct kube_client_opts o = { .app_label = a->cfg.app_label };
	struct kube_handlers h = { .changed = kube_changed, .synced = kube_synced, .trouble = kube_trouble,
				   .unreadable = kube_unreadable, .arg = a };
	struct drop_events_opts eo = { a->node, a->cfg.drop_events_per_minute };
	a->events = drop_events_new(&auth, &eo); /* idle while dropEvents is false */
	a->kube = kube_client_new(&auth, &o, &h);
	return 0;
}

static json_t *kube_status(const struct agent *a)
{
	const struct kube_stats *st = kube_client_stats(a->kube);
	json_t *errs = json_array(), *counts = json_object();
	for (int r = 0; r < KRES_COUNT; r++) {
		json_object_set_new(counts, kube_res_name((enum kube_res)r),
				    json_integer((json_int_t)kube_client_count(a->kube, (enum kube_res)r)));
		const char *e = kube_client_error(a->kube, (enum kube_res)r);
		if (e)
			json_array_append_new(errs, json_sprintf("%s: %s", kube_res_name((enum kube_res)r), e));
	}
	return json_pack("{s:s, s:b, s:o, s:I, s:I, s:I, s:I, s:o, s:o}", "source", "kube", "api_synced",
			 kube_client_synced(a->kube), "cached", counts, "watches", (json_int_t)st->watches, "watch_restarts",
			 (json_int_t)st->watch_restarts, "relists", (json_int_t)st->relists, "rejected",
			 (json_int_t)st->rejected, "errors", errs, "drop_events",
			 a->cfg.drop_events ? drop_events_status(a->events) : json_false());
}

/* ---------- drops ---------- */

static void pod_name(const struct engine *e, const uint8_t *addr, uint8_t fam, char *ip, size_t iplen, char *pod,
		     size_t podlen)
{
	ip128 a;
	if (fam == 4)
		a = ip_from_v4((uint32_t)addr[0] << 24 | (uint32_t)addr[1] << 16 | (uint32_t)addr[2] << 8 | addr[3]);
	else {
		a.hi = a.lo = 0;
		for (int i = 0; i < 8; i++) {
			a.hi = a.hi << 8 | addr[i];
			a.lo = a.lo << 8 | addr[8 + i];
		}
	}
	ip_format(a, ip, iplen);
	struct pod *p = engine_pod_by_addr(e, a);
	if (p)
		snprintf(pod, podlen, "%s/%s", p->spec->ns, p->spec->name);
	else
		pod[0] = 0;
}

static const struct ir_group *group_by_id(const struct engine *e, uint32_t id)
{
	struct vec v = { 0 };
	const struct ir_group *g = NULL;
	engine_groups(e, &v);
	for (size_t i = 0; i < v.n && !g; i++)
		if (((struct ir_group *)v.v[i])->id == id)
			g = v.v[i];
	vec_free(&v);
	return g;
}

static json_t *drop_json(struct agent *a, const struct drop *d, bool explain);

/* The drop as an Event on the pod whose policies dropped it (agent/daemon/events.c). */
static void record_event(struct agent *a, const struct drop *d)
{
	bool in = d->dir == DIR_INGRESS;
	const char *pod = in ? d->dst_pod : d->src_pod, *peer_pod = in ? d->src_pod : d->dst_pod;
	const char *peer_ip = in ? d->src : d->dst, *slash = strchr(pod, '/');
	if (!slash)
		return; /* not a pod this agent knows (any more) */
	char ns[64], peer[224];
	snprintf(ns, sizeof(ns), "%.*s", (int)(slash - pod), pod);
	if (peer_pod[0])
		snprintf(peer, sizeof(peer), "%s (%s)", peer_pod, peer_ip);
	else
		snprintf(peer, sizeof(peer), "%s", peer_ip);
	struct drop_event ev = { ns, slash + 1, d->dir, peer, d->src_pod[0] ? d->src_pod : d->src,
				 d->dst_pod[0] ? d->dst_pod : d->dst, d->proto, d->dport, d->policies };
	drop_events_record(a->events, &ev);
}

static void on_drop(const struct nflog_pkt *p, void *arg)
{
	struct agent *a = arg;
	char dc, kind;
	unsigned gid = 0;
	/* "corral:i:g7 ": group chain 7; "corral:i:q ": a quarantined address */
	if (sscanf(p->prefix, "corral:%c:%c%u", &dc, &kind, &gid) < 2 || (kind != 'g' && kind != 'q'))
		return;
	struct drop *d = &a->ring[a->ndrops++ % DROP_RING];
	memset(d, 0, sizeof(*d));
	clock_gettime(CLOCK_REALTIME, &d->when);
	d->dir = dc == 'e' ? DIR_EGRESS : DIR_INGRESS;
	d->group = gid;
	d->proto = p->proto;
	d->dport = p->dport;
	pod_name(a->e, p->src, p->family, d->src, sizeof(d->src), d->src_pod, sizeof(d->src_pod));
	pod_name(a->e, p->dst, p->family, d->dst, sizeof(d->dst), d->dst_pod, sizeof(d->dst_pod));
	const struct ir_group *g = kind == 'g' ? group_by_id(a->e, gid) : NULL;
	size_t off = 0;
	if (kind == 'q')
		snprintf(d->policies, sizeof(d->policies), "none: the address is claimed by several pods (quarantined)");
	for (uint32_t i = 0; g && i < g->npol && off < sizeof(d->policies) - 1; i++) {
		char *name = report_policy_name(g->pols[i]->spec);
		int n = snprintf(d->policies + off, sizeof(d->policies) - off, "%s%s", i ? ", " : "", name);
		free(name);
		off += n > 0 ? (size_t)n : 0;
	}
	pthread_mutex_lock(&a->metrics.mu);
	a->metrics.drops[d->dir == DIR_EGRESS]++;
	pthread_mutex_unlock(&a->metrics.mu);
	if (a->events && a->cfg.drop_events && kind == 'g')
		record_event(a, d);
	for (int i = 0; i < a->nfollowers; i++) {
		json_t *o = drop_json(a, d, a->follow_explain[i]);
		char *line = json_dumps(o, JSON_COMPACT);
		json_decref(o);
		bool ok = dprintf(a->followers[i], "%s\n", line) > 0;
		free(line);
		if (!ok) {
			close(a->followers[i]);
			a->followers[i] = a->followers[--a->nfollowers];
			a->follow_explain[i] = a->follow_explain[a->nfollowers];
			i--;
		}
	}
}

/* ---------- explain, live ---------- */

static char *side_where(struct agent *a, const struct verdict *v, enum dir d)
{
	const struct dir_verdict *s = &v->side[d];
	if (!s->enforced || s->remote || !s->group)
		return NULL;
	char chain[32];
	uint64_t pk = 0, by = 0;
	dp_group_chain(s->group, chain, sizeof(chain));
	bool have = nft_chain_counters(a->nft, dp_table(a->dp), chain, &pk, &by) == 0;
	char *rule = s->allowed ? dp_rule_text(a->dp, s->group, s->by) : NULL;
	char *out;
	if (rule)
		out = xasprintf("chain %s of table inet %s, rule `%s`", chain, dp_table(a->dp), rule);
	else if (have)
		out = xasprintf("chain %s of table inet %s, default drop (counter: %llu packets, %llu bytes so far)", chain,
				dp_table(a->dp), (unsigned long long)pk, (unsigned long long)by);
	else
		out = xasprintf("chain %s of table inet %s (not in the kernel yet)", chain, dp_table(a->dp));
	free(rule);
	return out;
}

/* Explains src -> dst; text into *text, JSON returned. NULL + *text = error. */
static json_t *explain(struct agent *a, const char *srcs, const char *dsts, int proto, int port, char **text)
{
	struct endpoint src, dst;
	char *note = NULL;
	const char *bad = NULL;
	int rc = report_resolve(a->e, srcs, &src, &note);
	if (rc < 0)
		bad = srcs;
	else {
		free(note);
		note = NULL;
		if ((rc = report_resolve(a->e, dsts, &dst, &note)) < 0)
			bad = dsts;
	}
	if (bad) {
		*text = xasprintf("%s: %s%s%s", bad,
				  rc == -EINVAL ? "neither ns/pod, ns/app nor an IP address"
						: rc == -ENOENT ? "no such pod or application" : "no address",
				  note ? ": " : "", note ? note : "");
		free(note);
		return NULL;
	}
	free(note);
	report_default_port(&dst, &proto, &port);
	if (!proto)
		proto = PROTO_TCP;
	struct verdict v;
	policy_eval(a->e, &src, &dst, proto, port, &v);
	char *where[DIR_COUNT] = { side_where(a, &v, DIR_INGRESS), side_where(a, &v, DIR_EGRESS) };
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	report_explain_text(f, a->e, &src, &dst, proto, port, &v, (const char *const *)where);
	fclose(f);
	*text = buf;
	json_t *o = report_explain_json(a->e, &src, &dst, proto, port, &v, (const char *const *)where);
	free(where[0]);
	free(where[1]);
	verdict_free(&v);
	return o;
}

static json_t *drop_json(struct agent *a, const struct drop *d, bool with_explain)
{
	char ts[40];
	struct tm tm;
	gmtime_r(&d->when.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
	const char *pn = d->proto == 6 ? "TCP" : d->proto == 17 ? "UDP" : d->proto == 132 ? "SCTP" : "other";
	char *summary = xasprintf("%s %s %s -> %s %s/%u dropped at %s (isolated by %s)", ts, dir_name(d->dir),
				  d->src_pod[0] ? d->src_pod : d->src, d->dst_pod[0] ? d->dst_pod : d->dst, pn, d->dport,
				  dir_name(d->dir), d->policies[0] ? d->policies : "a group no longer present");
	json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:s, s:s}", "time", ts, "direction",
			      dir_name(d->dir), "source", d->src, "destination", d->dst, "source_pod", d->src_pod,
			      "destination_pod", d->dst_pod, "protocol", pn, "port", d->dport, "policies", d->policies,
			      "text", summary);
	free(summary);
	if (with_explain && (d->proto == 6 || d->proto == 17 || d->proto == 132)) {
		char *text = NULL;
		json_t *x = explain(a, d->src_pod[0] ? d->src_pod : d->src, d->dst_pod[0] ? d->dst_pod : d->dst,
				    d->proto, d->dport, &text);
		json_object_set_new(o, "explain", json_string(text ? text : ""));
		json_decref(x);
		free(text);
	}
	return o;
}

/* ---------- status ---------- */

static json_t *status(struct agent *a, char **text)
{
	json_t *errors = json_array();
	report_problems(a->e, errors);
	struct engine_unreadable u;
	engine_unreadable_counts(a->e, &u);
	size_t npols = engine_policy_count(a->e, KIND_NETPOL, true) + engine_policy_count(a->e, KIND_NETPOL, false) +
		       engine_policy_count(a->e, KIND_ACCESS, true) + engine_policy_count(a->e, KIND_ACCESS, false);
	size_t failclosed = u.namespaces + u.pods + u.policies[KIND_NETPOL] + u.policies[KIND_ACCESS];
	json_t *src = a->files ? src_files_status(a->files) : kube_status(a);
	json_t *ferr = json_object_get(src, "errors");
	size_t i;
	json_t *x;
	json_array_foreach(ferr, i, x) json_array_append(errors, x);
	char ts[40] = "never";
	if (a->last_time.tv_sec) {
		struct tm tm;
		gmtime_r(&a->last_time.tv_sec, &tm);
		strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
	}
	json_t *o = json_pack("{s:s, s:s, s:b, s:I, s:{s:I, s:I, s:I, s:I}, s:{s:s, s:b, s:I, s:I, s:I, s:I, s:f, s:s?}, s:o, s:I, s:O}",
			      "source", a->source_arg, "node", a->node, "synced", a->metrics.ready, "generation",
			      (json_int_t)a->generation, "objects", "namespaces", (json_int_t)engine_ns_count(a->e), "pods",
			      (json_int_t)engine_pod_count(a->e), "policies", (json_int_t)npols, "failclosed",
			      (json_int_t)failclosed, "last_transaction",
			      "time", ts, "full", a->last.full, "messages", (json_int_t)a->last.msgs, "elements_added",
			      (json_int_t)a->last.elems_added, "elements_deleted", (json_int_t)a->last.elems_deleted,
			      "elements_total", (json_int_t)a->last.elems_total, "duration_ms",
			      a->last.render_ms + a->last.apply_ms, "error", a->last_error, "errors", errors, "drops_seen",
			      (json_int_t)a->ndrops, "source_state", src);
	struct sbuf b = { 0 };
	sbuf_addf(&b, "node %s, source %s: %s\n", a->node, a->source_arg,
		  a->metrics.ready ? "synced, enforcing" : "not synced yet (a previous ruleset, if any, stays in force)");
	sbuf_addf(&b, "objects: %zu namespaces, %zu pods, %zu policies\n", engine_ns_count(a->e), engine_pod_count(a->e),
		  npols);
	if (failclosed)
		sbuf_addf(&b, "could not be read, enforced fail-closed: %zu objects (named under errors)\n", failclosed);
	sbuf_addf(&b, "last transaction: %s, %s, %u messages, +%llu/-%llu elements, %.2f ms; %llu elements in the table\n",
		  ts, a->last.full ? "full replace" : "update", a->last.msgs, (unsigned long long)a->last.elems_added,
		  (unsigned long long)a->last.elems_deleted, a->last.render_ms + a->last.apply_ms,
		  (unsigned long long)a->last.elems_total);
	if (a->last_error)
		sbuf_addf(&b, "last error: %s\n", a->last_error);
	sbuf_addf(&b, "drops seen: %llu\n", (unsigned long long)a->ndrops);
	if (json_array_size(errors)) {
		sbuf_add(&b, "errors:\n");
		json_array_foreach(errors, i, x) sbuf_addf(&b, "  %s\n", json_string_value(x));
	}
	json_decref(src);
	*text = sbuf_steal(&b);
	return o;
}

/* ---------- control socket ---------- */

static int ctl_open(const char *path, char **err)
{
	char *dir = xstrdup(path), *slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = 0;
		if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
			*err = xasprintf("control socket folder %s: %s", dir, strerror(errno));
			free(dir);
			return -1;
		}
	}
	free(dir);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path)) {
		*err = xasprintf("control socket path too long: %s", path);
		return -1;
	}
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	unlink(path);
	mode_t old = umask(0177); /* the socket is root's only: 0600 */
	int rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (rc < 0 || listen(fd, 16) < 0) {
		*err = xasprintf("control socket %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	chmod(path, 0600);
	return fd;
}

static void send_json(int fd, json_t *o)
{
	char *line = json_dumps(o, JSON_COMPACT);
	if (dprintf(fd, "%s\n", line) < 0) {
	}
	free(line);
}

static void reply(int fd, json_t *data, char *text, const char *error)
{
	json_t *o = json_pack("{s:b}", "ok", error == NULL);
	if (data)
		json_object_set_new(o, "data", data);
	if (text)
		json_object_set_new(o, "text", json_string(text));
	if (error)
		json_object_set_new(o, "error", json_string(error));
	send_json(fd, o);
	json_decref(o);
	free(text);
}

static bool ctl_handle(struct agent *a, int fd, json_t *req)
{
	const char *cmd = json_string_value(json_object_get(req, "cmd"));
	char *text = NULL;
	if (!cmd) {
		reply(fd, NULL, NULL, "request without cmd");
	} else if (!strcmp(cmd, "status")) {
		json_t *o = status(a, &text);
		reply(fd, o, text, NULL);
	} else if (!strcmp(cmd, "dump")) {
		char *t = dp_applied_text(a->dp);
		reply(fd, NULL, t, t ? NULL : "no ruleset applied yet");
	} else if (!strcmp(cmd, "explain")) {
		const char *s = json_string_value(json_object_get(req, "src"));
		const char *d = json_string_value(json_object_get(req, "dst"));
		const char *ps = json_string_value(json_object_get(req, "protocol"));
		int proto = ps ? proto_parse(ps) : 0;
		int port = (int)json_integer_value(json_object_get(req, "port"));
		if (!s || !d || proto < 0 || port < 0 || port > 65535) {
			reply(fd, NULL, NULL, "explain needs src, dst, and a valid port and protocol");
		} else {
			json_t *o = explain(a, s, d, proto, port, &text);
			if (o)
				reply(fd, o, text, NULL);
			else {
				reply(fd, NULL, NULL, text);
				free(text);
			}
		}
	} else if (!strcmp(cmd, "drops")) {
		bool ex = json_is_true(json_object_get(req, "explain"));
		uint64_t first = a->ndrops > DROP_RING ? a->ndrops - DROP_RING : 0;
		for (uint64_t i = first; i < a->ndrops; i++) {
			json_t *o = drop_json(a, &a->ring[i % DROP_RING], ex);
			send_json(fd, o);
			json_decref(o);
		}
		if (json_is_true(json_object_get(req, "follow")) && a->nfollowers < MAX_FOLLOWERS) {
			a->followers[a->nfollowers] = fd;
			a->follow_explain[a->nfollowers++] = ex;
			return true; /* kept open */
		}
		json_t *end = json_pack("{s:b}", "end", 1);
		send_json(fd, end);
		json_decref(end);
	} else {
		reply(fd, NULL, NULL, "unknown command (status, explain, drops, dump)");
	}
	return false;
}

static void ctl_accept(struct agent *a)
{
	int fd;
	while ((fd = accept4(a->ctl_fd, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
		struct timeval tv = { 1, 0 };
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		char buf[4096];
		size_t n = 0;
		ssize_t r;
		while (n < sizeof(buf) - 1 && (r = read(fd, buf + n, sizeof(buf) - 1 - n)) > 0) {
			n += (size_t)r;
			if (memchr(buf, '\n', n))
				break;
		}
		buf[n] = 0;
		json_error_t je;
		json_t *req = json_loads(buf, JSON_DISABLE_EOF_CHECK, &je);
		bool keep = false;
		if (!req)
			reply(fd, NULL, NULL, "malformed request");
		else
			keep = ctl_handle(a, fd, req);
		json_decref(req);
		if (!keep)
			close(fd);
	}
}

/* ---------- set-up ---------- */

/* The agent's own flags; settings of the configuration file that have a
 * flag (--debounce-ms, --log-level, ...) come from agent/daemon/config.c. */
#define AF(field) offsetof(struct agent, field)
static const struct aflag {
	const char *flag, *arg, *help;
	size_t off; /* a const char* of struct agent */
} agent_flags[] = {
	{ "--source", "files:DIR|kube", "where objects come from", AF(source_arg) },
	{ "--node-name", "NAME", "this node (default $NODE_NAME)", AF(node) },
	{ "--netns", "PATH", "enforce in this network namespace (kernel-facing sockets only)", AF(netns) },
	{ "--socket", "PATH", "control socket (default /run/corral/agent.sock)", AF(socket_path) },
	{ "--config", "FILE", "configuration file (re-read on SIGHUP)", AF(config_path) },
	{ "--kubeconfig", "FILE", "--source kube outside the cluster", AF(kubeconfig) },
	{ "--context", "NAME", "a context of the kubeconfig", AF(context) },
};
#undef AF

static void usage(FILE *f)
{
	fprintf(f, "usage: corral-agent --source files:DIR|kube [flags]\n  %-33s %s\n  %-33s %s\n", "--help",
		"this help", "--version", "the version");
	for (size_t i = 0; i < ARRAY_SIZE(agent_flags); i++) {
		char lhs[64];
		snprintf(lhs, sizeof(lhs), "%s %s", agent_flags[i].flag, agent_flags[i].arg);
		fprintf(f, "  %-33s %s\n", lhs, agent_flags[i].help);
	}
	agent_config_flags_help(f);
}

static int parse_args(struct agent *a, int argc, char **argv, bool only_config)
{
	for (int i = 1; i < argc; i++) {
		char *arg = argv[i], *val = strchr(arg, '=');
		char name[64];
		if (val) {
			snprintf(name, sizeof(name), "%.*s", (int)(val - arg), arg);
			val++;
		} else {
			snprintf(name, sizeof(name), "%s", arg);
			if (!strcmp(name, "-h") || !strcmp(name, "--help")) {
				usage(stdout);
				exit(0);
			}
			if (!strcmp(name, "--version")) {
				printf("corral-agent %s\n", CORRAL_VERSION);
				exit(0);
			}
			val = i + 1 < argc ? argv[++i] : NULL;
		}
		if (!val) {
			fprintf(stderr, "corral-agent: %s needs a value\n", name);
			return -1;
		}
		if (only_config != !strcmp(name, "--config"))
			continue;
		size_t k = 0;
		while (k < ARRAY_SIZE(agent_flags) && strcmp(agent_flags[k].flag, name))
			k++;
		if (k < ARRAY_SIZE(agent_flags)) {
			*(const char **)((char *)a + agent_flags[k].off) = val;
			continue;
		}
		char *err = NULL;
		int rc = agent_config_flag(&a->cfg, name, val, &err);
		if (rc == 0)
			continue;
		if (rc == -ENOENT)
			fprintf(stderr, "corral-agent: unknown flag %s\n", name);
		else
			fprintf(stderr, "corral-agent: %s\n", err);
		free(err);
		usage(stderr);
		return -1;
	}
	return 0;
}

static int load_config(struct agent *a, int argc, char **argv)
{
	char *err = NULL;
	agent_config_defaults(&a->cfg);
	if (parse_args(a, argc, argv, true) < 0)
		return -1;
	if (a->config_path && agent_config_load(&a->cfg, a->config_path, &err) < 0) {
		fprintf(stderr, "corral-agent: bad configuration, not starting: %s\n", err);
		free(err);
		return -1;
	}
	return parse_args(a, argc, argv, false); /* flags win over the file */
}

static void add_fd(struct agent *a, int fd)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };
	epoll_ctl(a->ep, EPOLL_CTL_ADD, fd, &ev);
}

static void reload(struct agent *a, int argc, char **argv)
{
	struct agent_config old = a->cfg;
	struct agent copy = *a;
	if (load_config(&copy, argc, argv) < 0) {
		agent_config_free(&copy.cfg); /* what was read before the refusal */
		log_msg(LOG_ERROR, "config", "reload refused, keeping the running configuration");
		return;
	}
	a->cfg = copy.cfg;
	log_setup(!strcmp(a->cfg.log_format, "json"), (enum log_level)log_level_parse(a->cfg.log_level));
	bool rebuild = strcmp(old.app_label, a->cfg.app_label) || old.dns_default != a->cfg.dns_default;
	bool rerender = old.log_rate != a->cfg.log_rate || old.log_burst != a->cfg.log_burst ||
			old.nflog_group != a->cfg.nflog_group;
	if (rebuild && a->kube) {
		log_msg(LOG_WARN, "config", "appLabel and dnsDefault changes need a restart with --source kube");
		rebuild = false;
	}
	if (rebuild) {
		/* the engine's settings are fixed at creation: load everything again */
		engine_free(a->e);
		a->e = new_engine(a);
		src_files_free(a->files);
		char *err = NULL;
		a->files = files_open(a, &err);
		if (!a->files) {
			log_msg(LOG_ERROR, "config", "%s", err);
			exit(1);
		}
		add_fd(a, src_files_fd(a->files));
		src_files_scan(a->files, a->e);
		update_gauges(a);
	}
	if (rebuild || rerender) {
		dp_free(a->dp);
		struct dp_config dc = { NULL, a->cfg.nflog_group, a->cfg.log_rate, a->cfg.log_burst };
		a->dp = dp_new(&dc);
		do_sync(a, true);
	}
	if (a->events)
		drop_events_set_rate(a->events, a->cfg.drop_events_per_minute);
	if (strcmp(old.metrics_address, a->cfg.metrics_address))
		log_msg(LOG_WARN, "config", "metricsAddress changes take effect at the next start");
	log_msg(LOG_INFO, "config", "reloaded%s", rebuild ? " (objects re-read)" : "");
	agent_config_free(&old);
}

int main(int argc, char **argv)
{
	static struct agent ag;
	struct agent *a = &ag;
	char *err = NULL;
	a->socket_path = "/run/corral/agent.sock";
	/* signals are read from a signalfd: block them before any thread
	 * (the metrics server's) starts, so that none takes the default action */
	sigset_t ss;
	sigemptyset(&ss);
	sigaddset(&ss, SIGTERM);
	sigaddset(&ss, SIGINT);
	sigaddset(&ss, SIGHUP);
	sigprocmask(SIG_BLOCK, &ss, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (load_config(a, argc, argv) < 0)
		return 2;
	log_setup(!strcmp(a->cfg.log_format, "json"), (enum log_level)log_level_parse(a->cfg.log_level));
	if (!a->node)
		a->node = getenv("NODE_NAME");
	if (!a->source_arg || !a->node || !*a->node) {
		fprintf(stderr, "corral-agent: %s is required\n", !a->source_arg ? "--source" : "--node-name (or $NODE_NAME)");
		usage(stderr);
		return 2;
	}
	bool kube = !strcmp(a->source_arg, "kube");
	if (!kube && (strncmp(a->source_arg, "files:", 6) || !a->source_arg[6])) {
		fprintf(stderr, "corral-agent: --source must be kube or files:DIR, not \"%s\"\n", a->source_arg);
		return 2;
	}
	/* 1. the network namespace to enforce in: the kernel-facing sockets
	 * (nftables, NFLOG, metrics) are made inside it; the process itself
	 * stays where it is, so that it reaches the API server from there */
	int self_ns = -1, target_ns = -1;
	if (a->netns) {
		self_ns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
		target_ns = open(a->netns, O_RDONLY | O_CLOEXEC);
		if (target_ns < 0 || setns(target_ns, CLONE_NEWNET) < 0) {
			fprintf(stderr, "corral-agent: --netns %s: %s\n", a->netns, strerror(errno));
			return 1;
		}
	}
	/* 2. netlink: nftables, then the drop listener (optional) */
	if (!(a->nft = nft_sock_open())) {
		fprintf(stderr, "corral-agent: netlink: %s\n", strerror(errno));
		return 1;
	}
	if (!(a->nflog = nflog_open(a->cfg.nflog_group, &err))) {
		log_msg(LOG_WARN, "drops", "%s: dropped flows will not be reported", err);
		free(err);
		err = NULL;
	}
	metrics_init(&a->metrics);
	if (metrics_start(&a->metrics, a->cfg.metrics_address, &err) < 0) {
		fprintf(stderr, "corral-agent: %s\n", err);
		return 1;
	}
	if (a->netns) {
		if (setns(self_ns, CLONE_NEWNET) < 0) {
			fprintf(stderr, "corral-agent: returning from --netns: %s\n", strerror(errno));
			return 1;
		}
		close(self_ns);
		close(target_ns);
	}
	/* 3. the source, read fully before anything is enforced */
	a->e = new_engine(a);
	if (kube ? kube_start(a, &err) < 0 : !(a->files = files_open(a, &err))) {
		fprintf(stderr, "corral-agent: %s\n", err);
		return 1;
	}
	/* 4. control socket and metrics */
	if ((a->ctl_fd = ctl_open(a->socket_path, &err)) < 0) {
		fprintf(stderr, "corral-agent: %s\n", err);
		return 1;
	}
	struct dp_config dc = { NULL, a->cfg.nflog_group, a->cfg.log_rate, a->cfg.log_burst };
	a->dp = dp_new(&dc);
	a->ring = xcalloc(DROP_RING, sizeof(*a->ring));
	/* 5. the event loop */
	a->sig_fd = signalfd(-1, &ss, SFD_CLOEXEC | SFD_NONBLOCK);
	a->sync_timer = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	a->scan_timer = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	a->ep = epoll_create1(EPOLL_CLOEXEC);
	add_fd(a, a->sig_fd);
	add_fd(a, a->sync_timer);
	add_fd(a, a->scan_timer);
	add_fd(a, a->ctl_fd);
	if (a->files)
		add_fd(a, src_files_fd(a->files));
	if (a->nflog)
		add_fd(a, nflog_fd(a->nflog));
	log_msg(LOG_INFO, "start", "node %s, source %s%s%s, control socket %s", a->node, a->source_arg,
		a->netns ? ", network namespace " : "", a->netns ? a->netns : "", a->socket_path);
	if (a->files) { /* the folder is read at once; the API client syncs below */
		scan(a);
		a->synced = true;
		do_sync(a, true);
	}
	while (!a->stop) {
		struct epoll_event evs[16];
		int n;
		if (a->kube) { /* curl's loop waits on the API and on our epoll */
			kube_client_step(a->kube, a->ep, 5000);
			n = epoll_wait(a->ep, evs, 16, 0);
		} else {
			n = epoll_wait(a->ep, evs, 16, 5000);
		}
		pthread_mutex_lock(&a->metrics.mu);
		a->metrics.heartbeat = time(NULL);
		a->metrics.source_errors = source_errors(a);
		if (a->kube) {
			a->metrics.watch_restarts = kube_client_stats(a->kube)->watch_restarts;
			a->metrics.relists = kube_client_stats(a->kube)->relists;
		}
		pthread_mutex_unlock(&a->metrics.mu);
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			uint64_t ticks;
			if (fd == a->sig_fd) {
				struct signalfd_siginfo si;
				while (read(a->sig_fd, &si, sizeof(si)) == sizeof(si)) {
					if (si.ssi_signo == SIGHUP)
						reload(a, argc, argv);
					else
						a->stop = true;
				}
			} else if (fd == a->sync_timer) {
				if (read(fd, &ticks, sizeof(ticks)) > 0) {
					a->sync_armed = false;
					do_sync(a, a->retry_ms > 0);
				}
			} else if (fd == a->scan_timer) {
				if (read(fd, &ticks, sizeof(ticks)) > 0) {
					a->scan_armed = false;
					scan(a);
				}
			} else if (fd == a->ctl_fd) {
				ctl_accept(a);
			} else if (a->files && fd == src_files_fd(a->files)) {
				if (src_files_drain(a->files))
					arm_scan(a, a->cfg.debounce_ms);
			} else if (a->nflog && fd == nflog_fd(a->nflog)) {
				nflog_read(a->nflog, on_drop, a);
			}
		}
	}
	/* fail-static: the ruleset stays; only our own resources go */
	log_msg(LOG_INFO, "stop", "exiting; the ruleset stays in the kernel until the next agent replaces it");
	metrics_stop(&a->metrics);
	for (int i = 0; i < a->nfollowers; i++)
		close(a->followers[i]);
	close(a->ctl_fd);
	unlink(a->socket_path);
	nflog_close(a->nflog);
	nft_sock_close(a->nft);
	src_files_free(a->files);
	dp_free(a->dp);
	engine_free(a->e);
	kube_client_free(a->kube);
	drop_events_free(a->events);
	free(a->last_error);
	free(a->ring);
	agent_config_free(&a->cfg);
	return 0;
}

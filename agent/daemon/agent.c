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
#include <poll.h>
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
#include "agent/daemon/ctl.h"
#include "agent/daemon/drops.h"
#include "agent/daemon/dns.h"
#include "agent/daemon/events.h"
#include "agent/dataplane/dataplane.h"
#include "agent/daemon/log.h"
#include "agent/daemon/metrics.h"
#include "agent/nl/nflog.h"
#include "agent/nl/conntrack.h"
#include "agent/nl/nft.h"
#include "agent/nl/route.h"
#include "agent/nl/link.h"
#include "agent/dataplane/bridge.h"
#include "agent/daemon/provisional.h"
#include "agent/report/report.h"
#include "agent/dataplane/revoke.h"
#include "agent/daemon/src_files.h"
#include "kube/client.h"

#define DROP_RING 1024

struct drop {
	struct timespec when;
	char src[48], dst[48], src_pod[160], dst_pod[160];
	uint8_t proto;
	uint16_t dport;
	enum dir dir;
	uint32_t group;
	char kind; /* 'g' a group's default drop, 'q' quarantined, 's' forged source, 'r' revoked flow,
		      'm' not addressed to the pod behind a bridge port,
		      'u' an address of a pod's interface the agent has not classified,
		      't' a TCP segment of no tracked connection that is no SYN */
	char policies[512];
};

struct agent {
	struct agent_config cfg;
	const char *config_path, *source_arg, *node, *netns, *socket_path, *kubeconfig, *context;
	const char *cleanup; /* --cleanup once|watch: remove the table instead of enforcing */
	struct kube_client *kube;
	struct drop_events *events; /* --source kube: drops as Events on pods */
	struct engine *e;
	struct dp *dp;
	struct nft_sock *nft;
	struct nft_sock *nft_ctr;    /* drop counters, read from the metrics thread */
	struct drop_counters *drops; /* exact drop counts (drops.h) */
	struct nflog *nflog;
	struct ct_sock *ct;       /* revocation: conntrack, and the node's addresses */
	struct route_sock *rt;
	struct link_watch *lw;   /* pod interfaces and addresses (libnl-3); NULL: not learned */
	struct dp_bridge *br;    /* table bridge corral: pods' bridge ports bound to their addresses */
	bool br_pending;         /* the bridge table is to be written (at start, after a failure) */
	struct prov *prov;       /* provisional verdicts of new local addresses (provisional.h) */
	char *br_error;
	char *br_notes;          /* addresses not bound to their port, and why (logged when they change) */
	size_t br_ports, br_bound;
	struct src_files *files;
	struct dns_proxy *dns;   /* DNS-aware egress (NULL: dnsProxyPort 0) */
	struct metrics metrics;
	int ep, sig_fd, sync_timer, scan_timer;
	struct ctl *ctl;
	int argc;
	char **argv;
	int self_ns, target_ns; /* --netns: where we are, where we enforce */
	int dns_ns;             /* the DNS proxy's copy of target_ns */
	bool synced, sync_armed, scan_armed, stop, kube_source;
	/* a read of this node's pods for provisional verdicts (provisional.h) */
	bool prov_reading;
	struct timespec prov_asked;
	double prov_retry_ms; /* after a failed read: not before this (mono_ms) */
	unsigned prov_failures; /* reads failed in a row */
	double last_revoke_ms;  /* the last revocation pass (mono_ms) */
	bool revoke_pending;    /* a narrowing transaction since, its pass held back (revokeIntervalMs) */
	uint32_t revoke_retry_ms; /* after a failed pass: the wait before the next (1 s, doubling to 30 s) */
	size_t revoked_live;    /* entries the last pass left marked revoked: while any, every transaction
				   that changed something has a pass (one may allow their flows again) */
	/* adaptive debounce: a change after a quiet debounceMs goes to the
	 * kernel at once; changes within debounceMs of the last transaction
	 * wait for its end and go together */
	double last_txn_ms;     /* monotonic, when the last transaction that sent something was acknowledged */
	double held_until;      /* monotonic: the pending changes' debounce hold ends (0: not held) */
	/* changes since the last transaction: when each came in (monotonic
	 * ms), by kind (metrics_change_kinds), for the latency histogram */
	struct changes {
		double *t;
		size_t n, cap;
	} changes[METRICS_CHANGE_KINDS];
	/* the first pending change's way in (CLOCK_MONOTONIC ms), logged at
	 * debug level with the transaction that carries it: where a change's
	 * latency goes, from the socket to the kernel's acknowledgement */
	struct change_trace {
		bool set;
		double woke, read, decoded, engine;
	} trace;
	uint64_t generation;
	/* last transaction */
	struct dp_stats last;
	struct timespec last_time;
	char *last_error;
	uint32_t retry_ms;
	/* revocation */
	uint64_t revoked, revocations, revocations_held;
	struct revoke_stats last_revoke;
	struct timespec last_revoke_time;
	char *revoke_error;
	uint32_t revoke_listed; /* flows of the current pass put in the drop ring */
	/* drops */
	struct drop *ring; /* DROP_RING entries */
	uint64_t ndrops;
	const struct drop *publishing; /* the entry ctl_publish is sending */
};

/* ---------- engine and transactions ---------- */

static struct engine *new_engine(struct agent *a)
{
	struct engine_config ec = { a->node, a->cfg.app_label, a->cfg.dns_default, a->cfg.pod_cidrs,
				    a->cfg.apiserver_addrs };
	return engine_new(&ec);
}

static void arm(int fd, uint32_t ms)
{
	struct itimerspec it = { { 0, 0 }, { ms / 1000, (long)(ms % 1000) * 1000000L + (ms ? 0 : 1) } };
	timerfd_settime(fd, 0, &it, NULL);
}

static double mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Timer fd to fire in ms at the latest: an armed one is moved earlier,
 * never later. */
static void arm_by(int fd, bool *armed, uint32_t ms)
{
	struct itimerspec cur;
	if (*armed && timerfd_gettime(fd, &cur) == 0 &&
	    (uint64_t)cur.it_value.tv_sec * 1000 + (uint64_t)cur.it_value.tv_nsec / 1000000 <= ms)
		return;
	arm(fd, ms);
	*armed = true;
}

/* A transaction in ms at the latest (a held revocation pass or a
 * debounced change must not wait for a retry's back-off). */
static void arm_sync_by(struct agent *a, uint32_t ms)
{
	arm_by(a->sync_timer, &a->sync_armed, ms);
}

/* Idle (no transaction in the last debounceMs): at once, once the events
 * already read are in the engine. Under load: debounceMs after the last
 * transaction, gathering what comes meanwhile. A transaction armed for
 * later (a revocation pass held back by revokeIntervalMs) is moved
 * earlier; one armed to retry a failed transaction keeps its back-off. */
static void want_sync(struct agent *a)
{
	if (!a->synced || (a->sync_armed && a->retry_ms))
		return;
	double now = mono_ms(), since = now - a->last_txn_ms;
	uint32_t wait = since >= a->cfg.debounce_ms ? 0 : (uint32_t)(a->cfg.debounce_ms - since) + 1;
	if (wait && !a->held_until) {
		a->held_until = now + wait;
		pthread_mutex_lock(&a->metrics.mu);
		a->metrics.batches_held++;
		pthread_mutex_unlock(&a->metrics.mu);
	}
	arm_sync_by(a, wait);
}

#define CHANGES_MAX 1000000 /* beyond this many pending (the kernel refusing), not timed */

static void change_in(struct agent *a, int kind, double t)
{
	struct changes *c = &a->changes[kind];
	if (!a->synced || c->n >= CHANGES_MAX) /* the initial lists are not changes */
		return;
	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 64;
		c->t = xrealloc(c->t, c->cap * sizeof(*c->t));
	}
	c->t[c->n++] = t;
}

/* The transaction carrying the pending changes started at start (monotonic
 * ms) and was acknowledged at now. A change that came in before the
 * debounce's hold ended was held back until then, or until start if that
 * came first. */
static void changes_done(struct agent *a, double start, double now)
{
	uint64_t n = 0;
	double hold_end = a->held_until < start ? a->held_until : start;
	a->held_until = 0;
	pthread_mutex_lock(&a->metrics.mu);
	for (int k = 0; k < METRICS_CHANGE_KINDS; k++) {
		struct changes *c = &a->changes[k];
		for (size_t i = 0; i < c->n; i++)
			metrics_observe_change_locked(&a->metrics, k, (now - c->t[i]) / 1e3,
						      hold_end > c->t[i] ? (hold_end - c->t[i]) / 1e3 : 0);
		n += c->n;
		c->n = 0;
	}
	a->metrics.batch_last = n;
	if (n > a->metrics.batch_max)
		a->metrics.batch_max = n;
	pthread_mutex_unlock(&a->metrics.mu);
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
	a->metrics.unreadable[4] = u.nodes;
	a->metrics.rejected = a->kube ? kube_client_stats(a->kube)->rejected : 0;
	pthread_mutex_unlock(&a->metrics.mu);
}

static void on_revoked(const struct revoked *r, void *arg);

/* After a transaction that may have removed an allow: the flows the new
 * ruleset would not admit have their conntrack entries marked, and dropped (revoke.h). */

static int do_revoke(struct agent *a)
{
	struct revoke_stats rs;
	a->revoke_listed = 0;
	int rc = revoke_flows(a->e, a->ct, a->rt, a->cfg.revoke_mark, on_revoked, a, &rs);
	clock_gettime(CLOCK_REALTIME, &a->last_revoke_time);
	a->last_revoke = rs;
	a->revocations++;
	a->revoked += rs.revoked;
	/* (only those this node judges: a pass may allow them again) */
	if (rc == 0)
		a->revoked_live = rs.kept + rs.revoked;
	else
		a->revoked_live += rs.revoked;
	free(a->revoke_error);
	a->revoke_error = rc < 0 ? xasprintf("revoking flows: %s", strerror(-rc)) : NULL;
	pthread_mutex_lock(&a->metrics.mu);
	a->metrics.revoked += rs.revoked;
	a->metrics.revoke_errors += rc < 0;
	pthread_mutex_unlock(&a->metrics.mu);
	if (rc < 0)
		log_msg(LOG_ERROR, "revoke", "%s; flows the policies stopped allowing may go on until a pass works (tried again "
			"after 1 s, 2 s ... 30 s)",
			a->revoke_error);
	else if (rs.revoked || rs.gone)
		log_msg(LOG_INFO, "revoke",
			"revoked %zu flows no longer allowed (%zu tracked, %zu touching local pods, %zu ended meanwhile), "
			"%zu revoked flows tracked, %.2f ms",
			rs.revoked, rs.tracked, rs.considered, rs.gone, a->revoked_live, rs.ms);
	else if (!rs.restored)
		log_msg(LOG_DEBUG, "revoke", "no flow to revoke (%zu tracked, %zu touching local pods), %.2f ms", rs.tracked,
			rs.considered, rs.ms);
	if (rc == 0 && rs.restored)
		log_msg(LOG_INFO, "revoke", "%zu revoked flows allowed again: they carry data again (%zu still revoked)",
			rs.restored, a->revoked_live);
	return rc;
}

/* The bridge table from the pod interfaces the node has now (bridge.h):
 * each bridged pod's port bound to the addresses in its namespace that
 * the API does not contradict (dp_bind_ports), and open when its pod is
 * not isolated for ingress. With sourceCheck off, or without the link
 * watch, no table. Run after each transaction of inet corral, so that a
 * new address meets its provisional verdict there before its port may
 * use it. */
static void bridge_sync(struct agent *a)
{
	size_t n = 0, no = 0, m = 0, bound = 0;
	const struct link_port *lp = a->lw && a->cfg.source_check ? link_watch_ports(a->lw, &n) : NULL;
	const struct link_other *lo = lp ? link_watch_bridge_others(a->lw, &no) : NULL;
	struct dp_bind bind;
	dp_bind_ports(&bind, a->e, lp, n, lo, no);
	for (size_t i = 0; i < n; i++)
		if (lp[i].kind == LINK_BRIDGED && lp[i].truncated)
			log_msg(LOG_WARN, "bridge", "port %s: its pod has more than %d addresses; the rest are dropped as forged",
				lp[i].name, LINK_PORT_ADDRS);
	for (size_t i = 0; i < bind.n; i++)
		if (!bind.ports[i].other) {
			m++;
			bound += bind.ports[i].naddr;
		}
	/* what is not bound, said once while it lasts */
	struct sbuf sb = { 0 };
	for (size_t i = 0; i < bind.notes.n; i++)
		sbuf_addf(&sb, "%s%s", i ? "; " : "", (const char *)bind.notes.v[i]);
	char *notes = sbuf_steal(&sb);
	if (notes && !*notes) {
		free(notes);
		notes = NULL;
	}
	if (notes && (!a->br_notes || strcmp(notes, a->br_notes)))
		log_msg(LOG_WARN, "bridge", "%s", notes);
	free(a->br_notes);
	a->br_notes = notes;
	char *err = NULL;
	struct dp_stats st;
	int rc = dp_bridge_sync(a->br, a->nft, bind.ports, bind.n, &st, &err);
	dp_bind_free(&bind);
	free(a->br_error);
	a->br_error = err;
	a->br_pending = rc < 0;
	if (rc < 0) {
		log_msg(LOG_ERROR, "bridge", "%s; retried at the next change", err);
		return;
	}
	if (st.msgs && (m != a->br_ports || bound != a->br_bound))
		log_msg(LOG_INFO, "bridge", "%zu pod ports bound to %zu addresses (table bridge %s)", m, bound,
			dp_bridge_table(a->br));
	a->br_ports = m;
	a->br_bound = bound;
}

_Static_assert(sizeof(struct link_addr) == sizeof(struct dp_port_addr), "link_addr and dp_port_addr differ");

/* A read of this node's pods came (provisional.h): the entries waiting
 * for it are decided at the next transaction. */
static void prov_read_in(void *arg, int rc, struct pod_spec **pods, size_t n, const char *err)
{
	struct agent *a = arg;
	a->prov_reading = false;
	if (rc < 0) {
		/* again after 1 s, 2 s, 4 s ... 30 s; said the first time and
		 * then about every 30 s */
		unsigned fails = ++a->prov_failures;
		int delay = fails >= 6 ? 30000 : 1000 << (fails - 1);
		if (fails == 1 || delay == 30000)
			log_msg(LOG_WARN, "provisional",
				"reading this node's pods: %s; new addresses stay denied, read again in %d s "
				"(%u failed in a row)",
				err, delay / 1000, fails);
		a->prov_retry_ms = mono_ms() + delay;
		arm_sync_by(a, (uint32_t)delay);
		return;
	}
	if (a->prov_failures)
		log_msg(LOG_INFO, "provisional", "reading this node's pods works again (after %u failures)",
			a->prov_failures);
	a->prov_failures = 0;
	if (!a->prov) { /* stopping */
		for (size_t i = 0; i < n; i++)
			pod_spec_free(pods[i]);
		free(pods);
		return;
	}
	prov_node_pods(a->prov, &a->prov_asked, pods, n);
	want_sync(a);
}

static void prov_read_start(struct agent *a)
{
	if (!a->kube || a->prov_reading || !prov_wants_read(a->prov) || mono_ms() < a->prov_retry_ms)
		return;
	clock_gettime(CLOCK_MONOTONIC, &a->prov_asked); /* before the request: never later than its answer */
	if (kube_client_node_pods(a->kube, a->node, prov_read_in, a) == 0)
		a->prov_reading = true;
}

/* The debug line of a transaction carrying a change: each stage's end,
 * CLOCK_MONOTONIC seconds (bench/flip.py lines them up with the API
 * server's and the probe's). */
static void trace_log(struct agent *a, double start, double dp0, const struct dp_stats *st, double done)
{
	if (!a->trace.set)
		return;
	const struct change_trace *t = &a->trace;
	double rendered = dp0 + st->render_ms, sent = rendered + st->before_ms + st->encode_ms;
	log_msg(LOG_DEBUG, "latency",
		"woke=%.6f read=%.6f decoded=%.6f engine=%.6f sync=%.6f dp=%.6f rendered=%.6f hook=%.6f sent=%.6f "
		"acked=%.6f done=%.6f",
		t->woke / 1e3, t->read / 1e3, t->decoded / 1e3, t->engine / 1e3, start / 1e3, dp0 / 1e3, rendered / 1e3,
		(rendered + st->before_ms) / 1e3, sent / 1e3, (sent + st->kernel_ms) / 1e3, done / 1e3);
	a->trace.set = false;
}

static void do_sync(struct agent *a, bool full)
{
	double start = mono_ms();
	update_gauges(a);
	struct dp_stats st;
	char *err = NULL;
	if (a->lw && a->prov) {
		/* new local addresses the API has not reported: in this same
		 * transaction as everything else (provisional.h) */
		size_t n, nd;
		ip128 *denied;
		const struct link_port *ports = link_watch_ports(a->lw, &n);
		prov_reconcile(a->prov, a->e, ports, n, a->cfg.deny_unexplained, &denied, &nd);
		dp_set_denied(a->dp, denied, nd);
		free(denied);
		prov_read_start(a);
		/* a read waiting out its back-off keeps a transaction armed for
		 * its end: a change that moved the timer earlier (want_sync)
		 * must not leave the retry to some later event */
		double now = mono_ms();
		if (!a->prov_reading && prov_wants_read(a->prov) && a->prov_retry_ms > now)
			arm_sync_by(a, (uint32_t)(a->prov_retry_ms - now) + 1);
		struct prov_stats ps;
		prov_stats(a->prov, &ps);
		pthread_mutex_lock(&a->metrics.mu);
		a->metrics.provisional = ps.entries;
		a->metrics.prov_resolved = ps.resolved;
		a->metrics.prov_seconds = ps.resolved_seconds;
		pthread_mutex_unlock(&a->metrics.mu);
	}
	/* once, before the first replace: what a previous agent learned, into
	 * the host sets of this node's groups, the twins' included (only the
	 * policies of groups have peer sets) */
	dns_restore(a->dns);
	if (a->lw) {
		/* the node's own interfaces: the others are checked as pods'
		 * (dataplane.h), in this same transaction */
		size_t ni;
		const char *const *names = link_watch_node_ifaces(a->lw, &ni);
		dp_set_node_ifaces(a->dp, names, ni, a->cfg.deny_unexplained);
	}
	double dp0 = mono_ms();
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
	if (a->br)
		bridge_sync(a);
	double now = mono_ms();
	/* only a transaction that wrote something holds the next change back
	 * (want_sync): a pod created before its address (an empty one) held
	 * the address that came 10 ms later for the rest of debounceMs */
	if (st.msgs || st.full)
		a->last_txn_ms = now;
	/* each change is in force once the kernel acknowledged the
	 * transaction (what follows, the old mirror freed, is not its wait);
	 * with the bridge table, once that one's is acknowledged too (a pod's
	 * port binding) */
	changes_done(a, start, !a->br && st.acked_at > 0 && st.acked_at < now ? st.acked_at : now);
	trace_log(a, start, dp0, &st, now);
	if (a->cfg.revoke_flows && a->ct && a->rt &&
	    (revoke_needed(&st) || a->revoke_pending || (a->revoked_live && (st.msgs || st.full)))) {
		/* one pass reads the whole conntrack table: under a burst of
		 * narrowing transactions (pod churn), one pass at most every
		 * revokeIntervalMs, the last one's changes included; a pass
		 * held back runs when the interval is over, change or not */
		/* a pass only to retry a failed one waits its back-off; one a
		 * change needs, the interval */
		double since = mono_ms() - a->last_revoke_ms;
		uint32_t wait = !revoke_needed(&st) && a->revoke_retry_ms > a->cfg.revoke_interval_ms
					? a->revoke_retry_ms
					: a->cfg.revoke_interval_ms;
		if (since >= wait) {
			a->revoke_pending = false;
			if (do_revoke(a) < 0) {
				/* (the kernel refused, or a dump lost entries):
				 * flows it should have stopped may go on, so
				 * again after 1 s, 2 s ... 30 s, change or not */
				a->revoke_retry_ms = a->revoke_retry_ms ? a->revoke_retry_ms * 2 : 1000;
				if (a->revoke_retry_ms > 30000)
					a->revoke_retry_ms = 30000;
				if (a->revoke_retry_ms < a->cfg.revoke_interval_ms)
					a->revoke_retry_ms = a->cfg.revoke_interval_ms;
				a->revoke_pending = true;
				arm_sync_by(a, a->revoke_retry_ms);
			} else {
				a->revoke_retry_ms = 0;
			}
			a->last_revoke_ms = mono_ms();
		} else {
			a->revocations_held += !a->revoke_pending;
			a->revoke_pending = true;
			arm_sync_by(a, (uint32_t)(wait - since) + 1);
		}
	}
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

/* ---------- exact drop counts (drops.h) ---------- */

static void commit_before(const struct dp_txn *t, void *arg)
{
	struct agent *a = arg;
	if (a->drops)
		drop_counters_before(a->drops, t);
}

/* The chains that drop, and what each counts into: a group's chain its
 * policies (all of the pod's namespace), the quarantine and forged-source
 * chains a reason of their own. */
static void drop_labels(struct agent *a, const struct dp_txn *t, struct vec *labels, struct vec *strs)
{
	struct vec groups = { 0 };
	if (!t->bridge)
		engine_groups(a->e, &groups);
	for (size_t i = 0; i < groups.n; i++) {
		const struct ir_group *g = groups.v[i];
		if (g->nmeet)
			continue; /* drops nothing itself: the groups it meets do */
		char chain[40];
		struct sbuf pols = { 0 };
		dp_group_chain(g, chain, sizeof(chain));
		for (uint32_t k = 0; k < g->npol; k++)
			sbuf_addf(&pols, "%s%s/%s", k ? "," : "", policy_kind_name(g->pols[k]->spec->kind),
				  g->pols[k]->spec->name);
		char *p = sbuf_steal(&pols);
		vec_push(strs, p);
		/* and its return variant, where a provisional address meets it */
		for (int r = 0; r < (g->dir == DIR_INGRESS && g->meet_refs ? 2 : 1); r++) {
			struct dc_label *l = xcalloc(1, sizeof(*l));
			char *c = r ? xasprintf("%s%s", chain, DP_RETURN_SUFFIX) : xstrdup(chain);
			vec_push(strs, c);
			*l = (struct dc_label){ c, dir_name(g->dir), "policy", g->npol ? g->pols[0]->spec->ns : "", p };
			vec_push(labels, l);
		}
	}
	vec_free(&groups);
	if (t->bridge) { /* table bridge corral: its two dropping chains, while it exists */
		static const struct dc_label br[] = { { DP_FORGED_CHAIN, "egress", "forged-source", "", "" },
						      { DP_BR_MISADDRESSED, "ingress", "misaddressed", "", "" } };
		bool exists = true;
		for (size_t i = 0; i < t->n; i++)
			if (t->ops[i].kind == OP_TABLE_DEL || t->ops[i].kind == OP_CHAIN_ADD)
				exists = t->ops[i].kind == OP_CHAIN_ADD;
		for (size_t i = 0; exists && i < ARRAY_SIZE(br); i++) {
			struct dc_label *l = xcalloc(1, sizeof(*l));
			*l = br[i];
			vec_push(labels, l);
		}
		return;
	}
	for (int d = 0; d < DIR_COUNT; d++) {
		struct dc_label *l = xcalloc(1, sizeof(*l));
		*l = (struct dc_label){ dp_quarantine_chain[d], dir_name((enum dir)d), "quarantine", "", "" };
		vec_push(labels, l);
	}
	if (a->cfg.source_check) {
		struct dc_label *l = xcalloc(1, sizeof(*l));
		*l = (struct dc_label){ DP_FORGED_CHAIN, "egress", "forged-source", "", "" };
		vec_push(labels, l);
	}
	struct dc_label *u = xcalloc(1, sizeof(*u));
	*u = (struct dc_label){ DP_UNTRACKED_CHAIN, "egress", "untracked", "", "" };
	vec_push(labels, u);
	for (int d = 0; a->lw && a->cfg.deny_unexplained && d < DIR_COUNT; d++) {
		struct dc_label *l = xcalloc(1, sizeof(*l));
		*l = (struct dc_label){ dp_unclassified_chain[d], dir_name((enum dir)d), "unclassified", "", "" };
		vec_push(labels, l);
	}
}

static void commit_after(const struct dp_txn *t, int rc, void *arg)
{
	struct agent *a = arg;
	if (!a->drops)
		return;
	bool chains = false;
	for (size_t i = 0; i < t->n && !chains; i++)
		chains = t->ops[i].kind == OP_CHAIN_ADD || t->ops[i].kind == OP_CHAIN_DEL || t->ops[i].kind == OP_TABLE_DEL;
	if (rc < 0 || !chains) {
		drop_counters_after(a->drops, t, rc, NULL, 0);
		return;
	}
	struct vec labels = { 0 }, strs = { 0 };
	drop_labels(a, t, &labels, &strs);
	struct dc_label *l = xcalloc(labels.n ? labels.n : 1, sizeof(*l));
	for (size_t i = 0; i < labels.n; i++)
		l[i] = *(struct dc_label *)labels.v[i];
	drop_counters_after(a->drops, t, rc, l, labels.n);
	free(l);
	for (size_t i = 0; i < labels.n; i++)
		free(labels.v[i]);
	for (size_t i = 0; i < strs.n; i++)
		free(strs.v[i]);
	vec_free(&labels);
	vec_free(&strs);
}

static void drops_metrics(struct sbuf *out, void *arg)
{
	drop_counters_format(arg, out);
}

/* The data plane, with the drop counters' hooks (at start and on reload). */
static struct dp *make_dp(struct agent *a)
{
	struct dp_config dc = { NULL, a->cfg.nflog_group, a->cfg.log_rate, a->cfg.log_burst, !a->cfg.source_check,
				dns_dp_config(a->dns), a->cfg.revoke_mark };
	struct dp *dp = dp_new(&dc);
	dp_set_commit_hook(dp, &(struct dp_commit_hook){ commit_before, commit_after, a });
	return dp;
}

static struct dp_bridge *make_bridge(struct agent *a)
{
	struct dp_config dc = { NULL, a->cfg.nflog_group, a->cfg.log_rate, a->cfg.log_burst, !a->cfg.source_check, NULL,
				a->cfg.revoke_mark };
	struct dp_bridge *b = dp_bridge_new(&dc);
	dp_bridge_set_commit_hook(b, &(struct dp_commit_hook){ commit_before, commit_after, a });
	return b;
}

/* A scan in ms at the latest: an armed timer is moved earlier, never later
 * (a stream of events must not postpone the scan for ever). */
static void arm_scan(struct agent *a, uint32_t ms)
{
	arm_by(a->scan_timer, &a->scan_armed, ms);
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
	double t = mono_ms();
	change_in(a, r == KRES_NAMESPACES ? 0 : r == KRES_PODS ? 1 : 2, t);
	bool first = a->synced && !a->trace.set;
	if (first) {
		const struct kube_stats *ks = kube_client_stats(a->kube);
		a->trace = (struct change_trace){ true, ks->woke_s * 1e3, ks->read_s * 1e3, t, 0 };
	}
	if (new) {
		kube_obj_ref(r, new);
		if (r == KRES_NAMESPACES)
			engine_ns_upsert(a->e, new);
		else if (r == KRES_PODS)
			engine_pod_upsert(a->e, new);
		else if (r == KRES_NODES || r == KRES_APISERVER)
			engine_node_upsert(a->e, new); /* an apiserver EndpointSlice: node_spec.apiserver */
		else
			engine_policy_upsert(a->e, new);
	} else if (r == KRES_NAMESPACES) {
		engine_ns_delete(a->e, ((const struct ns_spec *)old)->name);
	} else if (r == KRES_NODES) {
		engine_node_delete(a->e, ((const struct node_spec *)old)->name);
	} else if (r == KRES_APISERVER) {
		engine_apiserver_slice_delete(a->e, ((const struct node_spec *)old)->name);
	} else if (r == KRES_PODS) {
		const struct pod_spec *p = old;
		engine_pod_delete(a->e, p->ns, p->name);
	} else {
		const struct policy_spec *p = old;
		engine_policy_delete(a->e, p->kind, p->ns, p->name);
	}
	if (first)
		a->trace.engine = mono_ms();
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
	json_t *errs = json_array(), *counts = json_object(), *changes = json_object();
	for (int r = 0; r < KRES_COUNT; r++) {
		json_object_set_new(counts, kube_res_name((enum kube_res)r),
				    json_integer((json_int_t)kube_client_count(a->kube, (enum kube_res)r)));
		json_object_set_new(changes, kube_res_name((enum kube_res)r),
				    json_integer((json_int_t)kube_client_changes(a->kube, (enum kube_res)r)));
		const char *e = kube_client_error(a->kube, (enum kube_res)r);
		if (e)
			json_array_append_new(errs, json_sprintf("%s: %s", kube_res_name((enum kube_res)r), e));
	}
	return json_pack("{s:s, s:b, s:o, s:o, s:I, s:I, s:I, s:I, s:I, s:o, s:o}", "source", "kube", "api_synced",
			 kube_client_synced(a->kube), "cached", counts, "watch_changes", changes, "watches", (json_int_t)st->watches, "watch_restarts",
			 (json_int_t)st->watch_restarts, "relists", (json_int_t)st->relists, "events",
			 (json_int_t)st->events, "rejected", (json_int_t)st->rejected, "errors", errs, "drop_events",
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

/* The ring's next entry, zeroed and stamped. */
static struct drop *drop_next(struct agent *a)
{
	struct drop *d = &a->ring[a->ndrops++ % DROP_RING];
	memset(d, 0, sizeof(*d));
	clock_gettime(CLOCK_REALTIME, &d->when);
	return d;
}

static void group_policies(const struct ir_group *g, char *out, size_t len)
{
	size_t off = 0;
	for (uint32_t i = 0; g && i < g->npol && off < len - 1; i++) {
		char *name = report_policy_name(g->pols[i]->spec);
		int n = snprintf(out + off, len - off, "%s%s", i ? ", " : "", name);
		free(name);
		off += n > 0 ? (size_t)n : 0;
	}
}

static json_t *publish_line(void *arg, bool explain)
{
	struct agent *a = arg;
	return drop_json(a, a->publishing, explain);
}

/* Sends a new ring entry to every `drops --follow` that keeps up (ctl.h:
 * one that does not loses lines, counted; the loop never waits for it). */
static void drop_publish(struct agent *a, const struct drop *d)
{
	if (!a->ctl || !ctl_followers(a->ctl))
		return;
	a->publishing = d;
	ctl_publish(a->ctl, publish_line, a);
	a->publishing = NULL;
	pthread_mutex_lock(&a->metrics.mu);
	a->metrics.drop_lines_lost = ctl_lost(a->ctl);
	pthread_mutex_unlock(&a->metrics.mu);
}

static void ip_bytes(ip128 a, uint8_t *out, uint8_t *fam)
{
	*fam = ip_is_v4(a) ? 4 : 6;
	if (*fam == 4) {
		uint32_t v = ip_v4(a);
		out[0] = (uint8_t)(v >> 24), out[1] = (uint8_t)(v >> 16), out[2] = (uint8_t)(v >> 8), out[3] = (uint8_t)v;
		return;
	}
	for (int i = 0; i < 8; i++) {
		out[i] = (uint8_t)(a.hi >> (56 - 8 * i));
		out[8 + i] = (uint8_t)(a.lo >> (56 - 8 * i));
	}
}

/* A flow whose conntrack entry was marked revoked: listed with the drops (the
 * first REVOKE_LISTED of a pass, so that one big change does not push
 * every drop out of the ring; the metric and status count them all). */
#define REVOKE_LISTED 256
static void on_revoked(const struct revoked *r, void *arg)
{
	struct agent *a = arg;
	if (a->revoke_listed++ >= REVOKE_LISTED)
		return;
	struct drop *d = drop_next(a);
	uint8_t s[16], t[16], fam;
	d->kind = 'r';
	d->dir = r->dir;
	d->proto = r->proto;
	d->dport = r->dport;
	d->group = r->group ? r->group->id : 0;
	ip_bytes(r->src, s, &fam);
	ip_bytes(r->dst, t, &fam);
	pod_name(a->e, s, fam, d->src, sizeof(d->src), d->src_pod, sizeof(d->src_pod));
	pod_name(a->e, t, fam, d->dst, sizeof(d->dst), d->dst_pod, sizeof(d->dst_pod));
	if (!r->group)
		snprintf(d->policies, sizeof(d->policies), "none: the address is claimed by several pods (quarantined)");
	group_policies(r->group, d->policies, sizeof(d->policies));
	drop_publish(a, d);
}

static void on_drop(const struct nflog_pkt *p, void *arg)
{
	struct agent *a = arg;
	char dc, kind;
	unsigned gid = 0;
	/* "corral:i:g7 ": group chain 7; "corral:i:q ": a quarantined address;
	 * "corral:e:s ": a forged source address; "corral:i:m ": a frame to an
	 * ingress-isolated pod's bridge port not addressed to the pod;
	 * "corral:e:u ", "corral:i:u ": a pod's interface, an address the agent
	 * has not classified; "corral:e:t ": a TCP segment of no tracked
	 * connection that is no SYN */
	if (sscanf(p->prefix, "corral:%c:%c%u", &dc, &kind, &gid) < 2 ||
	    (kind != 'g' && kind != 'q' && kind != 's' && kind != 'm' && kind != 'u' && kind != 't'))
		return;
	struct drop *d = drop_next(a);
	d->dir = dc == 'e' ? DIR_EGRESS : DIR_INGRESS;
	d->group = gid;
	d->kind = kind;
	d->proto = p->proto;
	d->dport = p->dport;
	pod_name(a->e, p->src, p->family, d->src, sizeof(d->src), d->src_pod, sizeof(d->src_pod));
	pod_name(a->e, p->dst, p->family, d->dst, sizeof(d->dst), d->dst_pod, sizeof(d->dst_pod));
	const struct ir_group *g = kind == 'g' ? group_by_id(a->e, gid) : NULL;
	if (kind == 'q')
		snprintf(d->policies, sizeof(d->policies), "none: the address is claimed by several pods (quarantined)");
	if (kind == 's')
		snprintf(d->policies, sizeof(d->policies),
			 "none: forged source, the address does not route back through the interface it came from");
	if (kind == 'm')
		snprintf(d->policies, sizeof(d->policies),
			 "none: not addressed to the pod (broadcast, multicast or another address), which is isolated for "
			 "ingress");
	if (kind == 't')
		snprintf(d->policies, sizeof(d->policies),
			 "none: a TCP segment of no tracked connection that is not a SYN (a flow a policy change revoked, or "
			 "a connection conntrack no longer holds)");
	if (kind == 'u')
		snprintf(d->policies, sizeof(d->policies),
			 "none: unclassified address, the %s of a pod's interface that no pod the agent knows has yet",
			 d->dir == DIR_EGRESS ? "source" : "destination");
	group_policies(g, d->policies, sizeof(d->policies));
	if (a->dns && kind == 'g' && d->dir == DIR_EGRESS) {
		ip128 s4, d4;
		if (ip_parse(d->src, &s4) == 0 && ip_parse(d->dst, &d4) == 0)
			dns_note_drop(a->dns, s4, d4);
	}
	pthread_mutex_lock(&a->metrics.mu);
	a->metrics.drop_logs[d->dir == DIR_EGRESS]++;
	pthread_mutex_unlock(&a->metrics.mu);
	if (a->events && a->cfg.drop_events && kind == 'g')
		record_event(a, d);
	drop_publish(a, d);
}

/* ---------- explain, live ---------- */

static char *side_where(struct agent *a, const struct verdict *v, enum dir d, const ip128 *peer)
{
	const struct dir_verdict *s = &v->side[d];
	if (!s->enforced || s->remote || !s->group)
		return NULL;
	char chain[32];
	uint64_t pk = 0, by = 0;
	dp_group_chain(s->group, chain, sizeof(chain));
	bool have = nft_chain_counters(a->nft, dp_table(a->dp), chain, &pk, &by) == 0;
	char *rule = s->allowed ? dp_rule_text(a->dp, s->group, s->by, peer) : NULL;
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
	const char *host = NULL;
	if (rc < 0)
		bad = srcs;
	else {
		free(note);
		note = NULL;
		if ((rc = report_resolve(a->e, dsts, &dst, &note)) == -EINVAL && fqdn_pattern_ok(dsts)) {
			/* a host name: the address the pod's answers gave for it */
			memset(&dst, 0, sizeof(dst));
			if ((rc = dns_name_addr(a->e, &src, dsts, &dst.addr, &note)) == 0)
				host = dsts;
		}
		if (rc < 0)
			bad = dsts;
	}
	if (bad) {
		*text = xasprintf("%s: %s%s%s", bad,
				  rc == -EINVAL ? "neither ns/pod, ns/app, an IP address nor a host name"
				  : rc == -ENOENT ? (note && bad == dsts && fqdn_pattern_ok(dsts) ? "DENIED" : "no such pod or application")
						  : "no address",
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
	char *where[DIR_COUNT] = { side_where(a, &v, DIR_INGRESS, &src.addr), side_where(a, &v, DIR_EGRESS, &dst.addr) };
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (host)
		fprintf(f, "%s: the address the pod's DNS answers gave for it\n", host);
	report_explain_text(f, a->e, &src, &dst, proto, port, &v, (const char *const *)where);
	json_t *o = report_explain_json(a->e, &src, &dst, proto, port, &v, (const char *const *)where);
	if (host || !dst.pod || (src.pod && src.pod->group[DIR_EGRESS] && dns_group_has_hosts(src.pod->group[DIR_EGRESS])))
		dns_explain(a->dns, a->e, &src, &dst, &v, f, o);
	if (host)
		json_object_set_new(o, "host", json_string(host));
	for (int k = 0; k < 2; k++) {
		const struct endpoint *ep = k ? &dst : &src;
		const char *why = prov_why(a->prov, ep->addr);
		if (why) {
			char as[IP_STRLEN];
			ip_format(ep->addr, as, sizeof(as));
			fprintf(f, "%s is provisional (the API has not reported it yet): %s\n", as, why);
			json_object_set_new(o, k ? "destination_provisional" : "source_provisional", json_string(why));
		}
	}
	fclose(f);
	*text = buf;
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
	const char *pn = d->proto == PROTO_TCP || d->proto == PROTO_UDP || d->proto == PROTO_SCTP ? proto_name(d->proto)
													 : "other";
	const char *dst = d->dst_pod[0] ? d->dst_pod : d->dst;
	char *summary;
	if (d->kind == 's') /* the source names whose address was used, not who sent it */
		summary = xasprintf("%s forged source %s%s%s%s -> %s %s/%u dropped: the address does not route back "
				    "through the interface the packet came from", ts, d->src, d->src_pod[0] ? " (the address of " : "",
				    d->src_pod, d->src_pod[0] ? ")" : "", dst, pn, d->dport);
	else if (d->kind == 'm')
		summary = xasprintf("%s %s -> %s %s/%u dropped at %s's bridge port: not addressed to it (broadcast, "
				    "multicast or another address) while it is isolated for ingress",
				    ts, d->src_pod[0] ? d->src_pod : d->src, d->dst, pn, d->dport,
				    d->dst_pod[0] ? d->dst_pod : "the pod");
	else if (d->kind == 't')
		summary = xasprintf("%s %s -> %s %s/%u dropped: a TCP segment of no tracked connection that is not a SYN "
				    "(a flow a policy change revoked, or a connection conntrack no longer holds); a new "
				    "connection meets the policies",
				    ts, d->src_pod[0] ? d->src_pod : d->src, dst, pn, d->dport);
	else if (d->kind == 'u')
		summary = xasprintf("%s unclassified address: %s -> %s %s/%u dropped: the %s address of a pod's interface "
				    "that the agent has not classified yet (a new pod before its transaction)", ts,
				    d->src_pod[0] ? d->src_pod : d->src, dst, pn, d->dport,
				    d->dir == DIR_EGRESS ? "source" : "destination");
	else
		summary = xasprintf("%s %s %s -> %s %s/%u %s at %s (isolated by %s)", ts, dir_name(d->dir),
				    d->src_pod[0] ? d->src_pod : d->src, dst, pn, d->dport,
				    d->kind == 'r' ? "flow revoked" : "dropped", dir_name(d->dir),
				    d->policies[0] ? d->policies : "a group no longer present");
	static const char *const kinds[] = { ['g'] = "policy", ['q'] = "quarantine", ['s'] = "forged-source",
					     ['r'] = "revoked", ['m'] = "misaddressed", ['u'] = "unclassified",
					     ['t'] = "untracked" };
	json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:s, s:s}", "time", ts, "kind",
			      kinds[(unsigned char)d->kind] ? kinds[(unsigned char)d->kind] : "policy", "direction",
			      dir_name(d->dir), "source", d->src, "destination", d->dst, "source_pod", d->src_pod,
			      "destination_pod", d->dst_pod, "protocol", pn, "port", d->dport, "policies", d->policies,
			      "text", summary);
	free(summary);
	if (with_explain && d->kind != 's' && d->kind != 'm' && d->kind != 'u' && d->kind != 't' &&
	    (d->proto == PROTO_TCP || d->proto == PROTO_UDP || d->proto == PROTO_SCTP)) {
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

static json_t *revoke_status(const struct agent *a)
{
	const struct revoke_stats *r = &a->last_revoke;
	return json_pack("{s:b, s:I, s:I, s:I, s:b, s:I, s:{s:I, s:I, s:I, s:I, s:I, s:f}, s:s?}", "enabled",
			 a->cfg.revoke_flows && a->ct && a->rt, "revoked_total", (json_int_t)a->revoked, "passes",
			 (json_int_t)a->revocations, "passes_held_back", (json_int_t)a->revocations_held, "pending",
			 a->revoke_pending, "still_revoked", (json_int_t)a->revoked_live, "last", "tracked",
			 (json_int_t)r->tracked, "considered", (json_int_t)r->considered, "revoked", (json_int_t)r->revoked,
			 "restored", (json_int_t)r->restored, "gone", (json_int_t)r->gone,
			 "duration_ms", r->ms, "error", a->revoke_error);
}

static void revoke_text(const struct agent *a, struct sbuf *b)
{
	if (!a->cfg.revoke_flows || !a->ct || !a->rt) {
		sbuf_add(b, "flow revocation: off (connections a change stops allowing go on until they end)\n");
		return;
	}
	sbuf_addf(b, "flows revoked: %llu", (unsigned long long)a->revoked);
	if (a->revocations) {
		char ts[40];
		struct tm tm;
		gmtime_r(&a->last_revoke_time.tv_sec, &tm);
		strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
		sbuf_addf(b, " (last pass %s: %zu of %zu tracked flows, %.2f ms)", ts, a->last_revoke.revoked,
			  a->last_revoke.tracked, a->last_revoke.ms);
	}
	sbuf_add(b, "\n");
	if (a->revoke_error)
		sbuf_addf(b, "last revocation error: %s\n", a->revoke_error);
}

static json_t *links_status(const struct agent *a)
{
	struct link_stats st = { 0 };
	json_t *node = json_array();
	size_t ni = 0;
	const char *const *names = a->lw ? link_watch_node_ifaces(a->lw, &ni) : NULL;
	if (a->lw)
		link_watch_stats(a->lw, &st);
	for (size_t i = 0; i < ni; i++)
		json_array_append_new(node, json_string(names[i]));
	json_t *o = json_pack("{s:b, s:b, s:I, s:I, s:I, s:I, s:b, s:{s:I, s:I, s:I, s:I}, s:s?}", "watching", a->lw != NULL,
			 "polling", st.polling,
			 "routed", (json_int_t)st.routed, "bridged", (json_int_t)st.bridged, "bridge_ports_bound",
			 (json_int_t)a->br_ports, "bridge_addresses_bound", (json_int_t)a->br_bound, "bridge_table",
			 a->br && dp_bridge_text_present(a->br), "caches", "links", (json_int_t)st.links, "addresses",
			 (json_int_t)st.addrs, "routes", (json_int_t)st.routes, "neighbours", (json_int_t)st.neighbours,
			 "bridge_error", a->br_error);
	/* the interfaces not listed are checked as pods' (dataplane.h) */
	json_object_set_new(o, "node_interfaces", node);
	json_object_set_new(o, "unclassified_check", json_boolean(a->lw && a->cfg.deny_unexplained));
	return o;
}

static void links_text(const struct agent *a, struct sbuf *b)
{
	if (!a->lw) {
		sbuf_add(b, "pod interfaces: not watched (rtnetlink unavailable): with a bridged CNI a pod may send "
			    "with a neighbour's address\n");
		return;
	}
	struct link_stats st;
	link_watch_stats(a->lw, &st);
	sbuf_addf(b, "pod interfaces: %zu routed, %zu bridged", st.routed, st.bridged);
	if (st.polling && st.bridged)
		sbuf_add(b, " (pods' namespaces read every 100 ms: no CAP_NET_BROADCAST to hear them)");
	if (!a->cfg.source_check)
		sbuf_add(b, " (sourceCheck off: bridge ports not bound)\n");
	else if (a->br_ports)
		sbuf_addf(b, "; %zu bridge ports bound to %zu addresses (table bridge %s)\n", a->br_ports, a->br_bound,
			  dp_bridge_table(a->br));
	else
		sbuf_add(b, "\n");
	if (a->br_error)
		sbuf_addf(b, "bridge table error: %s\n", a->br_error);
	size_t ni;
	const char *const *names = link_watch_node_ifaces(a->lw, &ni);
	sbuf_addf(b, "node interfaces: %zu (", ni);
	for (size_t i = 0; i < ni; i++)
		sbuf_addf(b, "%s%s", i ? " " : "", names[i]);
	sbuf_addf(b, "); every other interface is a pod's:%s%s\n",
		  a->cfg.source_check ? " its packets to the node carry its own source" : "",
		  a->cfg.deny_unexplained ? (a->cfg.source_check ? "; an address no pod has yet (unclassified) is dropped"
								: " an address no pod has yet (unclassified) is dropped")
					  : (a->cfg.source_check ? "" : " (no check: sourceCheck and denyUnexplainedAddresses off)"));
}

/* Change latency (event in -> transaction acknowledged) by kind, and how
 * changes were batched: JSON, and lines for the text. */
static json_t *changes_status(struct agent *a, struct sbuf *b)
{
	json_t *o = json_object();
	pthread_mutex_lock(&a->metrics.mu);
	const struct metrics *m = &a->metrics;
	for (int k = 0; k < METRICS_CHANGE_KINDS; k++) {
		const struct metrics_hist *h = &m->change[METRICS_WHOLE][k], *w = &m->change[METRICS_WORK][k];
		uint64_t n = h->le[METRICS_BUCKETS];
		double p50 = metrics_quantile(h, 0.5) * 1e3, p99 = metrics_quantile(h, 0.99) * 1e3;
		double wp50 = metrics_quantile(w, 0.5) * 1e3, wp99 = metrics_quantile(w, 0.99) * 1e3;
		json_object_set_new(o, metrics_change_kinds[k],
				    n ? json_pack("{s:I, s:f, s:f, s:f, s:{s:f, s:f, s:f}}", "count", (json_int_t)n, "p50_ms",
						  p50, "p99_ms", p99, "max_ms", h->max * 1e3, "debounce_excluded",
						  "p50_ms", wp50, "p99_ms", wp99, "max_ms", w->max * 1e3)
				      : json_pack("{s:I}", "count", (json_int_t)0));
		if (n)
			sbuf_addf(b,
				  "%s changes to the kernel: %llu, p50 <= %.2f ms, p99 <= %.2f ms, max %.2f ms; "
				  "the debounce's hold excluded: p50 <= %.2f ms, p99 <= %.2f ms, max %.2f ms\n",
				  metrics_change_kinds[k], (unsigned long long)n, p50, p99, h->max * 1e3, wp50, wp99,
				  w->max * 1e3);
	}
	json_object_set_new(o, "last_transaction", json_integer((json_int_t)m->batch_last));
	json_object_set_new(o, "most_in_one_transaction", json_integer((json_int_t)m->batch_max));
	json_object_set_new(o, "transactions_held", json_integer((json_int_t)m->batches_held));
	json_object_set_new(o, "debounce_ms", json_integer(a->cfg.debounce_ms));
	sbuf_addf(b, "changes per transaction: %llu last, %llu at most; %llu transactions held %u ms to gather changes\n",
		  (unsigned long long)m->batch_last, (unsigned long long)m->batch_max,
		  (unsigned long long)m->batches_held, a->cfg.debounce_ms);
	pthread_mutex_unlock(&a->metrics.mu);
	return o;
}

static json_t *status(struct agent *a, char **text)
{
	struct sbuf b0 = { 0 };
	json_t *errors = json_array();
	report_problems(a->e, errors);
	struct engine_unreadable u;
	engine_unreadable_counts(a->e, &u);
	size_t npols = engine_policy_count(a->e, KIND_NETPOL, true) + engine_policy_count(a->e, KIND_NETPOL, false) +
		       engine_policy_count(a->e, KIND_ACCESS, true) + engine_policy_count(a->e, KIND_ACCESS, false);
	size_t failclosed = u.namespaces + u.pods + u.policies[KIND_NETPOL] + u.policies[KIND_ACCESS] + u.nodes;
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
	json_object_set_new(o, "revocation", revoke_status(a));
	json_object_set_new(o, "interfaces", links_status(a));
	struct sbuf ptext = { 0 };
	if (a->prov)
		json_object_set_new(o, "provisional", prov_status(a->prov, &ptext));
	json_object_set_new(o, "changes", changes_status(a, &b0));
	if (a->dns) {
		char *t = NULL;
		json_object_set_new(o, "dns", dns_status(a->dns, &t));
		free(t);
	}
	json_object_set_new(o, "drop_followers", json_integer((json_int_t)ctl_followers(a->ctl)));
	json_object_set_new(o, "drop_lines_lost", json_integer((json_int_t)ctl_lost(a->ctl)));
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
	sbuf_addf(&b, "drops seen: %llu; %zu following, %llu lines lost by followers that did not keep up\n",
		  (unsigned long long)a->ndrops, ctl_followers(a->ctl), (unsigned long long)ctl_lost(a->ctl));
	revoke_text(a, &b);
	links_text(a, &b);
	if (a->prov && a->lw) {
		struct prov_stats ps;
		prov_stats(a->prov, &ps);
		sbuf_addf(&b, "provisional addresses: %zu (%llu resolved so far, %.3f s provisional in all)\n%s", ps.entries,
			  (unsigned long long)ps.resolved, ps.resolved_seconds, ptext.s ? ptext.s : "");
	}
	free(ptext.s);
	sbuf_add(&b, b0.s ? b0.s : "");
	sbuf_free(&b0);
	dns_status_line(a->dns, &b);
	if (json_array_size(errors)) {
		sbuf_add(&b, "errors:\n");
		json_array_foreach(errors, i, x) sbuf_addf(&b, "  %s\n", json_string_value(x));
	}
	json_decref(src);
	*text = sbuf_steal(&b);
	return o;
}

/* ---------- control socket commands ---------- */

static void cmd_status(void *arg, struct ctl_client *c, json_t *req)
{
	char *text = NULL;
	json_t *o = status(arg, &text);
	ctl_reply(c, o, text, NULL);
}

static void cmd_dump(void *arg, struct ctl_client *c, json_t *req)
{
	struct agent *a = arg;
	char *t = dp_applied_text(a->dp), *b = a->br ? dp_bridge_text(a->br) : NULL;
	if (t && b) { /* the bridge table after inet corral, as `nft list ruleset` would */
		char *both = xasprintf("%s\n%s", t, b);
		free(t);
		t = both;
	}
	free(b);
	ctl_reply(c, NULL, t, t ? NULL : "no ruleset applied yet");
}

static void cmd_explain(void *arg, struct ctl_client *c, json_t *req)
{
	const char *s = json_string_value(json_object_get(req, "src"));
	const char *d = json_string_value(json_object_get(req, "dst"));
	const char *ps = json_string_value(json_object_get(req, "protocol"));
	int proto = ps ? proto_parse(ps) : 0;
	json_int_t port = json_integer_value(json_object_get(req, "port"));
	char *text = NULL;
	if (!s || !d || proto < 0 || port < 0 || port > 65535) {
		ctl_reply(c, NULL, NULL, "explain needs src, dst, and a valid port and protocol");
		return;
	}
	json_t *o = explain(arg, s, d, proto, (int)port, &text);
	if (o) {
		ctl_reply(c, o, text, NULL);
	} else {
		ctl_reply(c, NULL, NULL, text);
		free(text);
	}
}

static void cmd_drops(void *arg, struct ctl_client *c, json_t *req)
{
	struct agent *a = arg;
	bool ex = json_is_true(json_object_get(req, "explain"));
	uint64_t first = a->ndrops > DROP_RING ? a->ndrops - DROP_RING : 0;
	for (uint64_t i = first; i < a->ndrops; i++) {
		json_t *o = drop_json(a, &a->ring[i % DROP_RING], ex);
		ctl_send(c, o);
		json_decref(o);
	}
	if (json_is_true(json_object_get(req, "follow"))) {
		ctl_follow(c, ex);
		return;
	}
	json_t *end = json_pack("{s:b}", "end", 1);
	ctl_send(c, end);
	json_decref(end);
}

static void cmd_dns(void *arg, struct ctl_client *c, json_t *req)
{
	struct agent *a = arg;
	char *text = NULL;
	if (!a->dns) {
		ctl_reply(c, NULL, NULL, "the DNS proxy is off (dnsProxyPort 0): host rules admit nothing");
		return;
	}
	json_t *o = dns_status(a->dns, &text);
	ctl_reply(c, o, text, NULL);
}

static const struct ctl_cmd ctl_cmds[] = {
	{ "status", cmd_status },
	{ "dns", cmd_dns },
	{ "explain", cmd_explain },
	{ "drops", cmd_drops },
	{ "dump", cmd_dump },
};

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
	{ "--cleanup", "once|watch", "remove table inet corral and exit (once), or keep it removed until stopped (watch)",
	  AF(cleanup) },
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

static int add_fd(struct agent *a, int fd)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };
	return epoll_ctl(a->ep, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
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
	bool rebuild = strcmp(old.app_label, a->cfg.app_label) || old.dns_default != a->cfg.dns_default ||
		       strcmp(old.pod_cidrs, a->cfg.pod_cidrs) || strcmp(old.apiserver_addrs, a->cfg.apiserver_addrs);
	bool rerender = old.log_rate != a->cfg.log_rate || old.log_burst != a->cfg.log_burst ||
			old.nflog_group != a->cfg.nflog_group || old.source_check != a->cfg.source_check ||
			old.deny_unexplained != a->cfg.deny_unexplained;
	if (rebuild && a->kube) {
		log_msg(LOG_WARN, "config", "appLabels, dnsDefault, podCidrs and apiServerAddresses changes need a restart "
					    "with --source kube");
		rebuild = false;
	}
	if (rebuild) {
		/* the engine's settings are fixed at creation: load everything again */
		prov_free(a->prov, a->e);
		a->prov = prov_new(a->kube_source);
		engine_free(a->e);
		a->e = new_engine(a);
		src_files_free(a->files);
		char *err = NULL;
		a->files = files_open(a, &err);
		if (!a->files) {
			log_msg(LOG_ERROR, "config", "%s", err);
			exit(1);
		}
		if (add_fd(a, src_files_fd(a->files)) < 0)
			log_msg(LOG_ERROR, "config", "watching the folder again: %s", strerror(errno));
		src_files_scan(a->files, a->e);
		update_gauges(a);
	}
	if (rebuild || rerender) {
		dp_free(a->dp);
		a->dp = make_dp(a);
		dp_bridge_free(a->br);
		a->br = make_bridge(a);
		a->br_pending = true;
		do_sync(a, true);
	}
	if (a->events)
		drop_events_set_rate(a->events, a->cfg.drop_events_per_minute);
	if (strcmp(old.metrics_address, a->cfg.metrics_address))
		log_msg(LOG_WARN, "config", "metricsAddress changes take effect at the next start");
	if (old.revoke_mark != a->cfg.revoke_mark) {
		/* the flows revoked so far carry the old bits: the ruleset keeps
		 * dropping those while this agent runs */
		log_msg(LOG_WARN, "config", "revokeMark changes take effect at the next start");
		a->cfg.revoke_mark = old.revoke_mark;
	}
	log_msg(LOG_INFO, "config", "reloaded%s", rebuild ? " (objects re-read)" : "");
	agent_config_free(&old);
}

/* ---------- modules, started in this order and stopped in reverse ---------- */

/* 1. the network namespace to enforce in: the kernel-facing sockets
 * (nftables, NFLOG, conntrack, metrics) are made inside it; the process
 * goes back where it was, so that it reaches the API server from there */
static int netns_enter(struct agent *a, char **err)
{
	a->self_ns = a->target_ns = -1;
	if (!a->netns)
		return 0;
	a->self_ns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	a->target_ns = open(a->netns, O_RDONLY | O_CLOEXEC);
	if (a->self_ns < 0 || a->target_ns < 0 || setns(a->target_ns, CLONE_NEWNET) < 0) {
		int e = errno;
		*err = xasprintf("--netns %s: %s", a->netns, strerror(e));
		return -e;
	}
	return 0;
}

static void netns_close(struct agent *a)
{
	if (a->self_ns >= 0)
		close(a->self_ns);
	if (a->target_ns >= 0)
		close(a->target_ns);
	a->self_ns = a->target_ns = -1;
}

/* 2. netlink: nftables (required), the drop listener and the sockets of
 * revocation (optional: without them the agent enforces, and says what
 * it cannot do) */
static int netlink_init(struct agent *a, char **err)
{
	if (!(a->nft = nft_sock_open())) {
		int e = errno;
		*err = xasprintf("netlink (nftables): %s", strerror(e));
		return -e;
	}
	if (a->cleanup) /* nothing but nftables: no drops to hear, no flows to judge */
		return 0;
	if (!(a->nft_ctr = nft_sock_open()))
		log_msg(LOG_WARN, "drops", "netlink (nftables, counters): %s: drop counts will not be served",
			strerror(errno));
	char *why = NULL;
	if (!(a->nflog = nflog_open(a->cfg.nflog_group, &why))) {
		log_msg(LOG_WARN, "drops", "%s: dropped flows will not be reported", why);
		free(why);
	}
	if (!(a->ct = ct_sock_open()) || !(a->rt = route_sock_open()))
		log_msg(LOG_WARN, "revoke", "netlink: %s: flows a change stops allowing will go on until they end",
			strerror(errno));
	if (!(a->lw = link_watch_open(&why))) {
		log_msg(LOG_WARN, "bridge", "%s: pod interfaces are not learned, and with a bridged CNI a pod can send "
			"with the address of another pod on its bridge", why);
		free(why);
	}
	return 0;
}

static void netlink_exit(struct agent *a)
{
	nflog_close(a->nflog);
	nft_sock_close(a->nft);
	nft_sock_close(a->nft_ctr);
	ct_sock_close(a->ct);
	route_sock_close(a->rt);
	link_watch_close(a->lw);
	a->lw = NULL;
	a->nflog = NULL, a->nft = NULL, a->nft_ctr = NULL, a->ct = NULL, a->rt = NULL;
}

/* 3. metrics and health, still inside the namespace */
static int metrics_init_mod(struct agent *a, char **err)
{
	metrics_init(&a->metrics);
	if (a->cleanup && strcmp(a->cleanup, "watch"))
		return 0; /* --cleanup once: nobody to probe it */
	return metrics_start(&a->metrics, a->cfg.metrics_address, err);
}

static void metrics_exit(struct agent *a)
{
	metrics_stop(&a->metrics);
}

/* 3b. the DNS proxy's sockets, inside the namespace too (its upstream TCP
 * connections are made there later, through a copy of its handle) */
static void dns_metrics_cb(void *arg, struct sbuf *b)
{
	dns_metrics(arg, b);
}

static int dns_init(struct agent *a, char **err)
{
	int ns = a->target_ns >= 0 ? dup(a->target_ns) : -1;
	struct dns_ctx ctx = { &a->e, &a->dp, &a->nft, ns };
	int rc = dns_proxy_new(&a->dns, &a->cfg, &ctx, err);
	if (rc < 0 || !a->dns) {
		if (ns >= 0)
			close(ns);
		return rc;
	}
	a->dns_ns = ns;
	a->metrics.more = dns_metrics_cb;
	a->metrics.more_arg = a->dns;
	return 0;
}

static void dns_exit(struct agent *a)
{
	a->metrics.more = NULL;
	dns_proxy_free(a->dns);
	if (a->dns_ns >= 0)
		close(a->dns_ns);
	a->dns = NULL;
	a->dns_ns = -1;
}

/* 4. back to where the process started */
static int netns_leave(struct agent *a, char **err)
{
	if (a->netns && setns(a->self_ns, CLONE_NEWNET) < 0) {
		int e = errno;
		*err = xasprintf("returning from --netns: %s", strerror(e));
		return -e;
	}
	netns_close(a);
	return 0;
}

/* 5. the source, read fully before anything is enforced */
static int source_init(struct agent *a, char **err)
{
	a->e = new_engine(a);
	if (a->kube_source)
		return kube_start(a, err);
	return (a->files = files_open(a, err)) ? 0 : -EINVAL;
}

static void source_exit(struct agent *a)
{
	src_files_free(a->files);
	kube_client_free(a->kube);
	drop_events_free(a->events); /* waits for a write under way (5 s at most) */
	engine_free(a->e);
	a->files = NULL, a->kube = NULL, a->events = NULL, a->e = NULL;
}

/* 6. the control socket */
static int ctl_init(struct agent *a, char **err)
{
	return ctl_new(&a->ctl, a->socket_path, ctl_cmds, ARRAY_SIZE(ctl_cmds), a, err);
}

static void ctl_exit(struct agent *a)
{
	ctl_free(a->ctl);
	a->ctl = NULL;
}

/* 7. the data plane and the drop ring */
static int dataplane_init(struct agent *a, char **err)
{
	a->dp = make_dp(a);
	a->br = make_bridge(a);
	a->br_pending = true; /* written after the first transaction */
	a->prov = prov_new(a->kube_source);
	a->ring = xcalloc(DROP_RING, sizeof(*a->ring));
	if (a->nft_ctr) {
		a->drops = drop_counters_new(a->nft_ctr, dp_table(a->dp));
		metrics_set_extra(&a->metrics, drops_metrics, a->drops);
	}
	return 0;
}

static void dataplane_exit(struct agent *a)
{
	metrics_set_extra(&a->metrics, NULL, NULL); /* no scrape reads the counters any more */
	drop_counters_free(a->drops);
	a->drops = NULL;
	prov_free(a->prov, a->e);
	a->prov = NULL;
	dp_free(a->dp);
	dp_bridge_free(a->br);
	free(a->br_error);
	free(a->br_notes);
	free(a->ring);
	a->dp = NULL, a->ring = NULL, a->br = NULL, a->br_error = NULL, a->br_notes = NULL;
}

/* 8. the event loop's descriptors */
static int loop_init(struct agent *a, char **err)
{
	sigset_t ss;
	sigemptyset(&ss);
	sigaddset(&ss, SIGTERM);
	sigaddset(&ss, SIGINT);
	sigaddset(&ss, SIGHUP);
	a->sig_fd = signalfd(-1, &ss, SFD_CLOEXEC | SFD_NONBLOCK);
	a->sync_timer = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	a->scan_timer = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	a->ep = epoll_create1(EPOLL_CLOEXEC);
	int rc = a->sig_fd < 0 || a->sync_timer < 0 || a->scan_timer < 0 || a->ep < 0 ? -errno : 0;
	int fds[] = { a->sig_fd, a->sync_timer, a->scan_timer, ctl_fd(a->ctl),
		      a->files ? src_files_fd(a->files) : -1, a->nflog ? nflog_fd(a->nflog) : -1, dns_fd(a->dns),
		      a->lw ? link_watch_fd(a->lw) : -1 };
	for (size_t i = 0; !rc && i < ARRAY_SIZE(fds); i++)
		if (fds[i] >= 0)
			rc = add_fd(a, fds[i]);
	if (rc < 0)
		*err = xasprintf("event loop: %s", strerror(-rc));
	return rc;
}

static void loop_exit(struct agent *a)
{
	int *fds[] = { &a->sig_fd, &a->sync_timer, &a->scan_timer, &a->ep };
	for (size_t i = 0; i < ARRAY_SIZE(fds); i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);
		*fds[i] = -1;
	}
}

static const struct module {
	const char *name;
	int (*init)(struct agent *a, char **err);
	void (*exit)(struct agent *a);
} modules[] = {
	{ "network namespace", netns_enter, netns_close },
	{ "netlink", netlink_init, netlink_exit },
	{ "metrics", metrics_init_mod, metrics_exit },
	{ "DNS proxy", dns_init, dns_exit },
	{ "network namespace", netns_leave, NULL },
	{ "source", source_init, source_exit },
	{ "control socket", ctl_init, ctl_exit },
	{ "data plane", dataplane_init, dataplane_exit },
	{ "event loop", loop_init, loop_exit },
};

/* --cleanup: the network namespace, nftables and, to be probed, /readyz */
static const struct module cleanup_modules[] = {
	{ "network namespace", netns_enter, netns_close },
	{ "netlink", netlink_init, netlink_exit },
	{ "metrics", metrics_init_mod, metrics_exit },
	{ "network namespace", netns_leave, NULL },
};

static void modules_exit(struct agent *a, const struct module *mods, size_t started)
{
	while (started--)
		if (mods[started].exit)
			mods[started].exit(a);
}

/* 0 and every module of mods started, or -1 with those started stopped again. */
static int modules_init(struct agent *a, const struct module *mods, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char *err = NULL;
		if (mods[i].init(a, &err) < 0) {
			fprintf(stderr, "corral-agent: %s: %s\n", mods[i].name, err ? err : "failed");
			free(err);
			modules_exit(a, mods, i);
			return -1;
		}
	}
	return 0;
}

/* ---------- the event loop ---------- */

static void on_signals(struct agent *a)
{
	struct signalfd_siginfo si;
	while (read(a->sig_fd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGHUP)
			reload(a, a->argc, a->argv);
		else
			a->stop = true;
	}
}

static bool timer_fired(int fd)
{
	uint64_t ticks;
	return read(fd, &ticks, sizeof(ticks)) > 0;
}

static void on_fd(struct agent *a, int fd)
{
	if (fd == a->sig_fd) {
		on_signals(a);
	} else if (fd == a->sync_timer && timer_fired(fd)) {
		a->sync_armed = false;
		do_sync(a, a->retry_ms > 0);
	} else if (fd == a->scan_timer && timer_fired(fd)) {
		a->scan_armed = false;
		scan(a);
	} else if (fd == ctl_fd(a->ctl)) {
		ctl_dispatch(a->ctl);
	} else if (a->files && fd == src_files_fd(a->files)) {
		if (src_files_drain(a->files))
			arm_scan(a, a->cfg.debounce_ms);
	} else if (a->nflog && fd == nflog_fd(a->nflog)) {
		nflog_read(a->nflog, on_drop, a);
	} else if (a->dns && fd == dns_fd(a->dns)) {
		dns_dispatch(a->dns);
	} else if (a->lw && fd == link_watch_fd(a->lw)) {
		/* a pod's interface or addresses changed: its port's bindings now,
		 * not after the debounce (its first frames depend on them) */
		if (link_watch_dispatch(a->lw) && a->metrics.ready) {
			/* a new pod's address gets its provisional verdict now, and
			 * its port's bindings after it (do_sync) */
			do_sync(a, a->retry_ms > 0);
		}
	}
}

static void heartbeat(struct agent *a)
{
	pthread_mutex_lock(&a->metrics.mu);
	a->metrics.heartbeat = time(NULL);
	a->metrics.source_errors = source_errors(a);
	if (a->kube) {
		a->metrics.watch_restarts = kube_client_stats(a->kube)->watch_restarts;
		a->metrics.relists = kube_client_stats(a->kube)->relists;
	}
	pthread_mutex_unlock(&a->metrics.mu);
}

static void run(struct agent *a)
{
	if (a->files) { /* the folder is read at once; the API client syncs in the loop */
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
		heartbeat(a);
		for (int i = 0; i < n; i++)
			on_fd(a, evs[i].data.fd);
	}
}

/* ---------- --cleanup: uninstalling ---------- */

/* Removes table inet corral if it is there: 1 removed, 0 none, or -errno. */
static int remove_table(struct agent *a)
{
	struct nft_chain_ctr *ctr;
	size_t n;
	{
		/* table bridge corral (bridge.h) first, whatever inet corral's
		 * state: add then delete, one transaction */
		struct dp_op bops[] = { { .kind = OP_TABLE_ADD }, { .kind = OP_TABLE_DEL } };
		struct dp_txn bt = { .table = "corral", .bridge = true, .ops = bops, .n = 2, .cap = 2 };
		struct nft_txn_info binfo;
		char *berr = NULL;
		int brc = nft_txn_commit(a->nft, &bt, &binfo, &berr);
		if (brc < 0)
			log_msg(brc == -EAFNOSUPPORT || brc == -EOPNOTSUPP ? LOG_DEBUG : LOG_ERROR, "cleanup",
				"deleting table bridge corral: %s", berr ? berr : strerror(-brc));
		free(berr);
	}
	int rc = nft_table_exists(a->nft, "corral");
	if (rc <= 0) {
		if (rc < 0)
			log_msg(LOG_ERROR, "cleanup", "looking for table inet corral: %s", strerror(-rc));
		return rc;
	}
	if ((rc = nft_table_counters(a->nft, "corral", false, &ctr, &n)) < 0) {
		log_msg(LOG_ERROR, "cleanup", "reading table inet corral: %s", strerror(-rc));
		return rc;
	}
	uint64_t dropped = 0;
	for (size_t i = 0; i < n; i++)
		dropped += ctr[i].packets;
	nft_chain_ctrs_free(ctr, n);
	/* add then delete: one transaction that succeeds whether or not the
	 * table went meanwhile */
	struct dp_op ops[] = { { .kind = OP_TABLE_ADD }, { .kind = OP_TABLE_DEL } };
	struct dp_txn t = { .table = "corral", .ops = ops, .n = 2, .cap = 2 };
	struct nft_txn_info info;
	char *err = NULL;
	rc = nft_txn_commit(a->nft, &t, &info, &err);
	if (rc < 0) {
		log_msg(LOG_ERROR, "cleanup", "deleting table inet corral: %s", err ? err : strerror(-rc));
		free(err);
		return rc;
	}
	log_msg(LOG_INFO, "cleanup", "removed table inet corral (%zu chains, %llu packets dropped since it was made): "
		"this node enforces no corral policy any more", n, (unsigned long long)dropped);
	return 1;
}

/* --cleanup once: remove and exit. --cleanup watch (the uninstall
 * DaemonSet): remove, answer /readyz, and remove it again if something
 * makes it again (an agent still stopping on this node) until SIGTERM. */
static int cleanup_main(struct agent *a)
{
	if (modules_init(a, cleanup_modules, ARRAY_SIZE(cleanup_modules)) < 0) {
		agent_config_free(&a->cfg);
		return 1;
	}
	int rc = remove_table(a);
	if (rc == 0)
		log_msg(LOG_INFO, "cleanup", "no table inet corral on this node: nothing to remove");
	bool watch = !strcmp(a->cleanup, "watch");
	if (watch && rc >= 0) {
		pthread_mutex_lock(&a->metrics.mu);
		a->metrics.ready = true;
		pthread_mutex_unlock(&a->metrics.mu);
		sigset_t ss;
		sigemptyset(&ss);
		sigaddset(&ss, SIGTERM);
		sigaddset(&ss, SIGINT);
		int sfd = signalfd(-1, &ss, SFD_CLOEXEC);
		struct pollfd p = { sfd, POLLIN, 0 };
		while (sfd >= 0 && poll(&p, 1, 2000) == 0) {
			pthread_mutex_lock(&a->metrics.mu);
			a->metrics.heartbeat = time(NULL);
			pthread_mutex_unlock(&a->metrics.mu);
			if (remove_table(a) > 0)
				log_msg(LOG_WARN, "cleanup", "table inet corral was made again (an agent still running on this "
					"node?), and removed again");
		}
		if (sfd >= 0)
			close(sfd);
	}
	modules_exit(a, cleanup_modules, ARRAY_SIZE(cleanup_modules));
	agent_config_free(&a->cfg);
	return rc < 0 ? 1 : 0;
}

/* Checks what the flags say before anything starts: 0, or the exit code. */
static int check_args(struct agent *a)
{
	if (!a->node)
		a->node = getenv("NODE_NAME");
	if (a->cleanup && strcmp(a->cleanup, "once") && strcmp(a->cleanup, "watch")) {
		fprintf(stderr, "corral-agent: --cleanup must be once or watch, not \"%s\"\n", a->cleanup);
		return 2;
	}
	if (a->cleanup)
		return 0; /* no source, no node: it only removes the table */
	if (!a->source_arg || !a->node || !*a->node) {
		fprintf(stderr, "corral-agent: %s is required\n", !a->source_arg ? "--source" : "--node-name (or $NODE_NAME)");
		usage(stderr);
		return 2;
	}
	a->kube_source = !strcmp(a->source_arg, "kube");
	if (!a->kube_source && (strncmp(a->source_arg, "files:", 6) || !a->source_arg[6])) {
		fprintf(stderr, "corral-agent: --source must be kube or files:DIR, not \"%s\"\n", a->source_arg);
		return 2;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static struct agent ag;
	struct agent *a = &ag;
	a->socket_path = "/run/corral/agent.sock";
	a->argc = argc;
	a->argv = argv;
	a->sig_fd = a->sync_timer = a->scan_timer = a->ep = a->dns_ns = -1;
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
	int rc = check_args(a);
	if (rc)
		return rc;
	if (a->cleanup)
		return cleanup_main(a);
	if (modules_init(a, modules, ARRAY_SIZE(modules)) < 0) {
		agent_config_free(&a->cfg);
		return 1;
	}
	log_msg(LOG_INFO, "start", "node %s, source %s%s%s, control socket %s", a->node, a->source_arg,
		a->netns ? ", network namespace " : "", a->netns ? a->netns : "", a->socket_path);
	run(a);
	/* fail-static: the ruleset stays; only our own resources go */
	log_msg(LOG_INFO, "stop", "exiting; the ruleset stays in the kernel until the next agent replaces it");
	modules_exit(a, modules, ARRAY_SIZE(modules));
	free(a->last_error);
	free(a->revoke_error);
	for (int k = 0; k < METRICS_CHANGE_KINDS; k++)
		free(a->changes[k].t);
	agent_config_free(&a->cfg);
	return 0;
}

#define _GNU_SOURCE
#include "agent/daemon/metrics.h"

#include <arpa/inet.h>
#include <math.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "policy/util.h"

static const double bounds[METRICS_BUCKETS] = { 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
						0.05,   0.1,   0.25,   0.5,   1,    2.5 };

const char *const metrics_change_kinds[METRICS_CHANGE_KINDS] = { "namespace", "pod", "policy" };

static double fine_bound(int i)
{
	return 1e-5 * exp2(i / 4.0);
}

static void hist_observe(struct metrics_hist *h, double seconds)
{
	for (int i = 0; i < METRICS_BUCKETS; i++)
		if (seconds <= bounds[i])
			h->le[i]++;
	h->le[METRICS_BUCKETS]++;
	h->sum += seconds;
	if (seconds > h->max)
		h->max = seconds;
	int i = seconds <= 1e-5 ? 0 : (int)ceil(4 * log2(seconds / 1e-5) - 1e-9);
	h->fine[i < METRICS_FINE - 1 ? i : METRICS_FINE - 1]++;
}

void metrics_observe_change_locked(struct metrics *m, int k, double seconds, double held)
{
	hist_observe(&m->change[METRICS_WHOLE][k], seconds);
	hist_observe(&m->change[METRICS_WORK][k], seconds - held > 0 ? seconds - held : 0);
}

double metrics_quantile(const struct metrics_hist *h, double q)
{
	uint64_t n = h->le[METRICS_BUCKETS], seen = 0;
	if (!n)
		return -1;
	uint64_t rank = (uint64_t)ceil(q * (double)n);
	for (int i = 0; i < METRICS_FINE - 1; i++)
		if ((seen += h->fine[i]) >= (rank ? rank : 1))
			return fine_bound(i) < h->max ? fine_bound(i) : h->max;
	return h->max;
}

void metrics_init(struct metrics *m)
{
	memset(m, 0, sizeof(*m));
	pthread_mutex_init(&m->mu, NULL);
	pthread_mutex_init(&m->extra_mu, NULL);
	m->heartbeat = time(NULL);
}

void metrics_set_extra(struct metrics *m, void (*fn)(struct sbuf *out, void *arg), void *arg)
{
	pthread_mutex_lock(&m->extra_mu);
	m->extra = fn;
	m->extra_arg = arg;
	pthread_mutex_unlock(&m->extra_mu);
}

void metrics_observe_sync(struct metrics *m, double seconds, bool ok, bool full)
{
	pthread_mutex_lock(&m->mu);
	m->txns++;
	m->txn_errors += !ok;
	m->full_syncs += full && ok;
	for (int i = 0; i < METRICS_BUCKETS; i++)
		if (seconds <= bounds[i])
			m->sync_hist[i]++;
	m->sync_hist[METRICS_BUCKETS]++;
	m->sync_sum += seconds;
	pthread_mutex_unlock(&m->mu);
}

char *metrics_format(struct metrics *m)
{
	struct sbuf b = { 0 };
	static const char *const kinds[] = { "NetworkPolicy", "AccessPolicy" };
	pthread_mutex_lock(&m->mu);
	sbuf_add(&b, "# HELP corral_sync_duration_seconds Time to render and apply one transaction.\n"
		     "# TYPE corral_sync_duration_seconds histogram\n");
	for (int i = 0; i < METRICS_BUCKETS; i++)
		sbuf_addf(&b, "corral_sync_duration_seconds_bucket{le=\"%g\"} %llu\n", bounds[i],
			  (unsigned long long)m->sync_hist[i]);
	sbuf_addf(&b, "corral_sync_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
		  (unsigned long long)m->sync_hist[METRICS_BUCKETS]);
	sbuf_addf(&b, "corral_sync_duration_seconds_sum %.6f\ncorral_sync_duration_seconds_count %llu\n", m->sync_sum,
		  (unsigned long long)m->sync_hist[METRICS_BUCKETS]);
	static const char *const change_names[2][2] = {
		{ "corral_change_to_kernel_seconds",
		  "Time from a change coming in from the source (a decoded watch event) to the kernel acknowledging "
		  "the transaction that carries it, by object kind." },
		{ "corral_change_in_agent_seconds",
		  "corral_change_to_kernel_seconds less the time the debounce held the change back to gather it with "
		  "others (debounceMs after the previous transaction), by object kind." },
	};
	for (int w = 0; w < 2; w++) {
		const char *nm = change_names[w][0];
		sbuf_addf(&b, "# HELP %s %s\n# TYPE %s histogram\n", nm, change_names[w][1], nm);
		for (int k = 0; k < METRICS_CHANGE_KINDS; k++) {
			const struct metrics_hist *h = &m->change[w][k];
			for (int i = 0; i < METRICS_BUCKETS; i++)
				sbuf_addf(&b, "%s_bucket{object=\"%s\",le=\"%g\"} %llu\n", nm, metrics_change_kinds[k],
					  bounds[i], (unsigned long long)h->le[i]);
			sbuf_addf(&b, "%s_bucket{object=\"%s\",le=\"+Inf\"} %llu\n%s_sum{object=\"%s\"} %.6f\n"
				      "%s_count{object=\"%s\"} %llu\n",
				  nm, metrics_change_kinds[k], (unsigned long long)h->le[METRICS_BUCKETS], nm,
				  metrics_change_kinds[k], h->sum, nm, metrics_change_kinds[k],
				  (unsigned long long)h->le[METRICS_BUCKETS]);
		}
	}
	sbuf_addf(&b, "# HELP corral_changes_per_transaction_max The most changes one transaction carried.\n"
		      "# TYPE corral_changes_per_transaction_max gauge\ncorral_changes_per_transaction_max %llu\n"
		      "# HELP corral_transactions_held_total Transactions held back to gather changes under load "
		      "(debounceMs after the previous one).\n# TYPE corral_transactions_held_total counter\n"
		      "corral_transactions_held_total %llu\n",
		  (unsigned long long)m->batch_max, (unsigned long long)m->batches_held);
	sbuf_addf(&b, "# HELP corral_transactions_total Netlink transactions sent.\n# TYPE corral_transactions_total counter\n"
		      "corral_transactions_total %llu\n"
		      "# HELP corral_transaction_errors_total Transactions the kernel refused (the next is a full replace).\n"
		      "# TYPE corral_transaction_errors_total counter\ncorral_transaction_errors_total %llu\n"
		      "# HELP corral_full_syncs_total Transactions that replaced the whole table.\n"
		      "# TYPE corral_full_syncs_total counter\ncorral_full_syncs_total %llu\n",
		  (unsigned long long)m->txns, (unsigned long long)m->txn_errors, (unsigned long long)m->full_syncs);
	sbuf_addf(&b, "# HELP corral_set_elements Elements in the table's sets and maps.\n# TYPE corral_set_elements gauge\n"
		      "corral_set_elements %llu\n", (unsigned long long)m->elements);
	sbuf_add(&b, "# HELP corral_policies Policies held, by kind and validity (invalid ones isolate and allow nothing).\n"
		     "# TYPE corral_policies gauge\n");
	for (int k = 0; k < 2; k++)
		for (int v = 0; v < 2; v++)
			sbuf_addf(&b, "corral_policies{kind=\"%s\",valid=\"%s\"} %llu\n", kinds[k], v ? "true" : "false",
				  (unsigned long long)m->policies[k][v]);
	sbuf_addf(&b, "# HELP corral_watch_restarts_total Watches restarted.\n# TYPE corral_watch_restarts_total counter\n"
		      "corral_watch_restarts_total %llu\n# HELP corral_relists_total Full relists.\n"
		      "# TYPE corral_relists_total counter\ncorral_relists_total %llu\n"
		      "# HELP corral_source_errors Files that do not parse, or API resources failing to list or watch.\n"
		      "# TYPE corral_source_errors gauge\ncorral_source_errors %llu\n",
		  (unsigned long long)m->watch_restarts, (unsigned long long)m->relists,
		  (unsigned long long)m->source_errors);
	static const char *const ukinds[] = { "Namespace", "Pod", "NetworkPolicy", "AccessPolicy", "Node" };
	sbuf_add(&b, "# HELP corral_source_objects_unreadable Objects the source holds that corral could not read; "
		     "each is enforced fail-closed (see agentctl status).\n# TYPE corral_source_objects_unreadable gauge\n");
	for (int k = 0; k < 5; k++)
		sbuf_addf(&b, "corral_source_objects_unreadable{kind=\"%s\"} %llu\n", ukinds[k],
			  (unsigned long long)m->unreadable[k]);
	sbuf_addf(&b, "# HELP corral_source_objects_rejected_total Objects that could not even be identified "
		      "(no name or namespace) and are not enforced.\n# TYPE corral_source_objects_rejected_total counter\n"
		      "corral_source_objects_rejected_total %llu\n", (unsigned long long)m->rejected);
	sbuf_addf(&b, "# HELP corral_drop_lines_lost_total Drop lines a `drops --follow` subscriber that did not keep up "
		      "missed (it is told how many).\n# TYPE corral_drop_lines_lost_total counter\n"
		      "corral_drop_lines_lost_total %llu\n", (unsigned long long)m->drop_lines_lost);
	sbuf_addf(&b, "# HELP corral_drop_logs_total Drop log messages (NFLOG, rate-limited per chain: logRate, "
		      "logBurst) received, by direction; exact counts are corral_dropped_packets_total.\n"
		      "# TYPE corral_drop_logs_total counter\ncorral_drop_logs_total{direction=\"ingress\"} %llu\n"
		      "corral_drop_logs_total{direction=\"egress\"} %llu\n"
		      "# HELP corral_flows_revoked_total Tracked flows revoked (their packets dropped) because the policies stopped allowing them.\n"
		      "# TYPE corral_flows_revoked_total counter\ncorral_flows_revoked_total %llu\n"
		      "# HELP corral_flow_revocation_errors_total Revocation passes that failed (flows may go on).\n"
		      "# TYPE corral_flow_revocation_errors_total counter\ncorral_flow_revocation_errors_total %llu\n"
		      "# HELP corral_provisional_addresses Local pod addresses the API has not reported yet, with a "
		      "provisional verdict.\n# TYPE corral_provisional_addresses gauge\ncorral_provisional_addresses %llu\n"
		      "# HELP corral_provisional_resolved_total Provisional addresses the API has since reported.\n"
		      "# TYPE corral_provisional_resolved_total counter\ncorral_provisional_resolved_total %llu\n"
		      "# HELP corral_provisional_seconds_total Time those addresses were provisional, summed.\n"
		      "# TYPE corral_provisional_seconds_total counter\ncorral_provisional_seconds_total %.6f\n"
		      "# HELP corral_ready 1 once the first transaction succeeded.\n# TYPE corral_ready gauge\ncorral_ready %d\n",
		  (unsigned long long)m->drop_logs[0], (unsigned long long)m->drop_logs[1], (unsigned long long)m->revoked,
		  (unsigned long long)m->revoke_errors, (unsigned long long)m->provisional,
		  (unsigned long long)m->prov_resolved, m->prov_seconds, m->ready);
	pthread_mutex_unlock(&m->mu);
	pthread_mutex_lock(&m->extra_mu);
	if (m->extra)
		m->extra(&b, m->extra_arg);
	pthread_mutex_unlock(&m->extra_mu);
	if (m->more)
		m->more(m->more_arg, &b);
	return sbuf_steal(&b);
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, char *body, const char *type)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
	MHD_add_response_header(r, "Content-Type", type);
	enum MHD_Result ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
			      const char *version, const char *data, size_t *size, void **state)
{
	struct metrics *m = cls;
	(void)version, (void)data, (void)size, (void)state;
	if (strcmp(method, "GET"))
		return reply(c, 405, xstrdup("GET only\n"), "text/plain");
	if (!strcmp(url, "/metrics"))
		return reply(c, 200, metrics_format(m), "text/plain; version=0.0.4");
	pthread_mutex_lock(&m->mu);
	bool alive = time(NULL) - m->heartbeat < 30, ready = m->ready;
	uint64_t failclosed = 0;
	for (int k = 0; k < 5; k++)
		failclosed += m->unreadable[k];
	pthread_mutex_unlock(&m->mu);
	if (!strcmp(url, "/healthz"))
		return alive ? reply(c, 200, xstrdup("ok\n"), "text/plain")
			     : reply(c, 503, xstrdup("event loop stalled\n"), "text/plain");
	/* Ready means enforcing: objects we could not read are enforced
	 * fail-closed, which is enforcement, and said so */
	if (!strcmp(url, "/readyz") && ready && failclosed)
		return reply(c, 200, xasprintf("ready: %llu objects could not be read and are enforced fail-closed "
					      "(agentctl status names them)\n", (unsigned long long)failclosed),
			     "text/plain");
	if (!strcmp(url, "/readyz"))
		return ready ? reply(c, 200, xstrdup("ready\n"), "text/plain")
			     : reply(c, 503, xstrdup("not synced yet\n"), "text/plain");
	return reply(c, 404, xstrdup("not found: /metrics, /healthz, /readyz\n"), "text/plain");
}

int metrics_start(struct metrics *m, const char *addr, char **err)
{
	if (!addr || !*addr)
		return 0;
	const char *colon = strrchr(addr, ':');
	char host[64];
	int port = colon ? atoi(colon + 1) : 0;
	if (!colon || port <= 0 || port > 65535 || (size_t)(colon - addr) >= sizeof(host)) {
		*err = xasprintf("metrics address \"%s\" is not HOST:PORT", addr);
		return -EINVAL;
	}
	memcpy(host, addr, (size_t)(colon - addr));
	host[colon - addr] = 0;
	struct sockaddr_storage ss = { 0 };
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD;
	char *h = host;
	if (h[0] == '[') { /* [IPv6]: both brackets, something between */
		size_t n = strlen(h);
		if (n < 3 || h[n - 1] != ']') {
			*err = xasprintf("metrics address \"%s\" is not HOST:PORT", addr);
			return -EINVAL;
		}
		h[n - 1] = 0;
		h++;
	}
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, h, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
	} else if (inet_pton(AF_INET6, h, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		flags |= MHD_USE_IPv6;
	} else {
		*err = xasprintf("metrics address \"%s\": host must be an IP address", addr);
		return -EINVAL;
	}
	/* the listening socket is made here, in the caller's network
	 * namespace (the agent's --netns), not in the server's thread */
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	if (fd >= 0)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (fd < 0 || bind(fd, (struct sockaddr *)&ss, ss.ss_family == AF_INET ? sizeof(*s4) : sizeof(*s6)) < 0 ||
	    listen(fd, 16) < 0) {
		int e = errno;
		*err = xasprintf("cannot serve metrics on %s: %s", addr, strerror(e));
		if (fd >= 0)
			close(fd);
		return -e;
	}
	m->daemon = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, handle, m, MHD_OPTION_LISTEN_SOCKET, fd,
				     MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
	if (!m->daemon) {
		*err = xasprintf("cannot serve metrics on %s (address in use?)", addr);
		return -EADDRINUSE;
	}
	return 0;
}

void metrics_stop(struct metrics *m)
{
	if (m->daemon)
		MHD_stop_daemon(m->daemon);
	m->daemon = NULL;
}

/* /metrics (Prometheus text), /healthz and /readyz over HTTP
 * (libmicrohttpd, its own thread; figures are read under a mutex). */
#ifndef CORRAL_METRICS_H
#define CORRAL_METRICS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "policy/util.h"

#define METRICS_BUCKETS 12

struct sbuf;

struct metrics {
	pthread_mutex_t mu;
	uint64_t txns, txn_errors, full_syncs;
	uint64_t sync_hist[METRICS_BUCKETS + 1]; /* cumulative per bucket bound, +Inf last */
	double sync_sum;
	uint64_t elements;
	uint64_t policies[2][2]; /* [kind][valid]: NetworkPolicy, AccessPolicy */
	uint64_t drop_logs[2];   /* NFLOG messages (rate-limited): [ingress, egress] */
	uint64_t revoked;        /* conntrack entries deleted: flows no longer allowed */
	uint64_t revoke_errors;  /* revocation passes that failed */
	uint64_t watch_restarts, relists, source_errors;
	/* objects the source holds that could not be read, enforced
	 * fail-closed: [Namespace, Pod, NetworkPolicy, AccessPolicy] */
	uint64_t unreadable[4];
	uint64_t rejected; /* objects that could not even be identified */
	uint64_t drop_lines_lost; /* `drops --follow` lines a slow subscriber missed */
	uint64_t provisional;     /* local addresses with a provisional verdict now */
	uint64_t prov_resolved;   /* provisional entries the API has since explained */
	double prov_seconds;      /* the time they were provisional, summed */
	bool ready;
	time_t heartbeat;
	void *daemon;
	/* more families appended to /metrics by a reader that may take a few
	 * milliseconds (the kernel's drop counters): called under extra_mu,
	 * never under mu, which the event loop takes */
	pthread_mutex_t extra_mu;
	void (*extra)(struct sbuf *out, void *arg);
	void *extra_arg;
	/* more lines from another module (the DNS proxy's counters, which
	 * are atomic): called from the server's thread, without mu */
	void (*more)(void *arg, struct sbuf *b);
	void *more_arg;
};

void metrics_init(struct metrics *m);
/* fn NULL: none. Once this returns, the previous fn is not running. */
void metrics_set_extra(struct metrics *m, void (*fn)(struct sbuf *out, void *arg), void *arg);
/* addr: HOST:PORT ("" starts nothing). 0 or -1 with *err. */
int metrics_start(struct metrics *m, const char *addr, char **err);
void metrics_stop(struct metrics *m);
void metrics_observe_sync(struct metrics *m, double seconds, bool ok, bool full);
char *metrics_format(struct metrics *m); /* the /metrics body */

#endif

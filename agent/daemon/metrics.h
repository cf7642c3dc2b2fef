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
/* Change latency (an event in -> its transaction acknowledged by the
 * kernel), per object kind: Namespace, Pod, policy (either kind). Fine
 * buckets for agentctl status: bucket i holds up to 10 us * 2^(i/4)
 * (about 19% wide), the last everything above 10 s. */
#define METRICS_CHANGE_KINDS 3
#define METRICS_FINE 81
enum { METRICS_WHOLE, METRICS_WORK };

struct sbuf;

struct metrics_hist {
	uint64_t le[METRICS_BUCKETS + 1]; /* cumulative, as sync_hist */
	uint64_t fine[METRICS_FINE];      /* per bucket, not cumulative */
	double sum, max;
};

struct metrics {
	pthread_mutex_t mu;
	uint64_t txns, txn_errors, full_syncs;
	uint64_t sync_hist[METRICS_BUCKETS + 1]; /* cumulative per bucket bound, +Inf last */
	double sync_sum;
	uint64_t elements;
	uint64_t policies[2][2]; /* [kind][valid]: NetworkPolicy, AccessPolicy */
	uint64_t drop_logs[2];   /* NFLOG messages (rate-limited): [ingress, egress] */
	uint64_t revoked;        /* conntrack entries marked revoked: flows no longer allowed */
	uint64_t revoke_errors;  /* revocation passes that failed */
	uint64_t watch_restarts, relists, source_errors;
	/* objects the source holds that could not be read, enforced
	 * fail-closed: [Namespace, Pod, NetworkPolicy, AccessPolicy] */
	uint64_t unreadable[5]; /* Namespace, Pod, NetworkPolicy, AccessPolicy, Node */
	uint64_t rejected; /* objects that could not even be identified */
	uint64_t drop_lines_lost; /* `drops --follow` lines a slow subscriber missed */
	uint64_t provisional;     /* local addresses with a provisional verdict now */
	uint64_t prov_resolved;   /* provisional entries the API has since explained */
	double prov_seconds;      /* the time they were provisional, summed */
	/* change latency by kind: [METRICS_WHOLE] from the decoded event to the
	 * kernel's acknowledgement; [METRICS_WORK] the same less the time the
	 * debounce held the change back (the agent's own work and queueing) */
	struct metrics_hist change[2][METRICS_CHANGE_KINDS];
	uint64_t batch_last, batch_max; /* changes carried by the last transaction, by the largest */
	uint64_t batches_held;          /* transactions held back to batch changes under load */
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
/* With mu held: one change of kind k (0 Namespace, 1 Pod, 2 policy)
 * acknowledged seconds after it came in, held of them by the debounce. */
void metrics_observe_change_locked(struct metrics *m, int k, double seconds, double held);
/* the q-quantile (0..1) of a histogram in seconds, an upper bound (the
 * bucket's), or -1 with no observation (with mu held) */
double metrics_quantile(const struct metrics_hist *h, double q);
extern const char *const metrics_change_kinds[METRICS_CHANGE_KINDS]; /* "namespace", "pod", "policy" */
char *metrics_format(struct metrics *m); /* the /metrics body */

#endif

/* The bookkeeping behind drop Events, without threads or HTTP, for the
 * unit tests: which Event a drop belongs to, what is due to be written,
 * and the rate limits. Times: now is monotonic seconds, wall is time(). */
#ifndef CORRAL_AGENT_EVENTS_PRIVATE_H
#define CORRAL_AGENT_EVENTS_PRIVATE_H

#include <time.h>

#include "agent/daemon/events.h"

#define EV_MAX_ENTRIES 4096     /* Events followed at once; more drops are refused (counted) */
#define EV_IDLE_S 3600.0        /* an Event not raised for this long is forgotten (the API's TTL: 1 h) */
#define EV_NODE_PER_S 5.0       /* writes a second for the whole node, */
#define EV_NODE_BURST 20.0      /* and at most this many at once */
#define EV_MESSAGE_MAX 1000     /* bytes: events.k8s.io caps notes at 1 KiB */

/* A pod, a direction and a set of policies: the unit of the rate limit. */
struct ev_bucket {
	char *key, *ns, *pod, *policies;
	enum dir dir;
	char *uid; /* the pod's, once the writer has asked */
	double tokens, at;
	unsigned entries;
};

/* One Event: a bucket's drops from one peer to one port. */
struct ev_entry {
	char *key;
	struct ev_bucket *b;
	char *peer, *src, *dst, *message;
	uint8_t proto;
	uint16_t port;
	char *name;         /* the Event's, once it is to be created */
	bool created;       /* the API holds it: the next write patches */
	uint32_t posted;    /* the count the API holds */
	uint32_t pending;   /* drops not written yet */
	uint32_t inflight;  /* drops in the write under way */
	bool busy;
	time_t first, last; /* wall clock */
	double seen;        /* monotonic: the last drop */
};

enum ev_result {
	EV_WRITTEN, /* created or patched */
	EV_GONE,    /* the Event expired (404 on the patch) or its name is taken (409): create a new one */
	EV_FAILED,  /* try again later */
	EV_DROP,    /* the pod is gone: forget these drops */
};

struct ev_stats {
	uint64_t written, failed, refused;
};

struct ev_table;
struct ev_table *ev_table_new(uint32_t per_minute);
void ev_table_free(struct ev_table *t);
void ev_table_set_rate(struct ev_table *t, uint32_t per_minute);
/* A drop into its Event; false when refused (too many Events followed). */
bool ev_table_record(struct ev_table *t, const struct drop_event *d, double now, time_t wall);
/* The next write due (its entry marked busy, its drops in flight, the
 * tokens spent), or NULL with *wait the seconds until one may be due
 * (-1: nothing pending). count: what the Event is to say. */
struct ev_entry *ev_table_next(struct ev_table *t, double now, double *wait, uint32_t *count);
void ev_table_done(struct ev_table *t, struct ev_entry *e, enum ev_result r);
const struct ev_stats *ev_table_stats(const struct ev_table *t);
size_t ev_table_pending(const struct ev_table *t); /* entries with drops not written */

#endif

/* Drops as Kubernetes Events (see events.h).
 *
 * 1. record: the event loop counts a drop into the Event of its pod, peer,
 *    protocol and port (the table below, under a mutex) and wakes the
 *    writer;
 * 2. next: the writer takes an Event with drops not written whose pod and
 *    policies (and node) have a write left in their token bucket;
 * 3. write: the pod's uid once (kubectl describe matches it), then create
 *    the Event with its count, or patch the count and lastTimestamp;
 * 4. done: what was written is the Event's count; a failure puts the
 *    drops back, so that counts stay exact while writes are limited.
 * client-go's event recorder aggregates and rate-limits the same way
 * (a token bucket per source and object); the numbers here are ours. */
#define _GNU_SOURCE
#include "agent/daemon/events.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/daemon/events-private.h"
#include "agent/daemon/log.h"
#include "kube/events.h"

/* ---------- the table ---------- */

struct ev_table {
	struct htab entries; /* struct ev_entry by key */
	struct htab buckets; /* struct ev_bucket by key */
	double rate, cap;    /* a bucket's refill per second, and its size */
	double node_tokens, node_at;
	uint64_t serial;
	struct ev_stats stats;
};

static bool entry_eq(const void *item, const void *key)
{
	return !strcmp(((const struct ev_entry *)item)->key, key);
}

static bool bucket_eq(const void *item, const void *key)
{
	return !strcmp(((const struct ev_bucket *)item)->key, key);
}

struct ev_table *ev_table_new(uint32_t per_minute)
{
	struct ev_table *t = xcalloc(1, sizeof(*t));
	ev_table_set_rate(t, per_minute);
	t->node_tokens = EV_NODE_BURST;
	t->node_at = -1;
	return t;
}

void ev_table_set_rate(struct ev_table *t, uint32_t per_minute)
{
	t->cap = per_minute ? per_minute : 1;
	t->rate = t->cap / 60.0;
}

static void bucket_put(struct ev_table *t, struct ev_bucket *b)
{
	if (--b->entries)
		return;
	htab_remove(&t->buckets, hash_str(b->key), bucket_eq, b->key);
	free(b->key);
	free(b->ns);
	free(b->pod);
	free(b->policies);
	free(b->uid);
	free(b);
}

static void entry_free(struct ev_table *t, struct ev_entry *e)
{
	htab_remove(&t->entries, hash_str(e->key), entry_eq, e->key);
	bucket_put(t, e->b);
	free(e->key);
	free(e->peer);
	free(e->src);
	free(e->dst);
	free(e->message);
	free(e->name);
	free(e);
}

void ev_table_free(struct ev_table *t)
{
	if (!t)
		return;
	struct vec all = { 0 };
	struct ev_entry *e;
	htab_foreach(&t->entries, e) vec_push(&all, e);
	for (size_t i = 0; i < all.n; i++)
		entry_free(t, all.v[i]);
	vec_free(&all);
	htab_free(&t->entries);
	htab_free(&t->buckets);
	free(t);
}

static const char *proto_word(uint8_t p)
{
	return p == PROTO_TCP ? "TCP" : p == PROTO_UDP ? "UDP" : p == PROTO_SCTP ? "SCTP" : "IP";
}

/* What kubectl describe pod shows: the flow, the policies, and the command
 * that says why. */
static char *message(const struct drop_event *d)
{
	char *m = xasprintf("%s %s/%u %s %s dropped: isolated by %s, no rule allows it (agentctl explain %s %s "
			    "--port %u --protocol %s)",
			    dir_name(d->dir), proto_word(d->proto), d->port, d->dir == DIR_INGRESS ? "from" : "to", d->peer,
			    d->policies, d->src, d->dst, d->port, proto_word(d->proto));
	if (strlen(m) > EV_MESSAGE_MAX)
		strcpy(m + EV_MESSAGE_MAX - 3, "...");
	return m;
}

static struct ev_bucket *bucket_get(struct ev_table *t, const struct drop_event *d, double now)
{
	char *key = xasprintf("%s/%s/%d/%s", d->ns, d->pod, (int)d->dir, d->policies);
	struct ev_bucket *b = htab_find(&t->buckets, hash_str(key), bucket_eq, key);
	if (b) {
		free(key);
	} else {
		b = xcalloc(1, sizeof(*b));
		*b = (struct ev_bucket){ key, xstrdup(d->ns), xstrdup(d->pod), xstrdup(d->policies), d->dir, NULL,
					 t->cap, now, 0 };
		htab_insert(&t->buckets, hash_str(key), b);
	}
	b->entries++;
	return b;
}

/* Room for one more Event: the one idle the longest goes, if any is idle. */
static bool make_room(struct ev_table *t)
{
	struct ev_entry *e, *old = NULL;
	if (t->entries.n < EV_MAX_ENTRIES)
		return true;
	htab_foreach(&t->entries, e) if (!e->busy && !e->pending && (!old || e->seen < old->seen)) old = e;
	if (old)
		entry_free(t, old);
	return old != NULL;
}

bool ev_table_record(struct ev_table *t, const struct drop_event *d, double now, time_t wall)
{
	char *key = xasprintf("%s/%s/%d/%s|%s|%u/%u", d->ns, d->pod, (int)d->dir, d->policies, d->peer, d->proto,
			      d->port);
	struct ev_entry *e = htab_find(&t->entries, hash_str(key), entry_eq, key);
	if (!e) {
		if (!make_room(t)) {
			free(key);
			t->stats.refused++;
			return false;
		}
		e = xcalloc(1, sizeof(*e));
		e->key = key;
		e->b = bucket_get(t, d, now);
		e->peer = xstrdup(d->peer);
		e->src = xstrdup(d->src);
		e->dst = xstrdup(d->dst);
		e->message = message(d);
		e->proto = d->proto;
		e->port = d->port;
		e->first = wall;
		htab_insert(&t->entries, hash_str(key), e);
	} else {
		free(key);
	}
	e->pending++;
	e->last = wall;
	e->seen = now;
	return true;
}

static void refill(double *tokens, double *at, double cap, double rate, double now)
{
	if (*at >= 0 && now > *at)
		*tokens += (now - *at) * rate;
	if (*tokens > cap)
		*tokens = cap;
	*at = now;
}

/* Seconds until a bucket with these tokens has one. */
static double until_one(double tokens, double rate)
{
	return tokens >= 1 ? 0 : (1 - tokens) / rate;
}

struct ev_entry *ev_table_next(struct ev_table *t, double now, double *wait, uint32_t *count)
{
	struct ev_entry *e, *pick = NULL;
	struct vec idle = { 0 };
	double best = -1;
	refill(&t->node_tokens, &t->node_at, EV_NODE_BURST, EV_NODE_PER_S, now);
	htab_foreach(&t->entries, e) {
		if (!e->busy && !e->pending && now - e->seen > EV_IDLE_S)
			vec_push(&idle, e);
		if (e->busy || !e->pending)
			continue;
		refill(&e->b->tokens, &e->b->at, t->cap, t->rate, now);
		double w = until_one(e->b->tokens, t->rate);
		double n = until_one(t->node_tokens, EV_NODE_PER_S);
		w = w > n ? w : n;
		if (w == 0 && (!pick || e->seen < pick->seen))
			pick = e;
		if (best < 0 || w < best)
			best = w;
	}
	for (size_t i = 0; i < idle.n; i++)
		entry_free(t, idle.v[i]);
	vec_free(&idle);
	*wait = best;
	if (!pick)
		return NULL;
	pick->b->tokens -= 1;
	t->node_tokens -= 1;
	pick->busy = true;
	pick->inflight = pick->pending;
	pick->pending = 0;
	if (!pick->name) { /* as client-go names them: the object's name and a time, here in ns */
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		pick->name = xasprintf("%.200s.%llx", pick->b->pod,
				       (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec +
					       t->serial++);
	}
	*count = pick->posted + pick->inflight;
	return pick;
}

void ev_table_done(struct ev_table *t, struct ev_entry *e, enum ev_result r)
{
	e->busy = false;
	switch (r) {
	case EV_WRITTEN:
		e->posted += e->inflight;
		e->created = true;
		t->stats.written++;
		break;
	case EV_GONE: /* a new Event counts the drops not written yet */
		free(e->name);
		e->name = NULL;
		e->created = false;
		e->posted = 0;
		e->first = e->last;
		e->pending += e->inflight;
		break;
	case EV_FAILED:
		e->pending += e->inflight;
		t->stats.failed++;
		break;
	case EV_DROP:
		entry_free(t, e);
		return;
	}
	e->inflight = 0;
}

const struct ev_stats *ev_table_stats(const struct ev_table *t)
{
	return &t->stats;
}

size_t ev_table_pending(const struct ev_table *t)
{
	size_t n = 0;
	struct ev_entry *e;
	htab_foreach(&t->entries, e) n += e->pending > 0;
	return n;
}

/* ---------- the writer ---------- */

struct drop_events {
	pthread_mutex_t mu;
	pthread_cond_t cond;
	pthread_t th;
	bool stop;
	struct ev_table *t;
	struct kube_http *h;
	char *node;
	char *last_error;
	time_t logged;
};

static double mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A failure, logged at most once a minute (a missing RBAC rule would
 * otherwise fill the log). Called with the lock held. */
static void failed(struct drop_events *x, char *why)
{
	time_t now = time(NULL);
	if (!x->last_error || strcmp(x->last_error, why) || now - x->logged >= 60) {
		log_msg(LOG_WARN, "events", "cannot record drops as Events: %s", why);
		x->logged = now;
	}
	free(x->last_error);
	x->last_error = why;
}

/* One write, without the lock: the entry is busy, so the table leaves it
 * alone; its uid is read and set under the lock by the caller. */
static enum ev_result write_one(struct drop_events *x, const struct ev_entry *e, const char *uid, uint32_t count,
				char **new_uid, char **why)
{
	struct sbuf resp = { 0 };
	char *err = NULL;
	long st;
	enum ev_result r = EV_FAILED;
	if (!uid) {
		st = kube_pod_uid(x->h, e->b->ns, e->b->pod, new_uid, &resp, &err);
		if (st == 404) {
			sbuf_free(&resp);
			return EV_DROP;
		}
		if (st != 200) {
			*why = kube_http_explain(x->h, "get the pod's uid", st, &resp, err);
			goto out;
		}
		uid = *new_uid;
	}
	struct kube_event ev = { e->b->ns, e->name, e->b->pod, uid, "Warning", "PolicyDrop", e->message,
				 "corral-agent", x->node, count, e->first, e->last };
	st = e->created ? kube_event_update(x->h, &ev, &resp, &err) : kube_event_create(x->h, &ev, &resp, &err);
	if (st == 200 || st == 201)
		r = EV_WRITTEN;
	else if ((e->created && st == 404) || (!e->created && st == 409))
		r = EV_GONE; /* expired, or the name is taken (an earlier agent's): a new Event */
	else
		*why = kube_http_explain(x->h, e->created ? "patch an Event" : "create an Event", st, &resp, err);
out:
	free(err);
	sbuf_free(&resp);
	return r;
}

static void *writer(void *arg)
{
	struct drop_events *x = arg;
	pthread_mutex_lock(&x->mu);
	while (!x->stop) {
		double wait;
		uint32_t count;
		struct ev_entry *e = ev_table_next(x->t, mono(), &wait, &count);
		if (!e) {
			struct timespec ts;
			double w = wait < 0 || wait > 1 ? 1 : wait;
			clock_gettime(CLOCK_REALTIME, &ts);
			long ns = ts.tv_nsec + (long)(w * 1e9);
			ts.tv_sec += ns / 1000000000L;
			ts.tv_nsec = ns % 1000000000L;
			pthread_cond_timedwait(&x->cond, &x->mu, &ts);
			continue;
		}
		char *uid = e->b->uid ? xstrdup(e->b->uid) : NULL, *new_uid = NULL, *why = NULL;
		pthread_mutex_unlock(&x->mu);
		enum ev_result r = write_one(x, e, uid, count, &new_uid, &why);
		pthread_mutex_lock(&x->mu);
		if (new_uid && !e->b->uid)
			e->b->uid = new_uid;
		else
			free(new_uid);
		if (why)
			failed(x, why);
		free(uid);
		ev_table_done(x->t, e, r);
	}
	pthread_mutex_unlock(&x->mu);
	return NULL;
}

struct drop_events *drop_events_new(const struct kube_auth *auth, const struct drop_events_opts *o)
{
	struct drop_events *x = xcalloc(1, sizeof(*x));
	pthread_mutex_init(&x->mu, NULL);
	pthread_cond_init(&x->cond, NULL);
	x->t = ev_table_new(o->per_minute);
	x->h = kube_http_new(auth, 5);
	x->node = xstrdup(o->node ? o->node : "");
	if (pthread_create(&x->th, NULL, writer, x) != 0)
		abort();
	return x;
}

void drop_events_free(struct drop_events *x)
{
	if (!x)
		return;
	pthread_mutex_lock(&x->mu);
	x->stop = true;
	pthread_cond_signal(&x->cond);
	pthread_mutex_unlock(&x->mu);
	pthread_join(x->th, NULL);
	ev_table_free(x->t);
	kube_http_free(x->h);
	pthread_cond_destroy(&x->cond);
	pthread_mutex_destroy(&x->mu);
	free(x->node);
	free(x->last_error);
	free(x);
}

void drop_events_record(struct drop_events *x, const struct drop_event *d)
{
	pthread_mutex_lock(&x->mu);
	ev_table_record(x->t, d, mono(), time(NULL));
	pthread_cond_signal(&x->cond);
	pthread_mutex_unlock(&x->mu);
}

void drop_events_set_rate(struct drop_events *x, uint32_t per_minute)
{
	pthread_mutex_lock(&x->mu);
	ev_table_set_rate(x->t, per_minute);
	pthread_mutex_unlock(&x->mu);
}

json_t *drop_events_status(struct drop_events *x)
{
	pthread_mutex_lock(&x->mu);
	const struct ev_stats *s = ev_table_stats(x->t);
	json_t *o = json_pack("{s:I, s:I, s:I, s:I, s:s?}", "written", (json_int_t)s->written, "failed",
			      (json_int_t)s->failed, "refused", (json_int_t)s->refused, "pending",
			      (json_int_t)ev_table_pending(x->t), "last_error", x->last_error);
	pthread_mutex_unlock(&x->mu);
	return o;
}

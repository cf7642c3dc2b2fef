/* The bookkeeping of drop Events (agent/daemon/events-private.h): one
 * Event per pod, peer and port whose count is exact however writes are
 * limited; the token buckets per pod and policies and per node; an Event
 * that expired is created again; failures keep the drops; a full table
 * refuses, an idle Event is forgotten. Time is given, never read. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "agent/daemon/events-private.h"

static struct drop_event drop(const char *pod, const char *peer, uint16_t port, const char *policies)
{
	return (struct drop_event){ "x", pod, DIR_INGRESS, peer, peer, pod, PROTO_TCP, port, policies };
}

#define NP "NetworkPolicy x/deny"

/* Writes every due Event as WRITTEN; returns how many. */
static int write_all(struct ev_table *t, double now)
{
	double wait;
	uint32_t count;
	int n = 0;
	struct ev_entry *e;
	while ((e = ev_table_next(t, now, &wait, &count))) {
		ev_table_done(t, e, EV_WRITTEN);
		n++;
	}
	return n;
}

static void one_event_counts_up(void **st)
{
	struct ev_table *t = ev_table_new(6);
	struct drop_event d = drop("a", "y/b (10.0.0.2)", 80, NP);
	double wait;
	uint32_t count;
	for (int i = 0; i < 3; i++)
		assert_true(ev_table_record(t, &d, 0, 1000));
	struct ev_entry *e = ev_table_next(t, 0, &wait, &count);
	assert_non_null(e);
	assert_int_equal(count, 3);
	assert_false(e->created);
	assert_non_null(e->name);
	assert_int_equal(strncmp(e->name, "a.", 2), 0);
	assert_non_null(strstr(e->message, "ingress TCP/80 from y/b (10.0.0.2) dropped: isolated by NetworkPolicy "
					   "x/deny, no rule allows it (agentctl explain y/b (10.0.0.2) a --port 80"));
	char *name = strdup(e->name);
	/* a drop while the write is under way counts for the next one */
	assert_true(ev_table_record(t, &d, 0.5, 1001));
	assert_null(ev_table_next(t, 0.5, &wait, &count)); /* busy */
	ev_table_done(t, e, EV_WRITTEN);
	e = ev_table_next(t, 1, &wait, &count);
	assert_non_null(e);
	assert_true(e->created); /* a patch of the same Event */
	assert_string_equal(e->name, name);
	assert_int_equal(count, 4);
	ev_table_done(t, e, EV_WRITTEN);
	assert_null(ev_table_next(t, 2, &wait, &count));
	assert_true(wait < 0); /* nothing pending */
	assert_int_equal(ev_table_stats(t)->written, 2);
	free(name);
	ev_table_free(t);
}

/* per pod and policies: at most the burst at once, then per_minute/60 a
 * second; drops meanwhile are all counted at the next write */
static void rate_limited_per_pod_and_policy(void **st)
{
	struct ev_table *t = ev_table_new(6); /* burst 6, one every 10 s */
	char peer[32];
	double wait;
	uint32_t count;
	for (int i = 0; i < 10; i++) { /* 10 peers: 10 Events of one pod and policy */
		snprintf(peer, sizeof(peer), "10.0.0.%d", i);
		struct drop_event d = drop("a", peer, 80, NP);
		assert_true(ev_table_record(t, &d, 0, 1000));
	}
	assert_int_equal(write_all(t, 0), 6);
	assert_int_equal(ev_table_pending(t), 4);
	assert_null(ev_table_next(t, 0, &wait, &count));
	assert_true(wait > 9.9 && wait <= 10.0);
	assert_int_equal(write_all(t, 9), 0);
	assert_int_equal(write_all(t, 10), 1);
	assert_int_equal(write_all(t, 40), 3);
	/* another pod, or another set of policies: a bucket of its own */
	struct drop_event other = drop("b", "10.0.0.1", 80, NP), pol = drop("a", "10.0.0.1", 80, "AccessPolicy x/a");
	assert_true(ev_table_record(t, &other, 40, 1040));
	assert_true(ev_table_record(t, &pol, 40, 1040));
	assert_int_equal(write_all(t, 40), 2);
	/* counts stay exact while limited: 100 drops of one flow, few writes */
	struct drop_event d = drop("a", "10.0.0.0", 80, NP);
	int writes = 0;
	uint32_t last = 0;
	for (int s = 41; s <= 140; s++) {
		assert_true(ev_table_record(t, &d, s, 1000 + s));
		struct ev_entry *e;
		while ((e = ev_table_next(t, s, &wait, &count))) {
			ev_table_done(t, e, EV_WRITTEN);
			writes++;
			last = count;
		}
	}
	assert_true(writes <= 6 + 100 / 10 + 1);
	assert_true(last < 1 + 100); /* the latest drops wait for a token */
	struct ev_entry *e = ev_table_next(t, 1000, &wait, &count);
	assert_non_null(e);
	assert_int_equal(count, 1 + 100); /* the first drop of that flow, then 100: none lost */
	ev_table_done(t, e, EV_WRITTEN);
	ev_table_free(t);
}

/* the whole node: EV_NODE_BURST at once, then EV_NODE_PER_S a second */
static void rate_limited_per_node(void **st)
{
	struct ev_table *t = ev_table_new(600);
	char pod[16];
	for (int i = 0; i < 100; i++) {
		snprintf(pod, sizeof(pod), "p%d", i);
		struct drop_event d = drop(pod, "10.0.0.1", 80, NP);
		assert_true(ev_table_record(t, &d, 0, 1000));
	}
	assert_int_equal(write_all(t, 0), (int)EV_NODE_BURST);
	assert_int_equal(write_all(t, 1), (int)EV_NODE_PER_S);
	ev_table_free(t);
}

static void gone_failed_dropped(void **st)
{
	struct ev_table *t = ev_table_new(600);
	struct drop_event d = drop("a", "10.0.0.1", 80, NP);
	double wait;
	uint32_t count;
	ev_table_record(t, &d, 0, 1000);
	struct ev_entry *e = ev_table_next(t, 0, &wait, &count);
	ev_table_done(t, e, EV_WRITTEN);
	char *first = strdup(e->name);
	/* the Event expired on the server: a new one, counting only new drops */
	ev_table_record(t, &d, 1, 1001);
	ev_table_record(t, &d, 1, 1001);
	e = ev_table_next(t, 1, &wait, &count);
	assert_int_equal(count, 3);
	ev_table_done(t, e, EV_GONE);
	e = ev_table_next(t, 2, &wait, &count);
	assert_false(e->created);
	assert_string_not_equal(e->name, first);
	assert_int_equal(count, 2);
	/* a failure keeps the drops for the next write */
	ev_table_done(t, e, EV_FAILED);
	ev_table_record(t, &d, 3, 1003);
	e = ev_table_next(t, 3, &wait, &count);
	assert_int_equal(count, 3);
	assert_false(e->created);
	ev_table_done(t, e, EV_WRITTEN);
	assert_int_equal(ev_table_stats(t)->failed, 1);
	/* the pod is gone: its Event is forgotten */
	ev_table_record(t, &d, 4, 1004);
	e = ev_table_next(t, 4, &wait, &count);
	ev_table_done(t, e, EV_DROP);
	assert_null(ev_table_next(t, 5, &wait, &count));
	assert_int_equal(ev_table_pending(t), 0);
	free(first);
	ev_table_free(t);
}

static void full_and_idle(void **st)
{
	struct ev_table *t = ev_table_new(600);
	char peer[32];
	for (int i = 0; i < EV_MAX_ENTRIES; i++) {
		snprintf(peer, sizeof(peer), "10.1.%d.%d", i / 256, i % 256);
		struct drop_event d = drop("a", peer, 80, NP);
		assert_true(ev_table_record(t, &d, 0, 1000));
	}
	struct drop_event more = drop("a", "10.9.9.9", 80, NP);
	assert_false(ev_table_record(t, &more, 0, 1000)); /* all pending: nothing to forget */
	assert_int_equal(ev_table_stats(t)->refused, 1);
	/* written, they may go: the oldest first */
	for (double s = 0; ev_table_pending(t); s += 1)
		write_all(t, s);
	assert_true(ev_table_record(t, &more, 2000, 3000));
	/* an hour without drops: forgotten (the API server's Events expire too) */
	double wait;
	uint32_t count;
	write_all(t, 2000 + EV_IDLE_S + 100);
	assert_null(ev_table_next(t, 2000 + EV_IDLE_S + 200, &wait, &count));
	struct drop_event again = drop("a", "10.9.9.9", 80, NP);
	ev_table_record(t, &again, 2000 + EV_IDLE_S + 300, 9000);
	struct ev_entry *e = ev_table_next(t, 2000 + EV_IDLE_S + 300, &wait, &count);
	assert_non_null(e);
	assert_int_equal(count, 1);
	ev_table_done(t, e, EV_WRITTEN);
	ev_table_free(t);
}

static void message_is_bounded(void **st)
{
	struct ev_table *t = ev_table_new(6);
	char *pols = malloc(5000);
	memset(pols, 'p', 4999);
	pols[4999] = 0;
	struct drop_event d = drop("a", "10.0.0.1", 80, pols);
	double wait;
	uint32_t count;
	ev_table_record(t, &d, 0, 1000);
	struct ev_entry *e = ev_table_next(t, 0, &wait, &count);
	assert_int_equal(strlen(e->message), EV_MESSAGE_MAX);
	ev_table_done(t, e, EV_WRITTEN);
	free(pols);
	ev_table_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(one_event_counts_up),  cmocka_unit_test(rate_limited_per_pod_and_policy),
		cmocka_unit_test(rate_limited_per_node), cmocka_unit_test(gone_failed_dropped),
		cmocka_unit_test(full_and_idle),         cmocka_unit_test(message_is_bounded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

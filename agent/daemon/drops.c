#define _GNU_SOURCE
#include "agent/daemon/drops.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/nl/nft.h"

/* A series vanished from the table (its chains deleted) is still served
 * this long, so that scrapes see its last value, then forgotten. */
#define SERIES_KEEP_S 600

struct dc_series {
	char *labels;    /* direction="..",reason="..",namespace="..",policy=".." */
	uint64_t packets, bytes;
	uint32_t chains; /* chains counting into it now */
	time_t gone;     /* when the last of them went */
};

struct dc_chain {
	char *name;
	struct dc_series *series;
	uint64_t seen_pk, seen_by; /* the kernel's values already added to the series */
};

struct drop_counters {
	pthread_mutex_t mu;
	struct nft_sock *sock;
	char *table;
	struct vec series; /* struct dc_series* */
	struct vec chains; /* struct dc_chain*, sorted by name */
	uint64_t reads, chain_reads, read_errors; /* dumps of a table, of one chain */
};

struct drop_counters *drop_counters_new(struct nft_sock *sock, const char *table)
{
	struct drop_counters *dc = xcalloc(1, sizeof(*dc));
	pthread_mutex_init(&dc->mu, NULL);
	dc->sock = sock;
	dc->table = xstrdup(table);
	return dc;
}

static void chain_free(struct dc_chain *c)
{
	free(c->name);
	free(c);
}

void drop_counters_free(struct drop_counters *dc)
{
	if (!dc)
		return;
	for (size_t i = 0; i < dc->chains.n; i++)
		chain_free(dc->chains.v[i]);
	for (size_t i = 0; i < dc->series.n; i++) {
		struct dc_series *s = dc->series.v[i];
		free(s->labels);
		free(s);
	}
	vec_free(&dc->chains);
	vec_free(&dc->series);
	pthread_mutex_destroy(&dc->mu);
	free(dc->table);
	free(dc);
}

static int chain_cmp(const void *a, const void *b)
{
	return strcmp((*(struct dc_chain *const *)a)->name, (*(struct dc_chain *const *)b)->name);
}

static struct dc_chain *chain_find(struct drop_counters *dc, const char *name)
{
	struct dc_chain key = { .name = (char *)name }, *kp = &key;
	struct dc_chain **c = dc->chains.n ? bsearch(&kp, dc->chains.v, dc->chains.n, sizeof(void *), chain_cmp) : NULL;
	return c ? *c : NULL;
}

/* Adds what the kernel counted since the last read. A value below the
 * last one means the chain was made again outside our knowledge (a refused
 * commit's fate unknown, another program): all of it is new. */
static void fold(struct dc_chain *c, uint64_t pk, uint64_t by)
{
	bool reset = pk < c->seen_pk || by < c->seen_by;
	c->series->packets += reset ? pk : pk - c->seen_pk;
	c->series->bytes += reset ? by : by - c->seen_by;
	c->seen_pk = pk;
	c->seen_by = by;
}

/* The chains of the bridge table are kept under this prefix (the two
 * tables have the same name and chains of the same names). */
#define BR_PREFIX "bridge:"

static bool is_bridge(const char *chain)
{
	return !strncmp(chain, BR_PREFIX, strlen(BR_PREFIX));
}

/* A chain of t's table, as kept here. */
static struct dc_chain *txn_chain(struct drop_counters *dc, const struct dp_txn *t, const char *name)
{
	if (!t->bridge)
		return chain_find(dc, name);
	char key[300];
	snprintf(key, sizeof(key), BR_PREFIX "%s", name);
	return chain_find(dc, key);
}

/* One dump of each table that has chains counted, every known chain
 * folded. Locked. */
static int read_all(struct drop_counters *dc)
{
	bool fam[2] = { false, false };
	for (size_t i = 0; i < dc->chains.n; i++)
		fam[is_bridge(((struct dc_chain *)dc->chains.v[i])->name)] = true;
	int rc = 0;
	for (int b = 0; b <= 1; b++) {
		struct nft_chain_ctr *ctr;
		size_t n;
		if (!dc->sock || !fam[b])
			continue;
		dc->reads++;
		int r = nft_table_counters(dc->sock, dc->table, b, &ctr, &n);
		if (r < 0) {
			dc->read_errors++;
			rc = r;
			continue;
		}
		for (size_t i = 0; i < n; i++) {
			char key[300];
			snprintf(key, sizeof(key), "%s%s", b ? BR_PREFIX : "", ctr[i].chain);
			struct dc_chain *c = chain_find(dc, key);
			if (c)
				fold(c, ctr[i].packets, ctr[i].bytes);
		}
		nft_chain_ctrs_free(ctr, n);
	}
	return rc;
}

/* Whether t loses the counters of a chain we count: flushes or deletes it,
 * or deletes the table. */
/* Beyond this many chains flushed or deleted, one dump of the table. */
#define READ_CHAINS_MAX 8

/* The counted chains t flushes or deletes, into lost (at most
 * READ_CHAINS_MAX + 1 of them); true when t replaces the table. */
static bool loses_counters(struct drop_counters *dc, const struct dp_txn *t, struct dc_chain **lost, size_t *n)
{
	*n = 0;
	for (size_t i = 0; i < t->n; i++) {
		const struct dp_op *op = &t->ops[i];
		if (op->kind == OP_TABLE_DEL && dc->chains.n)
			return true;
		struct dc_chain *c = op->kind == OP_CHAIN_FLUSH || op->kind == OP_CHAIN_DEL
					     ? txn_chain(dc, t, op->chain->name) : NULL;
		if (c && *n <= READ_CHAINS_MAX)
			lost[(*n)++] = c;
	}
	return false;
}

/* Reads the chains a commit is about to flush or delete: those alone (a
 * dump of each), since a dump of the whole table took milliseconds on
 * the path of every change at 20,000 policies (bench/stages.py's
 * rendered_to_hook_done); the whole table when it is replaced, or when
 * many chains go. Locked. */
void drop_counters_before(struct drop_counters *dc, const struct dp_txn *t)
{
	struct dc_chain *lost[READ_CHAINS_MAX + 1];
	size_t n;
	pthread_mutex_lock(&dc->mu);
	if (loses_counters(dc, t, lost, &n) || n > READ_CHAINS_MAX || (n && t->bridge)) {
		(void)read_all(dc); /* a failed read is counted in read_errors */
		return;
	}
	for (size_t i = 0; dc->sock && i < n; i++) {
		uint64_t pk, by;
		dc->chain_reads++;
		int rc = nft_chain_counters(dc->sock, dc->table, lost[i]->name, &pk, &by);
		if (rc < 0)
			dc->read_errors++;
		else
			fold(lost[i], pk, by);
	}
}

static struct dc_series *series_get(struct drop_counters *dc, const struct dc_label *l)
{
	struct sbuf b = { 0 };
	const char *v[4] = { l->direction, l->reason, l->ns, l->policy };
	static const char *const k[4] = { "direction", "reason", "namespace", "policy" };
	for (int i = 0; i < 4; i++) {
		sbuf_addf(&b, "%s%s=\"", i ? "," : "", k[i]);
		for (const char *p = v[i] ? v[i] : ""; *p; p++) /* label value escapes */
			sbuf_add(&b, *p == '\\' ? "\\\\" : *p == '"' ? "\\\"" : *p == '\n' ? "\\n" : (char[2]){ *p, 0 });
		sbuf_add(&b, "\"");
	}
	char *key = sbuf_steal(&b);
	for (size_t i = 0; i < dc->series.n; i++) {
		struct dc_series *s = dc->series.v[i];
		if (!strcmp(s->labels, key)) {
			free(key);
			return s;
		}
	}
	struct dc_series *s = xcalloc(1, sizeof(*s));
	s->labels = key;
	vec_push(&dc->series, s);
	return s;
}

/* The chains of one table (bridge or inet) are now labels; those of the
 * other stay as they are. */
static void set_chains(struct drop_counters *dc, bool bridge, const struct dc_label *labels, size_t n)
{
	struct vec next = { 0 };
	time_t now = time(NULL);
	for (size_t i = 0; i < n; i++) {
		char *name = bridge ? xasprintf(BR_PREFIX "%s", labels[i].chain) : xstrdup(labels[i].chain);
		struct dc_chain *old = chain_find(dc, name);
		struct dc_chain *c = xcalloc(1, sizeof(*c));
		c->name = name;
		c->series = series_get(dc, &labels[i]);
		if (old && old->series == c->series) { /* the same chain, still counting: keep what was read */
			c->seen_pk = old->seen_pk;
			c->seen_by = old->seen_by;
		}
		vec_push(&next, c);
	}
	for (size_t i = 0; i < dc->chains.n; i++) { /* the other table's chains stay */
		struct dc_chain *c = dc->chains.v[i];
		if (is_bridge(c->name) != bridge) {
			vec_push(&next, c);
			dc->chains.v[i] = NULL;
		}
	}
	for (size_t i = 0; i < dc->series.n; i++)
		((struct dc_series *)dc->series.v[i])->chains = 0;
	for (size_t i = 0; i < next.n; i++)
		((struct dc_chain *)next.v[i])->series->chains++;
	for (size_t i = 0; i < dc->chains.n; i++) {
		struct dc_chain *c = dc->chains.v[i];
		if (!c)
			continue;
		if (!c->series->chains && !c->series->gone)
			c->series->gone = now;
		chain_free(c);
	}
	vec_free(&dc->chains);
	dc->chains = next;
	vec_sort(&dc->chains, chain_cmp);
	for (size_t i = 0; i < dc->series.n; i++) {
		struct dc_series *s = dc->series.v[i];
		if (s->chains)
			s->gone = 0;
	}
}

void drop_counters_after(struct drop_counters *dc, const struct dp_txn *t, int rc, const struct dc_label *labels,
			 size_t n)
{
	if (rc == 0) {
		/* applied: the chains it flushed or made again count from 0 */
		bool all = false;
		for (size_t i = 0; i < t->n; i++)
			all |= t->ops[i].kind == OP_TABLE_DEL;
		for (size_t i = 0; i < t->n; i++) {
			const struct dp_op *op = &t->ops[i];
			struct dc_chain *c = all || op->kind == OP_CHAIN_FLUSH || op->kind == OP_CHAIN_DEL ||
							     op->kind == OP_CHAIN_ADD
						     ? (op->chain ? txn_chain(dc, t, op->chain->name) : NULL)
						     : NULL;
			if (c)
				c->seen_pk = c->seen_by = 0;
		}
		if (all)
			for (size_t i = 0; i < dc->chains.n; i++) {
				struct dc_chain *c = dc->chains.v[i];
				if (is_bridge(c->name) == t->bridge)
					c->seen_pk = c->seen_by = 0;
			}
		if (labels)
			set_chains(dc, t->bridge, labels, n);
	}
	pthread_mutex_unlock(&dc->mu);
}

static void expire(struct drop_counters *dc)
{
	time_t now = time(NULL);
	size_t kept = 0;
	for (size_t i = 0; i < dc->series.n; i++) {
		struct dc_series *s = dc->series.v[i];
		if (!s->chains && s->gone && now - s->gone > SERIES_KEEP_S) {
			free(s->labels);
			free(s);
			continue;
		}
		dc->series.v[kept++] = s;
	}
	dc->series.n = kept;
}

static int series_cmp(const void *a, const void *b)
{
	return strcmp((*(struct dc_series *const *)a)->labels, (*(struct dc_series *const *)b)->labels);
}

void drop_counters_format(struct drop_counters *dc, struct sbuf *out)
{
	pthread_mutex_lock(&dc->mu);
	(void)read_all(dc); /* a failed read serves the last values, and is counted */
	expire(dc);
	vec_sort(&dc->series, series_cmp);
	sbuf_add(out, "# HELP corral_dropped_packets_total Packets the node's table dropped, from the kernel's counters "
		      "(exact, not rate-limited), by direction, reason (policy, quarantine, forged-source, misaddressed, unclassified, untracked), namespace "
		      "and the policies isolating the pod (Kind/name, comma-separated).\n"
		      "# TYPE corral_dropped_packets_total counter\n");
	for (size_t i = 0; i < dc->series.n; i++) {
		struct dc_series *s = dc->series.v[i];
		sbuf_addf(out, "corral_dropped_packets_total{%s} %llu\n", s->labels, (unsigned long long)s->packets);
	}
	sbuf_add(out, "# HELP corral_dropped_bytes_total Bytes of the packets counted in corral_dropped_packets_total.\n"
		      "# TYPE corral_dropped_bytes_total counter\n");
	for (size_t i = 0; i < dc->series.n; i++) {
		struct dc_series *s = dc->series.v[i];
		sbuf_addf(out, "corral_dropped_bytes_total{%s} %llu\n", s->labels, (unsigned long long)s->bytes);
	}
	sbuf_addf(out, "# HELP corral_drop_counter_read_errors_total Reads of the kernel's drop counters that failed "
		       "(the drop counts then lag).\n# TYPE corral_drop_counter_read_errors_total counter\n"
		       "corral_drop_counter_read_errors_total %llu\n", (unsigned long long)dc->read_errors);
	sbuf_addf(out, "# HELP corral_drop_counter_reads_total Reads of the kernel's drop counters: dumps of a whole "
		       "table (scrapes, table replaced) or of one chain (before a commit rewrites it).\n"
		       "# TYPE corral_drop_counter_reads_total counter\n"
		       "corral_drop_counter_reads_total{scope=\"table\"} %llu\n"
		       "corral_drop_counter_reads_total{scope=\"chain\"} %llu\n",
		  (unsigned long long)dc->reads, (unsigned long long)dc->chain_reads);
	pthread_mutex_unlock(&dc->mu);
}

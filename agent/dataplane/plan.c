/* The plan stage: the mirror of the kernel and the desired ruleset ->
 * one transaction (txn.h). A full replace when there is no mirror or the
 * two disagree on a set's kind; otherwise only the differences: new sets,
 * element additions and deletions (split by set, in each set's own kind),
 * changed chains flushed and written again, then what is gone (chains,
 * then sets). Pure: no socket; tests/dataplane/ golden .txn files cover it
 * without root. */
#define _GNU_SOURCE /* qsort_r */
#include "agent/dataplane/dp-private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


void dp_txn_push(struct dp_txn *t, struct dp_op op)
{
	if (t->n == t->cap) {
		t->cap = t->cap ? 2 * t->cap : 64;
		t->ops = xrealloc(t->ops, t->cap * sizeof(*t->ops));
	}
	t->ops[t->n++] = op;
}

static void push_all_rules(struct dp_txn *t, const struct rs_chain *ch)
{
	for (size_t i = 0; i < ch->rules.n; i++)
		dp_txn_push(t, (struct dp_op){ .kind = OP_RULE_ADD, .chain = ch, .rule = ch->rules.v[i] });
}

static void full_txn(const struct ruleset *rs, struct dp_txn *t, struct dp_stats *st)
{
	dp_txn_push(t, (struct dp_op){ .kind = OP_TABLE_ADD });
	dp_txn_push(t, (struct dp_op){ .kind = OP_TABLE_DEL });
	dp_txn_push(t, (struct dp_op){ .kind = OP_TABLE_ADD });
	for (size_t i = 0; i < rs->sets.n; i++)
		dp_txn_push(t, (struct dp_op){ .kind = OP_SET_ADD, .set = rs->sets.v[i] });
	for (size_t i = 0; i < rs->chains.n; i++)
		dp_txn_push(t, (struct dp_op){ .kind = OP_CHAIN_ADD, .chain = rs->chains.v[i] });
	for (size_t i = 0; i < rs->sets.n; i++) {
		const struct rs_set *s = rs->sets.v[i];
		if (s->n)
			dp_txn_push(t, (struct dp_op){ .kind = OP_ELEM_ADD, .set = s, .count = s->n });
		st->elems_added += s->n;
	}
	for (size_t i = 0; i < rs->chains.n; i++)
		push_all_rules(t, rs->chains.v[i]);
	st->sets_added = (uint32_t)rs->sets.n;
	st->chains_written = (uint32_t)rs->chains.n;
	st->full = true;
	st->narrowed = true;
}

static int elem_order(const struct rs_set *a, size_t i, const struct rs_set *b, size_t j)
{
	size_t kl = rs_key_len(a->key);
	int c = memcmp(a->keys + i * 2 * kl, b->keys + j * 2 * kl, 2 * kl);
	if (c || !a->map)
		return c;
	return strcmp(a->chain[i], b->chain[j]);
}

static void delta_push(struct rs_set *d, const struct rs_set *from, size_t i)
{
	size_t kl = rs_key_len(from->key);
	memcpy(d->keys + d->n * 2 * kl, from->keys + i * 2 * kl, 2 * kl);
	if (from->map)
		d->chain[d->n] = xstrdup(from->chain[i]);
	d->n++;
}

/* A set of like's kind and origin, with room for n elements (the delta
 * sets of a diff keep the set's kind: interval elements sent as hash
 * elements once left open-ended ranges). */
static struct rs_set *delta_new(const struct rs_set *like, size_t n, struct vec *owned)
{
	struct rs_set *d = rs_set_new(like->name, like->key);
	d->map = like->map;
	d->jump = like->jump;
	d->interval = like->interval;
	d->origin = like->origin ? xstrdup(like->origin) : NULL;
	d->keys = xmalloc((n ? n : 1) * 2 * rs_key_len(like->key));
	if (like->map)
		d->chain = xcalloc(n ? n : 1, sizeof(char *));
	vec_push(owned, d);
	return d;
}

/* Walks the two sorted element lists: each element only in old goes to
 * del, each only in new to add (either may be NULL: just count). */
static void merge_walk(const struct rs_set *old, const struct rs_set *new, struct rs_set *del, struct rs_set *add,
		       size_t *ndel, size_t *nadd)
{
	size_t i = 0, j = 0;
	*ndel = *nadd = 0;
	while (i < old->n || j < new->n) {
		int c = i == old->n ? 1 : j == new->n ? -1 : elem_order(old, i, new, j);
		if (!c) {
			i++, j++;
		} else if (c < 0) {
			if (del)
				delta_push(del, old, i);
			i++, (*ndel)++;
		} else {
			if (add)
				delta_push(add, new, j);
			j++, (*nadd)++;
		}
	}
}

bool dp_plan_verify;
unsigned long dp_plan_verified;

static bool delta_same(const struct rs_set *a, const struct rs_set *b)
{
	return a->n == b->n && (!a->n || !memcmp(a->keys, b->keys, a->n * 2 * rs_key_len(a->key)));
}

/* dp_plan_verify: the edit's delta against the comparison of old and new. */
static void verify_delta(const struct rs_set *old, const struct rs_set *new, const struct rs_set *del,
			 const struct rs_set *add)
{
	size_t ndel, nadd;
	struct vec owned = { 0 };
	merge_walk(old, new, NULL, NULL, &ndel, &nadd);
	struct rs_set *d = delta_new(new, ndel, &owned), *a = delta_new(new, nadd, &owned);
	merge_walk(old, new, d, a, &ndel, &nadd);
	if (!delta_same(d, del) || !delta_same(a, add)) {
		fprintf(stderr, "plan: set %s: the render's edit (-%zu +%zu) is not the difference (-%zu +%zu)\n",
			new->name, del->n, add->n, d->n, a->n);
		abort();
	}
	dp_plan_verified++;
	for (size_t i = 0; i < owned.n; i++)
		rs_set_put(owned.v[i]);
	vec_free(&owned);
}

/* Element changes of one set present on both sides: deletes, then adds.
 * Counted first, so each delta list is allocated once. */
static void set_diff(const struct rs_set *old, const struct rs_set *new, struct dp_txn *t, struct vec *owned,
		     struct dp_stats *st)
{
	size_t ndel, nadd;
	struct rs_set *del, *add;
	if (new->base == old && !new->map) { /* edited from old by the render: its changes as they are */
		size_t kl2 = 2 * rs_key_len(new->key);
		del = delta_new(new, new->ndel, owned), add = delta_new(new, new->nadd, owned);
		if (new->ndel)
			memcpy(del->keys, new->ddel, new->ndel * kl2);
		if (new->nadd)
			memcpy(add->keys, new->dadd, new->nadd * kl2);
		del->n = new->ndel, add->n = new->nadd;
		if (dp_plan_verify)
			verify_delta(old, new, del, add);
	} else {
		merge_walk(old, new, NULL, NULL, &ndel, &nadd);
		del = delta_new(new, ndel, owned), add = delta_new(new, nadd, owned);
		merge_walk(old, new, del, add, &ndel, &nadd);
	}
	if (del->n)
		dp_txn_push(t, (struct dp_op){ .kind = OP_ELEM_DEL, .set = del, .count = del->n });
	if (add->n)
		dp_txn_push(t, (struct dp_op){ .kind = OP_ELEM_ADD, .set = add, .count = add->n });
	st->elems_added += add->n;
	st->elems_deleted += del->n;
	/* a dispatch map changing either way may move a pod to a narrower
	 * group; elsewhere only removed elements narrow */
	if (new->map ? add->n || del->n : del->n > 0)
		st->narrowed = true;
}

static bool chain_eq(const struct rs_chain *a, const struct rs_chain *b)
{
	if (a->rules.n != b->rules.n)
		return false;
	for (size_t i = 0; i < a->rules.n; i++)
		if (!rs_rule_eq(a->rules.v[i], b->rules.v[i]))
			return false;
	return true;
}

/* Whether every set present under the same name on both sides has the
 * same kind: only then can elements be diffed. Names never change meaning
 * (ruleset.h); this makes sure a mistake there turns into a full replace,
 * never into elements written into a set of another kind. */
static bool shapes_agree(const struct ruleset *old, const struct ruleset *new)
{
	for (size_t i = 0; i < new->sets.n; i++) {
		const struct rs_set *s = new->sets.v[i], *o = ruleset_set(old, s->name);
		if (o && o != s &&
		    (o->key != s->key || o->interval != s->interval || o->map != s->map || o->jump != s->jump ||
		     o->size != s->size || o->timeout != s->timeout))
			return false;
	}
	return true;
}

static bool chain_name_eq(const void *item, const void *key)
{
	return !strcmp(((const struct rs_chain *)item)->name, key);
}

/* The chains of rs by name: ruleset_chain() walks the list, and a diff
 * asked it of each of ~250 chains on both sides at every sync (a tenth of
 * the instructions of a pod event's sync at 150,000 pods). */
static void chain_index(const struct ruleset *rs, struct htab *h)
{
	for (size_t i = 0; i < rs->chains.n; i++) {
		struct rs_chain *c = rs->chains.v[i];
		htab_insert(h, hash_str(c->name), c);
	}
}

static const struct rs_chain *chain_in(const struct htab *h, const char *name)
{
	return htab_find(h, hash_str(name), chain_name_eq, name);
}

static void diff_txn(const struct ruleset *old, const struct ruleset *new, struct dp_txn *t, struct vec *owned,
		     struct dp_stats *st)
{
	struct htab oc = { 0 }, nc = { 0 };
	chain_index(old, &oc);
	chain_index(new, &nc);
	/* 1. new sets, 2. new chains (map elements and rules may refer to them) */
	for (size_t i = 0; i < new->sets.n; i++)
		if (!ruleset_set(old, ((struct rs_set *)new->sets.v[i])->name)) {
			dp_txn_push(t, (struct dp_op){ .kind = OP_SET_ADD, .set = new->sets.v[i] });
			st->sets_added++;
		}
	for (size_t i = 0; i < new->chains.n; i++)
		if (!chain_in(&oc, ((struct rs_chain *)new->chains.v[i])->name))
			dp_txn_push(t, (struct dp_op){ .kind = OP_CHAIN_ADD, .chain = new->chains.v[i] });
	/* 3. elements: removed ones first (interval sets must not overlap) */
	for (size_t i = 0; i < new->sets.n; i++) {
		const struct rs_set *s = new->sets.v[i], *o = ruleset_set(old, s->name);
		if (!o) {
			if (s->n)
				dp_txn_push(t, (struct dp_op){ .kind = OP_ELEM_ADD, .set = s, .count = s->n });
			st->elems_added += s->n;
		} else if (o != s && !s->timeout) { /* timeout sets: written outside the plan (ruleset.h) */
			set_diff(o, s, t, owned, st);
		}
	}
	/* 4. chains whose rules changed are flushed and rewritten */
	for (size_t i = 0; i < new->chains.n; i++) {
		const struct rs_chain *ch = new->chains.v[i], *o = chain_in(&oc, ch->name);
		if (o && chain_eq(o, ch))
			continue;
		if (o)
			dp_txn_push(t, (struct dp_op){ .kind = OP_CHAIN_FLUSH, .chain = ch });
		push_all_rules(t, ch);
		st->chains_written++;
	}
	if (st->chains_written)
		st->narrowed = true;
	/* 5. chains, then sets, that are gone: every one flushed before any
	 * is deleted (a meet chain jumps to others: the kernel refuses to
	 * delete a chain a rule still names) */
	for (int del = 0; del < 2; del++)
		for (size_t i = 0; i < old->chains.n; i++) {
			const struct rs_chain *ch = old->chains.v[i];
			if (chain_in(&nc, ch->name))
				continue;
			dp_txn_push(t, (struct dp_op){ .kind = del ? OP_CHAIN_DEL : OP_CHAIN_FLUSH, .chain = ch });
			st->chains_deleted += del;
			st->narrowed = true;
		}
	for (size_t i = 0; i < old->sets.n; i++)
		if (!ruleset_set(new, ((struct rs_set *)old->sets.v[i])->name)) {
			dp_txn_push(t, (struct dp_op){ .kind = OP_SET_DEL, .set = old->sets.v[i] });
			st->sets_deleted++;
		}
	htab_free(&oc);
	htab_free(&nc);
}

void dp_plan(const struct ruleset *old, const struct ruleset *new, struct dp_txn *t, struct vec *owned,
	     struct dp_stats *st)
{
	if (old && shapes_agree(old, new))
		diff_txn(old, new, t, owned, st);
	else
		full_txn(new, t, st);
}

void dp_txn_format(const struct dp_txn *t, struct sbuf *out)
{
	for (size_t i = 0; i < t->n; i++) {
		const struct dp_op *op = &t->ops[i];
		dp_op_describe(op, out);
		/* the kind elements are sent as: an interval set's elements are
		 * ranges (sent as single keys they once opened a range) */
		if (op->kind == OP_ELEM_ADD || op->kind == OP_ELEM_DEL) {
			sbuf_addf(out, " as %s", op->set->map ? "map" : op->set->interval ? "intervals" : "keys");
			for (size_t k = 0; op->count > 1 && k < op->count; k++) { /* every one, a line each */
				sbuf_add(out, "\n    ");
				rs_elem_format(op->set, op->first + k, out);
			}
		}
		sbuf_add(out, "\n");
	}
}

void dp_op_describe(const struct dp_op *op, struct sbuf *out)
{
	static const char *const verb[] = { [OP_TABLE_ADD] = "add table",   [OP_TABLE_DEL] = "delete table",
					    [OP_SET_ADD] = "add set",       [OP_SET_DEL] = "delete set",
					    [OP_ELEM_ADD] = "add elements", [OP_ELEM_DEL] = "delete elements",
					    [OP_SET_FLUSH] = "flush set",
					    [OP_CHAIN_ADD] = "add chain",   [OP_CHAIN_FLUSH] = "flush chain",
					    [OP_CHAIN_DEL] = "delete chain", [OP_RULE_ADD] = "add rule" };
	sbuf_add(out, verb[op->kind]);
	if (op->set) {
		sbuf_addf(out, " %s", op->set->name);
		if (op->set->origin)
			sbuf_addf(out, " (%s)", op->set->origin);
		if (op->count) {
			sbuf_add(out, " {");
			rs_elem_format(op->set, op->first, out);
			sbuf_addf(out, "%s}", op->count > 1 ? ", ..." : "");
		}
	}
	if (op->rule) {
		sbuf_add(out, " `");
		rs_rule_format(op->rule, out);
		sbuf_addf(out, "` to chain %s", op->chain->name);
	} else if (op->chain) {
		sbuf_addf(out, " %s", op->chain->name);
		if (op->chain->comment)
			sbuf_addf(out, " (%s)", op->chain->comment);
	}
}


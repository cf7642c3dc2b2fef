/* A peer set of pods that changed is edited from its previous elements
 * and the addresses touched since (render.c peer_elems_delta, engine.h
 * ir_peerset.touched), not listed again from every member. This checks
 * the edit against listing it whole, after each batch of random pod
 * events on a generated cluster: label changes, new and moved addresses,
 * deletions, finished pods, an address claimed twice and given back, and
 * new pods. The text of the ruleset (every set's elements) must be the
 * same either way. */
#include <stdio.h>

#include "agent/dataplane/dp-private.h"
#include "bench/gen.h"
#include "harness.h"

static uint64_t rng(uint64_t *r)
{
	*r ^= *r << 13, *r ^= *r >> 7, *r ^= *r << 17;
	return *r;
}

static struct pod_spec *renamed(struct pod_spec *p, const char *name)
{
	istr_put(p->name);
	p->name = istr_get(name);
	return p;
}

static void delta_equals_full(void **state)
{
	(void)state;
	const struct gen_size *sz = gen_size_find("medium");
	struct manifest_set set = { 0 };
	gen_cluster(sz, 11, &set);
	struct engine_config cfg = { "node-0", "app", true, NULL, NULL };
	struct engine *e = engine_new(&cfg);
	manifest_apply(&set, e);
	manifest_set_free(&set);
	struct dp *dp = dp_new(NULL);
	struct dp_stats st;
	char *err = NULL;
	assert_int_equal(dp_sync(dp, e, NULL, true, &st, &err), 0);
	/* the plan writes an edited set's changes as the render found them:
	 * each checked against comparing the two sets (aborts if not equal) */
	dp_plan_verify = true;
	dp_plan_verified = 0;
	uint64_t r = 99;
	int dups = 0, news = 0, kinds[7] = { 0 };
	for (int round = 0; round < 300; round++) {
		int batch = 1 + (int)(rng(&r) % 4);
		for (int b = 0; b < batch; b++) {
			int i = (int)(rng(&r) % (uint64_t)sz->pods), k = (int)(rng(&r) % 7);
			struct pod_spec *p = gen_pod(sz, 11, i, (int)(rng(&r) % 8));
			kinds[k]++;
			char name[32];
			switch (k) {
			case 0: /* labels */
				engine_pod_upsert(e, p);
				break;
			case 1: /* a new address */
				p->addr[0] = ip_from_v4(10u << 24 | 250u << 16 | (uint32_t)(rng(&r) % 65536));
				engine_pod_upsert(e, p);
				break;
			case 2: /* gone */
				engine_pod_delete(e, p->ns, p->name);
				pod_spec_free(p);
				break;
			case 3: /* finished */
				p->phase = PHASE_SUCCEEDED;
				engine_pod_upsert(e, p);
				break;
			case 4: /* another pod claims its address (quarantined), */
				snprintf(name, sizeof(name), "dup-%d", dups++);
				engine_pod_upsert(e, renamed(p, name));
				break;
			case 5: /* ... and gives it back */
				if (dups) {
					snprintf(name, sizeof(name), "dup-%d", (int)(rng(&r) % (uint64_t)dups));
					engine_pod_delete(e, p->ns, name);
				}
				pod_spec_free(p);
				break;
			default: /* a new pod */
				snprintf(name, sizeof(name), "new-%d", news);
				p->addr[0] = ip_from_v4(10u << 24 | 251u << 16 | (uint32_t)news++);
				engine_pod_upsert(e, renamed(p, name));
				break;
			}
		}
		assert_int_equal(dp_sync(dp, e, NULL, false, &st, &err), 0);
		char *edited = dp_applied_text(dp);
		assert_int_equal(dp_sync(dp, e, NULL, true, &st, &err), 0); /* listed whole */
		char *whole = dp_applied_text(dp);
		if (strcmp(edited, whole)) {
			printf("round %d: the edited ruleset differs from the one listed whole\n", round);
			FILE *a = fopen("/tmp/corral-delta-edited.nft", "w"), *w = fopen("/tmp/corral-delta-whole.nft", "w");
			if (a && w)
				fputs(edited, a), fputs(whole, w);
			if (a)
				fclose(a);
			if (w)
				fclose(w);
		}
		assert_string_equal(edited, whole);
		free(edited);
		free(whole);
	}
	printf("300 batches: %d label changes, %d new addresses, %d deletions, %d finished, %d double claims, "
	       "%d given back, %d new pods: edited sets equal listed ones; %lu sets written from the edit, each "
	       "the difference\n",
	       kinds[0], kinds[1], kinds[2], kinds[3], kinds[4], kinds[5], kinds[6], dp_plan_verified);
	assert_true(dp_plan_verified > 300);
	dp_plan_verify = false;
	dp_free(dp);
	engine_free(e);
}

/* A sync with nothing to reuse (the first, or forced full) lists every
 * peer set whole, so the next change of each is an edit, also for peer
 * sets whose dirty marks were taken and dropped without a render (as
 * engine_new does for its DNS rule, and corral-bench did after timing the
 * compile): a pod event once listed every such set it touched whole
 * again, 18,000 addresses sorted at 150,000 pods (the bench's p99). */
static void full_sync_then_edits(void **state)
{
	(void)state;
	const struct gen_size *sz = gen_size_find("medium");
	struct manifest_set set = { 0 };
	gen_cluster(sz, 11, &set);
	struct engine_config cfg = { "node-0", "app", true, NULL, NULL };
	struct engine *e = engine_new(&cfg);
	manifest_apply(&set, e);
	manifest_set_free(&set);
	engine_take_dirty(e, NULL, NULL); /* marks dropped, nothing rendered */
	struct dp *dp = dp_new(NULL);
	struct dp_stats st;
	char *err = NULL;
	assert_int_equal(dp_sync(dp, e, NULL, true, &st, &err), 0);
	dp_plan_verify = true;
	dp_plan_verified = 0;
	dp_render_relisted = 0;
	uint64_t r = 5, changed = 0;
	for (int k = 0; k < 100; k++) { /* label changes of pods anywhere */
		int i = (int)(rng(&r) % (uint64_t)sz->pods);
		engine_pod_upsert(e, gen_pod(sz, 11, i, (int)(rng(&r) % 8)));
		assert_int_equal(dp_sync(dp, e, NULL, false, &st, &err), 0);
		changed += st.elems_added + st.elems_deleted > 0;
	}
	printf("100 pod events after a full sync: %lu changed elements, %lu pod sets written from the edit, %lu "
	       "listed whole again\n",
	       (unsigned long)changed, dp_plan_verified, dp_render_relisted);
	assert_true(changed >= 10);
	assert_true(dp_plan_verified >= 10);
	assert_int_equal(dp_render_relisted, 0);
	dp_plan_verify = false;
	dp_free(dp);
	engine_free(e);
}

static int start_cmp(const void *a, const void *b)
{
	return ip_cmp(((const struct ip_range *)a)->lo, ((const struct ip_range *)b)->lo);
}

/* The radix sort orders by the whole 128-bit start, like qsort: starts
 * that differ in any byte (IPv4-mapped and IPv6, equal low halves under
 * different high halves, duplicates), 5,000 of them. */
static void radix_sort_orders_starts(void **state)
{
	(void)state;
	size_t n = 5000;
	struct ip_range *a = xcalloc(n, sizeof(*a)), *b = xcalloc(n, sizeof(*b));
	uint64_t r = 7;
	for (size_t i = 0; i < n; i++) {
		uint64_t x = rng(&r);
		a[i].lo.hi = x % 3 == 0 ? 0 : x % 3 == 1 ? 0xfd00000000000000ull | (rng(&r) & 0xff) : rng(&r);
		a[i].lo.lo = i % 7 == 0 ? 42 : x % 5 == 0 ? 0xffff0a000000ull | (rng(&r) & 0xffff) : rng(&r);
		a[i].hi = (ip128){ a[i].lo.hi, a[i].lo.lo + (uint64_t)i };
	}
	memcpy(b, a, n * sizeof(*a));
	dp_ranges_sort(a, n);
	qsort(b, n, sizeof(*b), start_cmp);
	for (size_t i = 0; i < n; i++) /* the same starts in the same order (ends: any order among equal starts) */
		assert_true(ip_eq(a[i].lo, b[i].lo));
	free(a);
	free(b);
}

/* Peer sets listed whole sort their addresses and ranges with a radix
 * sort beyond dp_radix_min: the ruleset of a generated cluster (pods,
 * ipBlocks with excepts, both families) is the same with qsort. */
static void radix_sort_equals_qsort(void **state)
{
	(void)state;
	const struct gen_size *sz = gen_size_find("medium");
	struct manifest_set set = { 0 };
	gen_cluster(sz, 5, &set);
	struct engine_config cfg = { "node-0", "app", true, NULL, NULL };
	struct engine *e = engine_new(&cfg);
	manifest_apply(&set, e);
	manifest_set_free(&set);
	char *text[2];
	size_t largest = 0;
	for (int q = 0; q < 2; q++) {
		dp_radix_min = q ? (size_t)-1 : 2; /* every listing of two or more */
		struct dp *dp = dp_new(NULL);
		struct ruleset *rs = dp_render(dp, e);
		text[q] = ruleset_format(rs);
		for (size_t i = 0; i < rs->sets.n; i++)
			if (((struct rs_set *)rs->sets.v[i])->n > largest)
				largest = ((struct rs_set *)rs->sets.v[i])->n;
		ruleset_free(rs);
		dp_free(dp);
	}
	dp_radix_min = 64;
	printf("radix and qsort: the same ruleset (%zu bytes, largest set %zu elements)\n", strlen(text[0]), largest);
	assert_true(largest >= 1000);
	assert_string_equal(text[0], text[1]);
	free(text[0]);
	free(text[1]);
	engine_free(e);
}

static void apply(struct engine *e, const char *yaml)
{
	struct manifest_set set = { 0 };
	struct decode_opts o = { DECODE_AGENT, true, "app", "default" };
	assert_int_equal(manifest_load_buffer(&set, "t.yaml", yaml, strlen(yaml), &o), 0);
	for (size_t i = 0; i < set.diags.v.n; i++) {
		char *m = diag_format(set.diags.v.v[i]);
		printf("  %s\n", m);
		free(m);
	}
	manifest_apply(&set, e);
	manifest_set_free(&set);
}

/* A label index no policy uses any more stays kept (engine.c
 * anchor_idle) and must follow the pods meanwhile: a policy created
 * again finds exactly the pods labelled now. */
static void idle_label_index_follows_pods(void **state)
{
	(void)state;
	static const char *pol =
		"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, namespace: x}\n"
		"spec:\n  podSelector: {matchLabels: {app: a}}\n  ingress:\n"
		"  - from: [{namespaceSelector: {}, podSelector: {matchLabels: {role: client}}}]\n";
	struct engine *e = LOAD("apiVersion: v1\nkind: Pod\nmetadata: {name: b, namespace: 'y', labels: {role: client}}\n"
				"spec: {containers: [{name: c}]}\nstatus: {podIPs: [{ip: 10.0.2.2}]}\n");
	apply(e, pol);
	assert_true(allowed(e, "y/b", "x/a", PROTO_TCP, 80));
	assert_false(allowed(e, "y/a", "x/a", PROTO_TCP, 80));
	engine_policy_delete(e, KIND_NETPOL, "x", "p"); /* its label index goes idle */
	/* meanwhile: y/b loses the label, y/a gains it, a new pod has it */
	apply(e, "apiVersion: v1\nkind: Pod\nmetadata: {name: b, namespace: 'y', labels: {role: other}}\n"
		 "spec: {containers: [{name: c}]}\nstatus: {podIPs: [{ip: 10.0.2.2}]}\n---\n"
		 "apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: 'y', labels: {app: a, role: client}}\n"
		 "spec: {containers: [{name: c}]}\nstatus: {podIPs: [{ip: 10.0.2.1}]}\n---\n"
		 "apiVersion: v1\nkind: Pod\nmetadata: {name: new, namespace: x, labels: {role: client}}\n"
		 "spec: {containers: [{name: c}]}\nstatus: {podIPs: [{ip: 10.0.1.9}]}\n");
	apply(e, pol);
	assert_false(allowed(e, "y/b", "x/a", PROTO_TCP, 80));
	assert_true(allowed(e, "y/a", "x/a", PROTO_TCP, 80));
	assert_true(allowed(e, "x/new", "x/a", PROTO_TCP, 80));
	/* and a pod deleted while idle is gone from it */
	engine_policy_delete(e, KIND_NETPOL, "x", "p");
	engine_pod_delete(e, "x", "new");
	apply(e, pol);
	assert_false(allowed(e, "10.0.1.9", "x/a", PROTO_TCP, 80));
	engine_free(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(delta_equals_full),
		cmocka_unit_test(full_sync_then_edits),
		cmocka_unit_test(idle_label_index_follows_pods),
		cmocka_unit_test(radix_sort_orders_starts),
		cmocka_unit_test(radix_sort_equals_qsort),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

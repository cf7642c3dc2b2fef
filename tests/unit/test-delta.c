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
#include "policy/eval.h"
#include "harness.h"

/* The engine of node-0 holding a generated cluster of size sz. */
static struct engine *gen_engine(const struct gen_size *sz, int seed)
{
	struct manifest_set set = { 0 };
	gen_cluster(sz, seed, &set);
	struct engine_config cfg = { "node-0", "app", true, NULL, NULL };
	struct engine *e = engine_new(&cfg);
	manifest_apply(&set, e);
	manifest_set_free(&set);
	return e;
}

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

static void apply(struct engine *e, const char *yaml);

/* One rule admitting ipBlocks (with excepts, over the generated pods'
 * addresses) and app=app-3 pods from every namespace: a peer set mixing
 * ranges with pods, rendered as two sets (render.c peer_sets). */
static const char mixed_policy[] =
	"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: mixed, namespace: ns-0}\n"
	"spec:\n  podSelector: {}\n  ingress:\n  - from:\n"
	"    - ipBlock: {cidr: 10.64.0.0/16, except: [10.64.1.0/24, 10.64.7.0/25]}\n"
	"    - ipBlock: {cidr: 'fd00::/112', except: ['fd00::100/120']}\n"
	"    - {namespaceSelector: {}, podSelector: {matchLabels: {app: app-3}}}\n";

static void delta_equals_full(void **state)
{
	(void)state;
	const struct gen_size *sz = gen_size_find("medium");
	struct engine *e = gen_engine(sz, 11);
	apply(e, mixed_policy);
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
	struct engine *e = gen_engine(sz, 11);
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

/* Whether set s (interval or hash, sorted keys) holds address a. */
static bool set_holds(const struct rs_set *s, ip128 a)
{
	size_t kl = rs_key_len(s->key);
	uint8_t k[16] = { 0 };
	if (kl == 4) {
		uint32_t v = ip_v4(a);
		k[0] = (uint8_t)(v >> 24), k[1] = (uint8_t)(v >> 16), k[2] = (uint8_t)(v >> 8), k[3] = (uint8_t)v;
	} else {
		for (int i = 0; i < 8; i++)
			k[i] = (uint8_t)(a.hi >> (56 - 8 * i)), k[8 + i] = (uint8_t)(a.lo >> (56 - 8 * i));
	}
	for (size_t i = 0; i < s->n; i++)
		if (memcmp(s->keys + i * 2 * kl, k, kl) <= 0 && memcmp(k, s->keys + i * 2 * kl + kl, kl) <= 0)
			return true;
	return false;
}

/* The peer set of the rule of mixed_policy: its ranges' sets and its
 * pods' (p<id>_4/_6 and p<id>_4/_6_c<capacity>) in rs; pods NULL when
 * merged into the ranges' sets. */
static void mixed_sets(const struct ruleset *rs, const struct rs_set *ranges[2], const struct rs_set *pods[2])
{
	ranges[0] = ranges[1] = pods[0] = pods[1] = NULL;
	for (size_t i = 0; i < rs->sets.n; i++) {
		const struct rs_set *x = rs->sets.v[i];
		if (!x->origin || !strstr(x->origin, "NetworkPolicy ns-0/mixed "))
			continue;
		int f = x->key == RS_KEY_V6;
		if (x->interval)
			ranges[f] = x;
		else
			pods[f] = x;
	}
}

/* A rule whose peers have ipBlocks and pods matches two sets, its ranges'
 * (an interval set, written only when the policy or the nodes change)
 * and its pods' (a hash edited at each pod event), where it matched one
 * interval set merging both: every address is admitted by one of the
 * two exactly when the merged set holds it (pods inside an except
 * included: peers are a union), and 100 pod events later the pods' set
 * was edited, never listed again, and the ranges' set wrote nothing. */
static void mixed_peers_split(void **state)
{
	(void)state;
	const struct gen_size *sz = gen_size_find("medium");
	struct engine *e = gen_engine(sz, 11);
	apply(e, mixed_policy);
	struct dp *dp = dp_new(NULL);
	dp_split_mixed = false;
	struct ruleset *merged = dp_render(dp, e);
	dp_split_mixed = true;
	struct ruleset *split = dp_render(dp, e);
	const struct rs_set *mr[2], *mp[2], *sr[2], *sp[2];
	mixed_sets(merged, mr, mp);
	mixed_sets(split, sr, sp);
	assert_non_null(mr[0]);
	assert_non_null(mr[1]);
	assert_null(mp[0]);
	assert_non_null(sr[0]);
	assert_non_null(sr[1]);
	assert_non_null(sp[0]);
	assert_non_null(sp[1]);
	/* every pod's addresses, and addresses at the edges of the ranges and excepts */
	struct vec pods = { 0 };
	engine_pods(e, &pods);
	size_t held = 0, in_except = 0, checked = 0;
	static const char *const edges[] = { "10.64.0.0", "10.64.0.255", "10.64.1.0", "10.64.1.255", "10.64.2.0",
					     "10.64.7.127", "10.64.7.128", "10.64.255.255", "10.65.0.0", "10.63.255.255",
					     "fd00::", "fd00::ff", "fd00::100", "fd00::1ff", "fd00::200", "fd00::ffff",
					     "fd00::1:0", "fcff:ffff:ffff:ffff:ffff:ffff:ffff:ffff" };
	for (size_t i = 0; i < pods.n + ARRAY_SIZE(edges); i++) {
		const struct pod *p = i < pods.n ? pods.v[i] : NULL;
		for (uint32_t j = 0; j < (p ? p->spec->naddr : 1); j++) {
			ip128 a;
			if (p)
				a = p->spec->addr[j];
			else
				assert_int_equal(ip_parse(edges[i - pods.n], &a), 0);
			int f = !ip_is_v4(a);
			bool want = set_holds(mr[f], a), got = set_holds(sr[f], a) || set_holds(sp[f], a);
			if (want != got)
				printf("address %zu/%u: merged %d, split %d\n", i, j, want, got);
			assert_true(want == got);
			held += want;
			in_except += want && !set_holds(sr[f], a);
			checked++;
		}
	}
	printf("%zu addresses: %zu admitted either way (%zu of them pods inside an except or outside the ranges); "
	       "ranges %zu + %zu, pods %zu + %zu elements; merged %zu + %zu\n",
	       checked, held, in_except, sr[0]->n, sr[1]->n, sp[0]->n, sp[1]->n, mr[0]->n, mr[1]->n);
	assert_true(in_except > 0);
	assert_true(held > in_except);
	vec_free(&pods);
	ruleset_free(merged);
	ruleset_free(split);

	/* pod events: the pods' set edited, the ranges' set unchanged */
	struct dp_stats st;
	char *err = NULL;
	assert_int_equal(dp_sync(dp, e, NULL, true, &st, &err), 0);
	dp_plan_verify = true;
	dp_plan_verified = 0;
	dp_render_relisted = 0;
	uint64_t r = 17;
	size_t mixed_changed = 0;
	for (int k = 0; k < 100; k++) {
		int i = (int)(rng(&r) % (uint64_t)sz->pods);
		engine_pod_upsert(e, gen_pod(sz, 11, i, (int)(rng(&r) % 8)));
		struct sbuf plan = { 0 };
		dp_sync_dry(dp, e, false, &plan);
		char *t = sbuf_steal(&plan);
		assert_null(strstr(t, "(peer ranges of NetworkPolicy ns-0/mixed ")); /* nothing written to them */
		mixed_changed += strstr(t, "(peer pods of NetworkPolicy ns-0/mixed ") != NULL;
		free(t);
	}
	printf("100 pod events: %zu changed the mixed rule's pods, %lu pod sets written from the edit, %lu listed "
	       "whole again\n",
	       mixed_changed, dp_plan_verified, dp_render_relisted);
	assert_true(mixed_changed >= 5);
	assert_int_equal(dp_render_relisted, 0);
	dp_plan_verify = false;
	dp_free(dp);
	engine_free(e);
}

/* The ranges of peer sets change with the policy (an ipBlock edited in
 * place, or the rule going pods-only and back), the Nodes (the entities
 * nodes and world, world also with pod addresses outside the pod ranges)
 * and the API server's addresses: after each change, the ruleset edited
 * from the mirror (ranges' sets shared unless marked full: render.c
 * range_sets) must equal the one listed whole. */
static void ranges_follow_changes(void **state)
{
	(void)state;
	const struct gen_size *sz = gen_size_find("medium");
	struct engine *e = gen_engine(sz, 11);
	apply(e, mixed_policy);
	static const char ents[] =
		"apiVersion: corral.dev/v1\nkind: AccessPolicy\nmetadata: {name: ents, namespace: ns-0}\n"
		"spec: {application: app-1, inbound: {external: [{entity: nodes}, {entity: world}, "
		"{entity: kube-apiserver}, {cidr: 192.168.0.0/16}]}, outbound: {external: [{entity: world}, "
		"{entity: kube-apiserver, ports: [{port: 443}]}]}}\n";
	engine_pod_upsert(e, gen_pod(sz, 11, 0, 1)); /* ns-0/pod-0, on node-0: app-1 */
	apply(e, ents);
	struct dp *dp = dp_new(NULL);
	struct dp_stats st;
	char *err = NULL;
	assert_int_equal(dp_sync(dp, e, NULL, true, &st, &err), 0);
	char *first = dp_applied_text(dp);
	assert_non_null(strstr(first, "accept comment \"NetworkPolicy ns-0/mixed spec.ingress[0]\""));
	assert_non_null(strstr(first, "AccessPolicy ns-0/ents"));
	free(first);
	uint64_t r = 4242;
	int kinds[7] = { 0 }, strays = 0;
	for (int round = 0; round < 200; round++) {
		int k = (int)(rng(&r) % 7);
		kinds[k]++;
		char *y = NULL;
		switch (k) {
		case 0: { /* a pod event (not pod-0's) */
			int i = 1 + (int)(rng(&r) % (uint64_t)(sz->pods - 1));
			engine_pod_upsert(e, gen_pod(sz, 11, i, (int)(rng(&r) % 8)));
			break;
		}
		case 1: /* the ipBlock edited in place */
			y = xasprintf("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: mixed, "
				      "namespace: ns-0}\nspec:\n  podSelector: {}\n  ingress:\n  - from:\n"
				      "    - ipBlock: {cidr: 10.64.0.0/16, except: [10.64.%d.0/24]}\n"
				      "    - ipBlock: {cidr: 'fd00::/112', except: ['fd00::%x00/120']}\n"
				      "    - {namespaceSelector: {}, podSelector: {matchLabels: {app: app-3}}}\n",
				      (int)(rng(&r) % 8), (int)(rng(&r) % 8));
			break;
		case 2: /* ... or pods only */
			y = xasprintf("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: mixed, "
				      "namespace: ns-0}\nspec:\n  podSelector: {}\n  ingress:\n  - from:\n"
				      "    - {namespaceSelector: {}, podSelector: {matchLabels: {app: app-3}}}\n");
			break;
		case 3: { /* a Node comes or changes: its address and pod range */
			int n = (int)(rng(&r) % 3);
			y = xasprintf("apiVersion: v1\nkind: Node\nmetadata: {name: extra-%d}\nspec: {podCIDRs: "
				      "['10.%d.0.0/16']}\nstatus: {addresses: [{type: InternalIP, address: '172.20.0.%d'}]}\n",
				      n, 64 + (int)(rng(&r) % 3), (int)(rng(&r) % 8));
			break;
		}
		case 4: { /* a Node goes */
			char name[32];
			snprintf(name, sizeof(name), "extra-%d", (int)(rng(&r) % 3));
			engine_node_delete(e, name);
			break;
		}
		case 5: { /* the API server moves */
			struct range_set api = { 0 };
			ip128 a = ip_from_v4(172u << 24 | 21u << 16 | (uint32_t)(rng(&r) % 4));
			range_set_add(&api, a, a);
			engine_apiserver_set(e, &api);
			range_set_free(&api);
			break;
		}
		default: { /* a pod outside the pod ranges (a stray: world leaves it out) */
			int i = 1 + (int)(rng(&r) % (uint64_t)(sz->pods - 1));
			struct pod_spec *p = gen_pod(sz, 11, i, (int)(rng(&r) % 8));
			p->addr[0] = ip_from_v4(198u << 24 | 51u << 16 | 100u << 8 | (uint32_t)(strays++ % 200));
			engine_pod_upsert(e, p);
			break;
		}
		}
		if (y) {
			apply(e, y);
			free(y);
		}
		assert_int_equal(dp_sync(dp, e, NULL, false, &st, &err), 0);
		char *edited = dp_applied_text(dp);
		assert_int_equal(dp_sync(dp, e, NULL, true, &st, &err), 0); /* listed whole */
		char *whole = dp_applied_text(dp);
		if (strcmp(edited, whole)) {
			printf("round %d (change %d): the edited ruleset differs from the one listed whole\n", round, k);
			FILE *a = fopen("/tmp/corral-ranges-edited.nft", "w"), *w = fopen("/tmp/corral-ranges-whole.nft", "w");
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
	printf("200 changes: %d pod events, %d ipBlock edits, %d to pods only, %d node upserts, %d node deletions, "
	       "%d API server moves, %d stray pods: edited rulesets equal listed ones\n",
	       kinds[0], kinds[1], kinds[2], kinds[3], kinds[4], kinds[5], kinds[6]);
	dp_free(dp);
	engine_free(e);
}

/* explain, live (agent.c side_where) names the applied rule that admitted
 * a flow (dp_rule_text). A mixed rule is now two rules per family with
 * the same comment, its ranges' set's first: a pod admitted through the
 * pods' set (here z/b -> w/t, z/b inside the except) must not be explained by the
 * rule matching the ranges' set, which does not hold it. */
static void explain_names_the_pods_rule(void **state)
{
	(void)state;
	struct engine *e = LOAD(
		"apiVersion: v1\nkind: Pod\nmetadata: {name: t, namespace: w, labels: {pod: t}}\n"
		"spec: {containers: [{name: c}]}\nstatus: {podIPs: [{ip: 10.1.1.1}]}\n---\n"
		"apiVersion: v1\nkind: Pod\nmetadata: {name: b, namespace: z, labels: {pod: b}}\n"
		"spec: {containers: [{name: c}]}\nstatus: {podIPs: [{ip: 10.1.3.5}]}\n---\n"
		"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: mixed, namespace: w}\n"
		"spec:\n  podSelector: {matchLabels: {pod: t}}\n  ingress:\n  - from:\n"
		"    - ipBlock: {cidr: 10.1.0.0/16, except: [10.1.3.0/24]}\n"
		"    - {namespaceSelector: {}, podSelector: {matchLabels: {pod: b}}}\n");
	struct dp *dp = dp_new(NULL);
	struct dp_stats st;
	char *err = NULL;
	assert_int_equal(dp_sync(dp, e, NULL, true, &st, &err), 0);
	ip128 sa, da;
	assert_int_equal(ip_parse("10.1.3.5", &sa), 0);
	assert_int_equal(ip_parse("10.1.1.1", &da), 0);
	struct endpoint src = { engine_pod_by_addr(e, sa), sa }, dst = { engine_pod_by_addr(e, da), da };
	assert_non_null(src.pod);
	assert_non_null(dst.pod);
	struct verdict v;
	policy_eval(e, &src, &dst, PROTO_TCP, 80, &v);
	assert_true(v.allowed);
	const struct dir_verdict *in = &v.side[DIR_INGRESS];
	char *rule = dp_rule_text(dp, in->group, in->by, &sa);
	printf("z/b -> w/t explained by `%s`\n", rule ? rule : "(none)");
	assert_non_null(rule);
	/* the set the rule matches holds z/b: the pods' set (p<id>_4_c<cap>) */
	assert_non_null(strstr(rule, "_c"));
	free(rule);
	verdict_free(&v);
	/* ... and an address of the ranges by the ranges' set's */
	assert_int_equal(ip_parse("10.1.5.5", &sa), 0);
	src = (struct endpoint){ NULL, sa };
	policy_eval(e, &src, &dst, PROTO_TCP, 80, &v);
	assert_true(v.allowed);
	rule = dp_rule_text(dp, v.side[DIR_INGRESS].group, v.side[DIR_INGRESS].by, &sa);
	printf("10.1.5.5 -> w/t explained by `%s`\n", rule ? rule : "(none)");
	assert_non_null(rule);
	assert_non_null(strstr(rule, "@p"));
	assert_null(strstr(rule, "_c"));
	free(rule);
	verdict_free(&v);
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
	struct engine *e = gen_engine(sz, 5);
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
		cmocka_unit_test(mixed_peers_split),
		cmocka_unit_test(ranges_follow_changes),
		cmocka_unit_test(explain_names_the_pods_rule),
		cmocka_unit_test(idle_label_index_follows_pods),
		cmocka_unit_test(radix_sort_orders_starts),
		cmocka_unit_test(radix_sort_equals_qsort),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Provisional verdicts (agent/daemon/provisional.c) against an engine:
 * which new local addresses are twinned with a waiting pod and which are
 * denied both ways, without a kernel (test-provisional has the packets).
 *   - the pod watch behind (issue 14): from the API, a twin only through a
 *     read of this node's pods asked for after the address appeared, in
 *     which every waiting pod is as the watch has it; else deny;
 *   - an address a pod of another node holds is no local pod's: it gets a
 *     provisional verdict, it is not taken as claimed;
 *   - waiting pods of several kinds: a twin only when each would get the
 *     same verdicts here;
 *   - `test-prov --bench large`: prov_reconcile's time with 150,000 pods
 *     (bench/gen.c) and one unclaimed address. */
#define _GNU_SOURCE
#include <stdio.h>
#include <time.h>

#include "agent/daemon/provisional.h"
#include "bench/gen.h"
#include "harness.h"

static const struct engine_config CFG = { "node-1", "app", true, NULL, NULL };

/* x/NAME with app=APP on node NODE, with address IP or waiting for one */
static struct pod_spec *pod(const char *name, const char *app, const char *node, const char *ip)
{
	char *y = xasprintf("apiVersion: v1\nkind: Pod\nmetadata: {name: %s, namespace: x, labels: {app: %s}}\n"
			    "spec: {nodeName: %s, containers: [{name: c, ports: [{name: http, containerPort: 80}]}]}\n"
			    "status: {phase: %s%s%s%s}\n",
			    name, app, node, ip ? "Running" : "Pending", ip ? ", podIPs: [{ip: '" : "", ip ? ip : "",
			    ip ? "'}]" : "");
	struct manifest_set set = { 0 };
	struct decode_opts o = { DECODE_API, false, "app", "default" };
	assert_int_equal(manifest_load_buffer(&set, "t.yaml", y, strlen(y), &o), 0);
	free(y);
	assert_int_equal(set.pods.n, 1);
	struct pod_spec *s = set.pods.v[0];
	s->refs++; /* ours, past the set */
	manifest_set_free(&set);
	return s;
}

/* Every object of yaml into the engine, as the source would (no
 * address made up for a pod without one). */
static void apply(struct engine *e, const char *yaml)
{
	struct manifest_set set = { 0 };
	struct decode_opts o = { DECODE_API, false, "app", "default" };
	assert_int_equal(manifest_load_buffer(&set, "t.yaml", yaml, strlen(yaml), &o), 0);
	assert_int_equal(set.diags.errors, 0);
	manifest_apply(&set, e);
	manifest_set_free(&set);
}

static void waiting_pod(struct engine *e, const char *name, const char *labels, int port)
{
	char *y = xasprintf("apiVersion: v1\nkind: Pod\nmetadata: {name: %s, namespace: x, labels: {%s}}\n"
			    "spec: {nodeName: node-1, containers: [{name: c, ports: [{name: http, containerPort: %d}]}]}\n"
			    "status: {phase: Pending}\n",
			    name, labels, port);
	apply(e, y);
	free(y);
}

static struct link_port port(const char *name, int ifindex, uint8_t last)
{
	struct link_port lp = { .ifindex = ifindex, .naddr = 1 };
	snprintf(lp.name, sizeof(lp.name), "%s", name);
	lp.addr[0].family = 4;
	lp.addr[0].a[0] = 10, lp.addr[0].a[1] = 1, lp.addr[0].a[2] = 7, lp.addr[0].a[3] = last;
	clock_gettime(CLOCK_MONOTONIC, &lp.since);
	return lp;
}

static ip128 A(uint8_t last)
{
	return ip_from_v4(10u << 24 | 1u << 16 | 7u << 8 | last);
}

/* Reconciles; whether a is among the denied addresses. */
static bool denied(struct prov *pv, struct engine *e, const struct link_port *lp, size_t n, ip128 a)
{
	ip128 *d;
	size_t nd;
	prov_reconcile(pv, e, lp, n, true, &d, &nd);
	bool yes = false;
	for (size_t i = 0; i < nd; i++)
		yes |= ip_eq(d[i], a);
	free(d);
	printf("  %s: %s\n", yes ? "denied" : "not denied", prov_why(pv, a) ? prov_why(pv, a) : "(no entry)");
	return yes;
}

/* A read of this node's pods, asked for now. */
static void read_now(struct prov *pv, struct pod_spec **pods, size_t n)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	struct pod_spec **v = xcalloc(n ? n : 1, sizeof(*v));
	if (n)
		memcpy(v, pods, n * sizeof(*v));
	prov_node_pods(pv, &t, v, n);
}

static bool twinned(struct engine *e, const char *name, ip128 a)
{
	struct pod *p = engine_pod_find(e, "x", name);
	return p && p->spec->naddr == 1 && ip_eq(p->spec->addr[0], a);
}

/* The lag: the watch knows x/c (app=web) waiting; the API also has x/nw
 * (app=db), bound here, whose interface the CNI just made. */
static void stale_watch_denies(void **state)
{
	(void)state;
	struct engine *e = engine_new(&CFG);
	engine_pod_upsert(e, pod("c", "web", "node-1", NULL));
	struct prov *pv = prov_new(true);
	struct link_port lp = port("vnew1", 7, 1);
	/* no read yet: denied, and a read wanted */
	assert_true(denied(pv, e, &lp, 1, A(1)));
	assert_true(prov_wants_read(pv));
	assert_false(twinned(e, "c", A(1)));
	/* a read with x/nw waiting, which the watch has not brought: denied */
	read_now(pv, (struct pod_spec *[]){ pod("c", "web", "node-1", NULL), pod("nw", "db", "node-1", NULL) }, 2);
	assert_true(denied(pv, e, &lp, 1, A(1)));
	assert_false(prov_wants_read(pv));
	assert_false(twinned(e, "c", A(1)));
	assert_non_null(strstr(prov_why(pv, A(1)), "x/nw waits for an address in the API, not yet known"));
	/* the API has already given x/nw the address: denied */
	read_now(pv, (struct pod_spec *[]){ pod("c", "web", "node-1", NULL), pod("nw", "db", "node-1", "10.1.7.1") },
		 2);
	assert_true(denied(pv, e, &lp, 1, A(1)));
	assert_non_null(strstr(prov_why(pv, A(1)), "the API gives it to x/nw"));
	/* x/c relabelled in the API, the watch still has app=web: denied */
	read_now(pv, (struct pod_spec *[]){ pod("c", "db", "node-1", NULL) }, 1);
	assert_true(denied(pv, e, &lp, 1, A(1)));
	assert_non_null(strstr(prov_why(pv, A(1)), "not as the pod watch has it yet"));
	/* a read asked for before a new interface: of no use for it */
	read_now(pv, (struct pod_spec *[]){ pod("c", "web", "node-1", NULL) }, 1);
	struct link_port two[2] = { lp, port("vnew2", 8, 2) };
	assert_true(denied(pv, e, two, 2, A(2)));
	assert_true(prov_wants_read(pv));
	assert_non_null(strstr(prov_why(pv, A(2)), "waiting for a read of this node's pods"));
	prov_free(pv, e);
	engine_free(e);
}

/* The watch as fresh as the read: twinned as before. */
static void fresh_read_twins(void **state)
{
	(void)state;
	struct engine *e = engine_new(&CFG);
	engine_pod_upsert(e, pod("c", "web", "node-1", NULL));
	engine_pod_upsert(e, pod("a", "web", "node-1", "10.1.0.1"));
	struct prov *pv = prov_new(true);
	struct link_port lp = port("vnew1", 7, 1);
	assert_true(denied(pv, e, &lp, 1, A(1)));
	read_now(pv,
		 (struct pod_spec *[]){ pod("a", "web", "node-1", "10.1.0.1"), pod("c", "web", "node-1", NULL) }, 2);
	assert_false(denied(pv, e, &lp, 1, A(1)));
	assert_true(twinned(e, "c", A(1)));
	assert_non_null(strstr(prov_why(pv, A(1)), "taken for x/c"));
	/* the API reports it: the entry goes, x/c keeps what the API says */
	engine_pod_upsert(e, pod("c", "web", "node-1", "10.1.7.1"));
	assert_false(denied(pv, e, &lp, 1, A(1)));
	assert_null(prov_why(pv, A(1)));
	prov_free(pv, e);
	engine_free(e);
}

/* Issue 14, review: only this node's pods own a local address. y/o of
 * node-2 holds 10.1.7.3 in the API (moved, terminating); the address on a
 * local interface is no pod's here: denied (no pod waits), not claimed. */
static void other_node_owner_is_no_owner(void **state)
{
	(void)state;
	for (int api = 0; api < 2; api++) {
		struct engine *e = engine_new(&CFG);
		engine_pod_upsert(e, pod("o", "web", "node-2", "10.1.7.3"));
		assert_int_equal(engine_addr_claims(e, A(3), NULL), 1);
		struct prov *pv = prov_new(api);
		struct link_port lp = port("vnew3", 9, 3);
		if (api) {
			assert_true(denied(pv, e, &lp, 1, A(3)));
			read_now(pv, NULL, 0);
		}
		assert_true(denied(pv, e, &lp, 1, A(3)));
		assert_non_null(strstr(prov_why(pv, A(3)), "no pod on this node waits for an address"));
		/* a pod of this node waiting: twinned, though y/o holds it */
		engine_pod_upsert(e, pod("c", "web", "node-1", NULL));
		if (api)
			read_now(pv, (struct pod_spec *[]){ pod("c", "web", "node-1", NULL) }, 1);
		assert_false(denied(pv, e, &lp, 1, A(3)));
		assert_true(twinned(e, "c", A(3)));
		prov_free(pv, e);
		engine_free(e);
	}
}

/* Several kinds of waiting pods (issue 14, 4): twinned only when every
 * one would get the same verdicts here as the twin (the same policies
 * isolating it, the same peer sets, the same ports); else denied. */
static void equivalent_kinds_twin(void **state)
{
	(void)state;
	static const char *pols =
		"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: iso, namespace: x}\n"
		"spec: {podSelector: {matchLabels: {app: db}}, policyTypes: [Ingress, Egress]}\n---\n"
		"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: to-a, namespace: x}\n"
		"spec:\n  podSelector: {matchLabels: {app: a}}\n  ingress:\n  - from:\n"
		"    - podSelector: {matchLabels: {role: front}}\n---\n"
		"apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: x, labels: {app: a}}\n"
		"spec: {nodeName: node-1, containers: [{name: c}]}\nstatus: {phase: Running, podIPs: [{ip: 10.1.0.1}]}\n";
	static const struct {
		const char *other; /* labels of x/w2 beside x/w1 {app: web, hash: one} */
		int port;
		bool twin;
		const char *what;
		const char *extra; /* one more policy */
	} cases[] = {
		{ "app: web, hash: two", 80, true, "a label no selector reads (a rollout's pod-template-hash)", NULL },
		{ "app: db, hash: two", 80, false, "isolated by x/iso", NULL },
		{ "app: web, role: front", 80, false, "in x/to-a's peer set", NULL },
		{ "app: web, hash: two", 8080, false, "its named port elsewhere", NULL },
		/* x/self selects both (the same group), admits hash=one: live only
		 * once the twin is, and then x/w1's address is in it, x/w2's not */
		{ "app: web, hash: two", 80, false, "not in the peer set of x/self, which only the twin makes live",
		  "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: self, namespace: x}\n"
		  "spec:\n  podSelector: {matchLabels: {app: web}}\n  ingress:\n  - from:\n"
		  "    - podSelector: {matchLabels: {hash: one}}\n" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		struct engine *e = engine_new(&CFG);
		apply(e, pols);
		if (cases[i].extra)
			apply(e, cases[i].extra);
		waiting_pod(e, "w1", "app: web, hash: one", 80);
		waiting_pod(e, "w2", cases[i].other, cases[i].port);
		struct prov *pv = prov_new(false);
		struct link_port lp = port("vnew1", 7, 1);
		printf(" x/w2 {%s}, port %d: %s\n", cases[i].other, cases[i].port, cases[i].what);
		bool d = denied(pv, e, &lp, 1, A(1));
		assert_int_equal(d, !cases[i].twin);
		assert_int_equal(twinned(e, "w1", A(1)), cases[i].twin);
		if (cases[i].twin)
			assert_non_null(strstr(prov_why(pv, A(1)), "gets the same verdicts here"));
		else
			assert_non_null(strstr(prov_why(pv, A(1)), "pods of different kinds"));
		prov_free(pv, e);
		engine_free(e);
	}
}

static double now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* prov_reconcile with one unclaimed address in a cluster of the size. */
static int bench(const char *size)
{
	const struct gen_size *sz = gen_size_find(size);
	if (!sz)
		return 2;
	struct manifest_set set = { 0 };
	gen_cluster(sz, 42, &set);
	struct engine_config cfg = { "node-0", "app", true, NULL, NULL };
	struct engine *e = engine_new(&cfg);
	manifest_apply(&set, e);
	struct pod_spec *w = gen_pod(sz, 42, 5, 1); /* node-0's, waiting */
	w->naddr = 0;
	engine_pod_upsert(e, w);
	struct link_port lp = port("vnew1", 7, 1);
	struct prov *pv = prov_new(false);
	int n = 200;
	double t0 = now_ms();
	for (int i = 0; i < n; i++) {
		ip128 *d;
		size_t nd;
		prov_reconcile(pv, e, &lp, 1, true, &d, &nd);
		free(d);
	}
	double t1 = now_ms();
	printf("%s: %zu pods: prov_reconcile %.4f ms each (%d runs, one unclaimed address): %s\n", size,
	       engine_pod_count(e), (t1 - t0) / n, n, prov_why(pv, A(1)));
	prov_free(pv, e);
	engine_free(e);
	manifest_set_free(&set);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "--bench"))
		return bench(argv[2]);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(stale_watch_denies),
		cmocka_unit_test(fresh_read_twins),
		cmocka_unit_test(other_node_owner_is_no_owner),
		cmocka_unit_test(equivalent_kinds_twin),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

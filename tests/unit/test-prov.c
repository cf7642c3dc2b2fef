/* Provisional verdicts (agent/daemon/provisional.c) against an engine:
 * which new local addresses are twinned with a waiting pod and which are
 * denied both ways, without a kernel (test-provisional has the packets).
 *   - the pod watch behind (issue 14): from the API, a twin only through a
 *     read of this node's pods asked for after the address appeared, in
 *     which every waiting pod is as the watch has it; else deny;
 *   - an address a pod of another node holds is no local pod's: it gets a
 *     provisional verdict, it is not taken as claimed;
 *   - waiting pods of several kinds: a plain twin only when each would get
 *     the same verdicts here, else a twin that meets every one of them
 *     (the intersection of their verdicts: engine_pod_upsert_meet), seen
 *     through policy_eval, peer sets, named ports and the rendered chains;
 *   - `test-prov --bench large`: prov_reconcile's time with 150,000 pods
 *     (bench/gen.c) and one unclaimed address. */
#define _GNU_SOURCE
#include <stdio.h>
#include <time.h>

#include "agent/daemon/provisional.h"
#include "agent/dataplane/dataplane.h"
#include "agent/dataplane/ruleset.h"
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
		assert_false(denied(pv, e, &lp, 1, A(1)));
		assert_true(twinned(e, "w1", A(1)));
		assert_int_equal(engine_pod_find(e, "x", "w1")->meet == NULL, cases[i].twin);
		if (cases[i].twin)
			assert_non_null(strstr(prov_why(pv, A(1)), "gets the same verdicts here"));
		else
			assert_non_null(strstr(prov_why(pv, A(1)), "pods of different kinds"));
		prov_free(pv, e);
		engine_free(e);
	}
}

/* The verdicts of one side of a flow: egress at the source (src is the
 * provisional address) or ingress at the destination (dst is). */
static bool side(struct engine *e, const char *src, const char *dst, int port, enum dir d)
{
	struct endpoint s = { 0 }, t = { 0 };
	const char *n[2] = { src, dst };
	struct endpoint *ep[2] = { &s, &t };
	for (int k = 0; k < 2; k++) {
		if (!strncmp(n[k], "10.", 3)) {
			assert_int_equal(ip_parse(n[k], &ep[k]->addr), 0);
			ep[k]->pod = engine_pod_by_addr(e, ep[k]->addr);
		} else {
			ep[k]->pod = engine_pod_find(e, "x", n[k]);
			assert_non_null(ep[k]->pod);
			ep[k]->addr = ep[k]->pod->spec->addr[0];
		}
	}
	struct verdict v;
	policy_eval(e, &s, &t, PROTO_TCP, port, &v);
	bool ok = v.side[d].allowed;
	verdict_free(&v);
	return ok;
}

static size_t meet_groups(struct engine *e)
{
	struct vec g = { 0 };
	size_t n = 0;
	engine_groups(e, &g);
	for (size_t i = 0; i < g.n; i++)
		n += ((struct ir_group *)g.v[i])->nmeet > 0;
	vec_free(&g);
	return n;
}

/* Two kinds wait: w1 {app: a, tier: web} (http 80) and w2 {app: b,
 * tier: web} (http 8080). The new address gets what both would get. */
static void intersection_of_kinds(void **state)
{
	(void)state;
	static const char *objs =
		"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: iso-a, namespace: x}\n"
		"spec:\n  podSelector: {matchLabels: {app: a}}\n  policyTypes: [Ingress, Egress]\n"
		"  ingress:\n  - from: [{podSelector: {matchLabels: {role: front}}}]\n    ports: [{port: 80}, {port: 9090}, {port: 443}]\n"
		"  egress:\n  - to: [{podSelector: {matchLabels: {app: db}}}]\n    ports: [{port: 5432}]\n"
		"  - to: [{podSelector: {matchLabels: {app: cache}}}]\n    ports: [{port: 6379}]\n---\n"
		"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: iso-b, namespace: x}\n"
		"spec:\n  podSelector: {matchLabels: {app: b}}\n  policyTypes: [Ingress, Egress]\n"
		"  ingress:\n  - from: [{podSelector: {matchLabels: {role: front}}}]\n    ports: [{port: 443}]\n"
		"  egress:\n  - to: [{podSelector: {matchLabels: {app: db}}}]\n    ports: [{port: 5432}]\n---\n"
		/* selects both kinds: a named port each resolves otherwise */
		"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: web-in, namespace: x}\n"
		"spec:\n  podSelector: {matchLabels: {tier: web}}\n"
		"  ingress:\n  - from: [{podSelector: {matchLabels: {role: front}}}]\n    ports: [{port: http}]\n---\n"
		/* x/front calls tier=web (both are) on 81, app=a (one is) on 82 */
		"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: front-out, namespace: x}\n"
		"spec:\n  podSelector: {matchLabels: {role: front}}\n  policyTypes: [Egress]\n"
		"  egress:\n  - to: [{podSelector: {matchLabels: {tier: web}}}]\n    ports: [{port: 81}]\n"
		"  - to: [{podSelector: {matchLabels: {app: a}}}]\n    ports: [{port: 82}]\n---\n"
		"apiVersion: v1\nkind: Pod\nmetadata: {name: front, namespace: x, labels: {role: front}}\n"
		"spec: {nodeName: node-1, containers: [{name: c}]}\nstatus: {phase: Running, podIPs: [{ip: 10.1.0.5}]}\n---\n"
		"apiVersion: v1\nkind: Pod\nmetadata: {name: db, namespace: x, labels: {app: db}}\n"
		"spec: {nodeName: node-2, containers: [{name: c}]}\nstatus: {phase: Running, podIPs: [{ip: 10.1.0.6}]}\n---\n"
		"apiVersion: v1\nkind: Pod\nmetadata: {name: cache, namespace: x, labels: {app: cache}}\n"
		"spec: {nodeName: node-2, containers: [{name: c}]}\nstatus: {phase: Running, podIPs: [{ip: 10.1.0.7}]}\n";
	struct engine *e = engine_new(&CFG);
	apply(e, objs);
	waiting_pod(e, "w1", "app: a, tier: web", 80);
	waiting_pod(e, "w2", "app: b, tier: web", 8080);
	struct prov *pv = prov_new(false);
	struct link_port lp = port("vnew1", 7, 1);
	assert_false(denied(pv, e, &lp, 1, A(1)));
	assert_non_null(strstr(prov_why(pv, A(1)), "may be any of the 2 pods of different kinds"));
	assert_non_null(strstr(prov_why(pv, A(1)), "(x/w1, x/w2)"));
	struct pod *p = engine_pod_find(e, "x", "w1");
	assert_non_null(p->meet);
	/* egress: each group passed; db:5432 both allow, cache:6379 only w1's */
	assert_true(side(e, "10.1.7.1", "db", 5432, DIR_EGRESS));
	assert_false(side(e, "10.1.7.1", "cache", 6379, DIR_EGRESS));
	assert_int_equal(p->group[DIR_EGRESS]->nmeet, 2);
	/* ingress: 443 both allow; 9090 w1's only; 8080 w2's only (its named
	 * port http, through web-in); 80 w1's, and w2's only if its named
	 * port were taken as the twin's (w1's http, 80): it is not */
	assert_true(side(e, "front", "10.1.7.1", 443, DIR_INGRESS));
	assert_false(side(e, "front", "10.1.7.1", 9090, DIR_INGRESS));
	assert_false(side(e, "front", "10.1.7.1", 8080, DIR_INGRESS));
	assert_false(side(e, "front", "10.1.7.1", 80, DIR_INGRESS));
	assert_int_equal(p->group[DIR_INGRESS]->nmeet, 2);
	/* as a peer: tier=web (both) yes, app=a (w1 only) no */
	assert_true(side(e, "front", "10.1.7.1", 81, DIR_EGRESS));
	assert_false(side(e, "front", "10.1.7.1", 82, DIR_EGRESS));
	/* the chains: a meet chain per direction, the ingress return variant */
	char *rs = NULL;
	{
		struct dp_config dc = { 0 };
		struct dp *dp = dp_new(&dc);
		struct ruleset *r = dp_render(dp, e);
		rs = ruleset_format(r);
		ruleset_free(r);
		dp_free(dp);
	}
	char eg[32], ing[32], sub[48];
	dp_group_chain(p->group[DIR_EGRESS], eg, sizeof(eg));
	dp_group_chain(p->group[DIR_INGRESS], ing, sizeof(ing));
	dp_group_chain(p->group[DIR_INGRESS]->meet[0], sub, sizeof(sub));
	char *want[] = { xasprintf("chain %s {", eg), xasprintf("chain %s {", ing),
			 xasprintf("chain %s%s {", sub, DP_RETURN_SUFFIX), xasprintf("jump %s%s", sub, DP_RETURN_SUFFIX) };
	for (size_t i = 0; i < 4; i++) {
		if (!strstr(rs, want[i]))
			printf("no \"%s\" in:\n%s", want[i], rs);
		assert_non_null(strstr(rs, want[i]));
		free(want[i]);
	}
	/* and the named port: w1's address not in web-in's set (80 vs 8080) */
	assert_null(strstr(rs, "10.1.7.1 . tcp . 80"));
	assert_null(strstr(rs, "10.1.7.1 . tcp . 8080"));
	free(rs);
	assert_int_equal(meet_groups(e), 2);
	/* the interface goes: every pod its own spec, no meet group left */
	assert_false(denied(pv, e, NULL, 0, A(1)));
	assert_null(engine_pod_find(e, "x", "w1")->meet);
	assert_int_equal(meet_groups(e), 0);
	prov_free(pv, e);
	engine_free(e);
}

/* A waiting pod that could not be read (folder source): the new address
 * may be its, and it would be quarantined, so the address is denied both
 * ways, not given the readable candidate's verdict. */
static void unreadable_candidate_denies(void **state)
{
	(void)state;
	struct engine *e = engine_new(&CFG);
	waiting_pod(e, "w1", "app: web", 80);
	struct pod_spec *bad = pod("w0", "web", "node-1", NULL);
	bad->unreadable = true;
	engine_pod_upsert(e, bad);
	struct prov *pv = prov_new(false);
	struct link_port lp = port("vnew1", 7, 1);
	assert_true(denied(pv, e, &lp, 1, A(1)));
	assert_non_null(strstr(prov_why(pv, A(1)), "x/w0 waits for an address here and could not be read"));
	prov_free(pv, e);
	engine_free(e);
}

/* The host rule's set of x/w1's group: an address the DNS proxy learned
 * for it (agent/daemon/dns.c learn()) must outlive the next transaction
 * while the address is still provisional: prov_reconcile gives every pod
 * its own spec back and then twins again, and x/out, live only through
 * the twin, must not lose its peer sets meanwhile (a new set of a new id,
 * with nothing learned: the pod's connections to the host dropped, the
 * established ones revoked). */
static struct ir_peerset *host_set_of(struct engine *e, const char *name)
{
	const struct ir_group *g = engine_pod_find(e, "x", name)->group[DIR_EGRESS];
	assert_non_null(g);
	for (size_t i = 0; i < g->rules.n; i++) {
		const struct ir_rule *r = g->rules.v[i];
		if (r->peers && r->peers->host)
			return r->peers;
	}
	fail_msg("no host rule");
	return NULL;
}

static void twin_keeps_learned_hosts(void **state)
{
	(void)state;
	struct engine *e = engine_new(&CFG);
	apply(e, "apiVersion: corral.dev/v1\nkind: AccessPolicy\nmetadata: {name: out, namespace: x}\n"
		 "spec: {application: web, outbound: {external: [{host: api.example.com}]}}\n");
	waiting_pod(e, "w1", "app: web", 80);
	struct prov *pv = prov_new(false);
	struct link_port lp = port("vnew1", 7, 1);
	assert_false(denied(pv, e, &lp, 1, A(1)));
	assert_true(twinned(e, "w1", A(1)));
	struct ir_peerset *ps = host_set_of(e, "w1");
	uint32_t id = ps->id;
	ip128 api = ip_from_v4(203u << 24 | 113u << 8 | 10);
	assert_int_equal(fqdn_set_learn(&ps->learned, api, "api.example.com", fqdn_now_ms(), 60000, 16), FQDN_NEW);
	struct endpoint src = { engine_pod_find(e, "x", "w1"), A(1) }, dst = { NULL, api };
	struct verdict v;
	policy_eval(e, &src, &dst, PROTO_TCP, 443, &v);
	assert_true(v.allowed);
	verdict_free(&v);
	engine_take_dirty(e, NULL, NULL); /* rendered */
	/* the next transaction (any event), the address still provisional */
	assert_false(denied(pv, e, &lp, 1, A(1)));
	assert_true(twinned(e, "w1", A(1)));
	ps = host_set_of(e, "w1");
	assert_int_equal(ps->id, id); /* the same set (the same kernel set h<id>) */
	assert_true(ir_peerset_has(e, ps, api));
	src.pod = engine_pod_find(e, "x", "w1");
	policy_eval(e, &src, &dst, PROTO_TCP, 443, &v);
	assert_true(v.allowed);
	verdict_free(&v);
	prov_free(pv, e);
	engine_free(e);
}

/* A policy that selects only a candidate other than the twin's own pod
 * (x/w2, app=b, while the twin is x/w1's) is held by the meet group's
 * group of that kind: deleted, or changed to select other pods, the meet
 * follows at once (no group keeps a policy that is gone). */
static void meet_follows_policy_delete(void **state)
{
	(void)state;
	static const char *objs =
		"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: iso-a, namespace: x}\n"
		"spec: {podSelector: {matchLabels: {app: a}}, policyTypes: [Ingress, Egress]}\n---\n"
		"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: iso-b, namespace: x}\n"
		"spec:\n  podSelector: {matchLabels: {app: b}}\n  policyTypes: [Ingress]\n"
		"  ingress:\n  - from: [{podSelector: {matchLabels: {role: front}}}]\n---\n"
		"apiVersion: v1\nkind: Pod\nmetadata: {name: front, namespace: x, labels: {role: front}}\n"
		"spec: {nodeName: node-2, containers: [{name: c}]}\nstatus: {phase: Running, podIPs: [{ip: 10.1.0.5}]}\n";
	struct engine *e = engine_new(&CFG);
	apply(e, objs);
	waiting_pod(e, "w1", "app: a", 80);
	waiting_pod(e, "w2", "app: b", 80);
	struct prov *pv = prov_new(false);
	struct link_port lp = port("vnew1", 7, 1);
	assert_false(denied(pv, e, &lp, 1, A(1)));
	struct pod *p = engine_pod_find(e, "x", "w1");
	assert_non_null(p->meet);
	assert_int_equal(p->group[DIR_INGRESS]->nmeet, 2);
	assert_false(side(e, "front", "10.1.7.1", 80, DIR_INGRESS));
	/* iso-b goes: the twin (app=a) is not one of its targets */
	engine_policy_delete(e, KIND_NETPOL, "x", "iso-b");
	assert_int_equal(meet_groups(e), 0);
	for (int d = 0; d < DIR_COUNT; d++)
		for (uint32_t k = 0; k < p->group[d]->npol; k++)
			assert_string_equal(p->group[d]->pols[k]->spec->name, "iso-a");
	assert_false(side(e, "front", "10.1.7.1", 80, DIR_INGRESS)); /* iso-a: nothing in */
	struct dp_config dc = { 0 };
	struct dp *dp = dp_new(&dc);
	ruleset_free(dp_render(dp, e));
	dp_free(dp);
	/* the next transaction: the same */
	assert_false(denied(pv, e, &lp, 1, A(1)));
	assert_int_equal(meet_groups(e), 0);
	prov_free(pv, e);
	engine_free(e);
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
		cmocka_unit_test(intersection_of_kinds),
		cmocka_unit_test(unreadable_candidate_denies),
		cmocka_unit_test(twin_keeps_learned_hosts),
		cmocka_unit_test(meet_follows_policy_delete),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Objects corral cannot read fail closed, per kind (README "Objects corral
 * cannot read"): never a wider verdict than the object as written.
 *   NetworkPolicy: unreadable targets = every pod of its namespace;
 *     unreadable policyTypes = both directions; allows nothing.
 *   AccessPolicy: the same (both directions); the DNS default stays.
 *   Pod: matched by no peer selector; quarantined on its node.
 *   Namespace: matched by no namespace selector (its name still counts).
 * DECODE_API is how the agent reads what the API server sends. */
#include "harness.h"

#include "agent/report/report.h"

#define NP(ns, name) "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: " name ", namespace: '" ns "'}\n"
#define AP(ns, name) "apiVersion: corral.dev/v1\nkind: AccessPolicy\nmetadata: {name: " name ", namespace: '" ns "'}\n"
#define TCP PROTO_TCP
#define UDP PROTO_UDP

static struct engine *api_load(const char *yaml, struct diags *d)
{
	return load(yaml, NULL, DECODE_API, d);
}

static char *explain_text(struct engine *e, const char *src, const char *dst, int port)
{
	struct endpoint s, d;
	char *note = NULL, *buf = NULL;
	size_t len = 0;
	assert_int_equal(report_resolve(e, src, &s, &note), 0);
	free(note);
	assert_int_equal(report_resolve(e, dst, &d, &note), 0);
	free(note);
	struct verdict v;
	policy_eval(e, &s, &d, PROTO_TCP, port, &v);
	FILE *f = open_memstream(&buf, &len);
	report_explain_text(f, e, &s, &d, PROTO_TCP, port, &v, NULL);
	fclose(f);
	verdict_free(&v);
	return buf;
}

/* 17.4: a NetworkPolicy without spec.podSelector selects every pod of its
 * namespace, as the API server reads it (files too) */
static void np_missing_pod_selector(void **st)
{
	struct diags d;
	struct engine *e = load("---\n" NP("x", "p") "spec: {ingress: []}\n", NULL, DECODE_AGENT, &d);
	assert_int_equal(d.errors, 0);
	assert_false(allowed(e, "y/a", "x/a", TCP, 80));
	assert_false(allowed(e, "y/a", "x/b", TCP, 80));
	assert_true(allowed(e, "x/a", "y/a", TCP, 80));
	diags_free(&d);
	engine_free(e);
}

/* a podSelector we cannot read isolates every pod of the namespace in the
 * directions policyTypes names, and allows nothing */
static void np_unreadable_target(void **st)
{
	static const char *pol = "---\n" NP("x", "p")
		"spec:\n  podSelector: {matchExpressions: [{key: app, operator: Matches, values: [a]}]}\n"
		"  policyTypes: [Ingress]\n  ingress: [{}]\n";
	for (int mode = 0; mode < 2; mode++) {
		struct diags d;
		struct engine *e = load(pol, NULL, mode ? DECODE_API : DECODE_AGENT, &d);
		struct policy *p = engine_policy_find(e, KIND_NETPOL, "x", "p");
		assert_non_null(p);
		assert_true(p->spec->unreadable);
		assert_false(p->spec->valid);
		assert_non_null(strstr(p->spec->error, "spec.podSelector.matchExpressions[0].operator"));
		assert_false(allowed(e, "y/a", "x/a", TCP, 80)); /* ingress: [{}] would allow it: not read */
		assert_false(allowed(e, "y/a", "x/b", TCP, 80)); /* every pod of x */
		assert_true(allowed(e, "x/a", "y/a", TCP, 80));  /* egress not named by policyTypes */
		struct engine_unreadable u;
		engine_unreadable_counts(e, &u);
		assert_int_equal(u.policies[KIND_NETPOL], 1);
		char *t = explain_text(e, "y/a", "x/b", 80);
		assert_non_null(strstr(t, "NetworkPolicy x/p (COULD NOT BE READ: enforced fail-closed, allows nothing)"));
		assert_non_null(strstr(t, "isolates every pod of namespace x for ingress"));
		free(t);
		diags_free(&d);
		engine_free(e);
	}
}

/* policyTypes we cannot read isolate both directions; a readable target
 * keeps its scope */
static void np_unreadable_policy_types(void **st)
{
	struct diags d;
	struct engine *e = api_load("---\n" NP("x", "p") "spec: {podSelector: {matchLabels: {app: a}}, policyTypes: [Ingres]}\n", &d);
	assert_int_equal(d.errors, 1);
	assert_false(allowed(e, "y/a", "x/a", TCP, 80));
	assert_false(allowed(e, "x/a", "y/a", TCP, 80));
	assert_true(allowed(e, "y/a", "x/b", TCP, 80)); /* x/b is not app=a */
	diags_free(&d);
	engine_free(e);
}

/* API objects: unknown fields outside rules are ignored (the server pruned
 * or validated them); inside a rule they could be a restriction we would
 * miss, so the policy allows nothing (fail closed) */
static void api_unknown_fields(void **st)
{
	struct diags d;
	struct engine *e = api_load("---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
				    "metadata: {name: p, namespace: x, managedFields: [{}], uid: u1}\n"
				    "spec: {podSelector: {}, someFutureField: 1, ingress: [{from: [{podSelector: {}}]}]}\n"
				    "status: {conditions: []}\n", &d);
	for (size_t i = 0; i < d.v.n; i++) {
		char *m = diag_format(d.v.v[i]);
		print_message("unexpected: %s\n", m);
		free(m);
	}
	assert_int_equal(d.errors + d.warnings, 0);
	assert_true(allowed(e, "x/b", "x/a", TCP, 80));
	assert_false(allowed(e, "y/a", "x/a", TCP, 80));
	diags_free(&d);
	engine_free(e);
	e = api_load("---\n" NP("x", "p") "spec: {podSelector: {}, ingress: [{from: [{podSelector: {}, notYetKnown: {}}]}]}\n", &d);
	assert_int_equal(d.errors, 1);
	assert_false(allowed(e, "x/b", "x/a", TCP, 80));
	assert_true(engine_policy_find(e, KIND_NETPOL, "x", "p")->spec->unreadable);
	diags_free(&d);
	engine_free(e);
}

/* an AccessPolicy whose application cannot be read isolates every pod of
 * its namespace both ways; the cluster DNS default still applies */
static void ap_unreadable_application(void **st)
{
	struct diags d;
	struct engine *e = api_load("---\n" AP("x", "p") "spec: {application: [a], inbound: {rules: [{application: '*', namespace: '*'}]}}\n", &d);
	assert_int_equal(d.errors, 1);
	assert_false(allowed(e, "y/a", "x/a", TCP, 80));
	assert_false(allowed(e, "x/b", "y/a", TCP, 80));
	assert_true(allowed(e, "x/b", "10.0.9.9", UDP, 53));
	assert_true(allowed(e, "y/a", "y/c", TCP, 80));
	diags_free(&d);
	engine_free(e);
}

static const char *bad_pod =
	"---\napiVersion: v1\nkind: Pod\nmetadata: {name: q, namespace: x, labels: {app: 5, role: client}}\n"
	"status: {podIPs: [{ip: 10.0.1.9}]}\n";

/* a pod we cannot read is admitted by no peer selector, and is
 * quarantined: isolated both ways, nothing allowed */
static void pod_unreadable(void **st)
{
	struct diags d;
	char *y = xasprintf("%s---\n" NP("y", "in") "spec: {podSelector: {}, ingress: [{from: [{namespaceSelector: {}}]}]}\n",
			    bad_pod);
	struct engine *e = api_load(y, &d);
	free(y);
	assert_int_equal(d.errors, 1);
	struct pod *q = engine_pod_find(e, "x", "q");
	assert_non_null(q);
	assert_true(q->spec->unreadable);
	assert_non_null(strstr(q->spec->error, "metadata.labels[app]"));
	assert_true(allowed(e, "x/a", "y/a", TCP, 80)); /* namespaceSelector {} admits x/a ... */
	assert_false(allowed(e, "x/q", "y/a", TCP, 80)); /* ... not the pod we cannot read */
	assert_false(allowed(e, "x/q", "y/c", TCP, 80)); /* quarantined egress, y/c not isolated */
	assert_false(allowed(e, "y/c", "x/q", TCP, 80)); /* quarantined ingress */
	assert_false(allowed(e, "x/q", "10.0.9.9", UDP, 53));
	struct engine_unreadable u;
	engine_unreadable_counts(e, &u);
	assert_int_equal(u.pods, 1);
	char *t = explain_text(e, "y/c", "x/q", 80);
	assert_non_null(strstr(t, "quarantined: Pod x/q could not be read"));
	assert_non_null(strstr(t, "make Pod x/q readable"));
	free(t);
	t = explain_text(e, "x/q", "y/a", 80);
	assert_non_null(strstr(t, "note: x/q could not be read, so no pod selector matches it"));
	free(t);
	/* read again correctly: back to normal, counted no more */
	struct manifest_set set = { 0 };
	struct decode_opts o = { DECODE_API, false, "app", "default" };
	const char *good = "apiVersion: v1\nkind: Pod\nmetadata: {name: q, namespace: x, labels: {app: q}}\n"
			   "status: {podIPs: [{ip: 10.0.1.9}]}\n";
	manifest_load_buffer(&set, "t.yaml", good, strlen(good), &o);
	manifest_apply(&set, e);
	manifest_set_free(&set);
	assert_true(allowed(e, "x/q", "y/a", TCP, 80));
	assert_true(allowed(e, "y/c", "x/q", TCP, 80));
	engine_unreadable_counts(e, &u);
	assert_int_equal(u.pods, 0);
	diags_free(&d);
	engine_free(e);
}

/* a namespace we cannot read matches no namespace selector; rules that
 * name it still do */
static void ns_unreadable(void **st)
{
	struct diags d;
	struct engine *e = api_load(
		"---\napiVersion: v1\nkind: Namespace\nmetadata: {name: z, labels: {team: 5}}\n"
		"---\napiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: z, labels: {app: a}}\n"
		"status: {podIPs: [{ip: 10.0.3.1}]}\n"
		"---\n" NP("x", "p") "spec: {podSelector: {matchLabels: {app: a}}, ingress: [{from: [{namespaceSelector: {}}]}]}\n"
		"---\n" AP("x", "b") "spec: {application: b, inbound: {rules: [{application: a, namespace: z}]}}\n",
		&d);
	assert_int_equal(d.errors, 1);
	assert_true(allowed(e, "y/a", "x/a", TCP, 80));
	assert_false(allowed(e, "z/a", "x/a", TCP, 80)); /* namespaceSelector {} does not match z */
	assert_true(allowed(e, "z/a", "x/b", TCP, 80));  /* named by name: still matches */
	struct engine_unreadable u;
	engine_unreadable_counts(e, &u);
	assert_int_equal(u.namespaces, 1);
	json_t *arr = json_array();
	report_problems(e, arr);
	char *t = json_dumps(arr, 0);
	assert_non_null(strstr(t, "Namespace z could not be read; enforced fail-closed"));
	free(t);
	json_decref(arr);
	diags_free(&d);
	engine_free(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(np_missing_pod_selector), cmocka_unit_test(np_unreadable_target),
		cmocka_unit_test(np_unreadable_policy_types), cmocka_unit_test(api_unknown_fields),
		cmocka_unit_test(ap_unreadable_application), cmocka_unit_test(pod_unreadable),
		cmocka_unit_test(ns_unreadable),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

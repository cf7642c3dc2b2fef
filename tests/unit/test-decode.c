/* Bad input: every malformed object gets a clear error naming the file,
 * object and field, and never allows what a valid reading would drop. */
#include "harness.h"

struct bad {
	const char *yaml;
	const char *want;
};

static void bad_inputs(void **st)
{
	static const struct bad cases[] = {
		{ "kind: [unclosed\n", "bad.yaml: line 2 column 1: did not find expected" },
		{ "{\"kind\": \"Pod\",}", "bad.yaml: line 1" },
		{ "a: 1\na: 2\n", "duplicate key \"a\"" },
		{ "- just\n- a list\n", "an object must be a mapping, not a list" },
		{ "apiVersion: v1\nmetadata: {name: x}\n", "bad.yaml: object x: kind: required" },
		{ "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicyy\nmetadata: {name: p}\n",
		  "NetworkPolicyy p: kind: unknown kind \"NetworkPolicyy\" for apiVersion \"networking.k8s.io/v1\"" },
		{ "apiVersion: corral.dev/v1\nkind: AccessPolicy\nmetadata: {name: p}\nspec: {application: a, inbound: {rules: {application: b}}}\n",
		  "AccessPolicy default/p: spec.inbound.rules: must be a list, not an object" },
		{ "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, namespace: x}\nspec: {podSelector: {matchLabels: {app: 5}}}\n",
		  "NetworkPolicy x/p: spec.podSelector.matchLabels[app]: must be a string, not an integer" },
		{ "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, namespace: x}\nspec: {podSelector: {matchExpressions: [{key: app, operator: Within, values: [a]}]}}\n",
		  "spec.podSelector.matchExpressions[0].operator: must be In, NotIn, Exists or DoesNotExist, not \"Within\"" },
		{ "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, namespace: x}\nspec: {podSelector: {matchExpressions: [{key: app, operator: In}]}}\n",
		  "matchExpressions[0].values: operator In needs at least one value" },
		{ "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, namespace: x}\nspec: {podSelector: {}, ingress: [{ports: [{port: 65536}]}]}\n",
		  "spec.ingress[0].ports[0].port: port 65536 out of range 1-65535" },
		{ "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, namespace: x}\nspec: {podSelector: {}, ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/8}, podSelector: {}}]}]}\n",
		  "spec.ingress[0].from[0]: ipBlock cannot be combined with podSelector or namespaceSelector" },
		{ "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, namespace: x}\nspec: {podSelector: {}, ingress: [{from: [{}]}]}\n",
		  "spec.ingress[0].from[0]: must set podSelector, namespaceSelector or ipBlock" },
		{ "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, namespace: x}\nspec: {podSelector: {}, policyTypes: [ingress]}\n",
		  "spec.policyTypes[0]: must be Ingress or Egress, not \"ingress\"" },
		{ "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, namespace: x}\nspec: {podSelector: {}, ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/8, except: [10.0.0.0/4]}}]}]}\n",
		  "except[0]: 10.0.0.0/4 is not inside cidr 10.0.0.0/8" },
		{ "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, namespace: x}\nspec: {foo: 1}\n",
		  "NetworkPolicy x/p: spec.foo: unknown field" },
		{ "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: x}\nstatus: {podIPs: [{ip: 10.0.0.300}]}\n",
		  "Pod x/p: status.podIPs[0].ip: \"10.0.0.300\" is not an IP address" },
		{ "apiVersion: corral.dev/v1\nkind: AccessPolicy\nmetadata: {name: p}\nspec: {application: a, outbound: {external: [{host: a.example.com, cidr: 10.0.0.0/8}]}}\n",
		  "exactly one of host, ipv4 or cidr" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		size_t errs;
		char *t = check_text(cases[i].yaml, DECODE_STRICT, &errs);
		if (!errs || !strstr(t, cases[i].want))
			fail_msg("case %zu:\n%s\nwanted: %s\ngot: %s", i, cases[i].yaml, cases[i].want, t);
		free(t);
	}
}

/* Bad objects never open traffic and never cost the others. */
static void bad_never_opens(void **st)
{
	struct diags d;
	struct engine *e;
	e = load("---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: deny, namespace: x}\n"
		 "spec: {podSelector: {}}\n"
		 "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: typo, namespace: x}\n"
		 "spec: {podSelector: {}, ingress: [{from: [{podSelector: {matchLabels: {app: 7}}}]}]}\n"
		 "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: ok, namespace: x}\n"
		 "spec: {podSelector: {matchLabels: {app: b}}, ingress: [{from: [{podSelector: {matchLabels: {app: a}}}]}]}\n",
		 NULL, DECODE_AGENT, &d);
	assert_int_equal(d.errors, 1);
	assert_false(allowed(e, "y/a", "x/a", PROTO_TCP, 80)); /* "typo" allows nothing */
	assert_true(allowed(e, "x/a", "x/b", PROTO_TCP, 8080)); /* "ok" still works */
	assert_false(allowed(e, "y/a", "x/b", PROTO_TCP, 8080));
	diags_free(&d);
	engine_free(e);
}

/* YAML aliases cannot blow up memory ("billion laughs") */
static void yaml_alias_bomb(void **st)
{
	struct sbuf b = { 0 };
	sbuf_add(&b, "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
	for (int i = 1; i < 10; i++) {
		sbuf_addf(&b, "a%d: &a%d [", i, i);
		for (int j = 0; j < 10; j++)
			sbuf_addf(&b, "%s*a%d", j ? ", " : "", i - 1);
		sbuf_add(&b, "]\n");
	}
	size_t errs;
	char *t = check_text(b.s, DECODE_STRICT, &errs);
	assert_non_null(strstr(t, "aliases expand to too many nodes"));
	free(t);
	sbuf_free(&b);
}

/* List kinds and workloads (one pod each, with made-up addresses) */
static void lists_and_workloads(void **st)
{
	struct engine *e = LOAD("---\napiVersion: v1\nkind: List\nitems:\n"
				"- apiVersion: apps/v1\n  kind: Deployment\n  metadata: {name: web, namespace: x}\n"
				"  spec: {template: {metadata: {labels: {app: web}}, spec: {containers: [{name: c, ports: [{name: http, containerPort: 8080}]}]}}}\n"
				"- apiVersion: batch/v1\n  kind: CronJob\n  metadata: {name: job, namespace: x}\n"
				"  spec: {jobTemplate: {spec: {template: {metadata: {labels: {app: job}}}}}}\n"
				"- apiVersion: networking.k8s.io/v1\n  kind: NetworkPolicy\n  metadata: {name: p, namespace: x}\n"
				"  spec: {podSelector: {matchLabels: {app: web}}, ingress: [{from: [{podSelector: {matchLabels: {app: job}}}], ports: [{port: http}]}]}\n"
				"- apiVersion: v1\n  kind: Service\n  metadata: {name: ignored}\n");
	struct pod *web = engine_pod_find(e, "x", "web"), *job = engine_pod_find(e, "x", "job");
	assert_non_null(web);
	assert_non_null(job);
	assert_string_equal(web->spec->workload, "Deployment");
	assert_int_equal(web->spec->nports, 1);
	assert_true(allowed(e, "x/job", "x/web", PROTO_TCP, 8080));
	assert_false(allowed(e, "x/a", "x/web", PROTO_TCP, 8080));
	engine_free(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(bad_inputs),
		cmocka_unit_test(bad_never_opens),
		cmocka_unit_test(yaml_alias_bomb),
		cmocka_unit_test(lists_and_workloads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

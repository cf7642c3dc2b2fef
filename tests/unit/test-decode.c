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
		{ "{\"kind\": \"Pod\",}", "bad.yaml: line 1 column 16: string or '}' expected near '}'" },
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
		  "exactly one of host, ipv4, cidr or entity" },
		/* paths of every depth, written out only for the message (each
		 * as the walk wrote them when it formatted every path) */
		{ "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, namespace: x}\nspec: {podSelector: {}, ingress: [{from: [{podSelector: {}}, {namespaceSelector: {matchExpressions: [{key: a, operator: In, values: [a]}, {key: a, operator: Bad}]}}]}]}\n",
		  "NetworkPolicy x/p: spec.ingress[0].from[1].namespaceSelector.matchExpressions[1].operator: must be In, NotIn, Exists or DoesNotExist, not \"Bad\"\n" },
		{ "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, namespace: x}\nspec: {podSelector: {}, egress: [{}, {to: [{ipBlock: {cidr: 10.0.0.0/8, except: [10.1.0.0/16, bogus]}}]}]}\n",
		  "NetworkPolicy x/p: spec.egress[1].to[0].ipBlock.except[1]: \"bogus\" is not a valid CIDR\n" },
		{ "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, namespace: x}\nspec: {podSelector: {matchLabels: {\"bad key!\": a}}}\n",
		  "NetworkPolicy x/p: spec.podSelector.matchLabels[bad key!]: invalid label key \"bad key!\"\n" },
		{ "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, namespace: x}\nspec: {podSelector: {}, ingress: [{ports: [{port: 80}, {port: 90, endPort: 80}, {protocol: ICMP}]}]}\n",
		  "NetworkPolicy x/p: spec.ingress[0].ports[1].endPort: 80 is less than port 90\n"
		  "bad.yaml: NetworkPolicy x/p: spec.ingress[0].ports[2].protocol: must be TCP, UDP or SCTP, not \"ICMP\"\n" },
		{ "apiVersion: corral.dev/v1\nkind: AccessPolicy\nmetadata: {name: p, namespace: x}\nspec: {application: a, inbound: {rules: [{application: b}, {application: c, namespace: Bad_NS}], external: [{cidr: 10.0.0.0/8}, {ipv4: 1.2.3}]}, outbound: {external: [{host: a.example.com, ports: [{port: 0}]}]}}\n",
		  "AccessPolicy x/p: spec.inbound.rules[1].namespace: \"Bad_NS\" is not a valid namespace name (a DNS-1123 label) nor \"*\"\n"
		  "bad.yaml: AccessPolicy x/p: spec.inbound.external[1].ipv4: \"1.2.3\" is not a dotted-quad IPv4 address\n"
		  "bad.yaml: AccessPolicy x/p: spec.outbound.external[0].ports[0].port: port 0 out of range 1-65535\n" },
		{ "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d, namespace: x}\nspec: {template: {metadata: {labels: {\"a!\": b}}, spec: {containers: [{}, {ports: [{containerPort: 80}, {containerPort: 0}]}]}}}\n",
		  "Deployment x/d: spec.template.metadata.labels[a!]: invalid label key \"a!\"\n"
		  "bad.yaml: Deployment x/d: spec.template.spec.containers[1].ports[1].containerPort: port 0 out of range 1-65535\n" },
		{ "apiVersion: v1\nkind: Namespace\nmetadata: {name: ns1, labels: {a: \"!!\"}}\n",
		  "Namespace ns1: metadata.labels[a]: invalid label value \"!!\"\n" },
		{ "apiVersion: v1\nkind: Node\nmetadata: {name: node1}\nspec: {podCIDRs: [10.0.0.0/24, bogus]}\nstatus: {addresses: [{type: Hostname, address: h}, {type: InternalIP, address: 1.2.3}]}\n",
		  "Node node1: spec.podCIDRs[1]: \"bogus\" is not a valid CIDR\n"
		  "bad.yaml: Node node1: status.addresses[1].address: \"1.2.3\" is not an IP address\n" },
		{ "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: kubernetes, namespace: default, labels: {kubernetes.io/service-name: kubernetes}}\naddressType: IPv4\nendpoints: [{addresses: [1.2.3.4]}, {addresses: [10.0.0.1, bogus]}]\n",
		  "EndpointSlice default/kubernetes: endpoints[1].addresses[1]: \"bogus\" is not an IP address\n" },
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

/* BASE in one file, then each of files[] as a file of its own. */
static struct engine *load_files(const char *const *files, size_t n, struct diags *d)
{
	static const struct engine_config cfg = { NULL, "app", true, NULL, NULL };
	struct manifest_set set = { 0 };
	struct decode_opts o = { DECODE_STRICT, true, "app", "default" };
	manifest_load_buffer(&set, "base.yaml", BASE, strlen(BASE), &o);
	for (size_t i = 0; i < n; i++) {
		char name[16];
		snprintf(name, sizeof(name), "%c.yaml", (char)('a' + i));
		manifest_load_buffer(&set, name, files[i], strlen(files[i]), &o);
	}
	manifest_resolve_duplicates(&set);
	*d = set.diags;
	memset(&set.diags, 0, sizeof(set.diags));
	manifest_assign_addresses(&set);
	struct engine *e = engine_new(&cfg);
	manifest_apply(&set, e);
	manifest_set_free(&set);
	return e;
}

static bool diags_have(const struct diags *d, const char *want)
{
	for (size_t i = 0; i < d->v.n; i++) {
		char *m = diag_format(d->v.v[i]);
		bool ok = strstr(m, want) != NULL;
		free(m);
		if (ok)
			return true;
	}
	return false;
}

/* Issue 17, item 5: the same policy in two files is an error naming both,
 * and never opens more than either copy alone would: differing copies are
 * each enforced as invalid (every pod either selects is isolated, in every
 * direction either isolates, nothing allowed); identical ones once. */
static void duplicates_never_widen(void **st)
{
	const char *files[] = {
		"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, namespace: x}\n"
		"spec: {podSelector: {matchLabels: {app: a}}, ingress: [{from: [{podSelector: {matchLabels: {app: b}}}]}]}\n",
		"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, namespace: x}\n"
		"spec: {podSelector: {matchLabels: {app: b}}, policyTypes: [Egress], egress: [{}]}\n",
	};
	struct diags d;
	struct engine *e = load_files(files, 2, &d);
	assert_true(diags_have(&d, "b.yaml: NetworkPolicy x/p: is defined differently in a.yaml and b.yaml"));
	assert_false(allowed(e, "x/b", "x/a", PROTO_TCP, 80)); /* either copy alone allowed it */
	assert_false(allowed(e, "x/b", "y/a", PROTO_TCP, 80)); /* b's copy alone allowed it */
	assert_true(allowed(e, "y/a", "x/b", PROTO_TCP, 80));  /* no copy isolates x/b's ingress */
	assert_non_null(engine_policy_find(e, KIND_NETPOL, "x", "p#2"));
	assert_false(engine_policy_find(e, KIND_NETPOL, "x", "p")->spec->valid);
	diags_free(&d);
	engine_free(e);
	const char *same[] = { files[0], files[0] };
	e = load_files(same, 2, &d);
	assert_true(diags_have(&d, "NetworkPolicy x/p: is defined identically in a.yaml and b.yaml"));
	assert_true(allowed(e, "x/b", "x/a", PROTO_TCP, 80));
	assert_false(allowed(e, "y/a", "x/a", PROTO_TCP, 80));
	assert_null(engine_policy_find(e, KIND_NETPOL, "x", "p#2"));
	diags_free(&d);
	engine_free(e);
	/* pods: the first file's definition, and an error */
	const char *pods[] = { "apiVersion: v1\nkind: Pod\nmetadata: {name: z, namespace: x, labels: {app: b}}\n"
			       "status: {podIPs: [{ip: 10.0.1.9}]}\n",
			       "apiVersion: v1\nkind: Pod\nmetadata: {name: z, namespace: x, labels: {app: c}}\n"
			       "status: {podIPs: [{ip: 10.0.1.9}]}\n" };
	e = load_files(pods, 2, &d);
	assert_true(diags_have(&d, "Pod x/z: is defined in a.yaml and b.yaml: the definition in a.yaml"));
	assert_string_equal(labelset_get(&engine_pod_find(e, "x", "z")->spec->labels, "app"), "b");
	diags_free(&d);
	engine_free(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(bad_inputs),
		cmocka_unit_test(bad_never_opens),
		cmocka_unit_test(yaml_alias_bomb),
		cmocka_unit_test(lists_and_workloads),
		cmocka_unit_test(duplicates_never_widen),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* explain's words and suggestions: rules print their excepts and say
 * which one excluded the peer; suggestions name a peer in a way that can
 * match it (an address for a host-network pod), go to a policy that can
 * allow something (a valid one), and quote every YAML scalar that would
 * not read back as the same string. The round trip itself, applied to the
 * manifests, is run-case --fixes. */
#include "harness.h"

#include "kube/yaml.h"

#define NP(ns, name) "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: " name ", namespace: '" ns "'}\n"
#define TCP PROTO_TCP

/* The fix for side d of src -> dst (both "ns/pod"). */
static char *fix_for(struct engine *e, const char *src, const char *dst, enum dir d, int port)
{
	char ns[2][64], name[2][64];
	assert_int_equal(sscanf(src, "%63[^/]/%63s", ns[0], name[0]), 2);
	assert_int_equal(sscanf(dst, "%63[^/]/%63s", ns[1], name[1]), 2);
	struct pod *s = engine_pod_find(e, ns[0], name[0]), *t = engine_pod_find(e, ns[1], name[1]);
	assert_non_null(s);
	assert_non_null(t);
	struct endpoint a = { s, s->spec->addr[0] }, b = { t, t->spec->addr[0] };
	struct verdict v;
	policy_eval(e, &a, &b, TCP, port, &v);
	assert_false(v.side[d].allowed);
	char *fix = explain_fix(e, &a, &b, d, &v.side[d], TCP, port);
	verdict_free(&v);
	assert_non_null(fix);
	return fix;
}

/* 7. A host-network peer has its node's address: pod selectors never
 * match it, so the suggestion names the address. */
static void host_network_peer(void **st)
{
	struct engine *e = LOAD("apiVersion: v1\nkind: Pod\nmetadata: {name: h, namespace: 'y', labels: {app: agent}}\n"
				"spec: {hostNetwork: true}\nstatus: {podIPs: [{ip: 192.168.1.5}]}\n---\n" NP("x", "p")
				"spec: {podSelector: {matchLabels: {app: a}}, ingress: [{from: [{podSelector: {}}]}]}\n");
	char *fix = fix_for(e, "y/h", "x/a", DIR_INGRESS, 80);
	assert_non_null(strstr(fix, "ipBlock: {cidr: 192.168.1.5/32}"));
	assert_non_null(strstr(fix, "host-network"));
	assert_null(strstr(fix, "podSelector"));
	free(fix);
	engine_free(e);
}

/* 8. Selected by an invalid policy and a valid one: the rule goes to the
 * valid one (the invalid one allows nothing whatever it holds). */
static void valid_policy_targeted(void **st)
{
	struct engine *e = LOAD(NP("x", "aaa-broken") "spec: {podSelector: {matchLabels: {app: a}}, ingress: [{ports: [{port: 0}]}]}\n"
				"---\n" NP("x", "zzz-good") "spec: {podSelector: {matchLabels: {app: a}}, ingress: [{from: "
				"[{podSelector: {matchLabels: {app: nobody}}}], ports: [{port: 81}]}]}\n");
	char *fix = fix_for(e, "y/a", "x/a", DIR_INGRESS, 80);
	assert_non_null(strstr(fix, "note: NetworkPolicy x/aaa-broken is invalid"));
	assert_non_null(strstr(fix, "add to NetworkPolicy x/zzz-good, under spec.ingress:"));
	assert_null(strstr(fix, "add to NetworkPolicy x/aaa-broken"));
	free(fix);
	engine_free(e);
}

/* 9. Scalars YAML would read as numbers, booleans, nulls or nothing are
 * quoted: namespace "2024", label values "1", "" and "null". */
static void suggestion_quotes_scalars(void **st)
{
	struct engine *e = LOAD("apiVersion: v1\nkind: Namespace\nmetadata: {name: '2024'}\n---\n"
				"apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: '2024', labels: {tier: '1', "
				"role: '', x: 'null'}}\nstatus: {podIPs: [{ip: 10.0.7.1}]}\n---\n" NP("x", "p")
				"spec: {podSelector: {matchLabels: {app: a}}}\n");
	char *fix = fix_for(e, "2024/p", "x/a", DIR_INGRESS, 80);
	assert_non_null(strstr(fix, "namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: \"2024\"}}"));
	assert_non_null(strstr(fix, "podSelector: {matchLabels: {role: \"\", tier: \"1\", x: \"null\"}}"));
	free(fix);
	engine_free(e);
}

/* 10. A rule prints its excepts, and explain says which one excluded the
 * peer. */
static void rule_prints_excepts(void **st)
{
	struct engine *e = LOAD(NP("x", "p") "spec: {podSelector: {matchLabels: {app: a}}, ingress: [{from: [{ipBlock: "
				"{cidr: 10.0.0.0/8, except: [10.0.3.0/24, 10.0.2.0/24]}}]}]}\n");
	struct pod *a = engine_pod_find(e, "x", "a");
	const struct ir_rule *r = a->group[DIR_INGRESS]->rules.v[0];
	char *text = explain_rule(r);
	assert_string_equal(text, "NetworkPolicy x/p spec.ingress[0]: from 10.0.0.0/8 except 10.0.3.0/24, "
				  "10.0.2.0/24; any port");
	free(text);
	ip128 peer;
	const char *which = NULL;
	ip_parse("10.0.2.1", &peer);
	text = explain_excluded(r, peer, &which);
	assert_string_equal(text, "10.0.2.1 is inside 10.0.0.0/8 but excluded by its except 10.0.2.0/24");
	assert_string_equal(which, "10.0.2.0/24");
	free(text);
	ip_parse("10.0.4.1", &peer);
	assert_null(explain_excluded(r, peer, NULL)); /* matched: nothing to say */
	ip_parse("192.168.0.1", &peer);
	assert_null(explain_excluded(r, peer, NULL)); /* outside the cidr */
	engine_free(e);
}

/* Every scalar written by yaml_scalar reads back, through corral's YAML
 * reader, as the same string; the safe ones stay plain. */
static void yaml_scalars_read_back(void **st)
{
	static const char *const tricky[] = {
		"2024", "1", "", "null", "Null", "NULL", "~", "yes", "No", "ON", "off", "y", "N", "true", "False",
		"007", "0x1f", "0o17", "1e3", "1_000", ".5", "-1", "+1", ".inf", "-.Inf", ".NaN", "nan", "1:20",
		"2001-12-14", "a b", "a: b", "#x", "x #y", "- x", "[x]", "{x}", "*x", "&x", "!x", "|", ">", "%x",
		"@x", "`x", "'x'", "\"x\"", "back\\slash", "tab\there", " lead", "trail ", "=", "<<", "é",
		"10.0.0.1", "fd00::1/128", "::1", "0.0.0.0/0",
	};
	static const char *const plain[] = { "web", "kubernetes.io/metadata.name", "a-b_c.d", "10.0.0.0/8", "v1" };
	for (size_t i = 0; i < ARRAY_SIZE(tricky) + ARRAY_SIZE(plain); i++) {
		const char *s = i < ARRAY_SIZE(tricky) ? tricky[i] : plain[i - ARRAY_SIZE(tricky)];
		struct sbuf b = { 0 }, doc = { 0 };
		struct vec docs = { 0 };
		char *err = NULL;
		yaml_scalar(&b, s);
		if (i >= ARRAY_SIZE(tricky))
			assert_string_equal(b.s, s);
		/* as a value, as a key in a flow mapping, in a flow sequence */
		sbuf_addf(&doc, "v: %s\nm: {%s: x}\nl: [%s]\n", b.s, b.s, b.s);
		int rc = kube_yaml_parse(doc.s, doc.n, &docs, &err);
		if (rc < 0)
			fail_msg("%s: %s", doc.s, err);
		assert_int_equal(docs.n, 1);
		json_t *o = docs.v[0];
		const char *v = json_string_value(json_object_get(o, "v"));
		if (!v || strcmp(v, s))
			fail_msg("%s reads back as %s", b.s, v ? v : "a non-string");
		assert_non_null(json_object_get(json_object_get(o, "m"), s));
		assert_string_equal(json_string_value(json_array_get(json_object_get(o, "l"), 0)), s);
		json_decref(o);
		vec_free(&docs);
		sbuf_free(&b);
		sbuf_free(&doc);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(host_network_peer),
		cmocka_unit_test(valid_policy_targeted),
		cmocka_unit_test(suggestion_quotes_scalars),
		cmocka_unit_test(rule_prints_excepts),
		cmocka_unit_test(yaml_scalars_read_back),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* One test per line of "points that implementations get wrong" and per
 * AccessPolicy rule of the semantics brief. */
#include "harness.h"

#include <errno.h>

#include "policy/fqdn.h"

#define NP(ns, name) "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: '" name "', namespace: '" ns "'}\n"
#define AP(ns, name) "apiVersion: corral.dev/v1\nkind: AccessPolicy\nmetadata: {name: '" name "', namespace: '" ns "'}\n"
#define TCP PROTO_TCP
#define UDP PROTO_UDP

/* 1. podSelector: {} selects every pod of the policy's namespace only */
static void p01_empty_pod_selector(void **st)
{
	struct engine *e = LOAD(NP("x", "deny") "spec: {podSelector: {}}\n");
	assert_false(allowed(e, "y/a", "x/a", TCP, 80));
	assert_false(allowed(e, "y/a", "x/b", TCP, 8080));
	assert_true(allowed(e, "x/a", "y/a", TCP, 80)); /* y not selected */
	engine_free(e);
}

/* 2. policyTypes absent: Ingress always, Egress only with egress rules */
static void p02_policy_types_default(void **st)
{
	struct engine *e = LOAD(NP("x", "p") "spec: {podSelector: {}, egress: []}\n");
	assert_true(allowed(e, "x/a", "y/a", TCP, 80));  /* egress: [] does not isolate egress */
	assert_false(allowed(e, "y/a", "x/a", TCP, 80)); /* ingress isolated */
	engine_free(e);
	e = LOAD(NP("x", "p") "spec: {podSelector: {}, egress: [{to: [{podSelector: {matchLabels: {app: b}}}]}]}\n");
	assert_false(allowed(e, "x/a", "y/a", TCP, 80)); /* egress rules: egress isolated */
	assert_false(allowed(e, "x/a", "x/b", TCP, 8080)); /* x/b ingress isolated too */
	engine_free(e);
	e = LOAD(NP("x", "p") "spec: {podSelector: {}, policyTypes: [Egress]}\n");
	assert_true(allowed(e, "y/a", "x/a", TCP, 80));  /* [Egress] alone leaves ingress open */
	assert_false(allowed(e, "x/a", "y/a", TCP, 80));
	engine_free(e);
}

/* 3. ingress: [] denies all; ingress: [{}] allows all; same for egress */
static void p03_empty_vs_empty_rule(void **st)
{
	struct engine *e = LOAD(NP("x", "p") "spec: {podSelector: {}, policyTypes: [Ingress, Egress], ingress: [], egress: []}\n");
	assert_false(allowed(e, "y/a", "x/a", TCP, 80));
	assert_false(allowed(e, "x/a", "y/a", TCP, 80));
	engine_free(e);
	e = LOAD(NP("x", "p") "spec: {podSelector: {}, policyTypes: [Ingress, Egress], ingress: [{}], egress: [{}]}\n");
	assert_true(allowed(e, "y/a", "x/a", TCP, 80));
	assert_true(allowed(e, "x/a", "y/a", UDP, 9999));
	engine_free(e);
}

/* 4. a rule with no from/to matches every peer, outside addresses too */
static void p04_no_peers_matches_outside(void **st)
{
	struct engine *e = LOAD(NP("x", "p") "spec: {podSelector: {}, policyTypes: [Ingress, Egress], "
					       "ingress: [{ports: [{port: 80}]}], egress: [{to: []}]}\n");
	assert_true(allowed(e, "198.51.100.7", "x/a", TCP, 80));
	assert_false(allowed(e, "198.51.100.7", "x/a", TCP, 81));
	assert_true(allowed(e, "x/a", "198.51.100.7", TCP, 81));
	engine_free(e);
	/* a misspelt field in a rule ("from" in an egress rule) must not
	 * turn into "no peers = everyone": the policy allows nothing */
	e = LOAD(NP("x", "p") "spec: {podSelector: {}, policyTypes: [Egress], egress: [{from: [{ipBlock: {cidr: 10.9.0.0/16}}]}]}\n");
	assert_false(allowed(e, "x/a", "198.51.100.7", TCP, 81));
	engine_free(e);
	e = LOAD(NP("x", "p") "spec: {podSelector: {}, policyTypes: [Egress], egress: [{to: []}]}\n");
	assert_true(allowed(e, "x/a", "2001:db8::1", UDP, 5000));
	engine_free(e);
}

/* 5. ns+pod selectors in one peer: AND; separate peers: OR; podSelector
 * alone: own namespace; namespaceSelector {}: every namespace */
static void p05_and_or_own_ns(void **st)
{
	struct engine *e = LOAD(NP("x", "and") "spec: {podSelector: {matchLabels: {app: a}}, ingress: [{from: "
						"[{namespaceSelector: {matchLabels: {team: red}}, podSelector: {matchLabels: {app: a}}}]}]}\n");
	assert_true(allowed(e, "y/a", "x/a", TCP, 80));
	assert_false(allowed(e, "y/c", "x/a", TCP, 80));
	assert_false(allowed(e, "x/b", "x/a", TCP, 80));
	engine_free(e);
	e = LOAD(NP("x", "or") "spec: {podSelector: {matchLabels: {app: a}}, ingress: [{from: "
			       "[{namespaceSelector: {matchLabels: {team: red}}}, {podSelector: {matchLabels: {app: b}}}]}]}\n");
	assert_true(allowed(e, "y/c", "x/a", TCP, 80));
	assert_true(allowed(e, "x/b", "x/a", TCP, 80));
	engine_free(e);
	e = LOAD(NP("x", "own") "spec: {podSelector: {matchLabels: {app: b}}, ingress: [{from: [{podSelector: {matchLabels: {app: a}}}]}]}\n");
	assert_true(allowed(e, "x/a", "x/b", TCP, 8080));
	assert_false(allowed(e, "y/a", "x/b", TCP, 8080)); /* app=a, but in y */
	engine_free(e);
	e = LOAD(NP("x", "all") "spec: {podSelector: {matchLabels: {app: b}}, ingress: [{from: [{namespaceSelector: {}}]}]}\n");
	assert_true(allowed(e, "y/c", "x/b", TCP, 8080));
	assert_true(allowed(e, "kube-system/dns", "x/b", TCP, 8080));
	assert_false(allowed(e, "203.0.113.1", "x/b", TCP, 8080)); /* not a pod */
	engine_free(e);
}

/* 6. ipBlock except carved out; ipBlock matches pod IPs; except outside
 * cidr makes the object invalid */
static void p06_ipblock_except(void **st)
{
	struct engine *e = LOAD(NP("x", "p") "spec: {podSelector: {matchLabels: {app: a}}, ingress: [{from: "
					       "[{ipBlock: {cidr: 10.0.0.0/16, except: [10.0.2.0/24]}}]}]}\n");
	assert_true(allowed(e, "x/b", "x/a", TCP, 80)); /* pod IP in range */
	assert_false(allowed(e, "y/a", "x/a", TCP, 80)); /* carved out */
	assert_true(allowed(e, "10.0.200.1", "x/a", TCP, 80));
	engine_free(e);
	size_t errs;
	char *t = check_text(NP("x", "p") "spec: {podSelector: {}, ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/16, "
						 "except: [10.1.0.0/24]}}]}]}\n", DECODE_STRICT, &errs);
	assert_int_equal(errs, 1);
	assert_non_null(strstr(t, "bad.yaml: NetworkPolicy x/p: spec.ingress[0].from[0].ipBlock.except[0]: "
				  "10.1.0.0/24 is not inside cidr 10.0.0.0/16"));
	free(t);
	/* and it still isolates, allowing nothing */
	e = LOAD(NP("x", "p") "spec: {podSelector: {}, ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/16, except: [10.1.0.0/24]}}]}]}\n");
	assert_false(allowed(e, "x/b", "x/a", TCP, 80));
	engine_free(e);
}

/* 7. ports: missing protocol = TCP; protocol alone = all its ports;
 * endPort ranges; missing ports = everything */
static void p07_ports(void **st)
{
	struct engine *e = LOAD(NP("x", "p") "spec: {podSelector: {matchLabels: {app: a}}, ingress: [{ports: "
					       "[{port: 80}, {protocol: UDP}, {port: 1000, endPort: 1010, protocol: SCTP}]}]}\n");
	assert_true(allowed(e, "y/a", "x/a", TCP, 80));
	assert_false(allowed(e, "y/a", "x/a", PROTO_SCTP, 80));
	assert_true(allowed(e, "y/a", "x/a", UDP, 12345));
	assert_true(allowed(e, "y/a", "x/a", PROTO_SCTP, 1005));
	assert_false(allowed(e, "y/a", "x/a", PROTO_SCTP, 1011));
	assert_false(allowed(e, "y/a", "x/a", TCP, 1005));
	engine_free(e);
	e = LOAD(NP("x", "p") "spec: {podSelector: {matchLabels: {app: a}}, ingress: [{ports: []}]}\n");
	assert_true(allowed(e, "y/a", "x/a", PROTO_SCTP, 7));
	engine_free(e);
	size_t errs;
	char *t = check_text(NP("x", "p") "spec: {podSelector: {}, ingress: [{ports: [{port: http, endPort: 90}]}]}\n",
			     DECODE_STRICT, &errs);
	assert_non_null(strstr(t, "spec.ingress[0].ports[0].endPort: needs a numeric port"));
	free(t);
}

/* 8. named ports: resolved on the destination pod, name and protocol */
static void p08_named_ports(void **st)
{
	struct engine *e = LOAD(NP("x", "p") "spec: {podSelector: {}, ingress: [{ports: [{port: http}]}]}\n");
	assert_true(allowed(e, "y/a", "x/a", TCP, 80));    /* http = 80 on x/a */
	assert_true(allowed(e, "y/a", "x/b", TCP, 8080));  /* http = 8080 on x/b */
	assert_false(allowed(e, "y/a", "x/b", TCP, 80));
	assert_false(allowed(e, "y/a", "x/a", UDP, 80));   /* http is TCP */
	engine_free(e);
	/* egress: resolved on each peer; a UDP rule does not match a TCP port */
	e = LOAD(NP("x", "p") "spec: {podSelector: {matchLabels: {app: a}}, policyTypes: [Egress], egress: "
			      "[{ports: [{port: dns, protocol: UDP}, {port: http, protocol: UDP}]}]}\n");
	assert_true(allowed(e, "x/a", "kube-system/dns", UDP, 53));
	assert_false(allowed(e, "x/a", "y/a", UDP, 80));
	assert_false(allowed(e, "x/a", "198.51.100.1", UDP, 53)); /* no pod: no such port */
	engine_free(e);
}

/* 9. matchExpressions ANDed with matchLabels; NotIn and DoesNotExist
 * match pods without the key */
static void p09_expressions(void **st)
{
	struct engine *e = LOAD(NP("y", "p") "spec: {podSelector: {}, ingress: [{from: [{namespaceSelector: {}, podSelector: "
					       "{matchExpressions: [{key: app, operator: NotIn, values: [b]}, {key: tier, operator: DoesNotExist}]}}]}]}\n");
	assert_false(allowed(e, "y/c", "y/a", TCP, 80)); /* y/c has tier */
	assert_false(allowed(e, "x/a", "y/a", TCP, 80));         /* x/a has tier */
	assert_false(allowed(e, "x/b", "y/a", TCP, 80));         /* app=b */
	assert_true(allowed(e, "kube-system/dns", "y/a", TCP, 80)); /* no app, no tier */
	engine_free(e);
	e = LOAD(NP("y", "p") "spec: {podSelector: {}, ingress: [{from: [{namespaceSelector: {}, podSelector: "
			      "{matchLabels: {app: a}, matchExpressions: [{key: tier, operator: Exists}]}}]}]}\n");
	assert_true(allowed(e, "x/a", "y/c", TCP, 80));
	assert_false(allowed(e, "y/a", "y/c", TCP, 80)); /* app=a but no tier */
	engine_free(e);
}

/* 10. kubernetes.io/metadata.name is always set, even without a
 * Namespace object and even if the object tries to set it otherwise */
static void p10_metadata_name_label(void **st)
{
	struct engine *e = LOAD(NP("x", "p") "spec: {podSelector: {}, ingress: [{from: [{namespaceSelector: "
					       "{matchLabels: {kubernetes.io/metadata.name: kube-system}}}]}]}\n"
					       "---\napiVersion: v1\nkind: Namespace\nmetadata: {name: z, labels: {kubernetes.io/metadata.name: kube-system}}\n"
					       "---\napiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: z}\nstatus: {podIP: 10.0.3.1}\n"
					       "---\napiVersion: v1\nkind: Pod\nmetadata: {name: q, namespace: nons}\nstatus: {podIP: 10.0.4.1}\n");
	assert_true(allowed(e, "kube-system/dns", "x/a", TCP, 80));
	assert_false(allowed(e, "z/p", "x/a", TCP, 80));
	engine_free(e);
	e = LOAD(NP("x", "p") "spec: {podSelector: {}, ingress: [{from: [{namespaceSelector: "
			      "{matchLabels: {kubernetes.io/metadata.name: nons}}}]}]}\n"
			      "---\napiVersion: v1\nkind: Pod\nmetadata: {name: q, namespace: nons}\nstatus: {podIP: 10.0.4.1}\n");
	assert_true(allowed(e, "nons/q", "x/a", TCP, 80));
	engine_free(e);
}

static struct pod_spec *pod_copy(struct engine *e, const char *ns, const char *name)
{
	struct pod *p = engine_pod_find(e, ns, name);
	struct pod_spec *s = xcalloc(1, sizeof(*s));
	*s = *p->spec;
	s->packed = false; /* its labels and ports are copied below, each its own block */
	s->ns = istr_ref(s->ns);
	s->name = xstrdup(s->name);
	s->node = istr_ref(s->node);
	labelset_copy(&s->labels, &p->spec->labels);
	s->ports = xcalloc(s->nports ? s->nports : 1, sizeof(*s->ports));
	if (s->nports) /* a pod without ports has none to copy (NULL) */
		memcpy(s->ports, p->spec->ports, s->nports * sizeof(*s->ports));
	for (uint32_t i = 0; i < s->nports; i++)
		istr_ref(s->ports[i].name);
	s->source = istr_ref(p->spec->source);
	s->workload = NULL;
	return s;
}

/* 11. label changes of pods and namespaces, address changes and deletion
 * take effect at once, and only touch what they affect */
static void p11_changes_take_effect(void **st)
{
	struct engine *e = LOAD(NP("x", "p") "spec: {podSelector: {matchLabels: {app: a}}, ingress: [{from: [{namespaceSelector: "
					       "{matchLabels: {team: green}}, podSelector: {matchLabels: {app: a}}}]}]}\n");
	assert_false(allowed(e, "y/a", "x/a", TCP, 80));
	struct ns_spec *n = xcalloc(1, sizeof(*n));
	n->name = istr_get("y");
	labelset_set(&n->labels, "team", "green");
	labelset_set(&n->labels, "kubernetes.io/metadata.name", "y");
	engine_ns_upsert(e, n);
	assert_true(allowed(e, "y/a", "x/a", TCP, 80));
	/* pod label change: y/a is no longer app=a */
	uint64_t before = engine_stats(e)->term_evals;
	struct pod_spec *s = pod_copy(e, "y", "a");
	labelset_set(&s->labels, "app", "zzz");
	engine_pod_upsert(e, s);
	assert_false(allowed(e, "y/a", "x/a", TCP, 80));
	/* only the peer set anchored on app=a (plus the DNS one? no: it is
	 * anchored on k8s-app) was evaluated, not every selector */
	assert_true(engine_stats(e)->term_evals - before <= 4);
	/* address change: the new address is the member now */
	s = pod_copy(e, "y", "a");
	labelset_set(&s->labels, "app", "a");
	ip_parse("10.0.2.77", &s->addr[0]);
	engine_pod_upsert(e, s);
	assert_true(allowed(e, "10.0.2.77", "x/a", TCP, 80));
	assert_false(allowed(e, "10.0.2.1", "x/a", TCP, 80));
	engine_pod_delete(e, "y", "a");
	assert_false(allowed(e, "10.0.2.77", "x/a", TCP, 80));
	engine_policy_delete(e, KIND_NETPOL, "x", "p");
	assert_true(allowed(e, "10.0.2.77", "x/a", TCP, 80));
	engine_free(e);
	/* a valid policy updated into an invalid one: isolates, allows nothing */
	struct manifest_set set = { 0 };
	struct decode_opts o = { DECODE_AGENT, false, "app", "default" };
	e = LOAD(NP("x", "p") "spec: {podSelector: {}, ingress: [{ports: [{port: 80}]}]}\n");
	assert_true(allowed(e, "y/a", "x/a", TCP, 80));
	const char *bad = NP("x", "p") "spec: {podSelector: {}, ingress: [{ports: [{port: 0}]}]}\n";
	manifest_load_buffer(&set, "u.yaml", bad, strlen(bad), &o);
	manifest_apply(&set, e);
	manifest_set_free(&set);
	assert_false(allowed(e, "y/a", "x/a", TCP, 80));
	engine_free(e);
}

/* 12. dual stack: both addresses are enforced; ipBlocks may be IPv6 */
static void p12_dual_stack(void **st)
{
	struct engine *e = LOAD(NP("x", "p") "spec: {podSelector: {matchLabels: {app: b}}, ingress: [{from: "
					       "[{podSelector: {matchLabels: {app: a}}}, {ipBlock: {cidr: '2001:db8::/64'}}]}]}\n");
	assert_true(allowed(e, "fd00::1:1", "x/b", TCP, 8080)); /* x/a's IPv6 */
	assert_true(allowed(e, "10.0.1.1", "x/b", TCP, 8080));
	assert_true(allowed(e, "2001:db8::5", "x/b", TCP, 8080));
	assert_false(allowed(e, "2001:db9::5", "x/b", TCP, 8080));
	engine_free(e);
}

/* 13. SCTP is a protocol like the others */
static void p13_sctp(void **st)
{
	struct engine *e = LOAD(NP("x", "p") "spec: {podSelector: {}, ingress: [{ports: [{port: 80, protocol: SCTP}]}]}\n");
	assert_true(allowed(e, "y/a", "x/a", PROTO_SCTP, 80));
	assert_false(allowed(e, "y/a", "x/a", TCP, 80));
	engine_free(e);
}

/* ---------- AccessPolicy ---------- */

static const char *PAY =
	"---\n" AP("x", "a") "spec:\n  application: a\n  inbound: {rules: [{application: a, namespace: 'y', ports: [{port: 80}]}]}\n"
	"  outbound: {rules: [{application: b, ports: [{port: 8080}]}]}\n";

/* isolation in both directions; both sides needed; the app label */
static void ap_both_sides(void **st)
{
	struct engine *e = LOAD(PAY);
	assert_true(allowed(e, "y/a", "x/a", TCP, 80)); /* y/a is not isolated */
	assert_false(allowed(e, "x/b", "x/a", TCP, 80)); /* no inbound rule for b */
	assert_true(allowed(e, "x/a", "x/b", TCP, 8080));
	assert_false(allowed(e, "x/a", "y/a", TCP, 80)); /* no outbound rule for y/a */
	engine_free(e);
	/* both sides isolated: the callee rule alone is not enough */
	e = LOAD("---\n" AP("y", "a") "spec: {application: a}\n---\n" AP("x", "a")
		 "spec: {application: a, inbound: {rules: [{application: a, namespace: 'y'}]}}\n");
	assert_false(allowed(e, "y/a", "x/a", TCP, 80));
	struct endpoint s = { engine_pod_find(e, "y", "a"), { 0, 0 } }, d = { engine_pod_find(e, "x", "a"), { 0, 0 } };
	struct verdict v;
	s.addr = s.pod->spec->addr[0];
	d.addr = d.pod->spec->addr[0];
	policy_eval(e, &s, &d, TCP, 80, &v);
	assert_false(v.side[DIR_EGRESS].allowed);
	assert_true(v.side[DIR_INGRESS].allowed);
	char *fix = explain_fix(e, &s, &d, DIR_EGRESS, &v.side[DIR_EGRESS], TCP, 80);
	assert_non_null(strstr(fix, "add to AccessPolicy y/a"));
	assert_non_null(strstr(fix, "- application: a\n      namespace: x\n      ports: [{port: 80, protocol: TCP}]"));
	free(fix);
	verdict_free(&v);
	engine_free(e);
}

/* several AccessPolicies add up, and add up with NetworkPolicies */
static void ap_add_up(void **st)
{
	struct engine *e = LOAD("---\n" AP("x", "a1") "spec: {application: a, inbound: {rules: [{application: b}]}}\n"
				"---\n" AP("x", "a2") "spec: {application: a, inbound: {rules: [{application: a, namespace: 'y'}]}}\n"
				"---\n" NP("x", "n") "spec: {podSelector: {matchLabels: {app: a}}, ingress: [{from: [{ipBlock: {cidr: 192.0.2.0/24}}]}]}\n");
	assert_true(allowed(e, "x/b", "x/a", TCP, 80));
	assert_true(allowed(e, "y/a", "x/a", TCP, 80));
	assert_true(allowed(e, "192.0.2.9", "x/a", TCP, 80));
	assert_false(allowed(e, "y/c", "x/a", TCP, 80));
	engine_free(e);
}

/* cluster DNS is allowed by default, can be switched off, and still
 * applies to pods isolated by an invalid AccessPolicy */
static void ap_dns_default(void **st)
{
	struct engine *e = LOAD(PAY);
	assert_true(allowed(e, "x/a", "kube-system/dns", UDP, 53));
	assert_true(allowed(e, "x/a", "kube-system/dns", TCP, 53));
	assert_false(allowed(e, "x/a", "kube-system/dns", UDP, 54));
	engine_free(e);
	struct engine_config off = { NULL, "app", false, NULL, NULL };
	e = load(PAY, &off, DECODE_AGENT, NULL);
	assert_false(allowed(e, "x/a", "kube-system/dns", UDP, 53));
	engine_free(e);
	e = LOAD("---\n" AP("x", "a") "spec: {application: a, outbound: {rules: [{application: b, ports: [{port: 0}]}]}}\n");
	assert_true(allowed(e, "x/a", "kube-system/dns", UDP, 53));
	assert_false(allowed(e, "x/a", "x/b", TCP, 8080));
	engine_free(e);
}

/* "*" applications, ports [] = all, external ranges match pod IPs */
static void ap_wildcards_and_external(void **st)
{
	struct engine *e = LOAD("---\n" AP("x", "a") "spec:\n  application: a\n"
				"  inbound: {rules: [{application: '*', namespace: 'y', ports: []}]}\n"
				"  outbound:\n    external:\n      - cidr: 10.0.2.0/24\n      - ipv4: 203.0.113.10\n"
				"        ports: [{port: 443}]\n");
	assert_true(allowed(e, "y/c", "x/a", UDP, 9)); /* y/c has no app label */
	assert_false(allowed(e, "x/b", "x/a", TCP, 80));
	assert_true(allowed(e, "x/a", "y/c", TCP, 80)); /* pod IP in the external cidr */
	assert_true(allowed(e, "x/a", "203.0.113.10", TCP, 443));
	assert_false(allowed(e, "x/a", "203.0.113.10", TCP, 80));
	engine_free(e);
	e = LOAD("---\n" AP("x", "a") "spec: {application: a, inbound: {rules: [{application: a, namespace: '*'}]}}\n");
	assert_true(allowed(e, "y/a", "x/a", TCP, 80));
	assert_false(allowed(e, "x/b", "x/a", TCP, 80));
	engine_free(e);
}

/* host entries: DNS names and one-label wildcards, enforced on what DNS
 * answers gave (learned by the agent's proxy); nothing before that */
static uint64_t fake_now;
static uint64_t fake_clock(void)
{
	return fake_now;
}

static struct ir_peerset *host_ps(struct engine *e, const char *pattern)
{
	struct vec v = { 0 };
	struct ir_peerset *ps = NULL;
	engine_host_peersets(e, &v);
	for (size_t i = 0; i < v.n; i++)
		if (!strcmp(((struct ir_peerset *)v.v[i])->host, pattern))
			ps = v.v[i];
	vec_free(&v);
	return ps;
}

static void ap_hosts(void **st)
{
	size_t errs;
	char *t = check_text(AP("x", "a") "spec: {application: a, outbound: {external: [{host: api.example.com}, "
					 "{host: '*.cdn.example.net', ports: [{port: 8443}]}]}}\n",
			     DECODE_STRICT, &errs);
	assert_int_equal(errs, 0);
	assert_null(strstr(t, "not enforced"));
	free(t);
	static const char *const bad[] = { "'*.com'", "'*'", "'a.*.example.com'", "API.example.com", "localhost",
					   "'*.*.example.com'", "https://api.example.com", "api.example.com." };
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		char *y = xasprintf(AP("x", "a") "spec: {application: a, outbound: {external: [{host: %s}]}}\n", bad[i]);
		t = check_text(y, DECODE_STRICT, &errs);
		if (errs != 1)
			fail_msg("host %s: %zu errors: %s", bad[i], errs, t);
		assert_non_null(strstr(t, "spec.outbound.external[0].host"));
		free(t);
		free(y);
	}
	assert_true(fqdn_match("*.example.com", "a.example.com"));
	assert_false(fqdn_match("*.example.com", "example.com"));
	assert_false(fqdn_match("*.example.com", "a.b.example.com"));
	assert_false(fqdn_match("*.example.com", "aexample.com"));
	assert_true(fqdn_match("api.example.com", "api.example.com"));
	assert_false(fqdn_match("api.example.com", "xapi.example.com"));

	fqdn_clock_set(fake_clock);
	fake_now = 1000000;
	struct engine *e = LOAD(AP("x", "a") "spec: {application: a, outbound: {external: [{host: api.example.com}, "
					     "{host: '*.cdn.example.net', ports: [{port: 8443}]}]}}\n");
	/* nothing learned: nothing allowed, on any port */
	assert_false(allowed(e, "x/a", "203.0.113.10", TCP, 443));
	struct ir_peerset *api = host_ps(e, "api.example.com"), *cdn = host_ps(e, "*.cdn.example.net");
	assert_non_null(api);
	assert_non_null(cdn);
	ip128 a, b;
	assert_int_equal(ip_parse("203.0.113.10", &a), 0);
	assert_int_equal(ip_parse("2001:db8::10", &b), 0);
	assert_int_equal(fqdn_set_learn(&api->learned, a, "api.example.com", fake_now, 30000, 4), FQDN_NEW);
	assert_int_equal(fqdn_set_learn(&cdn->learned, b, "x.cdn.example.net", fake_now, 5000, 4), FQDN_NEW);
	assert_true(allowed(e, "x/a", "203.0.113.10", TCP, 443));
	assert_false(allowed(e, "x/a", "203.0.113.10", TCP, 80));   /* the rule's ports only */
	assert_false(allowed(e, "x/a", "203.0.113.10", TCP, 8443)); /* another name's ports */
	assert_true(allowed(e, "x/a", "2001:db8::10", TCP, 8443));
	assert_false(allowed(e, "x/a", "203.0.113.11", TCP, 443));  /* not answered */
	/* expiry: no new flows; an established one is still admitted while
	 * the address is remembered */
	fake_now += 6000;
	assert_false(allowed(e, "x/a", "2001:db8::10", TCP, 8443));
	struct endpoint src = { engine_pod_find(e, "x", "a"), { 0, 0 } }, dst = { NULL, b };
	src.addr = src.pod->spec->addr[0];
	struct verdict v;
	policy_eval_established(e, &src, &dst, TCP, 8443, &v);
	assert_true(v.allowed);
	verdict_free(&v);
	uint64_t expired = 0;
	fqdn_set_expire(&cdn->learned, fake_now, 60000, &expired);
	assert_int_equal(expired, 1);
	fqdn_set_expire(&cdn->learned, fake_now + 61000, 60000, &expired);
	assert_int_equal(expired, 1);
	assert_int_equal(fqdn_set_count(&cdn->learned), 0);
	/* bounded: at most cap addresses, live ones are never pushed out */
	for (int i = 0; i < 3; i++) {
		ip128 c = ip_from_v4(0xcb007100u + 20 + (uint32_t)i);
		assert_int_equal(fqdn_set_learn(&api->learned, c, "api.example.com", fake_now, 30000, 4), FQDN_NEW);
	}
	assert_int_equal(fqdn_set_learn(&api->learned, ip_from_v4(0xcb007163u), "api.example.com", fake_now, 30000, 4),
			 -ENOSPC);
	assert_int_equal(fqdn_set_learn(&api->learned, a, "api.example.com", fake_now, 30000, 4), FQDN_REFRESHED);
	engine_free(e);
	fqdn_clock_set(NULL);
}

/* an invalid AccessPolicy isolates and allows nothing; one without an
 * application is an error and fails closed: it isolates every pod of its
 * namespace, both ways, and allows nothing */
static void ap_invalid(void **st)
{
	struct diags d;
	struct engine *e = load("---\n" AP("x", "a") "spec: {application: a, inbound: {rules: [{application: b, ports: [{port: 99999}]}]}}\n",
				NULL, DECODE_AGENT, &d);
	assert_int_equal(d.errors, 1);
	assert_false(allowed(e, "x/b", "x/a", TCP, 80));
	assert_false(allowed(e, "x/a", "x/b", TCP, 8080));
	struct policy *p = engine_policy_find(e, KIND_ACCESS, "x", "a");
	assert_false(p->spec->valid);
	assert_non_null(strstr(p->spec->error, "spec.inbound.rules[0].ports[0].port: port 99999 out of range"));
	diags_free(&d);
	engine_free(e);
	e = load("---\n" AP("x", "a") "spec: {inbound: {rules: [{application: b}]}}\n", NULL, DECODE_AGENT, &d);
	assert_int_equal(d.errors, 1);
	p = engine_policy_find(e, KIND_ACCESS, "x", "a");
	assert_non_null(p);
	assert_true(p->spec->unreadable);
	assert_false(allowed(e, "y/a", "x/a", TCP, 80));
	assert_false(allowed(e, "y/a", "x/b", TCP, 80)); /* every pod of x */
	assert_false(allowed(e, "x/b", "x/a", TCP, 80));
	assert_true(allowed(e, "x/b", "10.0.9.9", UDP, 53)); /* the DNS default still applies */
	assert_true(allowed(e, "y/a", "y/c", TCP, 80));
	diags_free(&d);
	engine_free(e);
}

/* ---------- validation: every rule of the brief names the field ---------- */

struct vcase {
	const char *spec;
	const char *want;
};

static void ap_validation(void **st)
{
	static const struct vcase cases[] = {
		{ "{application: 'Pay ments'}", "spec.application: \"Pay ments\" is not a valid application name" },
		{ "{application: '*'}", "spec.application: \"*\" is not a valid application name" },
		{ "{application: a, inbound: {rules: [{application: -bad}]}}", "spec.inbound.rules[0].application: \"-bad\"" },
		{ "{application: a, inbound: {rules: [{}]}}", "spec.inbound.rules[0].application: required" },
		{ "{application: a, inbound: {rules: [{application: b, namespace: Team_A}]}}", "spec.inbound.rules[0].namespace: \"Team_A\" is not a valid namespace" },
		{ "{application: a, inbound: {rules: [{application: b, ports: [{port: 0}]}]}}", "spec.inbound.rules[0].ports[0].port: port 0 out of range" },
		{ "{application: a, inbound: {rules: [{application: b, ports: [{port: 90, endPort: 80}]}]}}", "spec.inbound.rules[0].ports[0].endPort: 80 is less than port 90" },
		{ "{application: a, inbound: {rules: [{application: b, ports: [{port: 90, endPort: 70000}]}]}}", "endPort: port 70000 out of range" },
		{ "{application: a, inbound: {rules: [{application: b, ports: [{port: 90, protocol: ICMP}]}]}}", "ports[0].protocol: must be TCP, UDP or SCTP, not \"ICMP\"" },
		{ "{application: a, inbound: {rules: [{application: b, ports: [{protocol: UDP}]}]}}", "ports[0].port: required" },
		{ "{application: a, outbound: {external: [{host: a.example.com, cidr: 10.0.0.0/8}]}}", "spec.outbound.external[0]: must set exactly one of host, ipv4, cidr or entity (2 set)" },
		{ "{application: a, outbound: {external: [{ports: [{port: 1}]}]}}", "exactly one of host, ipv4, cidr or entity (0 set)" },
		{ "{application: a, outbound: {external: [{host: 'https://api.example.com'}]}}", "external[0].host: \"https://api.example.com\" is not a lower-case DNS name" },
		{ "{application: a, outbound: {external: [{host: API.example.com}]}}", "is not a lower-case DNS name" },
		{ "{application: a, outbound: {external: [{ipv4: 10.1.2}]}}", "external[0].ipv4: \"10.1.2\" is not a dotted-quad IPv4 address" },
		{ "{application: a, outbound: {external: [{ipv4: '::1'}]}}", "is not a dotted-quad IPv4 address" },
		{ "{application: a, outbound: {external: [{cidr: 10.0.0.1/8}]}}", "external[0].cidr: \"10.0.0.1/8\" has bits set past the prefix length" },
		{ "{application: a, outbound: {external: [{cidr: 10.0.0.0/33}]}}", "\"10.0.0.0/33\" is not a valid CIDR" },
		{ "{application: a, inbound: {rules: [{application: b, port: 80}]}}", "spec.inbound.rules[0].port: unknown field" },
		{ "{application: a, inbund: {}}", "spec.inbund: unknown field" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		size_t errs;
		char *y = xasprintf(AP("x", "a") "spec: %s\n", cases[i].spec);
		char *t = check_text(y, DECODE_STRICT, &errs);
		if (!strstr(t, cases[i].want) || !errs)
			fail_msg("case %zu: %s\nwanted: %s\ngot: %s", i, cases[i].spec, cases[i].want, t);
		assert_non_null(strstr(t, "bad.yaml: AccessPolicy x/a: "));
		free(t);
		free(y);
	}
	/* unknown fields outside rules: a warning in the agent */
	size_t errs;
	char *t = check_text(AP("x", "a") "spec: {application: a, inbund: {}}\n", DECODE_AGENT, &errs);
	assert_int_equal(errs, 0);
	assert_non_null(strstr(t, "spec.inbund: warning: unknown field, ignored"));
	free(t);
}

/* Two live pods claiming one address: neither owns it (quarantine); it
 * matches no pod selector and every flow from or to it is denied; when one
 * claim is left, that pod owns the address again. */
static void address_claimed_twice(void **st)
{
	const char *pods =
		"---\napiVersion: v1\nkind: Pod\nmetadata: {name: api-old, namespace: x, labels: {app: api}}\n"
		"status: {podIPs: [{ip: 10.0.5.50}]}\n"
		"---\napiVersion: v1\nkind: Pod\nmetadata: {name: zz-new, namespace: x, labels: {app: evil}}\n"
		"status: {podIPs: [{ip: 10.0.5.50}]}\n"
		"---\n" NP("x", "web-in") "spec: {podSelector: {matchLabels: {app: a}}, ingress: [{from: [{podSelector: "
		"{matchLabels: {app: api}}}]}]}\n";
	struct engine *e = LOAD(pods);
	ip128 a;
	ip_parse("10.0.5.50", &a);
	assert_null(engine_pod_by_addr(e, a));
	assert_int_equal(engine_addr_claims(e, a, NULL), 2);
	assert_false(allowed(e, "10.0.5.50", "x/a", TCP, 80));
	assert_false(allowed(e, "x/api-old", "x/a", TCP, 80));
	assert_false(allowed(e, "x/zz-new", "x/a", TCP, 80));
	assert_false(allowed(e, "y/a", "x/api-old", TCP, 80)); /* not isolated, still dropped */
	assert_false(allowed(e, "x/api-old", "y/a", TCP, 80));
	struct endpoint s = { NULL, a }, d = { engine_pod_find(e, "y", "a"), { 0, 0 } };
	struct verdict v;
	d.addr = d.pod->spec->addr[0];
	policy_eval(e, &s, &d, TCP, 80, &v);
	assert_true(v.side[DIR_EGRESS].quarantined);
	assert_false(v.side[DIR_INGRESS].quarantined);
	assert_null(explain_fix(e, &s, &d, DIR_EGRESS, &v.side[DIR_EGRESS], TCP, 80));
	verdict_free(&v);
	char *ir = engine_ir_dump(e);
	assert_non_null(strstr(ir, "x/api-old=10.0.5.50(quarantined)"));
	free(ir);
	/* the newer claim goes: api-old owns its address again */
	engine_pod_delete(e, "x", "zz-new");
	assert_true(engine_pod_by_addr(e, a) == engine_pod_find(e, "x", "api-old"));
	assert_true(allowed(e, "10.0.5.50", "x/a", TCP, 80));
	assert_true(allowed(e, "x/api-old", "x/a", TCP, 80));
	engine_free(e);
	/* and the same with the older one going */
	e = LOAD(pods);
	engine_pod_delete(e, "x", "api-old");
	assert_true(engine_pod_by_addr(e, a) == engine_pod_find(e, "x", "zz-new"));
	assert_false(allowed(e, "10.0.5.50", "x/a", TCP, 80));
	assert_true(allowed(e, "x/zz-new", "y/a", TCP, 80));
	engine_free(e);
	/* a dual-stack pod one of whose addresses another pod claims too: it
	 * still owns the other (the index keeps which of a pod's addresses it
	 * owns), and both again once the other claim goes */
	e = LOAD("---\napiVersion: v1\nkind: Pod\nmetadata: {name: dual, namespace: x, labels: {app: api}}\n"
		 "status: {podIPs: [{ip: 10.0.5.60}, {ip: 'fd00::60'}]}\n"
		 "---\napiVersion: v1\nkind: Pod\nmetadata: {name: other, namespace: x, labels: {app: evil}}\n"
		 "status: {podIPs: [{ip: 10.0.5.60}]}\n");
	ip128 b;
	ip_parse("fd00::60", &b);
	ip_parse("10.0.5.60", &a);
	struct pod *dual = engine_pod_find(e, "x", "dual");
	struct pod *const *by;
	assert_null(engine_pod_by_addr(e, a));
	assert_int_equal(engine_addr_claims(e, a, &by), 2);
	assert_true(engine_pod_by_addr(e, b) == dual);
	assert_int_equal(engine_addr_claims(e, b, &by), 1);
	assert_true(by[0] == dual);
	engine_pod_delete(e, "x", "other");
	assert_true(engine_pod_by_addr(e, a) == dual);
	assert_true(engine_pod_by_addr(e, b) == dual);
	assert_int_equal(engine_addr_claims(e, a, &by), 1);
	assert_true(by[0] == dual);
	engine_pod_delete(e, "x", "dual");
	assert_null(engine_pod_by_addr(e, a));
	assert_int_equal(engine_addr_claims(e, b, NULL), 0);
	engine_free(e);
}

/* A node keeps the members of the peer sets its own groups use, and no
 * others: a policy selecting no pod of this node holds an empty peer set
 * that still answers explain (the remote side of a flow) by matching. A
 * policy that gains or loses its last local target fills or forgets it;
 * a cluster-wide label peer (tier: db) is found through the label index,
 * which holds only the pairs live peer sets anchor on. */
static void peer_sets_only_where_used(void **st)
{
	static const struct engine_config n1 = { "node-1", "app", false, NULL, NULL };
	struct engine *e = load(
		"apiVersion: v1\nkind: Pod\nmetadata: {name: l, namespace: x, labels: {app: l}}\n"
		"spec: {nodeName: node-1}\nstatus: {podIPs: [{ip: 10.0.1.9}]}\n---\n"
		NP("x", "local") "spec: {podSelector: {matchLabels: {app: l}}, ingress: [{from: [{podSelector: {matchLabels: {app: a}}}, "
		"{namespaceSelector: {}, podSelector: {matchLabels: {tier: db}}}]}]}\n---\n"
		NP("y", "remote") "spec: {podSelector: {matchLabels: {app: a}}, ingress: [{from: [{namespaceSelector: {}, "
		"podSelector: {matchLabels: {app: b}}}]}]}\n",
		&n1, DECODE_AGENT, NULL);
	const struct policy *lp = engine_policy_find(e, KIND_NETPOL, "x", "local");
	const struct policy *rp = engine_policy_find(e, KIND_NETPOL, "y", "remote");
	const struct ir_peerset *loc = lp->rules[DIR_INGRESS][0].peers;
	assert_true(loc->live > 0);
	assert_int_equal(ptrset_count(&loc->members), 2); /* x/a, y/c */
	/* the remote policy (y/a is on another node) has no rules and no peer
	 * set here: the node holds only the sets its groups use */
	assert_int_equal(rp->ngroups, 0);
	assert_null(rp->rules[DIR_INGRESS]);
	struct vec v = { 0 };
	engine_peersets(e, &v);
	assert_int_equal(v.n, 1);
	assert_ptr_equal(v.v[0], loc);
	vec_free(&v);
	/* explain's remote side: a transient group, with a set of its own */
	struct ir_group *g = engine_group_transient(e, engine_pod_find(e, "y", "a"), DIR_INGRESS);
	assert_non_null(g);
	assert_int_equal(g->rules.n, 1);
	const struct ir_peerset *rem = ((const struct ir_rule *)g->rules.v[0])->peers;
	assert_int_equal(rem->live, 0);
	assert_int_equal(ptrset_count(&rem->members), 0);
	assert_true(ir_peerset_has(e, rem, engine_pod_find(e, "x", "b")->spec->addr[0]));
	assert_false(ir_peerset_has(e, rem, engine_pod_find(e, "x", "a")->spec->addr[0]));
	engine_group_transient_free(g);
	assert_true(allowed(e, "x/b", "y/a", TCP, 80)); /* explained on y/a's side */
	assert_false(allowed(e, "x/a", "y/a", TCP, 80));
	assert_true(allowed(e, "x/a", "x/l", TCP, 80));
	assert_false(allowed(e, "x/b", "x/l", TCP, 80));
	/* x/l is no longer targeted: no group holds "local", its rules and
	 * their peer set are gone */
	struct pod_spec *s = pod_copy(e, "x", "l");
	labelset_set(&s->labels, "app", "other");
	engine_pod_upsert(e, s);
	assert_int_equal(lp->ngroups, 0);
	assert_null(lp->rules[DIR_INGRESS]);
	engine_peersets(e, &v);
	assert_int_equal(v.n, 0);
	vec_free(&v);
	/* a peer that comes meanwhile, then x/l targeted again: filled */
	s = pod_copy(e, "y", "c");
	labelset_set(&s->labels, "app", "a");
	engine_pod_upsert(e, s);
	s = pod_copy(e, "x", "b");
	labelset_set(&s->labels, "app", "a");
	engine_pod_upsert(e, s);
	s = pod_copy(e, "x", "l");
	labelset_set(&s->labels, "app", "l");
	engine_pod_upsert(e, s);
	loc = lp->rules[DIR_INGRESS][0].peers;
	assert_true(loc->live > 0);
	assert_int_equal(ptrset_count(&loc->members), 3); /* x/a, x/b, y/c */
	assert_true(ir_peerset_has(e, loc, engine_pod_find(e, "y", "c")->spec->addr[0])); /* tier: db, matched */
	assert_true(allowed(e, "x/b", "x/l", TCP, 80));
	assert_false(allowed(e, "y/a", "x/l", TCP, 80));
	s = pod_copy(e, "y", "a"); /* labelled tier: db while the pair is indexed */
	labelset_set(&s->labels, "tier", "db");
	engine_pod_upsert(e, s);
	assert_int_equal(ptrset_count(&loc->members), 4);
	assert_true(allowed(e, "y/a", "x/l", TCP, 80));
	engine_pod_delete(e, "y", "c");
	assert_int_equal(ptrset_count(&loc->members), 3);
	/* the remote policy's peer, changed while not kept: still answered */
	assert_false(allowed(e, "x/b", "y/a", TCP, 80)); /* x/b is app=a now */
	engine_free(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(p01_empty_pod_selector),   cmocka_unit_test(p02_policy_types_default),
		cmocka_unit_test(p03_empty_vs_empty_rule),  cmocka_unit_test(p04_no_peers_matches_outside),
		cmocka_unit_test(address_claimed_twice),     cmocka_unit_test(peer_sets_only_where_used),
		cmocka_unit_test(p05_and_or_own_ns),        cmocka_unit_test(p06_ipblock_except),
		cmocka_unit_test(p07_ports),                cmocka_unit_test(p08_named_ports),
		cmocka_unit_test(p09_expressions),          cmocka_unit_test(p10_metadata_name_label),
		cmocka_unit_test(p11_changes_take_effect),  cmocka_unit_test(p12_dual_stack),
		cmocka_unit_test(p13_sctp),                 cmocka_unit_test(ap_both_sides),
		cmocka_unit_test(ap_add_up),                cmocka_unit_test(ap_dns_default),
		cmocka_unit_test(ap_wildcards_and_external), cmocka_unit_test(ap_hosts),
		cmocka_unit_test(ap_invalid),               cmocka_unit_test(ap_validation),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

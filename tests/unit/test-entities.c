/* Traffic from outside the pod network (issue 19): AccessPolicy
 * inbound.external, the entities nodes, world and kube-apiserver kept
 * current from Node objects and the settings, and the application label
 * as an ordered list of keys. */
#include "harness.h"

#include "policy/lint.h"

#define AP(ns, name) "apiVersion: corral.dev/v1\nkind: AccessPolicy\nmetadata: {name: '" name "', namespace: '" ns "'}\n"
#define NODE(name, addr, cidr)                                                                                 \
	"apiVersion: v1\nkind: Node\nmetadata: {name: " name "}\nspec: {podCIDRs: [" cidr "]}\n"             \
	"status: {addresses: [{type: Hostname, address: " name "}, {type: InternalIP, address: '" addr "'}]}\n---\n"
#define TCP PROTO_TCP
#define UDP PROTO_UDP

static const struct engine_config CFG = { NULL, "app", true, NULL, NULL };

/* inbound.external cidr and ipv4: every address in range, pod addresses
 * included (as ipBlock), on the entry's ports; nothing else. */
static void inbound_external_ranges(void **st)
{
	(void)st;
	struct engine *e = LOAD(AP("x", "a") "spec: {application: a, inbound: {external: ["
					     "{cidr: 192.168.0.0/16, ports: [{port: 80}]}, {ipv4: 198.51.100.7}, "
					     "{cidr: 'fd00::2:0/112'}]}}\n");
	assert_true(allowed(e, "192.168.3.4", "x/a", TCP, 80));
	assert_false(allowed(e, "192.168.3.4", "x/a", TCP, 81));
	assert_false(allowed(e, "192.169.0.1", "x/a", TCP, 80));
	assert_true(allowed(e, "198.51.100.7", "x/a", UDP, 5353));
	assert_false(allowed(e, "198.51.100.8", "x/a", UDP, 5353));
	assert_false(allowed(e, "y/a", "x/a", TCP, 80)); /* 10.0.2.1: a pod, not in range */
	assert_true(allowed(e, "fd00::2:1", "fd00::1:1", TCP, 443));
	engine_free(e);
}

/* The nodes entity: every Node's InternalIP/ExternalIP, both directions,
 * kept current as Nodes come and go (the peer set is marked for the data
 * plane, its ranges follow). */
static void nodes_entity_follows_nodes(void **st)
{
	(void)st;
	struct engine *e = LOAD(NODE("n1", "172.16.0.1", "10.0.1.0/24") NODE("n2", "172.16.0.2", "10.0.2.0/24")
					AP("x", "a") "spec: {application: a, inbound: {external: [{entity: nodes, ports: "
						     "[{port: 80}]}]}, outbound: {external: [{entity: nodes}]}}\n");
	assert_true(allowed(e, "172.16.0.1", "x/a", TCP, 80));
	assert_true(allowed(e, "172.16.0.2", "x/a", TCP, 80));
	assert_false(allowed(e, "172.16.0.2", "x/a", TCP, 81));
	assert_false(allowed(e, "172.16.0.3", "x/a", TCP, 80));
	assert_true(allowed(e, "x/a", "172.16.0.2", TCP, 10250));
	assert_false(allowed(e, "x/a", "y/a", TCP, 80));
	assert_string_equal(engine_node_by_addr(e, (ip128){ 0, 0xffffac100002ull })->name, "n2");
	engine_take_dirty(e, NULL, NULL);

	/* n2 goes, n3 comes: its address is in, n2's is out, the sets are dirty */
	engine_node_delete(e, "n2");
	struct vec dirty = { 0 };
	engine_take_dirty(e, &dirty, NULL);
	assert_true(dirty.n >= 1);
	for (size_t i = 0; i < dirty.n; i++)
		assert_int_equal(((struct ir_peerset *)dirty.v[i])->entities, ENT_NODES);
	vec_free(&dirty);
	assert_false(allowed(e, "172.16.0.2", "x/a", TCP, 80));
	struct node_spec *n3 = xcalloc(1, sizeof(*n3));
	n3->name = istr_get("n3");
	n3->addr = xcalloc(2, sizeof(*n3->addr));
	assert_int_equal(ip_parse("172.16.0.3", &n3->addr[0]), 0);
	assert_int_equal(ip_parse("fd00:ff::3", &n3->addr[1]), 0);
	n3->naddr = 2;
	engine_node_upsert(e, n3);
	assert_true(allowed(e, "172.16.0.3", "x/a", TCP, 80));
	assert_true(allowed(e, "fd00:ff::3", "fd00::1:1", TCP, 80));
	assert_true(allowed(e, "172.16.0.1", "x/a", TCP, 80));
	/* a node changing its address: the old one is out */
	struct node_spec *n1 = xcalloc(1, sizeof(*n1));
	n1->name = istr_get("n1");
	n1->addr = xcalloc(1, sizeof(*n1->addr));
	assert_int_equal(ip_parse("172.16.0.11", &n1->addr[0]), 0);
	n1->naddr = 1;
	engine_node_upsert(e, n1);
	assert_false(allowed(e, "172.16.0.1", "x/a", TCP, 80));
	assert_true(allowed(e, "172.16.0.11", "x/a", TCP, 80));
	engine_free(e);
}

/* world: outside the pod ranges (Node podCIDRs and the podCidrs setting)
 * and the node addresses; empty in a family where no pod range is known
 * (fail closed: never "everything" by default). */
static void world_entity(void **st)
{
	(void)st;
	const char *pol = AP("x", "a") "spec: {application: a, inbound: {external: [{entity: world}]}}\n";
	/* no pod range known: world is empty, nothing from outside comes in */
	struct engine *e = LOAD(pol);
	assert_false(engine_world_known(e, false));
	assert_int_equal(engine_entity_ranges(e, ENT_WORLD)->n, 0);
	assert_false(allowed(e, "198.51.100.7", "x/a", TCP, 443));
	engine_free(e);

	/* pod ranges from the Nodes: outside is in, pods and nodes are not */
	char *y = xasprintf("%s%s%s", NODE("n1", "172.16.0.1", "10.0.1.0/24"), NODE("n2", "172.16.0.2", "10.0.2.0/24"),
			    pol);
	e = LOAD(y);
	free(y);
	assert_true(engine_world_known(e, false));
	assert_false(engine_world_known(e, true));
	assert_true(allowed(e, "198.51.100.7", "x/a", TCP, 443));
	assert_true(allowed(e, "10.0.3.1", "x/a", TCP, 443)); /* no node's range */
	assert_false(allowed(e, "10.0.2.200", "x/a", TCP, 443));
	assert_false(allowed(e, "y/a", "x/a", TCP, 443));
	assert_false(allowed(e, "172.16.0.2", "x/a", TCP, 443));
	assert_false(allowed(e, "2001:db8::1", "fd00::1:1", TCP, 443)); /* IPv6 unknown: empty */
	engine_free(e);

	/* the setting adds ranges, IPv6 too */
	struct engine_config c = CFG;
	c.pod_cidrs = "10.0.0.0/16,fd00::/64";
	e = load(pol, &c, DECODE_AGENT, NULL);
	assert_true(engine_world_known(e, true));
	assert_false(allowed(e, "10.0.3.1", "x/a", TCP, 443));
	assert_true(allowed(e, "10.1.0.1", "x/a", TCP, 443));
	assert_true(allowed(e, "2001:db8::1", "fd00::1:1", TCP, 443));
	assert_false(allowed(e, "fd00::9", "fd00::1:1", TCP, 443));
	engine_free(e);
}

/* world never holds a pod: a pod address outside every known pod range
 * (an IPAM pool no Node or setting names) is left out of it while the pod
 * lives; and while a Node cannot be read (a pod range it may hide), world
 * matches nothing. */
static void world_leaves_out_pods_and_unread_nodes(void **st)
{
	(void)st;
	const char *pol = AP("x", "a") "spec: {application: a, inbound: {external: [{entity: world}]}}\n";
	char *y = xasprintf("%s%s%s", NODE("n1", "172.16.0.1", "10.0.1.0/24"), NODE("n2", "172.16.0.2", "10.0.2.0/24"),
			    pol);
	struct engine *e = LOAD(y);
	free(y);
	/* kube-system/dns is 10.0.9.9, in no node's range */
	assert_false(allowed(e, "kube-system/dns", "x/a", TCP, 443));
	assert_false(allowed(e, "10.0.9.9", "x/a", TCP, 443));
	assert_true(allowed(e, "10.0.9.10", "x/a", TCP, 443));
	/* the pod gone, its address is outside again */
	engine_pod_delete(e, "kube-system", "dns");
	assert_true(allowed(e, "10.0.9.9", "x/a", TCP, 443));
	struct engine_unreadable u;
	engine_unreadable_counts(e, &u);
	assert_int_equal(u.nodes, 0);
	/* an unreadable Node: world is empty until it can be read */
	struct manifest_set set = { 0 };
	struct decode_opts o = { DECODE_AGENT, true, "app", "default" };
	const char *bad = NODE("n3", "172.16.0.3", "10.0.3.0/33");
	manifest_load_buffer(&set, "n3.yaml", bad, strlen(bad), &o);
	manifest_apply(&set, e);
	manifest_set_free(&set);
	engine_unreadable_counts(e, &u);
	assert_int_equal(u.nodes, 1);
	assert_false(engine_world_known(e, false));
	assert_false(allowed(e, "198.51.100.7", "x/a", TCP, 443));
	const char *good = NODE("n3", "172.16.0.3", "10.0.3.0/24");
	memset(&set, 0, sizeof(set));
	manifest_load_buffer(&set, "n3.yaml", good, strlen(good), &o);
	manifest_apply(&set, e);
	manifest_set_free(&set);
	engine_unreadable_counts(e, &u);
	assert_int_equal(u.nodes, 0);
	assert_true(allowed(e, "198.51.100.7", "x/a", TCP, 443));
	assert_false(allowed(e, "10.0.3.7", "x/a", TCP, 443));
	engine_free(e);
}

/* kube-apiserver: the configured endpoint addresses, and what the agent
 * learns (engine_apiserver_set); nothing when neither is known. */
static void apiserver_entity(void **st)
{
	(void)st;
	const char *pol = AP("x", "a") "spec: {application: a, outbound: {external: [{entity: kube-apiserver, "
				       "ports: [{port: 6443}]}]}}\n";
	struct engine *e = LOAD(pol);
	assert_false(allowed(e, "x/a", "172.16.0.10", TCP, 6443));
	engine_free(e);
	struct engine_config c = CFG;
	c.apiserver = "172.16.0.10";
	e = load(pol, &c, DECODE_AGENT, NULL);
	assert_true(allowed(e, "x/a", "172.16.0.10", TCP, 6443));
	assert_false(allowed(e, "x/a", "172.16.0.10", TCP, 443));
	assert_false(allowed(e, "x/a", "172.16.0.11", TCP, 6443));
	struct range_set learned = { 0 };
	ip128 a;
	assert_int_equal(ip_parse("172.16.0.11", &a), 0);
	range_set_add(&learned, a, a);
	engine_apiserver_set(e, &learned);
	range_set_free(&learned);
	assert_true(allowed(e, "x/a", "172.16.0.11", TCP, 6443));
	assert_true(allowed(e, "x/a", "172.16.0.10", TCP, 6443));
	engine_free(e);

	/* learned from the kubernetes Service's EndpointSlices (ready
	 * endpoints only); another Service's slice, or one outside namespace
	 * default, is not read; a slice gone, its addresses go */
	char *y = xasprintf("%s%s", pol,
			    "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: kubernetes, "
			    "namespace: default, labels: {kubernetes.io/service-name: kubernetes}}\naddressType: IPv4\n"
			    "endpoints: [{addresses: [172.16.0.20]}, {addresses: [172.16.0.21], conditions: {ready: false}}]\n"
			    "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: web, "
			    "namespace: default, labels: {kubernetes.io/service-name: web}}\naddressType: IPv4\n"
			    "endpoints: [{addresses: [172.16.0.22]}]\n"
			    "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: kubernetes, "
			    "namespace: x, labels: {kubernetes.io/service-name: kubernetes}}\naddressType: IPv4\n"
			    "endpoints: [{addresses: [172.16.0.23]}]\n");
	e = LOAD(y);
	free(y);
	assert_true(allowed(e, "x/a", "172.16.0.20", TCP, 6443));
	assert_false(allowed(e, "x/a", "172.16.0.21", TCP, 6443));
	assert_false(allowed(e, "x/a", "172.16.0.22", TCP, 6443));
	assert_false(allowed(e, "x/a", "172.16.0.23", TCP, 6443));
	struct vec nodes = { 0 };
	engine_nodes(e, &nodes);
	assert_int_equal(nodes.n, 0); /* not a Node */
	vec_free(&nodes);
	engine_apiserver_slice_delete(e, "kubernetes");
	assert_false(allowed(e, "x/a", "172.16.0.20", TCP, 6443));
	engine_free(e);
}

/* The ordered application label: a pod's application is its first key's
 * value; app.kubernetes.io/name counts only for a pod without app. */
static void app_label_keys_in_order(void **st)
{
	(void)st;
	const char *pods =
		"apiVersion: v1\nkind: Pod\nmetadata: {name: nginx, namespace: x, labels: {app.kubernetes.io/name: web}}\n"
		"status: {podIPs: [{ip: 10.0.1.10}]}\n---\n"
		"apiVersion: v1\nkind: Pod\nmetadata: {name: other, namespace: x, labels: {app: other, "
		"app.kubernetes.io/name: web}}\nstatus: {podIPs: [{ip: 10.0.1.11}]}\n---\n"
		"apiVersion: v1\nkind: Pod\nmetadata: {name: caller, namespace: 'y', labels: {app.kubernetes.io/name: "
		"client}}\nstatus: {podIPs: [{ip: 10.0.2.10}]}\n---\n";
	char *y = xasprintf("%s%s", pods,
			    AP("x", "web") "spec: {application: web, inbound: {rules: [{application: client, "
					   "namespace: 'y'}]}}\n");
	struct engine_config c = CFG;
	c.app_label = APP_LABELS_DEFAULT;
	struct manifest_set set = { 0 };
	struct decode_opts o = { DECODE_AGENT, true, APP_LABELS_DEFAULT, "default" };
	char *all = xasprintf("%s---\n%s", BASE, y);
	manifest_load_buffer(&set, "t.yaml", all, strlen(all), &o);
	assert_int_equal(set.diags.errors, 0);
	struct engine *e = engine_new(&c);
	manifest_apply(&set, e);
	manifest_set_free(&set);
	free(all);
	free(y);
	/* x/nginx is application web (its only key): isolated, client admitted */
	assert_true(allowed(e, "y/caller", "x/nginx", TCP, 80));
	assert_false(allowed(e, "y/a", "x/nginx", TCP, 80));
	/* x/other is application other (app wins): not selected, open */
	assert_true(allowed(e, "y/a", "x/other", TCP, 80));
	/* explain names the key that made x/nginx application web */
	struct endpoint s = { 0 }, d = { 0 };
	s.pod = engine_pod_find(e, "y", "a");
	s.addr = s.pod->spec->addr[0];
	d.pod = engine_pod_find(e, "x", "nginx");
	d.addr = d.pod->spec->addr[0];
	struct verdict v;
	policy_eval(e, &s, &d, TCP, 80, &v);
	assert_false(v.allowed);
	char *fix = explain_fix(e, &s, &d, DIR_INGRESS, &v.side[DIR_INGRESS], TCP, 80);
	assert_non_null(fix);
	assert_non_null(strstr(fix, "read from the label app.kubernetes.io/name of x/nginx"));
	free(fix);
	verdict_free(&v);
	/* the app key alone (the old setting) reads neither by the other key */
	engine_free(e);
	y = xasprintf("%s%s", pods, AP("x", "web") "spec: {application: web}\n");
	e = LOAD(y);
	free(y);
	assert_true(allowed(e, "y/a", "x/nginx", TCP, 80));
	engine_free(e);
}

/* A host-network caller (an ingress controller) has its node's address:
 * explain no longer suggests the application rule that is already there,
 * but the nodes entity when the Node is known, else the address; and the
 * suggestion, once applied, allows the flow. */
static void explain_host_network_peer(void **st)
{
	(void)st;
#define HOSTNET_BASE                                                                                            \
	NODE("n1", "172.16.0.1", "10.0.1.0/24")                                                                 \
	"apiVersion: v1\nkind: Pod\nmetadata: {name: ingress, namespace: 'y', labels: {app: ingress}}\n"        \
	"spec: {hostNetwork: true, nodeName: n1}\nstatus: {podIPs: [{ip: 172.16.0.1}]}\n---\n"
	const char *base = HOSTNET_BASE AP("x", "a") "spec: {application: a, inbound: {rules: [{application: "
						     "ingress, namespace: 'y'}]}}\n";
	struct engine *e = LOAD(base);
	struct endpoint s = { 0 }, d = { 0 };
	s.pod = engine_pod_find(e, "y", "ingress");
	assert_int_equal(ip_parse("172.16.0.1", &s.addr), 0);
	d.pod = engine_pod_find(e, "x", "a");
	d.addr = d.pod->spec->addr[0];
	struct verdict v;
	policy_eval(e, &s, &d, TCP, 80, &v);
	assert_false(v.allowed);
	struct fix *f = explain_fix_edit(e, &s, &d, DIR_INGRESS, &v.side[DIR_INGRESS], TCP, 80);
	assert_non_null(f);
	assert_int_equal(f->action, FIX_APPEND);
	assert_string_equal(f->path, "spec.inbound.external");
	assert_non_null(strstr(f->yaml, "- entity: nodes"));
	assert_null(strstr(f->text, "application: ingress"));
	fix_free(f);
	verdict_free(&v);
	/* check says the same of the rule that can never match */
	struct diags dg = { 0 };
	policy_lint(e, &dg);
	bool said = false;
	for (size_t i = 0; i < dg.v.n; i++) {
		char *m = diag_format(dg.v.v[i]);
		said |= strstr(m, "spec.inbound.rules[0]: warning: no pod in view is a caller of this rule: it allows "
				  "nothing; y/ingress matches but is a host-network pod (its node's address): name it "
				  "with `entity: nodes` under spec.inbound.external") != NULL;
		free(m);
	}
	assert_true(said);
	diags_free(&dg);
	engine_free(e);
	/* applied, the flow is allowed */
	e = LOAD(HOSTNET_BASE AP("x", "a") "spec: {application: a, inbound: {rules: [{application: ingress, "
					   "namespace: 'y'}], external: [{entity: nodes, ports: [{port: 80}]}]}}\n");
	assert_true(allowed(e, "172.16.0.1", "x/a", TCP, 80));
	engine_free(e);
}

/* Errors name the object, the field and the reason; a bad entry leaves
 * the policy isolating and allowing nothing (fail closed). */
static void validation(void **st)
{
	(void)st;
	static const struct {
		const char *spec, *want;
	} cases[] = {
		{ "{application: a, inbound: {external: [{entity: cluster}]}}",
		  "AccessPolicy x/a: spec.inbound.external[0].entity: \"cluster\" is not an entity (nodes, world or "
		  "kube-apiserver)" },
		{ "{application: a, inbound: {external: [{host: a.example.com}]}}",
		  "spec.inbound.external[0].host: inbound entries name where traffic comes from" },
		{ "{application: a, inbound: {external: [{entity: nodes, ipv4: 10.0.0.1}]}}",
		  "spec.inbound.external[0]: must set exactly one of ipv4, cidr or entity (2 set)" },
		{ "{application: a, inbound: {external: [{cidr: 10.0.0.1/8}]}}",
		  "spec.inbound.external[0].cidr: \"10.0.0.1/8\" has bits set past the prefix length" },
		{ "{application: a, outbound: {external: [{entity: nodes, host: a.example.com}]}}",
		  "spec.outbound.external[0]: must set exactly one of host, ipv4, cidr or entity (2 set)" },
		{ "{application: a, inbound: {external: [{entity: nodes, except: [10.0.0.0/8]}]}}",
		  "spec.inbound.external[0].except: unknown field" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char *y = xasprintf(AP("x", "a") "spec: %s\n", cases[i].spec);
		size_t errors;
		char *got = check_text(y, DECODE_STRICT, &errors);
		if (!strstr(got, cases[i].want) || !errors)
			fail_msg("case %zu: wanted %s\ngot: %s", i, cases[i].want, got);
		free(got);
		/* fail closed: x/a isolated, nothing from the node or outside */
		char *n = xasprintf("%s%s", NODE("n1", "172.16.0.1", "10.0.1.0/24"), y);
		struct engine *e = LOAD(n);
		assert_false(allowed(e, "172.16.0.1", "x/a", TCP, 80));
		assert_false(allowed(e, "10.0.0.1", "x/a", TCP, 80));
		engine_free(e);
		free(n);
		free(y);
	}
	/* a Node whose address does not read: named, the rest is kept */
	size_t errors;
	char *got = check_text("apiVersion: v1\nkind: Node\nmetadata: {name: n9}\nspec: {podCIDRs: [10.9.0.0/33]}\n"
			       "status: {addresses: [{type: InternalIP, address: 10.9.0.300}, {type: ExternalIP, "
			       "address: 203.0.113.9}]}\n",
			       DECODE_STRICT, &errors);
	assert_int_equal(errors, 2);
	assert_non_null(strstr(got, "Node n9: spec.podCIDRs[0]: \"10.9.0.0/33\" is not a valid CIDR"));
	assert_non_null(strstr(got, "Node n9: status.addresses[0].address: \"10.9.0.300\" is not an IP address"));
	free(got);
}

/* check: an entity with no address in view says so (with pods in view). */
static void lint_empty_entity(void **st)
{
	(void)st;
	struct engine *e = LOAD(AP("x", "a") "spec: {application: a, inbound: {external: [{entity: world}, "
					     "{entity: nodes}]}}\n");
	struct diags d = { 0 };
	policy_lint(e, &d);
	char *all = NULL;
	struct sbuf b = { 0 };
	for (size_t i = 0; i < d.v.n; i++) {
		char *m = diag_format(d.v.v[i]);
		sbuf_addf(&b, "%s\n", m);
		free(m);
	}
	all = b.s ? sbuf_steal(&b) : xstrdup("");
	assert_non_null(strstr(all, "spec.inbound.external[0]: warning: entity world holds no address here: no pod range is known"));
	assert_non_null(strstr(all, "spec.inbound.external[1]: warning: entity nodes holds no address here: no Node in view"));
	free(all);
	diags_free(&d);
	engine_free(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(inbound_external_ranges), cmocka_unit_test(nodes_entity_follows_nodes),
		cmocka_unit_test(world_entity),		   cmocka_unit_test(apiserver_entity),
		cmocka_unit_test(world_leaves_out_pods_and_unread_nodes),
		cmocka_unit_test(app_label_keys_in_order), cmocka_unit_test(explain_host_network_peer),
		cmocka_unit_test(validation),		   cmocka_unit_test(lint_empty_entity),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

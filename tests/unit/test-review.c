/* Review: the API path end to end (watch events -> client cache -> the
 * agent's handler -> engine), random sequences of adds, updates, deletes
 * of readable and unreadable objects: the engine's fail-closed counts
 * always equal a recount, the engine holds what the cache holds, and the
 * specs they share are freed once (run under ASan). Also the client keeps
 * no pointer into its caller's options. */
#define _GNU_SOURCE
#include "harness.h"

#include <stdio.h>

#include "agent/report/report.h"
#include "kube/client.h"
#include "agent/nl/nflog.h"

#include <linux/netlink.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_log.h>

struct world {
	struct engine *e;
};

/* what agent/daemon/agent.c kube_changed does */
static void changed(void *arg, enum kube_res r, const void *old, void *new)
{
	struct world *w = arg;
	if (new) {
		kube_obj_ref(r, new);
		if (r == KRES_NAMESPACES)
			engine_ns_upsert(w->e, new);
		else if (r == KRES_PODS)
			engine_pod_upsert(w->e, new);
		else if (r == KRES_NODES)
			engine_node_upsert(w->e, new);
		else
			engine_policy_upsert(w->e, new);
	} else if (r == KRES_NAMESPACES) {
		engine_ns_delete(w->e, ((const struct ns_spec *)old)->name);
	} else if (r == KRES_NODES) {
		engine_node_delete(w->e, ((const struct node_spec *)old)->name);
	} else if (r == KRES_PODS) {
		const struct pod_spec *p = old;
		engine_pod_delete(w->e, p->ns, p->name);
	} else {
		const struct policy_spec *p = old;
		engine_policy_delete(w->e, p->kind, p->ns, p->name);
	}
}

static uint64_t rng = 88172645463325252ull;
static unsigned rnd(unsigned n)
{
	rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
	return (unsigned)(rng % n);
}

static void feed(struct kube_client *c, enum kube_res r, const char *type, const char *obj)
{
	char *line = xasprintf("{\"type\": \"%s\", \"object\": %s}\n", type, obj);
	assert_int_equal(kube_client_feed(c, r, line, strlen(line)), 0);
	free(line);
}

static void recount(struct engine *e, struct kube_client *c)
{
	struct engine_unreadable u;
	struct vec v = { 0 };
	size_t ns = 0, pods = 0, pol[POLICY_KINDS] = { 0 };
	engine_unreadable_counts(e, &u);
	engine_namespaces(e, &v);
	for (size_t i = 0; i < v.n; i++) {
		const struct ns *n = v.v[i];
		ns += n->spec && n->spec->unreadable;
	}
	v.n = 0;
	engine_pods(e, &v);
	for (size_t i = 0; i < v.n; i++)
		pods += ((const struct pod *)v.v[i])->spec->unreadable;
	assert_int_equal(v.n, kube_client_count(c, KRES_PODS));
	v.n = 0;
	engine_policies(e, &v);
	for (size_t i = 0; i < v.n; i++) {
		const struct policy_spec *ps = ((const struct policy *)v.v[i])->spec;
		pol[ps->kind] += ps->unreadable;
	}
	assert_int_equal(v.n, kube_client_count(c, KRES_NETPOLS) + kube_client_count(c, KRES_ACCESS));
	vec_free(&v);
	assert_int_equal(u.namespaces, ns);
	assert_int_equal(u.pods, pods);
	assert_int_equal(u.policies[KIND_NETPOL], pol[KIND_NETPOL]);
	assert_int_equal(u.policies[KIND_ACCESS], pol[KIND_ACCESS]);
}

static void counts_never_drift(void **st)
{
	struct world w;
	struct engine_config ec = { "n1", "app", true, NULL, NULL };
	w.e = engine_new(&ec);
	struct kube_auth a = { 0 };
	a.server = xstrdup("http://127.0.0.1:1");
	struct kube_handlers h = { .changed = changed, .arg = &w };
	struct kube_client *c = kube_client_new(&a, NULL, &h);
	static const char *nss[] = { "x", "y" };
	unsigned rv = 1;
	for (int step = 0; step < 4000; step++) {
		const char *ns = nss[rnd(2)];
		unsigned k = rnd(3), bad = rnd(3) == 0, del = rnd(4) == 0;
		const char *type = del ? "DELETED" : rnd(2) ? "ADDED" : "MODIFIED";
		char *o = NULL;
		enum kube_res r = (enum kube_res)rnd(KRES_COUNT);
		switch (r) {
		case KRES_NAMESPACES:
			o = xasprintf("{\"metadata\": {\"name\": \"%s\", \"resourceVersion\": \"%u\", \"labels\": {\"%s\": \"1\"}}}",
				      ns, rv++, bad ? "-bad" : "team");
			break;
		case KRES_PODS:
			o = xasprintf("{\"metadata\": {\"name\": \"p%u\", \"namespace\": \"%s\", \"resourceVersion\": \"%u\", "
				      "\"labels\": {\"%s\": \"a\"}}, \"spec\": {\"nodeName\": \"n%u\"}, \"status\": {\"phase\": "
				      "\"Running\", \"podIPs\": [{\"ip\": \"10.0.%u.%u\"}]}}",
				      k, ns, rv++, bad ? "-bad" : "app", rnd(2) + 1, ns[0] == 'x', rnd(3) + 1);
			break;
		case KRES_NETPOLS:
			o = xasprintf("{\"metadata\": {\"name\": \"np%u\", \"namespace\": \"%s\", \"resourceVersion\": \"%u\"}, "
				      "\"spec\": {\"podSelector\": {\"matchLabels\": {\"%s\": \"a\"}}, \"policyTypes\": [\"Ingress\"], "
				      "\"ingress\": [{\"from\": [{\"podSelector\": {}}]}]}}",
				      k, ns, rv++, bad ? "-bad" : "app");
			break;
		case KRES_NODES:
			o = xasprintf("{\"metadata\": {\"name\": \"n%u\", \"resourceVersion\": \"%u\"}, \"status\": "
				      "{\"addresses\": [{\"type\": \"InternalIP\", \"address\": \"%s\"}]}}",
				      k, rv++, bad ? "10.0.0" : "10.255.0.1");
			break;
		default:
			o = xasprintf("{\"metadata\": {\"name\": \"ap%u\", \"namespace\": \"%s\", \"resourceVersion\": \"%u\"}, "
				      "\"spec\": {\"application\": \"%s\"}}",
				      k, ns, rv++, bad ? "-bad" : "a");
			break;
		}
		feed(c, r, type, o);
		free(o);
		recount(w.e, c);
		if (step % 97 == 0) { /* problems listed: one per unreadable object, at least */
			json_t *arr = json_array();
			struct engine_unreadable u;
			engine_unreadable_counts(w.e, &u);
			report_problems(w.e, arr);
			assert_true(json_array_size(arr) >= u.namespaces + u.pods + u.policies[0] + u.policies[1]);
			json_decref(arr);
		}
	}
	kube_client_free(c);
	engine_free(w.e);
}

/* The client reads AccessPolicies with the application label of its
 * options; it must keep its own copy: the agent frees its configuration
 * on every SIGHUP (reload() -> agent_config_free(&old)) while the client
 * lives on, and main then read the label from freed memory. Here the
 * caller's string is overwritten instead of freed (no undefined behaviour
 * in the test): main then reads AccessPolicy targets by the label "zzz". */
static void client_copies_its_options(void **st)
{
	struct kube_auth a = { 0 };
	a.server = xstrdup("http://127.0.0.1:1");
	char *label = xstrdup("app");
	struct kube_client_opts o = { .app_label = label };
	struct kube_client *c = kube_client_new(&a, &o, NULL);
	memcpy(label, "zzz", 3); /* the agent: agent_config_free(&old) on SIGHUP */
	feed(c, KRES_ACCESS, "ADDED",
	     "{\"metadata\": {\"name\": \"web\", \"namespace\": \"x\", \"resourceVersion\": \"5\"}, \"spec\": {\"application\": \"web\"}}");
	const struct policy_spec *p = kube_client_get(c, KRES_ACCESS, "x", "web");
	assert_non_null(p);
	assert_int_equal(p->target.n, 1);
	assert_string_equal(p->target.req[0].key, "app");
	kube_client_free(c);
	free(label);
}

/* With JSON_ALLOW_NUL, a string cut at its NUL must never be read as the
 * shorter text: "api\u0000x" is not the application api. */
static void nul_in_a_read_field_fails_closed(void **st)
{
	struct kube_auth a = { 0 };
	a.server = xstrdup("http://127.0.0.1:1");
	struct kube_client *c = kube_client_new(&a, NULL, NULL);
	feed(c, KRES_ACCESS, "ADDED",
	     "{\"metadata\": {\"name\": \"web\", \"namespace\": \"x\", \"resourceVersion\": \"5\"}, \"spec\": {\"application\": "
	     "\"web\", \"inbound\": {\"rules\": [{\"application\": \"api\\u0000x\"}]}}}");
	const struct policy_spec *p = kube_client_get(c, KRES_ACCESS, "x", "web");
	assert_non_null(p);
	assert_false(p->valid);
	assert_true(p->unreadable);
	feed(c, KRES_PODS, "ADDED",
	     "{\"metadata\": {\"name\": \"p\", \"namespace\": \"x\", \"resourceVersion\": \"6\", \"labels\": {\"app\": "
	     "\"a\\u0000b\"}, \"annotations\": {\"note\": \"\\u0000\"}}, \"status\": {\"podIPs\": [{\"ip\": \"10.0.0.1\"}]}}");
	const struct pod_spec *pod = kube_client_get(c, KRES_PODS, "x", "p");
	assert_non_null(pod);
	assert_true(pod->unreadable);
	feed(c, KRES_PODS, "ADDED",
	     "{\"metadata\": {\"name\": \"q\", \"namespace\": \"x\", \"resourceVersion\": \"7\", \"labels\": {\"app\": "
	     "\"a\"}, \"annotations\": {\"note\": \"\\u0000\"}}, \"status\": {\"podIPs\": [{\"ip\": \"10.0.0.2\"}]}}");
	pod = kube_client_get(c, KRES_PODS, "x", "q");
	assert_non_null(pod);
	assert_false(pod->unreadable); /* an annotation is not read */
	kube_client_free(c);
}

/* An NFLOG prefix attribute without its NUL (the last attribute of the
 * buffer): main handed the agent a string running past the message, which
 * on_drop reads with sscanf. */
static size_t prefix_len;
static void on_pkt(const struct nflog_pkt *p, void *arg)
{
	(void)arg;
	prefix_len = strnlen(p->prefix, 64);
}

static void nflog_prefix_within_message(void **st)
{
	size_t len = 16 + 4 + 24 + 7;
	uint8_t *b = calloc(1, len + 64);
	memset(b + len, 'A', 64); /* what follows the message in memory */
	struct nlmsghdr *h = (void *)b;
	h->nlmsg_len = (uint32_t)len;
	h->nlmsg_type = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET;
	struct nlattr *a = (void *)(b + 20);
	a->nla_len = 24;
	a->nla_type = NFULA_PAYLOAD;
	b[24] = 0x45, b[24 + 9] = 17;
	a = (void *)(b + 44);
	a->nla_len = 7;
	a->nla_type = NFULA_PREFIX;
	memcpy(b + 48, "cor", 3);
	assert_int_equal(nflog_parse_msgs(b, len, on_pkt, NULL), 0);
	assert_true(prefix_len <= 3); /* main: 3 + the 64 bytes past the message */
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(counts_never_drift),
		cmocka_unit_test(client_copies_its_options),
		cmocka_unit_test(nul_in_a_read_field_fails_closed),
		cmocka_unit_test(nflog_prefix_within_message),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

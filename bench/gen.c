#define _GNU_SOURCE
#include "gen.h"

#include <stdio.h>
#include <string.h>

static const struct gen_size sizes[] = {
	{ "small", 1000, 50, 200, 110 },
	{ "medium", 10000, 500, 2000, 110 },
	{ "large", 150000, 5000, 20000, 110 },
};

const struct gen_size *gen_size_find(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(sizes); i++)
		if (!strcmp(sizes[i].name, name))
			return &sizes[i];
	return NULL;
}

static uint64_t rng(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

#define APPS_PER_NS 8

/* printf into one of a few rotating buffers: names for json_pack's "s" */
static const char *tmp(const char *f, int v)
{
	static char bufs[8][64];
	static unsigned n;
	char *b = bufs[n++ % 8];
	snprintf(b, 64, f, v);
	return b;
}
static const char *tiers[] = { "web", "api", "db", "cache" };

static json_t *g_collect; /* gen_cluster_write: objects are kept, not decoded */

static void decode_into(struct manifest_set *set, json_t *o)
{
	struct decoded d;
	if (g_collect) {
		json_array_append_new(g_collect, o);
		return;
	}
	struct decode_opts opts = { DECODE_AGENT, false, "app", "default" };
	if (kube_decode(o, "gen", &opts, &set->diags, &d) == 0) {
		if (d.type == OBJ_NAMESPACE)
			vec_push(&set->nss, d.ns);
		else if (d.type == OBJ_POD)
			vec_push(&set->pods, d.pod);
		else if (d.type == OBJ_POLICY)
			vec_push(&set->policies, d.pol);
	}
	json_decref(o);
}

static json_t *pod_json(const struct gen_size *sz, uint64_t seed, int i, int app)
{
	uint64_t r = seed ^ ((uint64_t)i * 0x9e3779b97f4a7c15ULL);
	rng(&r);
	int ns = i % sz->namespaces;
	char name[32], nsn[32], appn[32], node[32], ip[32], ip6[48], team[16], ver[8];
	snprintf(name, sizeof(name), "pod-%d", i);
	snprintf(nsn, sizeof(nsn), "ns-%d", ns);
	snprintf(appn, sizeof(appn), "app-%d", app);
	snprintf(node, sizeof(node), "node-%d", i / sz->pods_per_node);
	snprintf(ip, sizeof(ip), "10.%d.%d.%d", 64 + (i >> 16), (i >> 8) & 255, i & 255);
	snprintf(ip6, sizeof(ip6), "fd00::%x:%x", i >> 16, i & 0xffff);
	snprintf(team, sizeof(team), "team-%d", ns % 20);
	snprintf(ver, sizeof(ver), "v%d", (int)(rng(&r) % 3));
	json_t *labels = json_pack("{s:s, s:s, s:s}", "app", appn, "team", team, "version", ver);
	if (rng(&r) % 2)
		json_object_set_new(labels, "tier", json_string(tiers[rng(&r) % 4]));
	if (rng(&r) % 2)
		json_object_set_new(labels, "pod-template-hash", json_string(tmp("%08x", (int)(rng(&r) & 0xfff))));
	json_t *ips = json_pack("[{s:s}]", "ip", ip);
	if (i % 10 == 0)
		json_array_append_new(ips, json_pack("{s:s}", "ip", ip6));
	return json_pack("{s:s, s:s, s:{s:s, s:s, s:o}, s:{s:s, s:[{s:s, s:[{s:s, s:i}, {s:s, s:i}]}]}, "
			 "s:{s:s, s:o}}",
			 "apiVersion", "v1", "kind", "Pod", "metadata", "name", name, "namespace", nsn, "labels", labels,
			 "spec", "nodeName", node, "containers", "name", "main", "ports", "name", "http", "containerPort",
			 8080, "name", "metrics", "containerPort", 9090, "status", "phase", "Running", "podIPs", ips);
}

struct pod_spec *gen_pod(const struct gen_size *sz, uint64_t seed, int i, int app)
{
	struct manifest_set set = { 0 };
	decode_into(&set, pod_json(sz, seed, i, app));
	struct pod_spec *p = set.pods.v[0];
	set.pods.n = 0;
	manifest_set_free(&set);
	return p;
}

static json_t *sel_app(int app)
{
	return json_pack("{s:{s:s}}", "matchLabels", "app", tmp("app-%d", app));
}

static json_t *netpol(uint64_t *r, const struct gen_size *sz, int idx)
{
	int ns = (int)(rng(r) % (uint64_t)sz->namespaces);
	int app = (int)(rng(r) % APPS_PER_NS), peer = (int)(rng(r) % APPS_PER_NS);
	json_t *spec;
	switch (idx % 6) {
	case 0: /* same namespace, by app label */
		spec = json_pack("{s:o, s:[{s:[{s:o}], s:[{s:i}]}]}", "podSelector", sel_app(app), "ingress", "from",
				 "podSelector", sel_app(peer), "ports", "port", 8080);
		break;
	case 1: /* from labelled namespaces */
		spec = json_pack("{s:o, s:[{s:[{s:{s:{s:s}}}]}]}", "podSelector", sel_app(app), "ingress", "from",
				 "namespaceSelector", "matchLabels", "team", tmp("team-%d", (int)(rng(r) % 20)));
		break;
	case 2: /* egress to an ipBlock with except */
		spec = json_pack("{s:o, s:[s], s:[{s:[{s:{s:s, s:[s]}}], s:[{s:i}]}]}", "podSelector", sel_app(app),
				 "policyTypes", "Egress", "egress", "to", "ipBlock", "cidr", "172.16.0.0/12", "except",
				 "172.16.5.0/24", "ports", "port", 443);
		break;
	case 3: /* named port */
		spec = json_pack("{s:o, s:[{s:[{s:o, s:{}}], s:[{s:s}]}]}", "podSelector", sel_app(app), "ingress", "from",
				 "podSelector", sel_app(peer), "namespaceSelector", "ports", "port", "http");
		break;
	case 4: /* endPort range */
		spec = json_pack("{s:o, s:[{s:[{s:i, s:i}]}]}", "podSelector", sel_app(app), "ingress", "ports", "port",
				 30000, "endPort", 30100);
		break;
	default: /* default deny */
		spec = json_pack("{s:{}, s:[s,s]}", "podSelector", "policyTypes", "Ingress", "Egress");
		break;
	}
	return json_pack("{s:s, s:s, s:{s:s, s:s}, s:o}", "apiVersion", "networking.k8s.io/v1", "kind",
			 "NetworkPolicy", "metadata", "name", tmp("np-%d", idx), "namespace",
			 tmp("ns-%d", ns), "spec", spec);
}

static json_t *ap_rules(uint64_t *r, const struct gen_size *sz)
{
	json_t *rules = json_array();
	int n = 1 + (int)(rng(r) % 5);
	for (int k = 0; k < n; k++) {
		json_t *rule = json_object();
		int star = rng(r) % 20 == 0;
		json_object_set_new(rule, "application", star ? json_string("*") : json_string(tmp("app-%d", (int)(rng(r) % APPS_PER_NS))));
		if (rng(r) % 2)
			json_object_set_new(rule, "namespace", json_string(tmp("ns-%d", (int)(rng(r) % (uint64_t)sz->namespaces))));
		json_object_set_new(rule, "ports", json_pack("[{s:i}]", "port", 8080));
		json_array_append_new(rules, rule);
	}
	return rules;
}

static json_t *accesspol(uint64_t *r, const struct gen_size *sz, int idx)
{
	int ns = (int)(rng(r) % (uint64_t)sz->namespaces);
	return json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:s, s:{s:o}, s:{s:o}}}", "apiVersion", "corral.dev/v1", "kind",
			 "AccessPolicy", "metadata", "name", tmp("ap-%d", idx), "namespace",
			 tmp("ns-%d", ns), "spec", "application",
			 tmp("app-%d", (int)(rng(r) % APPS_PER_NS)), "inbound", "rules",
			 ap_rules(r, sz), "outbound", "rules", ap_rules(r, sz));
}

void gen_cluster(const struct gen_size *sz, uint64_t seed, struct manifest_set *set)
{
	uint64_t r = seed | 1;
	for (int i = 0; i < sz->namespaces; i++)
		decode_into(set, json_pack("{s:s, s:s, s:{s:s, s:{s:s, s:s}}}", "apiVersion", "v1", "kind", "Namespace",
					   "metadata", "name", tmp("ns-%d", i), "labels",
					   "team", tmp("team-%d", i % 20), "env",
					   i % 3 ? "prod" : "staging"));
	for (int i = 0; i < sz->pods; i++)
		decode_into(set, pod_json(sz, seed, i, (int)(rng(&r) % APPS_PER_NS)));
	for (int i = 0; i < sz->policies; i++)
		decode_into(set, i % 5 < 3 ? netpol(&r, sz, i) : accesspol(&r, sz, i));
}

int gen_cluster_write(const struct gen_size *sz, uint64_t seed, const char *path)
{
	g_collect = json_array();
	gen_cluster(sz, seed, NULL);
	json_t *list = json_pack("{s:s, s:s, s:o}", "apiVersion", "v1", "kind", "List", "items", g_collect);
	g_collect = NULL;
	int rc = json_dump_file(list, path, JSON_COMPACT);
	json_decref(list);
	return rc;
}

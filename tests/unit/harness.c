#define _GNU_SOURCE
#include "harness.h"

const char *BASE =
	"apiVersion: v1\nkind: Namespace\nmetadata: {name: x, labels: {team: blue}}\n---\n"
	"apiVersion: v1\nkind: Namespace\nmetadata: {name: 'y', labels: {team: red}}\n---\n"
	"apiVersion: v1\nkind: Namespace\nmetadata: {name: kube-system}\n---\n"
	"apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: x, labels: {app: a, tier: web}}\n"
	"spec: {containers: [{name: c, ports: [{name: http, containerPort: 80}]}]}\n"
	"status: {podIPs: [{ip: 10.0.1.1}, {ip: 'fd00::1:1'}]}\n---\n"
	"apiVersion: v1\nkind: Pod\nmetadata: {name: b, namespace: x, labels: {app: b}}\n"
	"spec: {containers: [{name: c, ports: [{name: http, containerPort: 8080}]}]}\n"
	"status: {podIPs: [{ip: 10.0.1.2}]}\n---\n"
	"apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: 'y', labels: {app: a}}\n"
	"spec: {containers: [{name: c, ports: [{name: http, containerPort: 80}]}]}\n"
	"status: {podIPs: [{ip: 10.0.2.1}]}\n---\n"
	"apiVersion: v1\nkind: Pod\nmetadata: {name: c, namespace: 'y', labels: {tier: db}}\n"
	"spec: {containers: [{name: c, ports: [{name: http, containerPort: 80}]}]}\n"
	"status: {podIPs: [{ip: 10.0.2.3}]}\n---\n"
	"apiVersion: v1\nkind: Pod\nmetadata: {name: dns, namespace: kube-system, labels: {k8s-app: kube-dns}}\n"
	"spec: {containers: [{name: c, ports: [{name: dns, containerPort: 53, protocol: UDP}]}]}\n"
	"status: {podIPs: [{ip: 10.0.9.9}]}\n";

struct engine *load(const char *yaml, const struct engine_config *cfg, enum decode_mode mode, struct diags *d)
{
	static const struct engine_config def = { NULL, "app", true, NULL, NULL };
	struct manifest_set set = { 0 };
	struct decode_opts o = { mode, true, "app", "default" };
	char *all = xasprintf("%s---\n%s", BASE, yaml ? yaml : "");
	manifest_load_buffer(&set, "test.yaml", all, strlen(all), &o);
	free(all);
	if (d) {
		*d = set.diags;
		memset(&set.diags, 0, sizeof(set.diags));
	}
	manifest_assign_addresses(&set);
	struct engine *e = engine_new(cfg ? cfg : &def);
	manifest_apply(&set, e);
	manifest_set_free(&set);
	return e;
}

static void endpoint_of(struct engine *e, const char *s, struct endpoint *ep)
{
	char ns[64], name[64];
	memset(ep, 0, sizeof(*ep));
	if (sscanf(s, "%63[^/]/%63s", ns, name) == 2 && !strchr(s, ':')) {
		ep->pod = engine_pod_find(e, ns, name);
		assert_non_null(ep->pod);
		ep->addr = ep->pod->spec->addr[0];
		return;
	}
	assert_int_equal(ip_parse(s, &ep->addr), 0);
	ep->pod = engine_pod_by_addr(e, ep->addr);
}

bool allowed(struct engine *e, const char *src, const char *dst, int proto, int port)
{
	struct endpoint s, d;
	struct verdict v;
	endpoint_of(e, src, &s);
	endpoint_of(e, dst, &d);
	policy_eval(e, &s, &d, proto, port, &v);
	verdict_free(&v);
	return v.allowed;
}

char *check_text(const char *yaml, enum decode_mode mode, size_t *errors)
{
	struct manifest_set set = { 0 };
	struct decode_opts o = { mode, true, "app", "default" };
	struct sbuf b = { 0 };
	manifest_load_buffer(&set, "bad.yaml", yaml, strlen(yaml), &o);
	for (size_t i = 0; i < set.diags.v.n; i++) {
		char *m = diag_format(set.diags.v.v[i]);
		sbuf_addf(&b, "%s\n", m);
		free(m);
	}
	*errors = set.diags.errors;
	manifest_set_free(&set);
	return sbuf_steal(&b);
}

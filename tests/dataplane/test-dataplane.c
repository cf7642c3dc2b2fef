/* The data plane against the kernel: incremental updates send only their
 * differences and traffic follows them; established connections survive
 * unrelated updates; a transaction the kernel rejects changes nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent/dataplane/dataplane.h"
#include "kcluster.h"
#include "kube/manifest.h"

static const char *script, *base_yaml;

/* Pod indices of the cluster (see cluster.sh). */
enum { XA, XB, XC, YA, YB, YC, ZA, ZB, ZC };

struct fixture {
	struct kcluster kc;
	struct engine *e[KC_NODES];
	struct dp *dp[KC_NODES];
	struct nft_sock *s[KC_NODES];
};

static const struct decode_opts opts = { DECODE_AGENT, false, "app", "default" };

static void apply_yaml(struct fixture *f, const char *yaml)
{
	for (int k = 0; k < KC_NODES; k++) {
		struct manifest_set set = { 0 };
		manifest_load_buffer(&set, "test", yaml, strlen(yaml), &opts);
		assert_int_equal(set.diags.errors, 0);
		manifest_apply(&set, f->e[k]);
		manifest_set_free(&set);
	}
}

static void up(struct fixture *f, const char *prefix, bool without_zc)
{
	memset(f, 0, sizeof(*f));
	assert_int_equal(kc_up(&f->kc, script, prefix), 0);
	for (int k = 0; k < KC_NODES; k++) {
		struct engine_config cfg = { k ? "node-2" : "node-1", "app", true, NULL, NULL };
		struct manifest_set set = { 0 };
		f->e[k] = engine_new(&cfg);
		assert_int_equal(manifest_load_path(&set, base_yaml, &opts), 0);
		manifest_apply(&set, f->e[k]);
		manifest_set_free(&set);
		if (without_zc)
			engine_pod_delete(f->e[k], "z", "c");
		f->dp[k] = dp_new(NULL);
		assert_non_null(f->s[k] = kc_nft_open(&f->kc, k));
	}
}

static void down(struct fixture *f)
{
	for (int k = 0; k < KC_NODES; k++) {
		engine_free(f->e[k]);
		dp_free(f->dp[k]);
		nft_sock_close(f->s[k]);
	}
	kc_down(&f->kc);
}

static int sync_node(struct fixture *f, int k, struct dp_stats *st)
{
	char *err = NULL;
	int rc = dp_sync(f->dp[k], f->e[k], f->s[k], false, st, &err);
	if (rc < 0)
		fprintf(stderr, "sync node-%d: %s\n", k + 1, err);
	else
		printf("  node-%d: %s, %u messages, +%llu/-%llu elements, %u chains written, %u sets added, %u deleted\n",
		       k + 1, st->full ? "full" : "diff", st->msgs, (unsigned long long)st->elems_added,
		       (unsigned long long)st->elems_deleted, st->chains_written, st->sets_added, st->sets_deleted);
	free(err);
	return rc;
}

static bool allowed(struct fixture *f, int from, int to, int port)
{
	bool got[KC_PODS][KC_PODS];
	kc_probe(&f->kc, 6, port, false, kc_probe_timeout(), got);
	return got[from][to];
}

static const char *policy_80 =
	"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p1, namespace: x}\n"
	"spec:\n  podSelector: {matchLabels: {pod: a}}\n  ingress:\n"
	"  - from:\n    - podSelector: {matchLabels: {role: client}}\n"
	"    - namespaceSelector: {matchLabels: {ns: z}}\n    ports: [{port: 80}]\n";

static void incremental_updates(void **state)
{
	struct fixture f;
	struct dp_stats st;
	up(&f, "crdp1", true);
	apply_yaml(&f, policy_80);
	assert_int_equal(sync_node(&f, 0, &st), 0);
	assert_true(st.full);
	assert_int_equal(sync_node(&f, 1, &st), 0);
	assert_true(allowed(&f, ZA, XA, 80));
	assert_false(allowed(&f, XB, XA, 80));
	assert_false(allowed(&f, ZC, XA, 80)); /* not a known pod yet */
	int conn = kc_connect(&f.kc, ZB, XA, 80, 1000);
	assert_true(conn >= 0);

	/* a pod appears: z/c's two addresses join the peer sets (one element
	 * message per family), nothing else is sent */
	apply_yaml(&f, "apiVersion: v1\nkind: Pod\nmetadata: {name: c, namespace: z, labels: {pod: c}}\n"
		       "spec: {nodeName: node-1}\nstatus: {phase: Running, podIPs: [{ip: 10.1.3.3}, {ip: 'fd00::3:3'}]}\n");
	assert_int_equal(sync_node(&f, 0, &st), 0);
	assert_false(st.full);
	assert_int_equal(st.elems_added, 2);
	assert_int_equal(st.elems_deleted, 0);
	assert_int_equal(st.chains_written, 0);
	assert_int_equal(st.msgs, 2);
	assert_true(allowed(&f, ZC, XA, 80));
	assert_true(kc_conn_alive(&f.kc, conn, 1000));

	/* a label changes: x/b becomes a client, two elements in, none out */
	apply_yaml(&f, "apiVersion: v1\nkind: Pod\nmetadata: {name: b, namespace: x, labels: {pod: b, role: client}}\n"
		       "spec: {nodeName: node-2}\nstatus: {phase: Running, podIPs: [{ip: 10.1.1.2}, {ip: 'fd00::1:2'}]}\n");
	assert_int_equal(sync_node(&f, 0, &st), 0);
	assert_false(st.full);
	assert_int_equal(st.elems_added, 2);
	assert_int_equal(st.elems_deleted, 0);
	assert_int_equal(st.chains_written, 0);
	assert_int_equal(st.msgs, 2);
	/* node-2 holds no isolated pod: nothing to send */
	assert_int_equal(sync_node(&f, 1, &st), 0);
	assert_int_equal(st.msgs, 0);
	assert_true(allowed(&f, XB, XA, 80));
	assert_false(allowed(&f, XC, XA, 80));
	assert_true(kc_conn_alive(&f.kc, conn, 1000));

	/* a pod goes away: z/a's address leaves the set */
	for (int k = 0; k < KC_NODES; k++)
		engine_pod_delete(f.e[k], "z", "a");
	assert_int_equal(sync_node(&f, 0, &st), 0);
	assert_false(st.full);
	assert_int_equal(st.elems_added, 0);
	assert_int_equal(st.elems_deleted, 2);
	assert_int_equal(st.chains_written, 0);
	assert_int_equal(st.msgs, 2);
	assert_false(allowed(&f, ZA, XA, 80));
	assert_true(allowed(&f, ZB, XA, 80));
	assert_true(kc_conn_alive(&f.kc, conn, 1000));

	/* a peer set outgrows its hash (sized 16): 30 more clients arrive, the
	 * IPv4 set is recreated larger under a new name in the same
	 * transaction, the chain moves to it, the old set goes */
	struct sbuf many = { 0 };
	for (int i = 0; i < 30; i++)
		sbuf_addf(&many, "---\napiVersion: v1\nkind: Pod\nmetadata: {name: extra%d, namespace: x, labels: {role: client}}\n"
				 "spec: {nodeName: node-2}\nstatus: {phase: Running, podIPs: [{ip: 10.9.0.%d}]}\n", i, i + 1);
	apply_yaml(&f, many.s);
	sbuf_free(&many);
	assert_int_equal(sync_node(&f, 0, &st), 0);
	assert_false(st.full);
	assert_int_equal(st.sets_added, 1);
	assert_int_equal(st.sets_deleted, 1);
	assert_int_equal(st.chains_written, 1);
	assert_true(allowed(&f, XB, XA, 80));
	assert_true(kc_conn_alive(&f.kc, conn, 1000));

	/* an unrelated policy in y: a new group chain, x/a's chain untouched */
	apply_yaml(&f, "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: deny, namespace: 'y'}\n"
		       "spec: {podSelector: {}, policyTypes: [Ingress]}\n");
	assert_int_equal(sync_node(&f, 0, &st), 0);
	assert_false(st.full);
	assert_int_equal(st.chains_written, 1);
	assert_int_equal(st.elems_added, 2); /* y/b (IPv4, IPv6) -> its chain in the ingress maps */
	assert_false(allowed(&f, XA, YB, 80));
	assert_true(kc_conn_alive(&f.kc, conn, 1000));

	/* the policy changes port: its chain is rewritten, traffic follows */
	char *p81 = strdup(policy_80);
	strstr(p81, "port: 80")[7] = '1';
	apply_yaml(&f, p81);
	free(p81);
	assert_int_equal(sync_node(&f, 0, &st), 0);
	assert_false(st.full);
	assert_int_equal(st.chains_written, 1);
	assert_int_equal(st.sets_added, 1);   /* the port set for 81 */
	assert_int_equal(st.sets_deleted, 1); /* the one for 80 */
	assert_false(allowed(&f, ZB, XA, 80));
	assert_true(allowed(&f, ZB, XA, 81));
	close(conn);
	down(&f);
}

static char *list_table(struct fixture *f, int node)
{
	char cmd[256], buf[4096];
	struct sbuf out = { 0 };
	snprintf(cmd, sizeof(cmd), "ip netns exec %s-n%d nft list table inet corral", f->kc.prefix, node + 1);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	size_t n;
	while ((n = fread(buf, 1, sizeof(buf) - 1, p)) > 0) {
		buf[n] = '\0';
		sbuf_add(&out, buf);
	}
	pclose(p);
	return sbuf_steal(&out);
}

static void rejected_transaction_changes_nothing(void **state)
{
	struct fixture f;
	struct dp_stats st;
	char *err = NULL;
	up(&f, "crdp2", false);
	apply_yaml(&f, policy_80);
	assert_int_equal(sync_node(&f, 0, &st), 0);
	char *before = list_table(&f, 0);
	assert_non_null(strstr(before, "chain ing_g"));

	/* a real change (y may now reach x/a) plus a rule the kernel refuses */
	apply_yaml(&f, "apiVersion: v1\nkind: Namespace\nmetadata: {name: 'y', labels: {ns: z}}\n");
	dp_inject_failure(f.dp[0]);
	assert_true(dp_sync(f.dp[0], f.e[0], f.s[0], false, &st, &err) < 0);
	printf("  refused as expected: %s\n", err);
	assert_non_null(strstr(err, "chain forward"));
	assert_non_null(strstr(err, "injected failure"));
	free(err);
	char *after = list_table(&f, 0);
	assert_string_equal(before, after); /* not one element of the batch landed */
	assert_false(allowed(&f, YA, XA, 80));
	assert_true(allowed(&f, ZA, XA, 80));

	/* the next sync replaces the whole table and carries the change */
	assert_int_equal(sync_node(&f, 0, &st), 0);
	assert_true(st.full);
	assert_true(allowed(&f, YA, XA, 80));
	free(before);
	free(after);

	/* someone edits the table by hand: the peer set loses its elements, so
	 * the next diff deletes an element the kernel no longer has; the error
	 * names the set and the rule it serves, and a full replace heals it */
	char cmd[512], set[64] = "";
	snprintf(cmd, sizeof(cmd), "ip netns exec %s-n1 nft list table inet corral | awk '/ip saddr @p.*_4_c/ "
				   "{for (i = 1; i <= NF; i++) if ($i ~ /^@p/) {print substr($i, 2); exit}}'",
		 f.kc.prefix);
	FILE *p = popen(cmd, "r");
	assert_non_null(fgets(set, sizeof(set), p));
	pclose(p);
	set[strcspn(set, "\n")] = 0;
	snprintf(cmd, sizeof(cmd), "ip netns exec %s-n1 nft flush set inet corral %s", f.kc.prefix, set);
	assert_int_equal(system(cmd), 0);
	assert_false(allowed(&f, ZA, XA, 80)); /* the hand edit took effect */
	for (int k = 0; k < KC_NODES; k++)
		engine_pod_delete(f.e[k], "z", "b");
	assert_true(dp_sync(f.dp[0], f.e[0], f.s[0], false, &st, &err) < 0);
	printf("  refused as expected: %s\n", err);
	assert_non_null(strstr(err, "delete elements"));
	assert_non_null(strstr(err, "peers of NetworkPolicy x/p1 spec.ingress[0]"));
	free(err);
	err = NULL;
	assert_int_equal(sync_node(&f, 0, &st), 0);
	assert_true(st.full);
	assert_true(allowed(&f, ZA, XA, 80)); /* restored */
	assert_false(allowed(&f, ZB, XA, 80)); /* and z/b is gone */
	down(&f);
}

/* A peer set holding both an ipBlock and pods is an interval set: a pod
 * joining it must land as one closed range (start and end elements), not
 * an open-ended start that would admit the addresses after it. */
static void interval_set_updates(void **state)
{
	struct fixture f;
	struct dp_stats st;
	up(&f, "crdp3", false);
	apply_yaml(&f, "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: mixed, namespace: x}\n"
		       "spec:\n  podSelector: {matchLabels: {pod: a}}\n  ingress:\n"
		       "  - from: [{ipBlock: {cidr: 10.1.3.0/24}}, {podSelector: {matchLabels: {role: client}}}]\n");
	assert_int_equal(sync_node(&f, 0, &st), 0);
	assert_true(allowed(&f, ZA, XA, 80));  /* by the ipBlock */
	assert_false(allowed(&f, XB, XA, 80));
	assert_false(allowed(&f, XC, XA, 80));
	/* x/b (10.1.1.2) becomes a client: one range in, through the diff */
	apply_yaml(&f, "apiVersion: v1\nkind: Pod\nmetadata: {name: b, namespace: x, labels: {pod: b, role: client}}\n"
		       "spec: {nodeName: node-2}\nstatus: {phase: Running, podIPs: [{ip: 10.1.1.2}, {ip: 'fd00::1:2'}]}\n");
	assert_int_equal(sync_node(&f, 0, &st), 0);
	assert_false(st.full);
	assert_true(allowed(&f, XB, XA, 80));
	assert_false(allowed(&f, XC, XA, 80)); /* 10.1.1.3, right after it, still dropped */
	assert_false(allowed(&f, YA, XA, 80));
	/* and out again */
	apply_yaml(&f, "apiVersion: v1\nkind: Pod\nmetadata: {name: b, namespace: x, labels: {pod: b}}\n"
		       "spec: {nodeName: node-2}\nstatus: {phase: Running, podIPs: [{ip: 10.1.1.2}, {ip: 'fd00::1:2'}]}\n");
	assert_int_equal(sync_node(&f, 0, &st), 0);
	assert_false(st.full);
	assert_false(allowed(&f, XB, XA, 80));
	assert_true(allowed(&f, ZA, XA, 80));
	down(&f);
}

static void ports_policy(struct fixture *f, const char *name, const char *pod, const char *ports)
{
	char *y = xasprintf("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: %s, namespace: x}\n"
			    "spec:\n  podSelector: {matchLabels: {pod: %s}}\n  ingress: [{ports: %s}]\n",
			    name, pod, ports);
	apply_yaml(f, y);
	free(y);
}

static bool has_set(struct fixture *f, const char *name)
{
	char *text = dp_applied_text(f->dp[0]);
	char *want = xasprintf("set %s {", name);
	bool yes = strstr(text, want) != NULL;
	free(want);
	free(text);
	return yes;
}

/* Port sets are named by interned content (pt_N, N never reused): equal
 * contents share one set, a content's name stays while it is used, and a
 * freed content that comes back gets a new set, not a name the kernel
 * still gives to other elements. x/a and x/c are both on node-1. */
static void port_sets_follow_content(void **state)
{
	struct fixture f;
	struct dp_stats st;
	up(&f, "crdp4", false);
	ports_policy(&f, "a-in", "a", "[{port: 80}]");
	ports_policy(&f, "c-in", "c", "[{port: 81}]");
	assert_int_equal(sync_node(&f, 0, &st), 0);
	assert_true(has_set(&f, "pt_1") && has_set(&f, "pt_2"));
	assert_true(allowed(&f, YA, XA, 80) && !allowed(&f, YA, XA, 81));
	assert_true(allowed(&f, YA, XC, 81) && !allowed(&f, YA, XC, 80));
	/* an unrelated change keeps every set: nothing but the pod's elements */
	apply_yaml(&f, "apiVersion: v1\nkind: Pod\nmetadata: {name: b, namespace: x, labels: {pod: b, role: x}}\n"
		       "spec: {nodeName: node-2}\nstatus: {phase: Running, podIPs: [{ip: 10.1.1.2}, {ip: 'fd00::1:2'}]}\n");
	assert_int_equal(sync_node(&f, 0, &st), 0);
	assert_int_equal(st.sets_added + st.sets_deleted + st.chains_written, 0);
	/* c-in takes a-in's content: one set shared, {81} freed */
	ports_policy(&f, "c-in", "c", "[{port: 80}]");
	assert_int_equal(sync_node(&f, 0, &st), 0);
	assert_false(st.full);
	assert_int_equal(st.sets_added, 0);
	assert_int_equal(st.sets_deleted, 1);
	assert_true(has_set(&f, "pt_1") && !has_set(&f, "pt_2"));
	assert_true(allowed(&f, YA, XC, 80) && !allowed(&f, YA, XC, 81));
	/* a-in takes the freed content back: a new name */
	ports_policy(&f, "a-in", "a", "[{port: 81}]");
	assert_int_equal(sync_node(&f, 0, &st), 0);
	assert_false(st.full);
	assert_int_equal(st.sets_added, 1);
	assert_int_equal(st.sets_deleted, 0);
	assert_true(has_set(&f, "pt_1") && has_set(&f, "pt_3") && !has_set(&f, "pt_2"));
	assert_true(allowed(&f, YA, XA, 81) && !allowed(&f, YA, XA, 80));
	assert_true(allowed(&f, YA, XC, 80) && !allowed(&f, YA, XC, 81));
	down(&f);
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: test-dataplane CLUSTER-SCRIPT BASE-YAML\n");
		return 2;
	}
	script = argv[1];
	base_yaml = argv[2];
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(incremental_updates),
		cmocka_unit_test(rejected_transaction_changes_nothing),
		cmocka_unit_test(interval_set_updates),
		cmocka_unit_test(port_sets_follow_content),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

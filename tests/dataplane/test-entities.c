/* Traffic from outside the pod network, with real packets in the
 * namespace cluster (tests/dataplane/cluster.sh): an AccessPolicy's
 * inbound.external cidr admits exactly its range on its port, and the
 * nodes entity admits a node's address while that Node exists, kept
 * current by element updates alone (no chain rewritten) as Nodes come and
 * go. Node-2 (10.255.0.2 on the wire) sends to x/a on node-1. */
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

enum { XA, XB, XC, YA, YB, YC, ZA, ZB, ZC };

struct fixture {
	struct kcluster kc;
	struct engine *e;
	struct dp *dp;
	struct nft_sock *s;
};

/* the base cluster labels its pods pod=a, pod=b, ...: that is the
 * application label here */
static const struct decode_opts opts = { DECODE_AGENT, false, "pod", "default" };

static void apply_yaml(struct fixture *f, const char *yaml)
{
	struct manifest_set set = { 0 };
	manifest_load_buffer(&set, "test", yaml, strlen(yaml), &opts);
	assert_int_equal(set.diags.errors, 0);
	manifest_apply(&set, f->e);
	manifest_set_free(&set);
}

static void up(struct fixture *f, const char *prefix)
{
	memset(f, 0, sizeof(*f));
	assert_int_equal(kc_up(&f->kc, script, prefix), 0);
	struct engine_config cfg = { "node-1", "pod", true, NULL, NULL };
	struct manifest_set set = { 0 };
	f->e = engine_new(&cfg);
	assert_int_equal(manifest_load_path(&set, base_yaml, &opts), 0);
	manifest_apply(&set, f->e);
	manifest_set_free(&set);
	f->dp = dp_new(NULL);
	assert_non_null(f->s = kc_nft_open(&f->kc, 0));
}

static void down(struct fixture *f)
{
	engine_free(f->e);
	dp_free(f->dp);
	nft_sock_close(f->s);
	kc_down(&f->kc);
}

static void sync_node1(struct fixture *f, struct dp_stats *st)
{
	char *err = NULL;
	int rc = dp_sync(f->dp, f->e, f->s, false, st, &err);
	if (rc < 0)
		fail_msg("sync node-1: %s", err);
	printf("  node-1: %s, %u messages, +%llu/-%llu elements, %u chains written\n", st->full ? "full" : "diff",
	       st->msgs, (unsigned long long)st->elems_added, (unsigned long long)st->elems_deleted,
	       st->chains_written);
	free(err);
}

static bool pod_allowed(struct fixture *f, int from, int to, int port)
{
	bool got[KC_PODS][KC_PODS];
	kc_probe(&f->kc, 6, port, false, kc_probe_timeout(), got);
	return got[from][to];
}

/* A SYN from node-2's own address (what a host-network pod or the kubelet
 * there sends) to x/a:port, and whether x/a saw it. */
static bool node2_reaches_xa(struct fixture *f, int port)
{
	static uint16_t sport = 40000;
	char dst[64];
	kc_pod_addr(XA, false, dst, sizeof(dst));
	int fd = kc_raw_open(&f->kc, XA, 6, false);
	assert_true(fd >= 0);
	sport++;
	assert_int_equal(kc_send_raw(&f->kc, f->kc.node_ns[1], 6, "10.255.0.2", dst, sport, (uint16_t)port), 0);
	bool seen = kc_raw_seen(fd, false, "10.255.0.2", sport, kc_probe_timeout());
	close(fd);
	return seen;
}

#define NODE(name, addr)                                                                                         \
	"apiVersion: v1\nkind: Node\nmetadata: {name: " name "}\nspec: {podCIDRs: [10.1.0.0/16]}\n"              \
	"status: {addresses: [{type: InternalIP, address: " addr "}]}\n"

static void inbound_external_and_nodes(void **state)
{
	(void)state;
	struct fixture f;
	struct dp_stats st;
	up(&f, "crent1");
	/* before any policy x/a is open to node-2 (the probe itself works) */
	assert_true(node2_reaches_xa(&f, 80));
	apply_yaml(&f, NODE("node-1", "10.255.0.1"));
	apply_yaml(&f, "apiVersion: corral.dev/v1\nkind: AccessPolicy\nmetadata: {name: a, namespace: x}\n"
		       "spec:\n  application: a\n  inbound:\n    external:\n"
		       "    - {cidr: 10.1.3.0/24, ports: [{port: 80}]}\n"
		       "    - {entity: nodes, ports: [{port: 80}]}\n");
	sync_node1(&f, &st);
	assert_true(st.full);
	/* the cidr: namespace z's pods on 80, nobody else, not on 81 */
	assert_true(pod_allowed(&f, ZA, XA, 80));
	assert_true(pod_allowed(&f, ZB, XA, 80));
	assert_false(pod_allowed(&f, YA, XA, 80));
	assert_false(pod_allowed(&f, XB, XA, 80));
	assert_false(pod_allowed(&f, ZB, XA, 81));
	/* node-2 is not a known Node yet: dropped */
	assert_false(node2_reaches_xa(&f, 80));

	/* Node node-2 appears: its address joins the set, no chain written */
	apply_yaml(&f, NODE("node-2", "10.255.0.2"));
	sync_node1(&f, &st);
	assert_false(st.full);
	assert_int_equal(st.chains_written, 0);
	assert_int_equal(st.elems_added, 1);
	assert_true(node2_reaches_xa(&f, 80));
	assert_false(node2_reaches_xa(&f, 81)); /* the entry's port only */
	assert_true(pod_allowed(&f, ZA, XA, 80));

	/* node-2 goes away: its address leaves, it is dropped again */
	engine_node_delete(f.e, "node-2");
	sync_node1(&f, &st);
	assert_false(st.full);
	assert_int_equal(st.chains_written, 0);
	assert_int_equal(st.elems_deleted, 1);
	assert_false(node2_reaches_xa(&f, 80));
	assert_true(pod_allowed(&f, ZA, XA, 80));
	down(&f);
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: test-entities CLUSTER-SCRIPT BASE-YAML\n");
		return 2;
	}
	script = argv[1];
	base_yaml = argv[2];
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(inbound_external_and_nodes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

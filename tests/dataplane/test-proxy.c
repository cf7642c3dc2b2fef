/* kube-proxy's datapaths with real packets (issue 19): a pod reaches a
 * Service by its ClusterIP or by a NodePort, on its own node and across
 * the two nodes, and a pod that policy denies must not get through by the
 * Service path either.
 *
 * kube-proxy itself is not run: each mode's translation is written into
 * the node namespaces as kube-proxy writes it.
 *   iptables mode: DNAT rules in the nat table's PREROUTING and OUTPUT
 *     (iptables-nft, as Debian's iptables is), NodePorts matched by
 *     `-m addrtype --dst-type LOCAL`;
 *   nftables mode: a table `ip kube-proxy` with nat chains at prerouting
 *     and output (priority dstnat), a verdict map of Service addresses
 *     and one of NodePorts (`fib daddr type local`);
 *   IPVS mode: IPVS takes a pod's packet to a Service address in the
 *     input hook (the ClusterIP is a local address, on kube-ipvs0; a
 *     NodePort is the node's own), rewrites the destination to a backend
 *     and sends it through the output hook, never through forward. This
 *     kernel has no IPVS (CONFIG_IP_VS is not set and modules cannot be
 *     loaded), so the test sends what IPVS sends: a packet with the
 *     client pod's source and the backend's destination, from the node
 *     namespace, through output. It first shows the hole (with corral's
 *     output chain emptied, denied packets arrive), then that the output
 *     chain closes it.
 * Every case is first run with no corral table at all, so that a case
 * that does not connect there is a broken emulation, not a drop.
 *
 * Pods (cluster.sh): x/a 10.1.1.1 node-1, x/b 10.1.1.2 node-2, x/c node-1,
 * y/a node-2, y/b node-1, y/c node-2, z/a node-1, z/b node-2, z/c node-1.
 * Node addresses: node-1 10.255.0.1, node-2 10.255.0.2 (the wire). */
#include <errno.h>
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
#define NODE1 (-1) /* the sender is a node's namespace itself */
#define NODE2 (-2)

struct fixture {
	struct kcluster kc;
	struct engine *e[KC_NODES];
	struct dp *dp[KC_NODES];
	struct nft_sock *s[KC_NODES];
};

static const struct decode_opts opts = { DECODE_AGENT, false, "app", "default" };

/* x/a (node-1) and x/b (node-2), the Services' backends, admit only
 * namespace y on TCP 80; z/a (node-1) may send nothing. */
static const char *policies =
	"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: backends, namespace: x}\n"
	"spec:\n  podSelector: {matchExpressions: [{key: pod, operator: In, values: [a, b]}]}\n"
	"  ingress:\n  - from:\n    - namespaceSelector: {matchLabels: {ns: 'y'}}\n"
	"    ports:\n    - {protocol: TCP, port: 80}\n"
	"---\n"
	"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: mute, namespace: z}\n"
	"spec:\n  podSelector: {matchLabels: {pod: a}}\n  policyTypes: [Egress]\n";

static void up(struct fixture *f, const char *prefix)
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
		manifest_load_buffer(&set, "policies", policies, strlen(policies), &opts);
		assert_int_equal(set.diags.errors, 0);
		manifest_apply(&set, f->e[k]);
		manifest_set_free(&set);
		assert_non_null(f->s[k] = kc_nft_open(&f->kc, k));
	}
}

static void down(struct fixture *f)
{
	for (int k = 0; k < KC_NODES; k++) {
		engine_free(f->e[k]);
		dp_free(f->dp[k]);
		nft_sock_close(f->s[k]);
		f->e[k] = NULL, f->dp[k] = NULL, f->s[k] = NULL;
	}
	kc_down(&f->kc);
}

/* Each test's cluster, removed by the teardown even when an assertion
 * ended the test early. */
static struct fixture fx;

static int teardown(void **state)
{
	(void)state;
	down(&fx);
	return 0;
}

static void sync_all(struct fixture *f)
{
	for (int k = 0; k < KC_NODES; k++) {
		struct dp_config cfg = { 0 };
		char *err = NULL;
		dp_free(f->dp[k]);
		f->dp[k] = dp_new(&cfg);
		int rc = dp_sync(f->dp[k], f->e[k], f->s[k], true, NULL, &err);
		if (rc < 0)
			fprintf(stderr, "sync node-%d: %s\n", k + 1, err);
		assert_int_equal(rc, 0);
		free(err);
	}
}

/* Runs a shell command in node n's namespace (1 or 2). */
static void in_node(struct fixture *f, int n, const char *fmt, ...)
{
	char body[4096], cmd[4400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(body, sizeof(body), fmt, ap);
	va_end(ap);
	snprintf(cmd, sizeof(cmd), "ip netns exec %s-n%d sh -ec '%s'", f->kc.prefix, n, body);
	int rc = system(cmd);
	if (rc != 0)
		fprintf(stderr, "failed (%d): %s\n", rc, cmd);
	assert_int_equal(rc, 0);
}

/* The Services, the same on both nodes, as kube-proxy programs them:
 *   10.96.0.10:80 -> x/a:80 (node-1)    NodePort 30080 -> x/a:80
 *   10.96.0.11:80 -> x/b:80 (node-2)    NodePort 30081 -> x/b:80 */
static void iptables_mode(struct fixture *f)
{
	for (int n = 1; n <= 2; n++)
		in_node(f, n,
			"ipt=iptables-nft\n"
			"$ipt -t nat -N KUBE-SERVICES\n"
			"$ipt -t nat -N KUBE-NODEPORTS\n"
			"$ipt -t nat -A PREROUTING -j KUBE-SERVICES\n"
			"$ipt -t nat -A OUTPUT -j KUBE-SERVICES\n"
			"$ipt -t nat -A KUBE-SERVICES -d 10.96.0.10/32 -p tcp --dport 80 -j DNAT --to-destination 10.1.1.1:80\n"
			"$ipt -t nat -A KUBE-SERVICES -d 10.96.0.11/32 -p tcp --dport 80 -j DNAT --to-destination 10.1.1.2:80\n"
			"$ipt -t nat -A KUBE-SERVICES -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS\n"
			"$ipt -t nat -A KUBE-NODEPORTS -p tcp --dport 30080 -j DNAT --to-destination 10.1.1.1:80\n"
			"$ipt -t nat -A KUBE-NODEPORTS -p tcp --dport 30081 -j DNAT --to-destination 10.1.1.2:80\n");
}

static void nftables_mode(struct fixture *f)
{
	for (int n = 1; n <= 2; n++)
		in_node(f, n,
			"nft -f - <<EOF\n"
			"table ip kube-proxy {\n"
			"  map service-ips {\n"
			"    type ipv4_addr . inet_proto . inet_service : verdict\n"
			"    elements = { 10.96.0.10 . tcp . 80 : goto svc-xa, 10.96.0.11 . tcp . 80 : goto svc-xb }\n"
			"  }\n"
			"  map service-nodeports {\n"
			"    type inet_proto . inet_service : verdict\n"
			"    elements = { tcp . 30080 : goto svc-xa, tcp . 30081 : goto svc-xb }\n"
			"  }\n"
			"  chain services {\n"
			"    ip daddr . meta l4proto . th dport vmap @service-ips\n"
			"    fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports\n"
			"  }\n"
			"  chain nat-prerouting { type nat hook prerouting priority dstnat; policy accept; jump services; }\n"
			"  chain nat-output { type nat hook output priority -100; policy accept; jump services; }\n"
			"  chain svc-xa { meta l4proto tcp dnat to 10.1.1.1:80; }\n"
			"  chain svc-xb { meta l4proto tcp dnat to 10.1.1.2:80; }\n"
			"}\n"
			"EOF\n");
}

struct svc_case {
	int client;
	const char *addr;
	int port;
	bool allowed;
	const char *what;
};

static const struct svc_case svc_cases[] = {
	{ YB, "10.96.0.10", 80, true, "same node, ClusterIP: y/b -> x/a, allowed" },
	{ ZC, "10.96.0.10", 80, false, "same node, ClusterIP: z/c -> x/a, denied by x/a's ingress" },
	{ ZA, "10.96.0.10", 80, false, "same node, ClusterIP: z/a -> x/a, denied by z/a's egress" },
	{ YB, "10.96.0.11", 80, true, "across nodes, ClusterIP: y/b -> x/b, allowed" },
	{ ZC, "10.96.0.11", 80, false, "across nodes, ClusterIP: z/c -> x/b, denied by x/b's ingress" },
	{ ZA, "10.96.0.11", 80, false, "across nodes, ClusterIP: z/a -> x/b, denied by z/a's egress" },
	{ YB, "10.255.0.1", 30080, true, "same node, its node's NodePort: y/b -> x/a, allowed" },
	{ ZC, "10.255.0.1", 30080, false, "same node, its node's NodePort: z/c -> x/a, denied by ingress" },
	{ ZA, "10.255.0.1", 30080, false, "same node, its node's NodePort: z/a -> x/a, denied by egress" },
	{ YB, "10.255.0.1", 30081, true, "its node's NodePort, backend across nodes: y/b -> x/b, allowed" },
	{ ZC, "10.255.0.1", 30081, false, "its node's NodePort, backend across nodes: z/c -> x/b, denied by ingress" },
	{ YA, "10.255.0.1", 30080, true, "another node's NodePort: y/a (node-2) -> x/a, allowed" },
	{ ZB, "10.255.0.1", 30080, false, "another node's NodePort: z/b (node-2) -> x/a, denied by ingress" },
};

/* The node itself: a pod's own node always reaches it (NetworkPolicy),
 * another node is a peer like any other. */
static const struct svc_case host_cases[] = {
	{ NODE1, "10.1.1.1", 80, true, "node-1 -> x/a on node-1 (its own node), allowed" },
	{ NODE1, "10.96.0.10", 80, true, "node-1 -> ClusterIP of x/a on node-1, allowed" },
	{ NODE2, "10.1.1.2", 80, true, "node-2 -> x/b on node-2 (its own node), allowed" },
	{ NODE1, "10.1.1.2", 80, false, "node-1 -> x/b on node-2, denied by x/b's ingress" },
};

static int case_ns(struct fixture *f, int who)
{
	return who == NODE1 ? f->kc.node_ns[0] : who == NODE2 ? f->kc.node_ns[1] : f->kc.pod_ns[who];
}

/* Connects every case; with check, asserts each against its expectation,
 * else asserts that each connects (no corral table: the emulation works). */
static void run_cases(struct fixture *f, const char *mode, const struct svc_case *c, size_t n, bool check)
{
	int bad = 0;
	for (size_t k = 0; k < n; k++) {
		int fd = kc_connect_to(&f->kc, case_ns(f, c[k].client), c[k].addr, c[k].port,
				       c[k].allowed || !check ? 2000 : kc_probe_timeout());
		bool got = fd >= 0;
		if (fd >= 0)
			close(fd);
		bool want = check ? c[k].allowed : true;
		printf("  %s %-9s %-9s %s\n", got == want ? "ok  " : "FAIL", mode, got ? "connected" : "dropped",
		       c[k].what);
		bad += got != want;
	}
	assert_int_equal(bad, 0);
}

static void mode_test(const char *prefix, const char *mode, void (*program)(struct fixture *))
{
	struct fixture *f = &fx;
	up(f, prefix);
	/* the node's own traffic to a ClusterIP is routed before the nat
	 * output hook rewrites it: a route for the Service range, as every
	 * kube-proxy node has one (its default route; here the wire, inside
	 * the test's namespaces only) */
	for (int n = 1; n <= 2; n++)
		in_node(f, n, "ip route add 10.96.0.0/16 dev wire");
	program(f);
	printf("%s mode, no corral table:\n", mode);
	run_cases(f, mode, svc_cases, sizeof(svc_cases) / sizeof(svc_cases[0]), false);
	sync_all(f);
	printf("%s mode, corral enforcing:\n", mode);
	run_cases(f, mode, svc_cases, sizeof(svc_cases) / sizeof(svc_cases[0]), true);
	run_cases(f, mode, host_cases, sizeof(host_cases) / sizeof(host_cases[0]), true);
	down(f);
}

static void iptables_kube_proxy(void **state)
{
	(void)state;
	mode_test("crpi", "iptables", iptables_mode);
}

static void nftables_kube_proxy(void **state)
{
	(void)state;
	mode_test("crpn", "nftables", nftables_mode);
}

/* What IPVS sends after it picked a backend: the client pod's source,
 * the backend's destination, from the node (the output hook). */
struct reorigin {
	int node; /* NODE1 or NODE2: where IPVS runs */
	int client, backend;
	bool allowed;
	bool output_decides; /* only the sending node's output hook can drop it */
	const char *what;
};

static const struct reorigin reorigins[] = {
	{ NODE1, YB, XA, true, false, "node-1 IPVS, y/b -> x/a (same node), allowed" },
	{ NODE1, ZC, XA, false, true, "node-1 IPVS, z/c -> x/a (same node), denied by x/a's ingress" },
	{ NODE1, ZA, YB, false, true, "node-1 IPVS, z/a -> y/b (same node), denied by z/a's egress" },
	{ NODE1, YB, XB, true, false, "node-1 IPVS, y/b -> x/b (across nodes), allowed" },
	{ NODE1, ZA, YC, false, true, "node-1 IPVS, z/a -> y/c (across nodes), denied by z/a's egress" },
	{ NODE1, ZC, XB, false, false, "node-1 IPVS, z/c -> x/b (across nodes), denied by x/b's ingress on node-2" },
	{ NODE1, ZB, XA, false, true, "node-1 IPVS for z/b of node-2 (NodePort), -> x/a, denied by ingress" },
	{ NODE1, YA, XA, true, false, "node-1 IPVS for y/a of node-2 (NodePort), -> x/a, allowed" },
	{ NODE2, ZB, XA, false, false, "node-2 IPVS, z/b -> x/a (across nodes), denied by x/a's ingress on node-1" },
};

#define NRE (sizeof(reorigins) / sizeof(reorigins[0]))

/* Sends every re-originated SYN (TCP, to port 80), then reads which
 * arrived at its backend. */
static void reorigin_round(struct fixture *f, bool v6, uint16_t sport0, bool seen[NRE])
{
	int fd[NRE];
	char src[64], dst[64];
	for (size_t k = 0; k < NRE; k++) {
		fd[k] = kc_raw_open(&f->kc, reorigins[k].backend, 6, v6);
		assert_true(fd[k] >= 0);
	}
	for (size_t k = 0; k < NRE; k++) {
		kc_pod_addr(reorigins[k].client, v6, src, sizeof(src));
		kc_pod_addr(reorigins[k].backend, v6, dst, sizeof(dst));
		/* a packet the output hook drops fails its send with EPERM */
		int rc = kc_send_raw(&f->kc, case_ns(f, reorigins[k].node), 6, src, dst, (uint16_t)(sport0 + k), 80);
		if (rc < 0 && errno != EPERM)
			fprintf(stderr, "send %s -> %s: %s\n", src, dst, strerror(errno));
		assert_true(rc == 0 || errno == EPERM);
	}
	usleep(300 * 1000);
	for (size_t k = 0; k < NRE; k++) {
		kc_pod_addr(reorigins[k].client, v6, src, sizeof(src));
		seen[k] = kc_raw_seen(fd[k], v6, src, (uint16_t)(sport0 + k), 0);
		close(fd[k]);
	}
}

static void ipvs_kube_proxy(void **state)
{
	(void)state;
	struct fixture *f = &fx;
	bool seen[NRE];
	up(f, "crpv");
	if (access("/proc/net/ip_vs", F_OK) != 0)
		printf("IPVS: this kernel has none (no /proc/net/ip_vs): the packets it sends are sent by the test\n");
	sync_all(f);
	/* the hole: without the output chain's rules, what only the sending
	 * node's output hook could drop arrives */
	in_node(f, 1, "nft flush chain inet corral output");
	in_node(f, 2, "nft flush chain inet corral output");
	for (int v6 = 0; v6 <= 1; v6++) {
		reorigin_round(f, v6, (uint16_t)(41000 + 100 * v6), seen);
		printf("IPVS mode (%s), output chain emptied:\n", v6 ? "IPv6" : "IPv4");
		for (size_t k = 0; k < NRE; k++) {
			const struct reorigin *r = &reorigins[k];
			printf("  %s %s\n", seen[k] ? "arrived" : "dropped", r->what);
			assert_int_equal(seen[k], r->allowed || r->output_decides);
		}
	}
	sync_all(f);
	int bad = 0;
	for (int v6 = 0; v6 <= 1; v6++) {
		reorigin_round(f, v6, (uint16_t)(42000 + 100 * v6), seen);
		printf("IPVS mode (%s), corral enforcing:\n", v6 ? "IPv6" : "IPv4");
		for (size_t k = 0; k < NRE; k++) {
			printf("  %s %s %s\n", seen[k] == reorigins[k].allowed ? "ok  " : "FAIL",
			       seen[k] ? "arrived" : "dropped", reorigins[k].what);
			bad += seen[k] != reorigins[k].allowed;
		}
	}
	assert_int_equal(bad, 0);
	/* the drops in output are counted as policy drops */
	in_node(f, 1, "nft list table inet corral | grep -q \"counter packets [1-9].*default deny (egress)\"");
	/* and the node's own connections to its pods are untouched */
	run_cases(f, "ipvs", host_cases, 1, true);
	run_cases(f, "ipvs", host_cases + 2, 2, true);
	down(f);
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: test-proxy CLUSTER-SCRIPT BASE-YAML\n");
		return 2;
	}
	script = argv[1];
	base_yaml = argv[2];
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(iptables_kube_proxy, teardown),
		cmocka_unit_test_teardown(nftables_kube_proxy, teardown),
		cmocka_unit_test_teardown(ipvs_kube_proxy, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

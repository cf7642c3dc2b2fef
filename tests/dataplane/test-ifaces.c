/* The node's own interfaces (set node_ifaces, from the agent's link watch)
 * and what inet corral checks on the others, a pod's (issues 19/20 and
 * 14), with real packets through the kernel.
 *
 * 1. Forged sources to the node. A pod's packet to a node-local address
 *    (an IPVS Service address, which IPVS takes in the input hook and
 *    sends again through output, where `fib saddr type local accept`
 *    accepts the node's own source; a NodePort on the node's address)
 *    never crosses forward. Raw UDP from a routed pod to the node's
 *    address with the node's own address (IPv4, IPv6) or another pod's
 *    (same node, other node) as the source: without chain input it
 *    arrives (a raw socket in the node's namespace sees it), with it
 *    nothing does; genuine pod -> node, node -> pod (kubelet's probes) and
 *    traffic over the wire from the other node with a source that does
 *    not route back through the wire (asymmetric routing) arrive either
 *    way, and the pod matrix is the same.
 * 2. Unclassified addresses. A new pod's veth, addresses and route made
 *    after the last transaction (the agent has not heard of them): with
 *    the check its packets to a pod of its node, a pod of the other node
 *    and the node, and theirs to it, are all dropped; without it they
 *    arrive (the leak of issue 14); after the agent's next transaction
 *    with the pod in the engine, they arrive.
 * The link watch (agent/nl/link.c) runs in node-1's namespace, as the
 * agent's does: the wire to node-2 is a veth into another namespace, yet
 * it carries the node's routes, so it counts as the node's. The table with
 * the new chains, built over netlink, lists the same as its nft text
 * loaded with nft -f. Node rp_filter is off: the table must not rely on
 * it. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent/dataplane/dataplane.h"
#include "agent/nl/link.h"
#include "kcluster.h"
#include "kube/manifest.h"

static const char *script, *base_yaml;

enum { XA, XB, XC, YA, YB, YC, ZA, ZB, ZC };

#define NODE1_V4 "10.255.0.1"
#define NODE1_V6 "fd00:ff::1"
#define NEW_V4 "10.1.9.9"
#define NEW_V6 "fd00::9:9"

struct fixture {
	struct kcluster kc;
	struct engine *e[KC_NODES];
	struct dp *dp[KC_NODES];
	struct nft_sock *s[KC_NODES];
	struct link_watch *lw; /* node-1's interfaces */
	int new_ns;            /* the new pod's namespace, or -1 */
};

static const struct decode_opts opts = { DECODE_AGENT, false, "app", "default" };

static void run(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	assert_int_equal(system(cmd), 0);
}

static int open_lw(void *arg)
{
	char *err = NULL;
	*(struct link_watch **)arg = link_watch_open(&err);
	if (err)
		fprintf(stderr, "link watch: %s\n", err);
	free(err);
	return 0;
}

/* Reads what the link watch has pending, for up to ms. */
static void lw_settle(struct fixture *f, int ms)
{
	struct pollfd p = { link_watch_fd(f->lw), POLLIN, 0 };
	while (poll(&p, 1, ms) > 0)
		link_watch_dispatch(f->lw);
}

static void up(struct fixture *f, const char *prefix)
{
	memset(f, 0, sizeof(*f));
	f->new_ns = -1;
	assert_int_equal(kc_up(&f->kc, script, prefix), 0);
	for (int k = 0; k < KC_NODES; k++) {
		struct engine_config cfg = { k ? "node-2" : "node-1", "app", true, NULL, NULL };
		struct manifest_set set = { 0 };
		f->e[k] = engine_new(&cfg);
		assert_int_equal(manifest_load_path(&set, base_yaml, &opts), 0);
		manifest_apply(&set, f->e[k]);
		manifest_set_free(&set);
		assert_non_null(f->s[k] = kc_nft_open(&f->kc, k));
		run("ip netns exec %s-n%d sh -c 'for f in /proc/sys/net/ipv4/conf/*/rp_filter; do echo 0 > $f; done'",
		    f->kc.prefix, k + 1);
	}
	kc_in_ns(&f->kc, f->kc.node_ns[0], open_lw, &f->lw);
	assert_non_null(f->lw);
	lw_settle(f, 50);
}

static void down(struct fixture *f)
{
	for (int k = 0; k < KC_NODES; k++) {
		engine_free(f->e[k]);
		dp_free(f->dp[k]);
		nft_sock_close(f->s[k]);
	}
	link_watch_close(f->lw);
	if (f->new_ns >= 0)
		close(f->new_ns);
	kc_down(&f->kc); /* the new pod's namespace is PREFIX-nw: removed with the rest */
}

/* A fresh data plane on each node (a full replace); node-1 with the
 * interfaces its link watch knows now when ifaces. */
static void sync_all(struct fixture *f, bool ifaces, bool unclassified)
{
	for (int k = 0; k < KC_NODES; k++) {
		struct dp_stats st;
		char *err = NULL;
		dp_free(f->dp[k]);
		f->dp[k] = dp_new(NULL);
		if (ifaces && k == 0) {
			size_t n;
			const char *const *names = link_watch_node_ifaces(f->lw, &n);
			dp_set_node_ifaces(f->dp[k], names, n, unclassified);
		}
		int rc = dp_sync(f->dp[k], f->e[k], f->s[k], true, &st, &err);
		if (rc < 0)
			fprintf(stderr, "sync node-%d: %s\n", k + 1, err);
		assert_int_equal(rc, 0);
		free(err);
	}
}

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

struct rawreq {
	bool v6;
	int proto;
};

static int raw_sock(void *arg)
{
	struct rawreq *r = arg;
	return socket(r->v6 ? AF_INET6 : AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, r->proto);
}

/* A raw UDP socket in namespace ns: sees every datagram delivered there. */
static int raw_in(struct fixture *f, int ns, bool v6)
{
	struct rawreq r = { v6, 17 };
	int fd = kc_in_ns(&f->kc, ns, raw_sock, &r);
	assert_true(fd >= 0);
	return fd;
}

/* One packet: from namespace `from`, with source src, to dst, seen (or
 * not) in namespace `at`. */
struct pkt {
	int from, at; /* namespace fds */
	const char *src, *dst;
	const char *what;
};

/* Sends every packet (UDP, distinct source ports), waits once, and counts
 * what arrived; seen[k] for each. */
static int send_round(struct fixture *f, const struct pkt *p, size_t n, bool v6, uint16_t sport0, bool *seen,
		      const char *label)
{
	int fd[32], arrived = 0;
	assert_true(n <= 32);
	for (size_t k = 0; k < n; k++)
		fd[k] = raw_in(f, p[k].at, v6);
	for (size_t k = 0; k < n; k++)
		assert_int_equal(kc_send_raw(&f->kc, p[k].from, 17, p[k].src, p[k].dst, (uint16_t)(sport0 + k), 9), 0);
	usleep(300 * 1000);
	for (size_t k = 0; k < n; k++) {
		seen[k] = kc_raw_seen(fd[k], v6, p[k].src, (uint16_t)(sport0 + k), 0);
		arrived += seen[k];
		printf("  %s: %s %s %s\n", label, seen[k] ? "ARRIVED" : "dropped ", v6 ? "IPv6" : "IPv4", p[k].what);
		close(fd[k]);
	}
	return arrived;
}

static void matrix(struct fixture *f, bool out[4][KC_PODS][KC_PODS])
{
	kc_probe(&f->kc, 6, 80, false, kc_probe_timeout(), out[0]);
	kc_probe(&f->kc, 6, 80, true, kc_probe_timeout(), out[1]);
	kc_probe(&f->kc, 17, 80, false, kc_probe_timeout(), out[2]);
	kc_probe(&f->kc, 17, 80, true, kc_probe_timeout(), out[3]);
}

/* The applied table of node-1, loaded as nft text into a scratch
 * namespace, lists the same as the netlink-built one. */
static void text_equals_netlink(struct fixture *f)
{
	char *text = dp_applied_text(f->dp[0]);
	char path[] = "/tmp/corral-ifaces-XXXXXX";
	assert_non_null(text);
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	run("set -e; p=%1$s; ip netns add $p-txt; ip netns exec $p-txt nft -f %2$s; "
	    "ip netns exec $p-txt nft list table inet corral > %2$s.cli; "
	    "ip netns exec $p-n1 nft list table inet corral | sed 's/counter packets [0-9]* bytes [0-9]*/counter packets 0 bytes 0/' > %2$s.nl; "
	    "diff -u %2$s.cli %2$s.nl; echo \"text equals netlink: $(grep -c . %2$s.nl) lines\"; "
	    "rm -f %2$s %2$s.cli %2$s.nl; ip netns del $p-txt",
	    f->kc.prefix, path);
	free(text);
}

static void addr(int pod, bool v6, char *buf)
{
	kc_pod_addr(pod, v6, buf, 64);
}

static void forged_sources_to_the_node(void **state)
{
	(void)state;
	struct fixture f;
	static bool before[4][KC_PODS][KC_PODS], after[4][KC_PODS][KC_PODS];
	up(&f, "rvif1");
	size_t nn;
	const char *const *names = link_watch_node_ifaces(f.lw, &nn);
	printf("node-1's own interfaces:");
	bool wire = false, lo = false;
	for (size_t i = 0; i < nn; i++) {
		printf(" %s", names[i]);
		wire |= !strcmp(names[i], "wire");
		lo |= !strcmp(names[i], "lo");
		assert_true(names[i][0] != 'v'); /* no pod's veth (vx-a ...) */
	}
	printf("\n");
	assert_true(wire && lo);

	int forged_without = 0, forged_with = 0, v4_own_without = 0;
	for (int round = 0; round < 2; round++) {
		sync_all(&f, round == 1, false);
		if (round == 1)
			text_equals_netlink(&f);
		for (int v6 = 0; v6 <= 1; v6++) {
			char xa[64], zc[64], ya[64];
			const char *node = v6 ? NODE1_V6 : NODE1_V4, *odd = v6 ? "2001:db8:9::9" : "192.0.2.9";
			addr(XA, v6, xa), addr(ZC, v6, zc), addr(YA, v6, ya);
			int n1 = f.kc.node_ns[0], n2 = f.kc.node_ns[1], pxa = f.kc.pod_ns[XA];
			const struct pkt forged[] = {
				{ pxa, n1, node, node, "x/a -> the node, with the node's own address" },
				{ pxa, n1, zc, node, "x/a -> the node, with z/c's address (same node)" },
				{ pxa, n1, ya, node, "x/a -> the node, with y/a's address (other node)" },
			};
			const struct pkt genuine[] = {
				{ pxa, n1, xa, node, "x/a -> the node, its own address" },
				{ n1, pxa, node, xa, "the node -> x/a (kubelet's probes)" },
				{ n2, n1, odd, node, "node-2 -> node-1 over the wire, a source node-1 has no route back to" },
			};
			bool seen[8];
			const char *label = round ? "with chain input" : "without";
			int got = send_round(&f, forged, 3, v6, (uint16_t)(40000 + round * 100 + v6 * 10), seen, label);
			if (round)
				forged_with += got;
			else
				forged_without += got, v4_own_without += !v6 && seen[0];
			if (!round) /* what the table must stop was open: pods' addresses, and IPv6 the node's */
				assert_true(seen[1] && seen[2] && (!v6 || seen[0]));
			assert_int_equal(send_round(&f, genuine, 3, v6, (uint16_t)(41000 + round * 100 + v6 * 10), seen, label),
					 3);
		}
		matrix(&f, round ? after : before);
	}
	printf("forged packets to the node: %d of 6 arrived without chain input (IPv4 with the node's own address: %s), "
	       "%d with it\n",
	       forged_without, v4_own_without ? "arrived" : "already dropped by the kernel as a martian", forged_with);
	assert_int_equal(forged_with, 0);
	char *text = dp_applied_text(f.dp[0]);
	assert_non_null(strstr(text, "iifname != @" DP_NODE_IFACES " fib saddr . iif oif missing goto " DP_FORGED_CHAIN));
	free(text);
	run("ip netns exec %s-n1 nft list chain inet corral %s | grep -q 'counter packets [1-9]'", f.kc.prefix,
	    DP_FORGED_CHAIN);
	assert_memory_equal(before, after, sizeof(before));
	down(&f);
}

static const char *new_pod_yaml = "apiVersion: v1\nkind: Pod\nmetadata: {name: new, namespace: x, labels: {pod: new}}\n"
				  "spec:\n  nodeName: node-1\n  containers: [{name: c}]\n"
				  "status:\n  phase: Running\n  podIPs: [{ip: " NEW_V4 "}, {ip: '" NEW_V6 "'}]\n";

/* A new pod as a routed CNI makes it: namespace, veth, addresses, then the
 * node's routes to it (PREFIX-nw, vnw on node-1). */
static void new_pod(struct fixture *f)
{
	run("set -e; p=%s; ip netns add $p-nw; ip -n $p-nw link set lo up; "
	    "ip netns exec $p-nw sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0; "
	    "ip -n $p-n1 link add vnw type veth peer name eth0 netns $p-nw; "
	    "ip -n $p-nw addr add " NEW_V4 "/32 dev eth0; ip -n $p-nw addr add " NEW_V6 "/128 dev eth0 nodad; "
	    "ip -n $p-nw link set eth0 up; ip -n $p-nw route add 169.254.1.1 dev eth0; "
	    "ip -n $p-nw route add default via 169.254.1.1 dev eth0; "
	    "ip -n $p-n1 addr add 169.254.1.1/32 dev vnw; ip -n $p-n1 addr add fe80::1/64 dev vnw nodad; "
	    "ip -n $p-n1 link set vnw up; ip -n $p-nw route add default via fe80::1 dev eth0; "
	    "ip -n $p-n1 route add " NEW_V4 "/32 dev vnw; ip -n $p-n1 route add " NEW_V6 "/128 dev vnw; "
	    "ip netns exec $p-nw ping -c1 -W1 169.254.1.1 >/dev/null 2>&1 || true; "
	    "ip netns exec $p-nw ping -6 -c1 -W1 fe80::1%%eth0 >/dev/null 2>&1 || true",
	    f->kc.prefix);
	char path[128];
	snprintf(path, sizeof(path), "/run/netns/%s-nw", f->kc.prefix);
	f->new_ns = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(f->new_ns >= 0);
}

/* The new pod's traffic, both families: how many of 10 arrived. */
static int new_pod_round(struct fixture *f, uint16_t sport0, const char *label)
{
	int arrived = 0;
	for (int v6 = 0; v6 <= 1; v6++) {
		char xc[64], ya[64];
		const char *nw = v6 ? NEW_V6 : NEW_V4, *node = v6 ? NODE1_V6 : NODE1_V4;
		addr(XC, v6, xc), addr(YA, v6, ya);
		const struct pkt p[] = {
			{ f->new_ns, f->kc.pod_ns[XC], nw, xc, "new pod -> x/c (same node)" },
			{ f->new_ns, f->kc.pod_ns[YA], nw, ya, "new pod -> y/a (other node)" },
			{ f->new_ns, f->kc.node_ns[0], nw, node, "new pod -> its node" },
			{ f->kc.pod_ns[XC], f->new_ns, xc, nw, "x/c -> new pod (same node)" },
			{ f->kc.pod_ns[YA], f->new_ns, ya, nw, "y/a -> new pod (other node)" },
		};
		bool seen[8];
		arrived += send_round(f, p, 5, v6, (uint16_t)(sport0 + v6 * 10), seen, label);
	}
	return arrived;
}

static void unclassified_addresses(void **state)
{
	(void)state;
	struct fixture f;
	static bool before[4][KC_PODS][KC_PODS], after[4][KC_PODS][KC_PODS];
	up(&f, "rvif2");
	sync_all(&f, false, false);
	matrix(&f, before);

	/* without the check: the transaction before the pod existed leaves
	 * its traffic open (issue 14) */
	sync_all(&f, true, false);
	new_pod(&f);
	int open = new_pod_round(&f, 42000, "without the check");
	printf("unclassified new pod without the check: %d of 10 arrived\n", open);
	assert_int_equal(open, 10);
	run("ip netns del %s-nw", f.kc.prefix);
	close(f.new_ns);
	f.new_ns = -1;
	lw_settle(&f, 200);
	/* the gone veth is nowhere: a name the next pod's veth reuses must
	 * not be the node's (libnl keeps per-family link entries that
	 * outlive their link) */
	size_t nn;
	const char *const *names = link_watch_node_ifaces(f.lw, &nn);
	for (size_t i = 0; i < nn; i++)
		assert_string_not_equal(names[i], "vnw");

	/* with it (the agent's state before the pod: it has not heard of vnw) */
	sync_all(&f, true, true);
	text_equals_netlink(&f);
	matrix(&f, after);
	assert_memory_equal(before, after, sizeof(before));
	new_pod(&f);
	int closed = new_pod_round(&f, 43000, "with the check, before the agent's transaction");
	printf("unclassified new pod with the check: %d of 10 arrived\n", closed);
	assert_int_equal(closed, 0);
	run("ip netns exec %1$s-n1 nft list chain inet corral eg_unclassified | grep -q 'counter packets [1-9]' && "
	    "ip netns exec %1$s-n1 nft list chain inet corral ing_unclassified | grep -q 'counter packets [1-9]'",
	    f.kc.prefix);

	/* the agent learns the interface (a pod's: not the node's) and the
	 * API the pod: classified, it talks */
	lw_settle(&f, 200);
	names = link_watch_node_ifaces(f.lw, &nn);
	for (size_t i = 0; i < nn; i++)
		assert_string_not_equal(names[i], "vnw");
	apply_yaml(&f, new_pod_yaml);
	sync_all(&f, true, true);
	int classified = new_pod_round(&f, 44000, "classified");
	printf("the same pod once classified: %d of 10 arrived\n", classified);
	assert_int_equal(classified, 10);
	down(&f);
}

/* A bridged CNI: inet forward sees the bridge (br0, a node interface) as
 * both interfaces of a pod's packet (br_netfilter), never the pod's port,
 * so the checks leave bridged pods to table bridge corral: the matrix
 * is the same with them as without, and the ports are not node
 * interfaces. */
static void bridged_pods_unchanged(void **state)
{
	(void)state;
	struct fixture f;
	static bool before[4][KC_PODS][KC_PODS], after[4][KC_PODS][KC_PODS];
	setenv("CORRAL_CLUSTER_SHAPE", "bridged", 1);
	up(&f, "rvif3");
	unsetenv("CORRAL_CLUSTER_SHAPE");
	size_t nn;
	const char *const *names = link_watch_node_ifaces(f.lw, &nn);
	bool br0 = false;
	printf("node-1's own interfaces (bridged):");
	for (size_t i = 0; i < nn; i++) {
		printf(" %s", names[i]);
		br0 |= !strcmp(names[i], "br0");
		assert_true(names[i][0] != 'v');
	}
	printf("\n");
	assert_true(br0);
	sync_all(&f, false, false);
	matrix(&f, before);
	sync_all(&f, true, true);
	matrix(&f, after);
	assert_memory_equal(before, after, sizeof(before));
	int n = 0;
	for (int i = 0; i < KC_PODS; i++)
		for (int j = 0; j < KC_PODS; j++)
			n += after[0][i][j] + after[1][i][j] + after[2][i][j] + after[3][i][j];
	printf("bridged pods: %d of %d probes connect, with the checks as without\n", n, 4 * KC_PODS * KC_PODS);
	assert_true(n > 0);
	down(&f);
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: test-ifaces CLUSTER-SCRIPT BASE-YAML\n");
		return 2;
	}
	script = argv[1];
	base_yaml = argv[2];
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(forged_sources_to_the_node),
		cmocka_unit_test(unclassified_addresses),
		cmocka_unit_test(bridged_pods_unchanged),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

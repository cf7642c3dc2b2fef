/* A bridged CNI (issue 20 items 1 and 2; issue 14's address learning),
 * with real packets through the kernel.
 *
 * The namespace cluster is built in its bridged shape (cluster.sh,
 * CORRAL_CLUSTER_SHAPE=bridged): on each node the pods sit on br0, reach
 * one another over the bridge (ARP and neighbour discovery between pods)
 * and the rest through br0, and br_netfilter hands bridged frames to the
 * inet hooks, where the forward chain sees br0, not the pod's port, as
 * the input interface. So the reverse-path check of inet corral cannot
 * tell one pod of a bridge from another: a pod sending with the address
 * of a pod on its own bridge gets that pod's verdicts.
 *
 * The test learns every pod's addresses the way the agent does
 * (agent/nl/link.c: the veth's peer namespace, read with rtnetlink), then
 * checks that
 *   - the learned (port, address) pairs are exactly the cluster's, and
 *     follow address changes in a pod's namespace and a new pod;
 *   - without the bridge table the same-node forgeries arrive (the hole),
 *     with it none of the forgeries does, IPv4 and IPv6, TCP, UDP and
 *     SCTP, ingress and egress; genuine traffic is unchanged;
 *   - neighbour discovery between pods on the bridge still resolves, a
 *     solicitation carrying data is judged by policy (dropped where policy
 *     drops), and an advertisement for another pod's address is dropped;
 *   - ARP claiming another pod's address is dropped;
 *   - TCP and UDP to or from a pod's link-local address, which pod policy
 *     cannot see, arrive with inet corral alone and are dropped by the
 *     bridge table, while neighbour discovery for those addresses still
 *     resolves. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent/dataplane/bridge.h"
#include "agent/dataplane/dataplane.h"
#include "agent/nl/link.h"
#include "kcluster.h"
#include "kube/manifest.h"

static const char *script, *base_yaml;

enum { XA, XB, XC, YA, YB, YC, ZA, ZB, ZC };

struct fixture {
	struct kcluster kc;
	struct engine *e[KC_NODES];
	struct dp *dp[KC_NODES];
	struct dp_bridge *br[KC_NODES];
	struct nft_sock *s[KC_NODES];
	struct link_watch *lw[KC_NODES];
};

static const struct decode_opts opts = { DECODE_AGENT, false, "app", "default" };

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int open_watch(void *arg)
{
	char *err = NULL;
	struct link_watch **w = arg;
	*w = link_watch_open(&err);
	if (!*w)
		fprintf(stderr, "link watch: %s\n", err);
	free(err);
	return *w ? 0 : -1;
}

static void up(struct fixture *f, const char *prefix, bool bridged)
{
	memset(f, 0, sizeof(*f));
	setenv("CORRAL_CLUSTER_SHAPE", bridged ? "bridged" : "routed", 1);
	assert_int_equal(kc_up(&f->kc, script, prefix), 0);
	for (int k = 0; k < KC_NODES; k++) {
		struct engine_config cfg = { k ? "node-2" : "node-1", "app", true, NULL, NULL };
		struct manifest_set set = { 0 };
		struct dp_config dc = { 0 };
		f->e[k] = engine_new(&cfg);
		assert_int_equal(manifest_load_path(&set, base_yaml, &opts), 0);
		manifest_apply(&set, f->e[k]);
		manifest_set_free(&set);
		assert_non_null(f->s[k] = kc_nft_open(&f->kc, k));
		assert_int_equal(kc_in_ns(&f->kc, f->kc.node_ns[k], open_watch, &f->lw[k]), 0);
		f->br[k] = dp_bridge_new(&dc);
		char cmd[512];
		snprintf(cmd, sizeof(cmd),
			 "ip netns exec %s-n%d sh -c 'for f in /proc/sys/net/ipv4/conf/*/rp_filter; do echo 0 > $f; done'",
			 f->kc.prefix, k + 1);
		assert_int_equal(system(cmd), 0);
	}
}

static void down(struct fixture *f)
{
	for (int k = 0; k < KC_NODES; k++) {
		engine_free(f->e[k]);
		dp_free(f->dp[k]);
		dp_bridge_free(f->br[k]);
		link_watch_close(f->lw[k]);
		nft_sock_close(f->s[k]);
	}
	kc_down(&f->kc);
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

static void sync_inet(struct fixture *f)
{
	for (int k = 0; k < KC_NODES; k++) {
		struct dp_config cfg = { 0 };
		struct dp_stats st;
		char *err = NULL;
		dp_free(f->dp[k]);
		f->dp[k] = dp_new(&cfg);
		int rc = dp_sync(f->dp[k], f->e[k], f->s[k], true, &st, &err);
		if (rc < 0)
			fprintf(stderr, "sync node-%d: %s\n", k + 1, err);
		assert_int_equal(rc, 0);
		free(err);
	}
}

/* Waits (bounded) until node k's watch has something new; true if so. */
static bool watch_wait(struct fixture *f, int k, int timeout_ms)
{
	double end = now_ms() + timeout_ms;
	for (;;) {
		if (link_watch_dispatch(f->lw[k]))
			return true;
		double rem = end - now_ms();
		if (rem <= 0)
			return false;
		struct pollfd p = { link_watch_fd(f->lw[k]), POLLIN, 0 };
		poll(&p, 1, (int)rem + 1);
	}
}

/* The bridge table of node k from what its watch learned, as the agent
 * binds it (dp_bind_ports: checked against the API and the other ports). */
static void sync_bridge(struct fixture *f, int k)
{
	size_t n, no;
	const struct link_port *lp = link_watch_ports(f->lw[k], &n);
	const struct link_other *lo = link_watch_bridge_others(f->lw[k], &no);
	struct dp_bind b;
	dp_bind_ports(&b, f->e[k], lp, n, lo, no);
	for (size_t i = 0; i < b.notes.n; i++)
		printf("  node-%d: %s\n", k + 1, (const char *)b.notes.v[i]);
	char *err = NULL;
	int rc = dp_bridge_sync(f->br[k], f->s[k], b.ports, b.n, NULL, &err);
	if (rc < 0)
		fprintf(stderr, "bridge table node-%d: %s\n", k + 1, err);
	assert_int_equal(rc, 0);
	free(err);
	dp_bind_free(&b);
}

/* The same, binding every address found in a pod's namespace as it is
 * (what the table did before the API check): the contrast case. */
static void sync_bridge_unchecked(struct fixture *f, int k)
{
	size_t n, m = 0;
	const struct link_port *lp = link_watch_ports(f->lw[k], &n);
	struct dp_port *ports = calloc(n + 1, sizeof(*ports));
	for (size_t i = 0; i < n; i++) {
		if (lp[i].kind != LINK_BRIDGED)
			continue;
		ports[m].name = lp[i].name;
		ports[m].addr = (const struct dp_port_addr *)lp[i].addr;
		ports[m++].naddr = lp[i].naddr;
	}
	char *err = NULL;
	assert_int_equal(dp_bridge_sync(f->br[k], f->s[k], ports, m, NULL, &err), 0);
	free(err);
	free(ports);
}

static bool port_has(const struct link_port *p, const char *addr)
{
	uint8_t a[16];
	bool v6 = strchr(addr, ':') != NULL;
	assert_int_equal(inet_pton(v6 ? AF_INET6 : AF_INET, addr, a), 1);
	for (size_t i = 0; i < p->naddr; i++)
		if (p->addr[i].family == (v6 ? 6 : 4) && !memcmp(p->addr[i].a, a, v6 ? 16 : 4))
			return true;
	return false;
}

static const struct link_port *port_named(struct fixture *f, int k, const char *name)
{
	size_t n;
	const struct link_port *p = link_watch_ports(f->lw[k], &n);
	for (size_t i = 0; i < n; i++)
		if (!strcmp(p[i].name, name))
			return &p[i];
	return NULL;
}

static void pod_port(int i, char *buf, size_t len)
{
	snprintf(buf, len, "v%c-%c", "xyz"[i / 3], "abc"[i % 3]);
}

/* Every pod's port, on its node only, with its two addresses and one
 * link-local address, nothing else. */
static void check_learned(struct fixture *f, enum link_kind kind)
{
	for (int i = 0; i < KC_PODS; i++) {
		char name[16], a4[64], a6[64];
		pod_port(i, name, sizeof(name));
		kc_pod_addr(i, false, a4, sizeof(a4));
		kc_pod_addr(i, true, a6, sizeof(a6));
		int k = kc_pod_node(i);
		assert_null(port_named(f, !k, name));
		const struct link_port *p = port_named(f, k, name);
		assert_non_null(p);
		assert_int_equal(p->kind, kind);
		assert_true(port_has(p, a4) && port_has(p, a6));
		if (kind == LINK_BRIDGED) {
			assert_true(p->known);
			assert_string_equal(p->bridge, "br0");
			/* the pod's own link-local address: neighbour discovery uses it */
			assert_int_equal(p->naddr, 3);
			assert_true(p->addr[2].family == 6 && p->addr[2].a[0] == 0xfe && p->addr[2].a[1] == 0x80);
		} else {
			assert_int_equal(p->naddr, 2); /* the /32 and the /128 */
		}
	}
	/* and the wire between the nodes, a veth too, with no address of a pod */
	for (int k = 0; k < KC_NODES; k++) {
		size_t n;
		link_watch_ports(f->lw[k], &n);
		assert_int_equal(n, k ? 5 : 6);
		const struct link_port *w = port_named(f, k, "wire");
		assert_non_null(w);
		assert_int_equal(w->kind, LINK_ROUTED);
		assert_int_equal(w->naddr, 0);
	}
}

static void learns_routed_pods(void **state)
{
	(void)state;
	struct fixture f;
	up(&f, "brl1", false);
	check_learned(&f, LINK_ROUTED);
	/* a route to a pod's interface is an address of that pod */
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "ip -n %s-n1 route add 10.1.1.99/32 dev vx-a", f.kc.prefix);
	assert_int_equal(system(cmd), 0);
	assert_true(watch_wait(&f, 0, 2000));
	assert_true(port_has(port_named(&f, 0, "vx-a"), "10.1.1.99"));
	struct link_stats st;
	link_watch_stats(f.lw[0], &st);
	assert_int_equal(st.routed, 6);
	assert_int_equal(st.bridged, 0);
	assert_true(st.links >= 7 && st.routes > 0 && st.addrs > 0);
	down(&f);
}

static void learns_bridged_pods(void **state)
{
	(void)state;
	struct fixture f;
	char cmd[1024];
	up(&f, "brl2", true);
	check_learned(&f, LINK_BRIDGED);
	/* an address added in a pod's namespace, then removed */
	snprintf(cmd, sizeof(cmd), "ip -n %s-x-a addr add 10.1.1.77/32 dev eth0", f.kc.prefix);
	double t0 = now_ms();
	assert_int_equal(system(cmd), 0);
	assert_true(watch_wait(&f, 0, 2000));
	printf("an address added in a pod's namespace: learned in %.1f ms (with the ip command)\n", now_ms() - t0);
	assert_true(port_has(port_named(&f, 0, "vx-a"), "10.1.1.77"));
	snprintf(cmd, sizeof(cmd), "ip -n %s-x-a addr del 10.1.1.77/32 dev eth0", f.kc.prefix);
	assert_int_equal(system(cmd), 0);
	assert_true(watch_wait(&f, 0, 2000));
	assert_false(port_has(port_named(&f, 0, "vx-a"), "10.1.1.77"));
	/* a new pod: its namespace, veth on the bridge, then its address (as
	 * the bridge plugin does) */
	snprintf(cmd, sizeof(cmd),
		 "ip netns add %1$s-new && ip -n %1$s-n1 link add vnew type veth peer name eth0 netns %1$s-new && "
		 "ip -n %1$s-n1 link set vnew master br0 up && ip -n %1$s-new link set eth0 up && "
		 "ip -n %1$s-new addr add 10.1.9.9/32 dev eth0 && ip -n %1$s-new addr add fd00::9:9/128 dev eth0 nodad",
		 f.kc.prefix);
	t0 = now_ms();
	assert_int_equal(system(cmd), 0);
	const struct link_port *p = NULL;
	while (now_ms() - t0 < 3000 && !(p && port_has(p, "10.1.9.9") && port_has(p, "fd00::9:9"))) {
		watch_wait(&f, 0, 100);
		p = port_named(&f, 0, "vnew");
	}
	assert_non_null(p);
	assert_true(port_has(p, "10.1.9.9") && port_has(p, "fd00::9:9"));
	printf("a new bridged pod: port and addresses learned %.1f ms after the commands started\n", now_ms() - t0);
	/* the pod goes: its port goes */
	snprintf(cmd, sizeof(cmd), "ip netns del %s-new", f.kc.prefix);
	assert_int_equal(system(cmd), 0);
	t0 = now_ms();
	while (now_ms() - t0 < 3000 && port_named(&f, 0, "vnew"))
		watch_wait(&f, 0, 100);
	assert_null(port_named(&f, 0, "vnew"));
	down(&f);
}

static const char *policies =
	/* x/a (node-1) admits only y/a (node-2) and z/c (node-1) */
	"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: few, namespace: x}\n"
	"spec:\n  podSelector: {matchLabels: {pod: a}}\n  ingress:\n  - from:\n"
	"    - {namespaceSelector: {matchLabels: {ns: 'y'}}, podSelector: {matchLabels: {pod: a}}}\n"
	"    - {namespaceSelector: {matchLabels: {ns: z}}, podSelector: {matchLabels: {pod: c}}}\n"
	"---\n"
	/* z/a (node-1) may send nothing */
	"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: mute, namespace: z}\n"
	"spec:\n  podSelector: {matchLabels: {pod: a}}\n  policyTypes: [Egress]\n";

struct forgery {
	int from, as, to;
	bool same_bridge; /* the borrowed address is a pod's on the sender's bridge */
	const char *what;
};

static const struct forgery forgeries[] = {
	{ XC, ZC, XA, true, "same bridge, a neighbour pod's address, into an ingress allow" },
	{ YB, ZC, XA, true, "same bridge, another neighbour's address, into an ingress allow" },
	{ ZA, XC, YB, true, "egress-denied pod borrows a neighbour's address, same bridge" },
	{ ZA, XC, YC, true, "egress-denied pod borrows a neighbour's address, to another node" },
	{ XC, YA, XA, false, "same bridge, another node's pod address, into an ingress allow" },
	{ XB, ZC, XA, false, "across nodes, an address of the receiver's bridge, into an ingress allow" },
};

static const struct forgery genuine[] = {
	{ ZC, ZC, XA, false, "z/c to x/a (allowed, same bridge)" },
	{ YA, YA, XA, false, "y/a to x/a (allowed, across nodes)" },
	{ XC, XC, YB, false, "x/c to y/b (no policy, same bridge)" },
	{ XB, XB, YC, false, "x/b to y/c (no policy, across nodes)" },
};

static const char *pname(int p)
{
	return p == 6 ? "TCP" : p == 17 ? "UDP" : "SCTP";
}

static void send_round(struct fixture *f, const struct forgery *list, size_t n, int proto, bool v6, uint16_t sport0,
		       bool *seen)
{
	int fd[16];
	char src[64], dst[64];
	for (size_t k = 0; k < n; k++)
		assert_true((fd[k] = kc_raw_open(&f->kc, list[k].to, proto, v6)) >= 0);
	for (size_t k = 0; k < n; k++) {
		kc_pod_addr(list[k].as, v6, src, sizeof(src));
		kc_pod_addr(list[k].to, v6, dst, sizeof(dst));
		assert_int_equal(kc_send_raw(&f->kc, f->kc.pod_ns[list[k].from], proto, src, dst, (uint16_t)(sport0 + k), 80),
				 0);
	}
	usleep(300 * 1000);
	for (size_t k = 0; k < n; k++) {
		kc_pod_addr(list[k].as, v6, src, sizeof(src));
		seen[k] = kc_raw_seen(fd[k], v6, src, (uint16_t)(sport0 + k), 0);
		close(fd[k]);
	}
}

/* Every forgery over every protocol and family: how many arrived, and
 * how many of those borrowed a neighbour's address. */
static int forged_arrivals(struct fixture *f, uint16_t sport0, int *same_bridge)
{
	static const int protos[] = { 6, 17, 132 };
	size_t n = sizeof(forgeries) / sizeof(forgeries[0]);
	int arrived = 0;
	*same_bridge = 0;
	for (int v6 = 0; v6 <= 1; v6++)
		for (size_t p = 0; p < 3; p++) {
			bool seen[16];
			send_round(f, forgeries, n, protos[p], v6, (uint16_t)(sport0 + (v6 * 3 + p) * 20), seen);
			for (size_t k = 0; k < n; k++) {
				arrived += seen[k];
				*same_bridge += seen[k] && forgeries[k].same_bridge;
				printf("  %s %s %-4s %s\n", seen[k] ? "ARRIVED" : "dropped ", v6 ? "IPv6" : "IPv4",
				       pname(protos[p]), forgeries[k].what);
			}
		}
	return arrived;
}

static void genuine_arrive(struct fixture *f, uint16_t sport0)
{
	static const int protos[] = { 6, 17, 132 };
	size_t n = sizeof(genuine) / sizeof(genuine[0]);
	for (int v6 = 0; v6 <= 1; v6++)
		for (size_t p = 0; p < 3; p++) {
			bool seen[16];
			send_round(f, genuine, n, protos[p], v6, (uint16_t)(sport0 + (v6 * 3 + p) * 20), seen);
			for (size_t k = 0; k < n; k++) {
				if (!seen[k])
					printf("  genuine %s %s %s did not arrive\n", v6 ? "IPv6" : "IPv4", pname(protos[p]),
					       genuine[k].what);
				assert_true(seen[k]);
			}
		}
}

static void matrix(struct fixture *f, bool out[4][KC_PODS][KC_PODS])
{
	kc_probe(&f->kc, 6, 80, false, kc_probe_timeout(), out[0]);
	kc_probe(&f->kc, 6, 80, true, kc_probe_timeout(), out[1]);
	kc_probe(&f->kc, 17, 80, false, kc_probe_timeout(), out[2]);
	kc_probe(&f->kc, 17, 80, true, kc_probe_timeout(), out[3]);
}

static void forged_sources_bridged(void **state)
{
	(void)state;
	struct fixture f;
	static bool before[4][KC_PODS][KC_PODS], after[4][KC_PODS][KC_PODS];
	int same;
	up(&f, "brsp1", true);
	apply_yaml(&f, policies);
	sync_inet(&f);

	/* inet corral alone (with its reverse-path check): a pod borrows its
	 * bridge neighbours' addresses, and gets their verdicts */
	int open_before = forged_arrivals(&f, 30000, &same);
	printf("inet corral alone: %d forged packets arrived, %d with a neighbour's address\n", open_before, same);
	assert_int_equal(same, 6 * 4);
	assert_int_equal(open_before, same); /* the other forgeries the reverse-path check stops */
	genuine_arrive(&f, 31000);
	matrix(&f, before);

	/* with the bridge table: none */
	for (int k = 0; k < KC_NODES; k++)
		sync_bridge(&f, k);
	int open_after = forged_arrivals(&f, 32000, &same);
	printf("with the bridge table: %d forged packets arrived\n", open_after);
	assert_int_equal(open_after, 0);
	char cmd[512];
	snprintf(cmd, sizeof(cmd),
		 "ip netns exec %s-n1 nft list chain bridge corral %s | grep -q 'counter packets [1-9]'", f.kc.prefix,
		 DP_FORGED_CHAIN);
	assert_int_equal(system(cmd), 0);
	genuine_arrive(&f, 33000);
	matrix(&f, after);
	assert_memory_equal(before, after, sizeof(before));
	assert_true(after[0][YA][XA] && after[0][ZC][XA] && !after[0][XC][XA] && !after[1][YB][XA]);
	assert_true(!after[0][ZA][YB] && !after[3][ZA][YC] && after[0][XC][YB] && after[1][XC][YB]);

	/* a pod that goes takes its bindings with it; nothing else changes */
	struct dp_port none[1];
	char *err = NULL;
	assert_int_equal(dp_bridge_sync(f.br[1], f.s[1], none, 0, NULL, &err), 0);
	snprintf(cmd, sizeof(cmd), "ip netns exec %s-n2 nft list table bridge corral >/dev/null 2>&1", f.kc.prefix);
	assert_int_not_equal(system(cmd), 0);
	down(&f);
}

/* Raw ARP from pod `from` (an Ethernet broadcast request claiming
 * sender address `claim`), and whether pod `to` saw it. */
struct arpsend {
	uint8_t frame[42];
};

static int arp_send(void *arg)
{
	struct arpsend *a = arg;
	int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ARP));
	if (fd < 0)
		return -1;
	struct sockaddr_ll ll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ARP),
				  .sll_ifindex = (int)if_nametoindex("eth0"), .sll_halen = 6 };
	memset(ll.sll_addr, 0xff, 6);
	ssize_t n = sendto(fd, a->frame, sizeof(a->frame), 0, (struct sockaddr *)&ll, sizeof(ll));
	close(fd);
	return n == (ssize_t)sizeof(a->frame) ? 0 : -1;
}

static int arp_listen(void *arg)
{
	(void)arg;
	return socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, htons(ETH_P_ARP));
}

static bool arp_seen(int fd, const uint8_t claim[4], int timeout_ms)
{
	uint8_t buf[256];
	double end = now_ms() + timeout_ms;
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n >= 42 && !memcmp(buf + 28, claim, 4))
			return true;
		if (n > 0)
			continue;
		double rem = end - now_ms();
		if (rem <= 0)
			return false;
		struct pollfd p = { fd, POLLIN, 0 };
		poll(&p, 1, (int)rem + 1);
	}
}

static bool arp_claim(struct fixture *f, int from, int claim_of, int to)
{
	struct arpsend a = { 0 };
	char ip[64], tip[64];
	uint8_t *fr = a.frame;
	kc_pod_addr(claim_of, false, ip, sizeof(ip));
	kc_pod_addr(to, false, tip, sizeof(tip));
	memset(fr, 0xff, 6);
	static const uint8_t mac[6] = { 2, 0, 0, 0, 0, 0x42 };
	memcpy(fr + 6, mac, 6);
	fr[12] = 0x08, fr[13] = 0x06;                               /* ARP */
	fr[14] = 0, fr[15] = 1, fr[16] = 8, fr[17] = 0, fr[18] = 6, fr[19] = 4;
	fr[20] = 0, fr[21] = 1;                                     /* request */
	memcpy(fr + 22, mac, 6);
	inet_pton(AF_INET, ip, fr + 28);
	inet_pton(AF_INET, tip, fr + 38);
	int fd = kc_in_ns(&f->kc, f->kc.pod_ns[to], arp_listen, NULL);
	assert_true(fd >= 0);
	assert_int_equal(kc_in_ns(&f->kc, f->kc.pod_ns[from], arp_send, &a), 0);
	bool seen = arp_seen(fd, fr + 28, 300);
	close(fd);
	return seen;
}

static void neighbours_bridged(void **state)
{
	(void)state;
	struct fixture f;
	static bool before[4][KC_PODS][KC_PODS], after[4][KC_PODS][KC_PODS];
	static const struct forgery nd[] = {
		{ ZA, ZA, YB, false, "egress-denied pod, same bridge" },
		{ XC, XC, XA, false, "into an ingress-isolated pod, same bridge" },
		{ ZA, ZA, YC, false, "egress-denied pod, across nodes" },
	};
	up(&f, "brnd1", true);
	apply_yaml(&f, policies);
	sync_inet(&f);
	for (int k = 0; k < KC_NODES; k++)
		sync_bridge(&f, k);
	matrix(&f, before);
	/* solicitations carrying 1200 bytes: policy's to judge */
	int arrived = 0;
	for (size_t k = 0; k < sizeof(nd) / sizeof(nd[0]); k++) {
		char src[64], dst[64];
		kc_pod_addr(nd[k].from, true, src, sizeof(src));
		kc_pod_addr(nd[k].to, true, dst, sizeof(dst));
		int fd = kc_raw_open(&f.kc, nd[k].to, 58, true);
		assert_true(fd >= 0);
		assert_int_equal(kc_send_nd(&f.kc, f.kc.pod_ns[nd[k].from], src, dst, 1200), 0);
		bool seen = kc_raw_seen(fd, true, src, 0x8700, 300);
		printf("  %s neighbour solicitation with 1200 bytes, %s\n", seen ? "ARRIVED" : "dropped", nd[k].what);
		arrived += seen;
		close(fd);
	}
	assert_int_equal(arrived, 0);
	/* a plain solicitation between neighbours arrives (not policy's) */
	{
		char src[64], dst[64];
		kc_pod_addr(XC, true, src, sizeof(src));
		kc_pod_addr(XA, true, dst, sizeof(dst));
		int fd = kc_raw_open(&f.kc, XA, 58, true);
		assert_int_equal(kc_send_nd(&f.kc, f.kc.pod_ns[XC], src, dst, 8), 0);
		assert_true(kc_raw_seen(fd, true, src, 0x8700, 300));
		close(fd);
	}
	/* an advertisement for a neighbour's address: dropped; for its own: arrives */
	{
		char src[64], dst[64], other[64];
		kc_pod_addr(XC, true, src, sizeof(src));
		kc_pod_addr(YB, true, dst, sizeof(dst));
		kc_pod_addr(ZC, true, other, sizeof(other));
		int fd = kc_raw_open(&f.kc, YB, 58, true);
		assert_int_equal(kc_send_na(&f.kc, f.kc.pod_ns[XC], src, dst, other), 0);
		bool spoof = kc_raw_seen(fd, true, src, 0x8800, 300);
		assert_int_equal(kc_send_na(&f.kc, f.kc.pod_ns[XC], src, dst, src), 0);
		bool own = kc_raw_seen(fd, true, src, 0x8800, 300);
		printf("  advertisement for a neighbour's address: %s; for its own: %s\n", spoof ? "ARRIVED" : "dropped",
		       own ? "arrived" : "DROPPED");
		assert_false(spoof);
		assert_true(own);
		close(fd);
	}
	/* ARP claiming a neighbour's address: dropped; its own: arrives */
	bool spoof = arp_claim(&f, XC, ZC, YB), own = arp_claim(&f, XC, XC, YB);
	printf("  ARP claiming a neighbour's address: %s; its own: %s\n", spoof ? "ARRIVED" : "dropped",
	       own ? "arrived" : "DROPPED");
	assert_false(spoof);
	assert_true(own);

	/* address resolution from scratch, between pods on the bridge too */
	char cmd[1024];
	snprintf(cmd, sizeof(cmd),
		 "for ns in $(ip netns list | awk '{print $1}' | grep '^%s-'); do ip -n $ns -6 neigh flush all; "
		 "ip -n $ns -4 neigh flush all; done",
		 f.kc.prefix);
	assert_int_equal(system(cmd), 0);
	matrix(&f, after);
	assert_memory_equal(before, after, sizeof(before));
	assert_true(after[1][ZC][XA] && after[1][XC][YB] && after[0][XC][YB] && after[1][XB][YC]);
	down(&f);
}

/* Pod i's IPv6 link-local address, as its node's watch learned it. */
static void pod_ll(struct fixture *f, int i, char *buf, size_t len)
{
	char name[16];
	pod_port(i, name, sizeof(name));
	const struct link_port *p = port_named(f, kc_pod_node(i), name);
	assert_non_null(p);
	for (size_t j = 0; j < p->naddr; j++)
		if (p->addr[j].family == 6 && p->addr[j].a[0] == 0xfe && (p->addr[j].a[1] & 0xc0) == 0x80) {
			assert_non_null(inet_ntop(AF_INET6, p->addr[j].a, buf, (socklen_t)len));
			return;
		}
	fail_msg("pod %d has no link-local address", i);
}

/* TCP and UDP to or from a pod's link-local address: inet corral's pod
 * dispatch is keyed by pod IPs, so without the bridge table's link-local
 * rules these skip the receiver's ingress (or the sender's egress). */
static const struct llcase {
	int from;
	bool src_ll;
	int to;
	bool dst_ll;
	bool hole; /* arrives with inet corral alone */
	const char *what;
} llcases[] = {
	{ XC, false, XA, true, true, "x/c to ingress-isolated x/a's link-local address" },
	{ XC, true, XA, true, true, "x/c's link-local address to x/a's" },
	{ ZA, true, YB, false, true, "egress-denied z/a's link-local address to y/b" },
	{ XC, true, XA, false, false, "x/c's link-local address to ingress-isolated x/a" },
};

static int ll_arrivals(struct fixture *f, uint16_t sport0, int *holes)
{
	static const int protos[] = { 6, 17 };
	size_t n = sizeof(llcases) / sizeof(llcases[0]);
	int arrived = 0;
	*holes = 0;
	for (size_t p = 0; p < 2; p++)
		for (size_t k = 0; k < n; k++) {
			const struct llcase *c = &llcases[k];
			char src[64], dst[64];
			uint16_t sport = (uint16_t)(sport0 + p * 20 + k);
			if (c->src_ll)
				pod_ll(f, c->from, src, sizeof(src));
			else
				kc_pod_addr(c->from, true, src, sizeof(src));
			if (c->dst_ll)
				pod_ll(f, c->to, dst, sizeof(dst));
			else
				kc_pod_addr(c->to, true, dst, sizeof(dst));
			int fd = kc_raw_open(&f->kc, c->to, protos[p], true);
			assert_true(fd >= 0);
			assert_int_equal(kc_send_raw(&f->kc, f->kc.pod_ns[c->from], protos[p], src, dst, sport, 80), 0);
			bool seen = kc_raw_seen(fd, true, src, sport, 500);
			close(fd);
			arrived += seen;
			*holes += seen && c->hole;
			printf("  %s %-4s %s\n", seen ? "ARRIVED" : "dropped ", pname(protos[p]), c->what);
		}
	return arrived;
}

static void link_local_bridged(void **state)
{
	(void)state;
	struct fixture f;
	static bool before[4][KC_PODS][KC_PODS], after[4][KC_PODS][KC_PODS];
	int holes;
	char cmd[1024], ll[64];
	up(&f, "brll1", true);
	apply_yaml(&f, policies);
	sync_inet(&f);
	matrix(&f, before);

	/* inet corral alone: link-local addresses escape pod policy */
	int open_before = ll_arrivals(&f, 34000, &holes);
	printf("inet corral alone: %d of %zu link-local TCP/UDP packets arrived, %d past a policy\n", open_before,
	       2 * sizeof(llcases) / sizeof(llcases[0]), holes);
	assert_int_equal(holes, 2 * 3);
	assert_int_equal(open_before, holes);

	/* with the bridge table: none, counted as forged */
	for (int k = 0; k < KC_NODES; k++)
		sync_bridge(&f, k);
	snprintf(cmd, sizeof(cmd),
		 "ip netns exec %s-n1 nft list chain bridge corral %s | grep -q 'counter packets 0 '", f.kc.prefix,
		 DP_FORGED_CHAIN);
	assert_int_equal(system(cmd), 0);
	/* neighbour caches flushed: the link-local addresses are resolved
	 * again, under the table */
	snprintf(cmd, sizeof(cmd),
		 "for ns in $(ip netns list | awk '{print $1}' | grep '^%s-'); do ip -n $ns -6 neigh flush all; "
		 "ip -n $ns -4 neigh flush all; done",
		 f.kc.prefix);
	assert_int_equal(system(cmd), 0);
	int open_after = ll_arrivals(&f, 35000, &holes);
	printf("with the bridge table: %d link-local TCP/UDP packets arrived\n", open_after);
	assert_int_equal(open_after, 0);
	snprintf(cmd, sizeof(cmd),
		 "ip netns exec %s-n1 nft list chain bridge corral %s | grep -q 'counter packets [1-9]'", f.kc.prefix,
		 DP_FORGED_CHAIN);
	assert_int_equal(system(cmd), 0);
	/* neighbour discovery for a link-local address still resolves: x/c
	 * learned x/a's link-layer address while its packets were dropped */
	pod_ll(&f, XA, ll, sizeof(ll));
	snprintf(cmd, sizeof(cmd), "ip -n %s-x-c -6 neigh show to %s dev eth0 | grep -q lladdr", f.kc.prefix, ll);
	int resolved = system(cmd);
	printf("  x/c resolved x/a's link-local address after a flush: %s\n", resolved ? "NO" : "yes");
	assert_int_equal(resolved, 0);
	/* and between pod IPs, from scratch: verdicts unchanged */
	snprintf(cmd, sizeof(cmd),
		 "for ns in $(ip netns list | awk '{print $1}' | grep '^%s-'); do ip -n $ns -6 neigh flush all; "
		 "ip -n $ns -4 neigh flush all; done",
		 f.kc.prefix);
	assert_int_equal(system(cmd), 0);
	matrix(&f, after);
	assert_memory_equal(before, after, sizeof(before));
	assert_true(after[1][ZC][XA] && after[1][XC][YB] && after[0][XC][YB] && after[1][XB][YC]);
	down(&f);
}

/* UDP from namespace ns with pod `as`'s address to pod `to` (or to dst
 * when given): whether `to` received it. */
static bool udp_seen(struct fixture *f, int ns, int as, int to, const char *dst, bool v6, uint16_t sport)
{
	char src[64], d[64];
	kc_pod_addr(as, v6, src, sizeof(src));
	kc_pod_addr(to, v6, d, sizeof(d));
	int fd = kc_raw_open(&f->kc, to, 17, v6);
	assert_true(fd >= 0);
	assert_int_equal(kc_send_raw(&f->kc, ns, 17, src, dst ? dst : d, sport, 80), 0);
	bool seen = kc_raw_seen(fd, v6, src, sport, 400);
	close(fd);
	return seen;
}

static void wait_port_has(struct fixture *f, int k, const char *port, const char *addr, bool want)
{
	double t0 = now_ms();
	const struct link_port *p = port_named(f, k, port);
	while (now_ms() - t0 < 3000 && (!p || port_has(p, addr) != want)) {
		watch_wait(f, k, 100);
		p = port_named(f, k, port);
	}
	assert_non_null(p);
	assert_true(port_has(p, addr) == want);
}

/* A pod with CAP_NET_ADMIN configures another pod's address in its own
 * namespace: bound as found there, it is the other pod's to use; checked
 * against the API, it is bound to neither the claimant's port nor taken
 * from its owner's. And a port the agent has not learned yet (a new
 * veth on the bridge) sends nothing. */
static void claims_bridged(void **state)
{
	(void)state;
	struct fixture f;
	char cmd[2048], zc4[64], zc6[64], xa4[64], xa6[64];
	up(&f, "brcl1", true);
	apply_yaml(&f, policies);
	sync_inet(&f);
	for (int k = 0; k < KC_NODES; k++)
		sync_bridge(&f, k);
	kc_pod_addr(ZC, false, zc4, sizeof(zc4));
	kc_pod_addr(ZC, true, zc6, sizeof(zc6));
	kc_pod_addr(XA, false, xa4, sizeof(xa4));
	kc_pod_addr(XA, true, xa6, sizeof(xa6));
	/* x/c takes z/c's addresses (z/c is allowed into x/a, x/c is not) */
	snprintf(cmd, sizeof(cmd), "ip -n %1$s-x-c addr add %2$s/32 dev eth0 && ip -n %1$s-x-c addr add %3$s/128 dev eth0 nodad",
		 f.kc.prefix, zc4, zc6);
	assert_int_equal(system(cmd), 0);
	wait_port_has(&f, 0, "vx-c", zc4, true);
	wait_port_has(&f, 0, "vx-c", zc6, true);
	int hole = 0, held = 0;
	sync_bridge_unchecked(&f, 0);
	for (int v6 = 0; v6 <= 1; v6++) {
		bool seen = udp_seen(&f, f.kc.pod_ns[XC], ZC, XA, NULL, v6, (uint16_t)(36000 + v6));
		printf("  bound as found: x/c as z/c to x/a, %s: %s\n", v6 ? "IPv6" : "IPv4", seen ? "ARRIVED" : "dropped");
		hole += seen;
	}
	assert_int_equal(hole, 2);
	sync_bridge(&f, 0);
	for (int v6 = 0; v6 <= 1; v6++) {
		bool seen = udp_seen(&f, f.kc.pod_ns[XC], ZC, XA, NULL, v6, (uint16_t)(36010 + v6));
		printf("  checked against the API: x/c as z/c to x/a, %s: %s\n", v6 ? "IPv6" : "IPv4",
		       seen ? "ARRIVED" : "dropped");
		held += !seen;
		/* z/c keeps its own addresses; x/c, whose port now carries two
		 * pods' addresses, keeps none until it gives z/c's back */
		assert_true(udp_seen(&f, f.kc.pod_ns[ZC], ZC, XA, NULL, v6, (uint16_t)(36020 + v6)));
		bool own = udp_seen(&f, f.kc.pod_ns[XC], XC, YB, NULL, v6, (uint16_t)(36030 + v6));
		printf("  x/c's own address while it holds z/c's, %s: %s\n", v6 ? "IPv6" : "IPv4", own ? "arrived" : "dropped");
		assert_false(own);
	}
	assert_int_equal(held, 2);
	snprintf(cmd, sizeof(cmd), "ip -n %1$s-x-c addr del %2$s/32 dev eth0 && ip -n %1$s-x-c addr del %3$s/128 dev eth0",
		 f.kc.prefix, zc4, zc6);
	assert_int_equal(system(cmd), 0);
	wait_port_has(&f, 0, "vx-c", zc4, false);
	wait_port_has(&f, 0, "vx-c", zc6, false);
	sync_bridge(&f, 0);
	/* x/c's neighbour entries failed while its port was disowned: from
	 * empty caches */
	snprintf(cmd, sizeof(cmd), "ip -n %1$s-x-c neigh flush all; ip -n %1$s-y-b neigh flush all", f.kc.prefix);
	assert_int_equal(system(cmd), 0);
	for (int v6 = 0; v6 <= 1; v6++)
		assert_true(udp_seen(&f, f.kc.pod_ns[XC], XC, YB, NULL, v6, (uint16_t)(36040 + v6)));

	/* a new veth on the bridge, not yet learned, with z/c's addresses and
	 * x/a's link-layer address known: its frames are dropped */
	snprintf(cmd, sizeof(cmd),
		 "ip netns add %1$s-new && ip -n %1$s-n1 link add vnew type veth peer name eth0 netns %1$s-new && "
		 "ip -n %1$s-n1 link set vnew master br0 up && ip -n %1$s-new link set eth0 up && "
		 "ip -n %1$s-new addr add %2$s/32 dev eth0 && ip -n %1$s-new addr add %3$s/128 dev eth0 nodad && "
		 "ip -n %1$s-new route add %4$s/32 dev eth0 && ip -n %1$s-new route add %5$s/128 dev eth0 && "
		 "mac=$(ip netns exec %1$s-x-a cat /sys/class/net/eth0/address) && "
		 "ip -n %1$s-new neigh add %4$s lladdr $mac dev eth0 nud permanent && "
		 "ip -n %1$s-new neigh add %5$s lladdr $mac dev eth0 nud permanent",
		 f.kc.prefix, zc4, zc6, xa4, xa6);
	assert_int_equal(system(cmd), 0);
	snprintf(cmd, sizeof(cmd), "/run/netns/%s-new", f.kc.prefix);
	int nfd = open(cmd, O_RDONLY | O_CLOEXEC);
	assert_true(nfd >= 0);
	for (int v6 = 0; v6 <= 1; v6++) {
		bool seen = udp_seen(&f, nfd, ZC, XA, NULL, v6, (uint16_t)(36050 + v6));
		printf("  a port not yet learned, as z/c to x/a, %s: %s\n", v6 ? "IPv6" : "IPv4", seen ? "ARRIVED" : "dropped");
		assert_false(seen);
	}
	close(nfd);
	snprintf(cmd, sizeof(cmd), "ip netns del %s-new", f.kc.prefix);
	assert_int_equal(system(cmd), 0);
	down(&f);
}

/* Broadcast and multicast between pods of a bridge: inet corral judges a
 * packet by its addresses, and a group address is no pod's, so without
 * the bridge table's output rules a pod isolated for ingress receives
 * any neighbour's multicast; with them only pods that admit everything
 * do. */
static void misaddressed_bridged(void **state)
{
	(void)state;
	struct fixture f;
	static bool before[4][KC_PODS][KC_PODS], after[4][KC_PODS][KC_PODS];
	char cmd[2048];
	up(&f, "brmc1", true);
	apply_yaml(&f, policies);
	sync_inet(&f);
	matrix(&f, before);
	static const char *const group[2] = { "224.0.0.1", "ff02::1" };
	int hole = 0;
	for (int v6 = 0; v6 <= 1; v6++) {
		bool iso = udp_seen(&f, f.kc.pod_ns[XC], XC, XA, group[v6], v6, (uint16_t)(37000 + v6));
		bool open = udp_seen(&f, f.kc.pod_ns[XC], XC, YB, group[v6], v6, (uint16_t)(37010 + v6));
		printf("  inet corral alone, x/c to %s: isolated x/a %s, y/b %s\n", group[v6], iso ? "ARRIVED" : "dropped",
		       open ? "arrived" : "dropped");
		hole += iso;
		assert_true(open);
	}
	assert_int_equal(hole, 2);
	for (int k = 0; k < KC_NODES; k++)
		sync_bridge(&f, k);
	for (int v6 = 0; v6 <= 1; v6++) {
		bool iso = udp_seen(&f, f.kc.pod_ns[XC], XC, XA, group[v6], v6, (uint16_t)(37020 + v6));
		bool open = udp_seen(&f, f.kc.pod_ns[XC], XC, YB, group[v6], v6, (uint16_t)(37030 + v6));
		printf("  with the bridge table, x/c to %s: isolated x/a %s, y/b %s\n", group[v6], iso ? "ARRIVED" : "dropped",
		       open ? "arrived" : "dropped");
		assert_false(iso);
		assert_true(open);
	}
	snprintf(cmd, sizeof(cmd),
		 "ip netns exec %s-n1 nft list chain bridge corral %s | grep -q 'counter packets [1-9]'", f.kc.prefix,
		 DP_BR_MISADDRESSED);
	assert_int_equal(system(cmd), 0);
	/* everything addressed to a pod is as before, from empty neighbour caches */
	snprintf(cmd, sizeof(cmd),
		 "for ns in $(ip netns list | awk '{print $1}' | grep '^%s-'); do ip -n $ns -6 neigh flush all; "
		 "ip -n $ns -4 neigh flush all; done",
		 f.kc.prefix);
	assert_int_equal(system(cmd), 0);
	matrix(&f, after);
	assert_memory_equal(before, after, sizeof(before));
	down(&f);
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: test-bridge CLUSTER-SCRIPT BASE-YAML\n");
		return 2;
	}
	script = argv[1];
	base_yaml = argv[2];
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(learns_routed_pods),
		cmocka_unit_test(learns_bridged_pods),
		cmocka_unit_test(forged_sources_bridged),
		cmocka_unit_test(neighbours_bridged),
		cmocka_unit_test(link_local_bridged),
		cmocka_unit_test(claims_bridged),
		cmocka_unit_test(misaddressed_bridged),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

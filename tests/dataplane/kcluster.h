/* The namespace cluster of tests/dataplane/cluster.sh, driven from C: it
 * serves TCP and UDP on ports 80 and 81 in every pod (sockets the test
 * process opens inside the pod namespaces), listens for raw SCTP, and
 * probes every pod pair with real packets. */
#ifndef CORRAL_KCLUSTER_H
#define CORRAL_KCLUSTER_H

#include <stdbool.h>

#include "agent/nl/nft.h"

#define KC_PODS 9
#define KC_NODES 2

struct kcluster {
	char prefix[32];
	char script[4096];
	int self_ns;
	int node_ns[KC_NODES];
	int pod_ns[KC_PODS];
	int nsrv;
	int srv[KC_PODS * 8];
	int srv_kind[KC_PODS * 8]; /* 0 tcp listener, 1 udp, 2 raw v4, 3 raw v6 */
	int srv_pod[KC_PODS * 8];
	int nconn;
	int conn[1024]; /* accepted TCP connections, echoed until EOF */
};

/* Builds the cluster (removing a stale one with the same prefix first)
 * and registers its removal at exit and on SIGINT/SIGTERM. 0 or -1. */
int kc_up(struct kcluster *kc, const char *script, const char *prefix);
void kc_down(struct kcluster *kc);

/* Pod i (0..8) is namespace "xyz"[i/3], pod "abc"[i%3], on node i%2. */
int kc_pod_node(int i);
void kc_pod_addr(int i, bool v6, char *buf, unsigned len);
/* A netlink socket inside node n's namespace. */
struct nft_sock *kc_nft_open(struct kcluster *kc, int node);
/* Runs fn(arg) inside namespace fd, returns its result. */
int kc_in_ns(struct kcluster *kc, int fd, int (*fn)(void *), void *arg);

/* proto: 6, 17 or 132. got[i][j]: traffic from pod i to pod j on port
 * arrived (TCP: connected; UDP: echoed; SCTP: the INIT was seen).
 * Waits timeout_ms for the flows that do not complete. */
void kc_probe(struct kcluster *kc, int proto, int port, bool v6, int timeout_ms, bool got[KC_PODS][KC_PODS]);
int kc_probe_timeout(void); /* $CORRAL_PROBE_MS or 500 */

/* One TCP connection from pod i to pod j:port, kept open; -1 on failure. */
int kc_connect(struct kcluster *kc, int i, int j, int port, int timeout_ms);
/* The same over IPv4 or IPv6. */
int kc_connect_af(struct kcluster *kc, int i, int j, int port, bool v6, int timeout_ms);
/* One TCP connection from namespace ns (a pod's or a node's) to addr:port
 * (any address: a Service's, a node's), kept open; -1 on failure. */
int kc_connect_to(struct kcluster *kc, int ns, const char *addr, int port, int timeout_ms);
/* A UDP flow from pod i to pod j:port (a connected socket; the servers
 * echo), and whether a datagram sent on it now comes back. */
int kc_udp_open(struct kcluster *kc, int i, int j, int port, bool v6);
bool kc_udp_alive(struct kcluster *kc, int fd, int timeout_ms);
/* Whether an open connection still carries data both ways (the server
 * side is pumped by kc_serve). */
bool kc_conn_alive(struct kcluster *kc, int fd, int timeout_ms);
/* Serves pending requests for up to ms milliseconds. */
void kc_serve(struct kcluster *kc, int ms);

/* Raw packets with any source address, as a pod with CAP_NET_RAW (the
 * container default) can send them: the IP header is built here. src and
 * dst are address strings of one family; proto 6 sends a SYN, 17 a UDP
 * datagram, 132 an SCTP INIT, each with valid checksums so that
 * conntrack does not call it invalid. Sent from namespace fd ns (a pod's
 * or a node's). 0 or -1. */
int kc_send_raw(struct kcluster *kc, int ns, int proto, const char *src, const char *dst, uint16_t sport,
		uint16_t dport);
/* An ICMPv6 neighbour solicitation for dst with hop limit 255 and extra
 * bytes of payload after the target address, from src to dst. */
int kc_send_nd(struct kcluster *kc, int ns, const char *src, const char *dst, unsigned extra);
/* A raw socket in pod i that sees every packet of proto arriving there
 * (IPv4 or IPv6); kc_raw_seen() waits for one from src whose transport
 * header starts with the 16 bits id (the source port; 0x8700 for a
 * neighbour solicitation). */
int kc_raw_open(struct kcluster *kc, int pod, int proto, bool v6);
bool kc_raw_seen(int fd, bool v6, const char *src, uint16_t id, int timeout_ms);

#endif

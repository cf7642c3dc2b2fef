/* The bridge table: with a bridged CNI the inet forward hook sees the
 * bridge, not the pod's port, as the input interface (br_netfilter), so
 * a pod could send with the address of another pod on the same bridge.
 * A table of the bridge family, beside inet corral and of the same name,
 * binds each pod's port to its pod's addresses before anything else sees
 * the frame:
 *
 *   table bridge corral {
 *     set ports  { type ifname; }               pods' bridge ports
 *     set src_v4 { type ifname . ipv4_addr; }   (port, pod address)
 *     set src_v6 { type ifname . ipv6_addr; }   (port, pod address, link-local too)
 *     chain prerouting { type filter hook prerouting priority filter;
 *       iifname != @ports accept                       not a pod's port
 *       ether type ip6 icmpv6 type nd-neighbor-advert
 *         iifname . icmpv6 taddr != @src_v6 goto forged_source
 *       ether type ip6 ip6 saddr|daddr fe80::/10, not ICMPv6 130-136 or 143:
 *         goto forged_source       link-local only for ND and MLD (pod
 *                                  policy is keyed by pod IPs, never these)
 *       ether type arp ... iifname . arp saddr ip @src_v4 accept
 *       ether type ip  iifname . ip saddr  @src_v4 accept
 *       ether type ip6 iifname . ip6 saddr @src_v6 accept
 *       ether type ip6 ip6 saddr :: icmpv6 type 135 ip6 hoplimit 255 accept   (DAD)
 *       ether type ip6 ip6 saddr :: icmpv6 type 143 ip6 hoplimit 1 accept     (MLD)
 *       goto forged_source                             anything else from a port
 *     }
 *     chain forged_source { log (prefix "corral:e:s "); counter drop }
 *   }
 *
 * Prerouting sees every frame a port brings in, whether the bridge
 * forwards it to another port or hands it up to be routed. There is no
 * table while no pod sits behind a bridge. */
#ifndef CORRAL_DP_BRIDGE_H
#define CORRAL_DP_BRIDGE_H

#include "agent/dataplane/dataplane.h"

#define DP_BR_PORTS "ports"
#define DP_BR_SRC_V4 "src_v4"
#define DP_BR_SRC_V6 "src_v6"
#define DP_BR_OTHERS "others"
#define DP_BR_OPEN "open"
#define DP_BR_TO_POD "to_pod"
#define DP_BR_MISADDRESSED "misaddressed"

struct dp_port_addr {
	uint8_t family; /* 4 or 6 */
	uint8_t a[16];  /* network order; IPv4 in the first 4 bytes */
};

/* A pod's bridge port and its pod's addresses, or (other) a port of a
 * bridge that is no pod's. */
struct dp_port {
	const char *name; /* the host side of the pod's veth */
	const struct dp_port_addr *addr;
	size_t naddr;
	bool open;  /* its pod admits everything (not isolated for ingress): no check of what it receives */
	bool other; /* not a pod's port (uplink, tunnel, the node's own veth): only the name counts */
};

struct dp_bridge;
struct nft_sock;
struct link_port;
struct link_other;

/* The ports to bind and what each may use, from the node's interfaces
 * (agent/nl/link.c) and the API (the engine). A bridged pod's addresses
 * are read from its own namespace, where a pod with CAP_NET_ADMIN sets
 * what it likes, so an address is bound to its port only when
 *   - the API does not give it to a pod of another node;
 *   - the port does not carry the addresses of several pods of this
 *     node (then none of them is bound there);
 *   - no other port carries it, or the API identifies this port alone as
 *     its pod's (a port is identified as pod P when the addresses it
 *     carries belong, in the API, to P and no other pod);
 * link-local addresses only when no other port carries them. An address
 * the API does not know yet (a new pod) is bound, and its verdict is
 * inet corral's provisional one. A port is open (no check of what it
 * receives) when it is identified as one pod that is not isolated for
 * ingress and carries no address the API has not explained. */
struct dp_bind {
	struct dp_port *ports;     /* bridged pod ports, then the others */
	size_t n;
	struct dp_port_addr *addrs; /* the bound addresses (ports[i].addr points in) */
	struct vec notes;          /* char*: each address not bound, and why */
};
void dp_bind_ports(struct dp_bind *b, const struct engine *e, const struct link_port *lp, size_t n,
		   const struct link_other *other, size_t nother);
void dp_bind_free(struct dp_bind *b);

/* cfg: the table's name (the same as inet corral's) and the log settings. */
struct dp_bridge *dp_bridge_new(const struct dp_config *cfg);
void dp_bridge_free(struct dp_bridge *b);

/* The desired table for these ports. */
struct ruleset *dp_bridge_render(const struct dp_bridge *b, const struct dp_port *ports, size_t n);

/* Brings the kernel's bridge table to these ports: the first time a full
 * replace (or, with no port, the removal of a table left by an earlier
 * run), then only differences. 0 or a negative errno with *err. */
int dp_bridge_sync(struct dp_bridge *b, struct nft_sock *sock, const struct dp_port *ports, size_t n,
		   struct dp_stats *st, char **err);

/* What was last applied, as nft text; NULL when there is no table. */
char *dp_bridge_text(const struct dp_bridge *b);
/* Whether the kernel holds the bridge table (as last applied). */
bool dp_bridge_text_present(const struct dp_bridge *b);
const char *dp_bridge_table(const struct dp_bridge *b);

#endif

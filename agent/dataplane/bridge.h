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

struct dp_port_addr {
	uint8_t family; /* 4 or 6 */
	uint8_t a[16];  /* network order; IPv4 in the first 4 bytes */
};

/* A pod's bridge port and its pod's addresses. */
struct dp_port {
	const char *name; /* the host side of the pod's veth */
	const struct dp_port_addr *addr;
	size_t naddr;
};

struct dp_bridge;
struct nft_sock;

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

/* The bridge table: with a bridged CNI the inet forward hook sees the
 * bridge, not the pod's port, as the input interface (br_netfilter), so
 * a pod could send with the address of another pod on the same bridge;
 * and inet corral judges packets by their addresses, so a frame to a
 * pod not addressed to it (broadcast, multicast) meets no ingress policy.
 * A table of the bridge family, beside inet corral and of the same name:
 *
 *   sets ports, others, open (ifname): pods' ports; ports of bridges that
 *     are no pod's (uplinks, tunnels); ports of pods not isolated for
 *     ingress. src_v4, src_v6 (ifname . address): each pod port and the
 *     addresses bound to it (dp_bind_ports).
 *   chain prerouting (every frame a port brings in, bridged or routed on):
 *     iifname @others accept; iifname != @ports goto forged_source (a
 *     port not learned yet); ND longer than DP_ND_MAX_LEN, an NA for
 *     another address, link-local other than ND/MLD -> forged_source;
 *     ARP, IPv4, IPv6 with the port's own source accept; DAD and early
 *     MLD (source ::) accept; anything else -> forged_source.
 *   chains forward, output (a frame leaving by a port, bridged from
 *     another or sent by the node): goto to_pod, which accepts frames to
 *     others and open ports, ARP, frames addressed to the port's own
 *     addresses, real ND and MLD, and sends the rest (broadcast,
 *     multicast, other addresses, long ND, link-local other than ND/MLD)
 *     to misaddressed.
 *   chains forged_source ("corral:e:s "), misaddressed ("corral:i:m "):
 *     rate-limited NFLOG, counted drop.
 *
 * There is no table while no pod sits behind a bridge. */
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

/* Called around each commit of the bridge table (dataplane.h). */
void dp_bridge_set_commit_hook(struct dp_bridge *b, const struct dp_commit_hook *h);

/* What was last applied, as nft text; NULL when there is no table. */
char *dp_bridge_text(const struct dp_bridge *b);
/* Whether the kernel holds the bridge table (as last applied). */
bool dp_bridge_text_present(const struct dp_bridge *b);
const char *dp_bridge_table(const struct dp_bridge *b);

#endif

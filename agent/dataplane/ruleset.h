/* The nftables ruleset corral wants in the kernel, as plain data: what the
 * renderer builds from the policy IR, what the diff compares with the
 * mirror of what was applied, what nft.c turns into netlink messages and
 * what ruleset_format() prints as nft text. Nothing here talks netlink.
 *
 * Layout (one table, inet corral by default):
 *   chain forward (hook forward, priority filter, policy accept):
 *     fib saddr . iif oif missing goto forged (sources bound to the
 *       interface their address routes to: forged sources dropped, every
 *       packet, before any other verdict);
 *     ct state established,related accept; ct state invalid drop;
 *     neighbour solicitations and advertisements with hop limit 255 accept
 *       (only what a bridge forwards: a routed packet never has 255 here);
 *     ip/ip6 saddr vmap @egress_v4/_v6   -> jump eg_gN  (returns on allow)
 *     ip/ip6 daddr vmap @ingress_v4/_v6  -> goto ing_gN (accepts on allow)
 *     with the node's interfaces known (an agent with a link watch,
 *     dp_set_node_ifaces) and denyUnexplainedAddresses, after ND: a
 *     packet from an interface not in @node_ifaces (a pod's) whose source
 *     is not in @classified_v4/_v6 (this node's pods as the engine knows
 *     them, provisional ones included), or to such an interface whose
 *     destination is not, goto eg_unclassified / ing_unclassified;
 *   chain input (hook input, priority filter, policy accept; only with
 *     the node's interfaces known): iifname != @node_ifaces fib saddr .
 *     iif oif missing goto forged_source (a pod's packet to the node, an
 *     IPVS Service address or a NodePort, with a source that is not its
 *     own); ct state established,related accept; the unclassified source
 *     check (link-local sources excepted: neighbour discovery);
 *   chain output (hook output, priority filter, policy accept): what the
 *     node sends: ct state established,related accept; fib saddr type
 *     local accept (the node's own packets: a pod's node may always
 *     reach it); then the same four vmaps as forward, for packets with
 *     a pod's source that the node sends again (kube-proxy's IPVS takes
 *     them in the input hook and sends them to a backend through output;
 *     with the unclassified check, after the local-source accept: to a
 *     pod's interface, a destination not classified goto ing_unclassified);
 *   chain ing_gN / eg_gN: one per policy group on this node; one rule per
 *     (IR rule, family, port kind); then a rate-limited NFLOG log and a
 *     counted drop whose prefix names the direction and the group;
 *   sets: p<id>_4 / p<id>_6 peer sets: pod addresses in a hash sized
 *     ahead (name suffix _c<capacity>), and, when the peers include
 *     ipBlocks or entities, an interval set of their disjoint ranges
 *     (excepts carved), without suffix; peers with both match through two
 *     rules, one a set (pods change with every pod event, ranges with the
 *     policy or the nodes); pt_<n> port sets (inet_proto . inet_service, intervals
 *     for endPort), one per distinct content, n interned by content;
 *     np_<chain>_<k>_4/_6 named-port sets keyed by destination address
 *     (ip daddr . meta l4proto . th dport); h<id>_4/_6 the addresses
 *     learned for a host rule's name (timeout sets: each element expires
 *     with its DNS answer; filled by the agent's DNS proxy, not the plan).
 *   chain dns_redirect (hook prerouting, type nat, priority dstnat - 10,
 *     before kube-proxy's DNAT): DNS from local pods that have host rules
 *     (set dns_clients_v4/_v6) to the cluster DNS (dns_servers_v4/_v6)
 *     is sent to the agent's DNS proxy while the proxy is alive (set
 *     dns_alive: elements the agent refreshes, with a short timeout).
 * No name is a hash of content: each names one object of the IR (peer
 * set, group, rule position) or one interned content, from counters that
 * are never reused, so two different contents never share a name.
 * Why hashes for pods: the kernel inserts into a presized hash about three
 * times faster than into its interval tree, which also needs a start and
 * an end element per address (measured by corral-bench-dp apply). */
#ifndef CORRAL_RULESET_H
#define CORRAL_RULESET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy/util.h"

enum rs_key {
	RS_KEY_V4,       /* ipv4_addr */
	RS_KEY_V6,       /* ipv6_addr */
	RS_KEY_PORTS,    /* inet_proto . inet_service (interval: endPort ranges) */
	RS_KEY_NAMED_V4, /* ipv4_addr . inet_proto . inet_service */
	RS_KEY_NAMED_V6, /* ipv6_addr . inet_proto . inet_service */
	RS_KEY_IFNAME,   /* ifname (16 bytes, NUL-padded): bridge table */
	RS_KEY_IF_V4,    /* ifname . ipv4_addr */
	RS_KEY_IF_V6,    /* ifname . ipv6_addr */
};
/* Key length in bytes as the kernel stores it (concatenated fields are
 * padded to 4 bytes each), in network byte order. */
size_t rs_key_len(enum rs_key k);

struct rs_set {
	char *name;
	enum rs_key key;
	bool map;       /* verdict map: key -> jump/goto chain (RS_KEY_V4/V6, no intervals) */
	bool jump;      /* map: jump (egress, returns) rather than goto */
	bool interval;  /* elements are ranges (else single keys in a hash) */
	uint32_t size;  /* hash: capacity given to the kernel (0: none) */
	size_t n;       /* elements */
	uint8_t *keys;  /* n * 2 * key_len: inclusive lo, hi; sorted, disjoint */
	char **chain;   /* map: n chain names */
	char *origin;   /* the first rule that uses it: named in kernel errors */
	uint32_t refs;  /* a set not recomputed is shared by the mirror and the next ruleset */
	/* flags timeout: its elements expire by themselves and are written
	 * by the agent outside the plan (DNS answers, the proxy's liveness);
	 * the plan adds them only with the set, and never diffs them */
	bool timeout;
	uint64_t *timeouts; /* timeout: n per-element timeouts in ms, or NULL */
	char **comments;    /* n per-element comments (or NULL entries), or NULL */
	char *comment;      /* the set's comment, or NULL */
	/* a pod set the render edited from base (the mirror's set of the same
	 * name, render.c peer_elems_delta): the keys it added and removed,
	 * sorted (2 * key_len bytes each), so that the plan writes them
	 * without comparing every element of two sets of up to 150,000 */
	const struct rs_set *base;
	uint8_t *dadd, *ddel;
	size_t nadd, ndel;
};

/* The longest neighbour solicitation or advertisement accepted without a
 * policy verdict (IPv6 payload length): the 24-byte message, a link-layer
 * address option (8), a nonce (8, RFC 7527) and one more option; what is
 * longer carries data, and meets policy like any packet. */
#define DP_ND_MAX_LEN 48

enum rs_rule_kind {
	RR_CT_ESTABLISHED, /* ct state established,related accept */
	RR_CT_INVALID,     /* ct state invalid drop */
	RR_CT_REVOKED,     /* ct mark & <mark> == <mark> drop (a flow revoked, revoke.h) */
	RR_TCP_UNTRACKED,  /* ct state new tcp flags & (fin | syn | rst | ack) != syn goto <set> (the chain) */
	RR_SRC_CHECK,      /* fib saddr . iif oif missing goto <set> (the chain) */
	RR_ND,             /* icmpv6 type 135-136 ip6 hoplimit 255 ip6 length <= DP_ND_MAX_LEN accept */
	RR_VMAP,           /* ip[6] saddr|daddr vmap @set */
	RR_MATCH,          /* [family peer] [ports] accept|return */
	RR_LOG_DROP,       /* limit, log to NFLOG group; then counter drop (two rules) */
	RR_COUNTER_DROP,
	RR_DNS_REDIRECT,   /* ip saddr @set ip daddr @dset meta l4proto . th dport @ports
			      meta l4proto <l4> dnat ip to <nat_addr>:<nat_port> */
	RR_LOCAL_SRC,      /* fib saddr type local accept (the node's own packets) */
	/* the bridge table (bridge.c) */
	RR_BR_NOT_PORT,    /* iifname != @set accept, or goto <ports> when set (not a pod's port) */
	RR_BR_BIND,        /* ether type ip|ip6 iifname . ip[6] saddr @set accept;
			      oif: oifname . ip[6] daddr @set accept */
	RR_BR_ARP,         /* ether type arp (Ethernet/IPv4) iifname . arp saddr ip @set accept */
	RR_BR_NA_TARGET,   /* ether type ip6 icmpv6 type nd-neighbor-advert
			      iifname . icmpv6 taddr != @set goto <ports> (the chain) */
	RR_BR_UNSPEC6,     /* ether type ip6 ip6 saddr :: icmpv6 type <icmp> ip6 hoplimit <hops> accept */
	/* link-local (fe80::/10) source (src) or destination: only neighbour
	 * discovery and MLD (ICMPv6 130-136, 143), which inet corral's pod
	 * dispatch (keyed by pod IPs, never link-local) cannot judge */
	RR_BR_LL_PROTO,    /* ether type ip6 ip6 saddr|daddr fe80::/10 meta l4proto != ipv6-icmp goto <ports> */
	RR_BR_LL_ICMP,     /* ether type ip6 ip6 saddr|daddr fe80::/10 icmpv6 type != 130-136
			      icmpv6 type != 143 goto <ports> */
	RR_GOTO,           /* goto <set> (a chain); ret: jump <set> (it returns here) */
	RR_BR_IF,          /* iifname @set accept; oif: oifname @set accept */
	RR_BR_ND_LONG,     /* ether type ip6 icmpv6 type 135-136 ip6 length > DP_ND_MAX_LEN goto <ports> */
	RR_BR_ND,          /* ether type ip6 icmpv6 type 135-136 ip6 hoplimit 255 accept */
	RR_BR_MCAST6,      /* ether type ip6 ip6 daddr ff00::/8 icmpv6 type 130-136 (icmp 0) | <icmp> accept */
	RR_BR_ARP_ANY,     /* ether type arp accept */
	/* the node's own interfaces (set node_ifaces, dp_set_node_ifaces):
	 * the rest are pods' (routed veths), or ones the agent has not heard
	 * of yet */
	RR_IIF_SRC_CHECK,  /* iifname != @<set> fib saddr . iif oif missing goto <ports> (the chain) */
	RR_UNCLASSIFIED,   /* src: iifname != @<dset> [ip6 saddr != fe80::/10] ip[6] saddr != @<set> goto <ports>;
			      else oifname != @<dset> ip[6] daddr != @<set> goto <ports> */
};

struct rs_rule {
	enum rs_rule_kind kind;
	uint8_t family;      /* 0 (both), 4 or 6 */
	bool src;            /* peer / vmap on the source address (else destination) */
	const char *set;     /* RR_MATCH: peer set or NULL; RR_VMAP: the map; RR_SRC_CHECK: the chain */
	const char *ports;   /* RR_MATCH: port set or NULL */
	const char *named;   /* RR_MATCH: named-port set (daddr . proto . port) or NULL */
	bool ret;            /* RR_MATCH: return (egress) instead of accept */
	char *prefix;        /* RR_LOG_DROP */
	uint32_t rate, burst;/* RR_LOG_DROP: packets per second */
	uint16_t group;      /* RR_LOG_DROP: NFLOG group */
	char *comment;       /* origin: policy and rule path */
	const char *dset;    /* RR_DNS_REDIRECT: destination set */
	uint8_t l4;          /* RR_DNS_REDIRECT: 6 or 17 */
	uint8_t nat_addr[16];/* RR_DNS_REDIRECT: network order (4 bytes for IPv4) */
	uint16_t nat_port;
	uint8_t icmp, hops;  /* RR_BR_UNSPEC6, RR_BR_MCAST6 */
	bool oif;            /* RR_BR_BIND, RR_BR_IF: the output port and the destination */
	uint32_t mark;       /* RR_CT_REVOKED: the conntrack mark bits of a revoked flow */
};

/* The hook of a filter base chain (all at priority filter). */
enum rs_hook {
	RS_HOOK_FORWARD, /* chain forward: pod traffic the node routes */
	RS_HOOK_INPUT,   /* chain input: the source check of packets to the node */
	RS_HOOK_OUTPUT,  /* chain output: packets the node sends (IPVS's to pods) */
};

struct rs_chain {
	char *name;
	bool base;          /* a filter base chain, hooked at hook */
	enum rs_hook hook;
	bool nat;           /* the prerouting nat chain (dns_redirect) */
	bool bridge_base;   /* a base chain of the bridge table (filter), at br_hook */
	uint8_t br_hook;    /* NF_BR_PRE_ROUTING (0), NF_BR_FORWARD (2), NF_BR_LOCAL_OUT (3) */
	struct vec rules;   /* struct rs_rule* */
	char *comment;
};

struct ruleset {
	char *table;
	bool bridge;       /* table bridge <table> (else inet) */
	struct vec sets;   /* struct rs_set*, sorted by name */
	struct vec chains; /* struct rs_chain*, base first, then by name */
};

void ruleset_free(struct ruleset *rs);
struct rs_set *ruleset_set(const struct ruleset *rs, const char *name);
struct rs_chain *ruleset_chain(const struct ruleset *rs, const char *name);
bool rs_rule_eq(const struct rs_rule *a, const struct rs_rule *b);
struct rs_set *rs_set_new(const char *name, enum rs_key key); /* empty, one reference */
void rs_set_put(struct rs_set *s); /* drops a reference */
void rs_chain_free(struct rs_chain *c);

/* The ruleset as nft text, loadable with `nft -f`. */
char *ruleset_format(const struct ruleset *rs);
/* One element of a set, as nft writes it ("10.0.0.0/8", "tcp . 80-81"). */
void rs_rule_format(const struct rs_rule *r, struct sbuf *out);
void rs_elem_format(const struct rs_set *s, size_t i, struct sbuf *out);

#endif

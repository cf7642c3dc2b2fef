/* The data plane: renders the engine's IR into a ruleset, keeps a mirror
 * of what the kernel holds, and turns each sync into one transaction:
 * a full replace at start-up and after any failure, otherwise only the
 * differences (set elements added and removed, changed chains rewritten). */
#ifndef CORRAL_DATAPLANE_H
#define CORRAL_DATAPLANE_H

#include "agent/dataplane/ruleset.h"
#include "agent/dataplane/txn.h"
#include "policy/engine.h"

/* The agent's DNS proxy, where the redirect sends the DNS of local pods
 * that have host rules (ruleset.h, chain dns_redirect). */
struct dp_dns {
	uint16_t port;          /* the proxy's port on the node's addresses */
	bool have[2];           /* [0] IPv4, [1] IPv6: an address to redirect to */
	uint8_t addr[2][16];    /* network order; IPv4 in the first 4 bytes */
	uint32_t max_per_name;  /* size of a host set: most addresses per name */
	uint32_t alive_ms;      /* timeout of the proxy's liveness elements */
	const ip128 *servers;   /* the cluster DNS Service's addresses, besides */
	size_t nservers;        /* the kube-dns pods' own (kube-system, k8s-app=kube-dns) */
};
#define DP_HOST_SET_SIZE 1024
#define DP_DNS_ALIVE_SET "dns_alive"

struct dp_config {
	const char *table;  /* default "corral" */
	uint16_t log_group; /* NFLOG group of drop logs, default 100 */
	uint32_t log_rate;  /* log packets per second per group chain, default 10 */
	uint32_t log_burst; /* default 20 */
	bool no_source_check; /* leave out the forged-source check (benchmarks; asymmetric routing) */
	const struct dp_dns *dns; /* NULL: no DNS proxy (host sets are rendered, nothing redirected) */
	uint32_t revoked_mark; /* conntrack mark bits of a revoked flow (revoke.h), default DP_REVOKED_MARK */
};

/* The conntrack mark bits a revocation pass sets on the entries of the
 * flows it stops (revoke.h); every packet of such an entry is dropped
 * ahead of the established accept, in both directions. */
#define DP_REVOKED_MARK 0x00800000u

/* The chain that drops (and logs, prefix "corral:e:s ") packets whose
 * source address does not route back through their input interface. */
#define DP_FORGED_CHAIN "forged_source"
/* The chain that drops (and logs, prefix "corral:e:t ") a TCP segment of
 * no tracked connection that is not a connection's first (a SYN): with
 * conntrack's default nf_conntrack_tcp_loose, it would start a tracked
 * flow in mid-stream, and a revoked flow's responder would so start it
 * again reversed, from its own side, once the flow's entry is gone
 * (revoke.h). */
#define DP_UNTRACKED_CHAIN "untracked_tcp"
/* The chains that drop addresses claimed by several live pods, by
 * direction (in the table only while such an address exists). */
extern const char *const dp_quarantine_chain[DIR_COUNT];

struct dp_stats {
	bool full;              /* the transaction replaced the table */
	bool narrowed;          /* it may have removed an allow: a peer or port set lost elements, a
				   dispatch entry changed (a pod newly isolated, or in another group)
				   or a chain was rewritten or deleted (conservative: see revoke.h) */
	uint32_t msgs;          /* netlink messages in the batch (begin/end excluded) */
	uint64_t elems_added, elems_deleted;
	uint32_t sets_added, sets_deleted;
	uint32_t chains_written, chains_deleted;
	uint64_t elems_total;   /* elements in the table afterwards */
	double render_ms, apply_ms;   /* apply = encode + kernel */
	double encode_ms, kernel_ms;
	double before_ms, after_ms;   /* the commit hook's (dp_set_commit_hook), in apply */
	double acked_at;        /* CLOCK_MONOTONIC ms: the kernel acknowledged (nothing to send: planned) */
	size_t bytes;
};

struct dp;
struct nft_sock;

struct dp *dp_new(const struct dp_config *cfg);
void dp_free(struct dp *dp);

/* The full desired ruleset for the engine's current state. Does not
 * touch the engine's dirty marks. */
struct ruleset *dp_render(struct dp *dp, const struct engine *e);

/* Applies the engine's state: builds the transaction, sends it, and keeps
 * the mirror. force_full requests a full replace. On a kernel error returns
 * a negative errno with *err naming the object that caused it; the next
 * sync is then a full replace. */
int dp_sync(struct dp *dp, struct engine *e, struct nft_sock *sock, bool force_full, struct dp_stats *st,
	    char **err);

/* The same passes with no kernel: the planned transaction is written to
 * plan (one operation a line, dp_txn_format) and taken as applied. The
 * plan stage's golden tests use it (root-free). */
void dp_sync_dry(struct dp *dp, struct engine *e, bool force_full, struct sbuf *plan);

/* The set of a host peer set's addresses ("h5_4"). */
void dp_host_set_name(const struct ir_peerset *ps, bool v6, char *buf, size_t len);

/* One address learned for a host rule, for dp_host_add. */
struct dp_host_elem {
	const struct ir_peerset *ps;
	ip128 addr;
	uint64_t timeout_ms;
	const char *name; /* the name its answer was for: the element's comment */
	bool again;       /* in the kernel already (an earlier answer's), its expiry now later:
			     added, deleted and added (a kernel before 6.10 keeps a first expiry) */
};
/* Adds (or refreshes the timeout of) learned addresses in the kernel, in
 * one transaction, and waits for the kernel's acknowledgement: when it
 * returns 0 the addresses are admitted. Sets not in the applied ruleset
 * are skipped (the next sync writes them with their learned addresses),
 * counted in *skipped. 0 or a negative errno with *err. */
int dp_host_add(struct dp *dp, struct nft_sock *sock, const struct dp_host_elem *el, size_t n, size_t *skipped,
		char **err);
/* Refreshes the DNS proxy's liveness elements (dns_alive) for alive_ms,
 * if the applied ruleset has the redirect. 0, or a negative errno. */
int dp_dns_alive(struct dp *dp, struct nft_sock *sock, char **err);
/* Whether the applied ruleset redirects DNS to the proxy. */
bool dp_dns_redirecting(const struct dp *dp);

/* The chain of a group ("ing_g7", "eg_g3"). */
void dp_group_chain(const struct ir_group *g, char *buf, size_t len);
/* An ingress group that a meet group (a provisional address, engine.h)
 * passes on the way has a second chain, this suffix to its name, with
 * the same rules returning on allow instead of accepting. */
#define DP_RETURN_SUFFIX "_r"
/* What was last applied, as nft text; NULL before the first transaction
 * or after a failed one. */
char *dp_applied_text(const struct dp *dp);
/* The applied rule (nft text) that carries IR rule r in g's chain, or NULL;
 * peer (the flow's other side, or NULL): of the several applied rules
 * carrying r (a family each, a set each for peers mixing ranges and
 * pods), the one whose family and peer set admit it. */
char *dp_rule_text(const struct dp *dp, const struct ir_group *g, const struct ir_rule *r, const ip128 *peer);
const char *dp_table(const struct dp *dp);

/* Called around each commit that sends something: before with the
 * transaction about to be sent, after with its result (0 or the negative
 * errno dp_sync returns). A chain's counters go with it when the
 * transaction flushes or deletes it (or replaces the table): the agent
 * reads them first (agent/daemon/drops.c). */
struct dp_commit_hook {
	void (*before)(const struct dp_txn *t, void *arg);
	void (*after)(const struct dp_txn *t, int rc, void *arg);
	void *arg;
};
void dp_set_commit_hook(struct dp *dp, const struct dp_commit_hook *h);

/* Local addresses no pod claims yet that are to drop everything both
 * ways (through the quarantine chains) from the next sync on: the agent's
 * provisional deny (agent/daemon/provisional.h). Replaces the previous
 * list; an address a pod claims meanwhile gets that pod's verdicts. */
void dp_set_denied(struct dp *dp, const ip128 *a, size_t n);

/* The node's own interfaces: every link the agent knows that is not a
 * pod's veth (lo, uplinks, bridges, tunnels, kube-ipvs0, ...), names of
 * at most 15 bytes. From the next sync on, an interface not in the list
 * (a pod's, or one the agent has not heard of yet: fail closed) is
 * checked (ruleset.h): a packet to the node through it must have a
 * source that routes back through it (chain input, with the source
 * check), and with unclassified (denyUnexplainedAddresses) a packet from
 * or to it must have a source or destination the agent has classified
 * (a local pod's address, or a provisional one). Never called (no link
 * watch): neither check, no set node_ifaces, no chain input. */
void dp_set_node_ifaces(struct dp *dp, const char *const *names, size_t n, bool unclassified);
#define DP_NODE_IFACES "node_ifaces"
/* The chains that drop (and log, prefixes "corral:i:u " and "corral:e:u ")
 * packets of pods' interfaces with an address no one classified. */
extern const char *const dp_unclassified_chain[DIR_COUNT];

/* Test hook: the next transaction also adds a rule that the kernel rejects
 * (a jump to a chain that does not exist), to prove atomicity. */
void dp_inject_failure(struct dp *dp);

#endif

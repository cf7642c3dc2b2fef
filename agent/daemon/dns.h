/* DNS-aware egress: the agent's DNS proxy for the pods whose policies
 * name hosts (AccessPolicy outbound.external[].host).
 *
 * The table redirects those pods' DNS (UDP and TCP 53 to the cluster DNS)
 * to this proxy (agent/dataplane/ruleset.h, chain dns_redirect). The
 * proxy forwards each query to the cluster DNS, reads the answer (CNAME
 * chain, A and AAAA: agent/daemon/dnsmsg.c), and for every host rule of
 * the asking pod whose name the answer is for, adds the addresses to the
 * rule's timeout set (TTL + grace), waits for the kernel's acknowledgement
 * and only then relays the answer: a pod that connects as soon as it has
 * its answer finds the address admitted. Data packets never leave the
 * kernel; only DNS messages pass through here.
 *
 * Failure behaviour:
 *   - the agent stopped, killed or stuck: the redirect holds only while
 *     the set dns_alive has elements, which the proxy refreshes every
 *     second with a 3 s timeout; then the pods' DNS goes to the cluster
 *     DNS directly again (resolution keeps working; new addresses are not
 *     learned, so connections to them are dropped until the agent is
 *     back). Learned addresses keep their timeouts in the kernel, and
 *     established connections go on (conntrack). A restarted agent reads
 *     the learned addresses back from the kernel before it replaces the
 *     table, with the time they have left.
 *   - the cluster DNS unreachable or silent: the pod gets SERVFAIL after
 *     DNS_UPSTREAM_TIMEOUT_MS (its resolver tries again or fails, as it
 *     would with no answer at all, only sooner).
 *   - large answers: queries are relayed as they are (EDNS0 included) and
 *     answers up to 64 KiB read; a truncated answer (TC) is relayed as is,
 *     with the addresses it holds learned, and the pod's retry over TCP
 *     goes through the proxy's TCP side, which learns the rest.
 *   - malformed or hostile answers: what ldns cannot parse is relayed
 *     unlearned (counted); at most DNS_ADDRS_MAX addresses an answer and
 *     dnsMaxAddressesPerName a name are learned (the rest counted), TTLs
 *     are capped at dnsMaxTtlSeconds, pending queries at DNS_PENDING_MAX
 *     and TCP clients at DNS_TCP_MAX: memory is bounded.
 *   - addresses no name may open: a pod's address (pods are reached by
 *     application rules, which need the callee's consent) and the ranges
 *     of dnsForbiddenRanges are never learned (counted, and explain says
 *     why). */
#ifndef CORRAL_DNS_H
#define CORRAL_DNS_H

#include <jansson.h>
#include <stdio.h>

#include "agent/daemon/config.h"
#include "agent/dataplane/dataplane.h"
#include "policy/eval.h"

#define DNS_UPSTREAM_TIMEOUT_MS 2000
#define DNS_PENDING_MAX 4096
#define DNS_TCP_MAX 256
#define DNS_ALIVE_MS 3000
#define DNS_FORGET_MS (3600 * 1000) /* expired addresses remembered (for revocation, explain) */

struct dns_proxy;

/* What the proxy uses of the agent: pointers to the agent's own (the
 * engine and the data plane are replaced on a reload). */
struct dns_ctx {
	struct engine **e;
	struct dp **dp;
	struct nft_sock **nft;
	int netns_fd; /* where new upstream sockets are made (-1: here) */
};

/* Opens the listeners and upstream sockets in the current network
 * namespace. 0, or a negative errno with *err. A port of 0 makes no proxy
 * (*out NULL, 0 returned). */
int dns_proxy_new(struct dns_proxy **out, const struct agent_config *cfg, const struct dns_ctx *ctx, char **err);
void dns_proxy_free(struct dns_proxy *d);
int dns_fd(const struct dns_proxy *d);
/* Serves whatever is ready; never blocks. */
void dns_dispatch(struct dns_proxy *d);
/* The data plane's view (redirect targets, set sizes); NULL for no proxy. */
const struct dp_dns *dns_dp_config(const struct dns_proxy *d);
/* Before the first full replace: the addresses the kernel still holds for
 * host rules (a previous agent learned them) go back into the engine with
 * the time they have left. */
void dns_restore(struct dns_proxy *d);
/* agentctl dns: names, addresses and expiry per host rule and group. */
json_t *dns_status(struct dns_proxy *d, char **text);
/* One line for agentctl status. */
void dns_status_line(struct dns_proxy *d, struct sbuf *b);
/* Prometheus lines (thread-safe: counters are atomic). */
void dns_metrics(struct dns_proxy *d, struct sbuf *b);
/* A packet the kernel dropped at egress: counted when its destination is
 * an address DNS gave a pod for a name no host rule allowed. */
void dns_note_drop(struct dns_proxy *d, ip128 src, ip128 dst);
/* Explain: what the host rules of the egress side say about dst (learned
 * when, how long left, or why not), as text lines and JSON. */
void dns_explain(struct dns_proxy *d, const struct engine *e, const struct endpoint *src, const struct endpoint *dst,
		 const struct verdict *v, FILE *text, json_t *o);

/* Whether the group has a host rule. */
bool dns_group_has_hosts(const struct ir_group *g);
/* explain SRC HOSTNAME: an address learned for name (or a pattern that
 * matches it) by a host rule of src's egress; 0, or -ENOENT with *note
 * saying why there is none. */
int dns_name_addr(const struct engine *e, const struct endpoint *src, const char *name, ip128 *out, char **note);

#endif

/* Exact drop counts: the kernel's counters of the chains that drop (each
 * group chain's default `counter drop`, the quarantine, forged-source and
 * unclassified chains), read at scrape time on a netlink socket of their own and
 * accumulated by direction, reason, namespace and policy.
 *
 * A chain's counter goes with it when a transaction flushes or deletes the
 * chain (or replaces the table): the event loop calls drop_counters_before
 * and _after around every commit (dp_set_commit_hook), which read what
 * those chains counted first and start them again from 0 afterwards. The
 * lock is held from before to after, so that a scrape never reads a chain
 * between its last read and its replacement. */
#ifndef CORRAL_DROPS_H
#define CORRAL_DROPS_H

#include <stddef.h>
#include <stdint.h>

#include "agent/dataplane/txn.h"
#include "policy/util.h"

struct nft_sock;
struct drop_counters;

/* What a chain counts into. */
struct dc_label {
	const char *chain;
	const char *direction; /* ingress | egress */
	const char *reason;    /* policy | quarantine | forged-source | unclassified */
	const char *ns;        /* "" when no namespace */
	const char *policy;    /* "Kind/name,..." of the chain's policies, or "" */
};

/* sock: opened in the node's network namespace, for this alone (the
 * caller closes it after drop_counters_free). */
struct drop_counters *drop_counters_new(struct nft_sock *sock, const char *table);
void drop_counters_free(struct drop_counters *dc);

/* Event loop, around a commit. after: labels (n of them) are the table's
 * chains once t is applied, or NULL when t adds or removes no chain. */
void drop_counters_before(struct drop_counters *dc, const struct dp_txn *t);
void drop_counters_after(struct drop_counters *dc, const struct dp_txn *t, int rc, const struct dc_label *labels,
			 size_t n);

/* Any thread: reads the kernel's counters and appends the metric families
 * (Prometheus text) to out. */
void drop_counters_format(struct drop_counters *dc, struct sbuf *out);

#endif

/* The one place that talks netlink to nf_tables (libnftnl + libmnl). */
#ifndef CORRAL_NFT_H
#define CORRAL_NFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/dataplane/txn.h"

struct nft_sock;

/* Opens a NETLINK_NETFILTER socket in the caller's network namespace
 * (the namespace is fixed when the socket is created). NULL + errno. */
struct nft_sock *nft_sock_open(void);
void nft_sock_close(struct nft_sock *s);

struct nft_txn_info {
	uint32_t msgs;     /* messages sent (begin and end excluded) */
	size_t bytes;
	double build_ms;   /* libnftnl encoding */
	double kernel_ms;  /* sendmsg until the last acknowledgement */
	/* when the kernel refused the batch: the operation it refused (its
	 * index in the transaction, mapped back from the message's sequence
	 * number, as nftables does), or -1 for the batch as a whole; and the
	 * kernel's extended-ack message, if any. The caller words it. */
	long refused_op;
	char kernel_msg[256];
};

/* Builds the transaction into one batch, sends it, and waits for every
 * acknowledgement. Returns 0 or a negative errno. A refusal fills
 * info->refused_op (info is required); a failure to send or to read the
 * replies sets *err instead (refused_op -1). */
int nft_txn_commit(struct nft_sock *s, const struct dp_txn *t, struct nft_txn_info *info, char **err);

/* Whether seq belongs to a batch of n messages whose header has seq0,
 * across the wrap of the 32-bit sequence number. */
static inline bool nft_seq_in_batch(uint32_t seq, uint32_t seq0, uint32_t n)
{
	return (uint32_t)(seq - seq0) <= n;
}

/* Builds the batch without sending it, for byte-exact tests: returns a
 * malloc'd buffer of *len bytes holding every message, sequence numbers
 * starting at seq0. */
void *nft_txn_build(const struct dp_txn *t, uint32_t seq0, size_t *len);

/* Sums the counters of the rules of one chain (the default drop's
 * counter is the only one in a group chain). 0 or -errno. */
int nft_chain_counters(struct nft_sock *s, const char *table, const char *chain, uint64_t *packets,
		       uint64_t *bytes);

/* The counters of every chain of table, summed over its rules (a chain
 * whose rules hold none is listed with 0), from one netlink dump: *out
 * holds *n entries (nft_chain_ctrs_free); none when there is no such
 * table. 0 or -errno. Safe from another thread on a socket of its own. */
struct nft_chain_ctr {
	char *chain;
	uint64_t packets, bytes;
};
int nft_table_counters(struct nft_sock *s, const char *table, bool bridge, struct nft_chain_ctr **out, size_t *n);
void nft_chain_ctrs_free(struct nft_chain_ctr *c, size_t n);
/* 1 when the inet table exists, 0 when not, or -errno. */
int nft_table_exists(struct nft_sock *s, const char *table);
/* One element of a timeout set of the table (ruleset.h), as the kernel
 * holds it now: what a restarted agent reads back before it replaces the
 * table, so that addresses learned from DNS keep the time they had. */
struct nft_timed_elem {
	const char *set, *set_comment; /* set_comment may be "" */
	uint8_t key[16];
	uint32_t key_len;
	uint64_t timeout_ms, expires_ms; /* expires_ms: time left */
	const char *comment;             /* the element's, or "" */
};
/* Calls fn for every element of every timeout set of table (none when
 * the table does not exist). 0 or a negative errno. */
int nft_timed_elems(struct nft_sock *s, const char *table, void (*fn)(const struct nft_timed_elem *e, void *arg),
		    void *arg);

#endif

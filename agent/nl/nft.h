/* The one place that talks netlink to nf_tables (libnftnl + libmnl). */
#ifndef CORRAL_NFT_H
#define CORRAL_NFT_H

#include "agent/dataplane/dataplane.h"

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
};

/* Builds the transaction into one batch, sends it, and waits for every
 * acknowledgement. Returns 0 or a negative errno; on error *err says which
 * operation (and so which policy or rule) the kernel refused. */
int nft_txn_commit(struct nft_sock *s, const struct dp_txn *t, struct nft_txn_info *info, char **err);

/* Builds the batch without sending it, for byte-exact tests: returns a
 * malloc'd buffer of *len bytes holding every message, sequence numbers
 * starting at seq0. */
void *nft_txn_build(const struct dp_txn *t, uint32_t seq0, size_t *len);

/* Sums the counters of the rules of one chain (the default drop's
 * counter is the only one in a group chain). 0 or -errno. */
int nft_chain_counters(struct nft_sock *s, const char *table, const char *chain, uint64_t *packets,
		       uint64_t *bytes);

#endif

/* A transaction as data: the operations the plan stage decides and the
 * commit stage (agent/nl/nft.c) encodes and sends, in batch order. The
 * plan stage (agent/dataplane/) and the netlink code both use it; neither
 * needs the other's header. */
#ifndef CORRAL_TXN_H
#define CORRAL_TXN_H

#include "agent/dataplane/ruleset.h"

/* Operations of one transaction, in batch order. */
enum dp_op_kind {
	OP_TABLE_ADD, OP_TABLE_DEL,
	OP_SET_ADD, OP_SET_DEL,
	OP_ELEM_ADD, OP_ELEM_DEL, /* elements [first, first + count) of set */
	OP_SET_FLUSH,             /* every element of set */
	OP_CHAIN_ADD, OP_CHAIN_FLUSH, OP_CHAIN_DEL,
	OP_RULE_ADD,
};
struct dp_op {
	enum dp_op_kind kind;
	const struct rs_set *set;
	size_t first, count;
	const struct rs_chain *chain;
	const struct rs_rule *rule;
};
struct dp_txn {
	const char *table;
	bool bridge; /* family bridge (else inet) */
	struct dp_op *ops;
	size_t n, cap;
};

/* What an operation does and which policy or rule it comes from (for the
 * message of a refused transaction). */
void dp_op_describe(const struct dp_op *op, struct sbuf *out);

void dp_txn_push(struct dp_txn *t, struct dp_op op);

/* 3. The plan stage: the transaction that turns old (the mirror of the
 * kernel; NULL: unknown, a full replace) into new. Delta sets it makes go
 * to owned (rs_set_put each once t is done with); counts go to st. */
struct dp_stats;
void dp_plan(const struct ruleset *old, const struct ruleset *new, struct dp_txn *t, struct vec *owned,
	     struct dp_stats *st);
/* The transaction, one operation a line (what it does, the policy or rule
 * it comes from, and for elements and rules the nft text): golden tests
 * compare it. */
void dp_txn_format(const struct dp_txn *t, struct sbuf *out);

#endif

/* What the stages of the data plane share (render.c, plan.c,
 * dataplane.c); not for users of the data plane (dataplane.h). */
#ifndef CORRAL_DP_PRIVATE_H
#define CORRAL_DP_PRIVATE_H

#include "agent/dataplane/dataplane.h"

struct capent {
	char *base;
	uint32_t cap;
	uint64_t epoch;
};

/* A port set's identity is its content. The table is keyed by the merged
 * elements: the hash only picks the bucket, the bytes decide. The name
 * comes from a counter that is never reused, so unchanged content keeps
 * its name across transactions, and content that goes away and comes back
 * (or new content) never takes a name the mirror still gives to other
 * elements. (Names were once a 48-bit hash of the content: two rules whose
 * ports collided shared one set, and one of them matched the other's
 * ports.) */
struct portent {
	uint32_t id;
	size_t n;      /* elements */
	uint8_t *keys; /* n * 2 * 8 bytes, as in struct rs_set */
	uint64_t epoch;
};

struct dp {
	struct dp_config cfg;
	char *table;
	struct ruleset *mirror; /* what the kernel holds; NULL: unknown */
	bool inject;
	struct htab caps;       /* struct capent: hash set capacities by base name */
	struct htab ports;      /* struct portent: port sets by content */
	uint32_t next_port;
	uint64_t epoch;
	struct dp_commit_hook hook;
	ip128 *denied;          /* dp_set_denied */
	size_t ndenied;
	bool ifaces_known;      /* dp_set_node_ifaces was called */
	bool unclassified;      /* its unclassified-address check */
	char (*ifaces)[16];     /* the node's interfaces, NUL-padded */
	size_t nifaces;
};

/* Render: the desired ruleset, sharing reuse's set objects for peer sets
 * not in dirty (reuse NULL: render everything); *elems counts elements. */
struct ruleset *dp_render_reuse(struct dp *dp, const struct engine *e, const struct ruleset *reuse,
				const struct ptrset *dirty, uint64_t *elems);

/* Tests: the plan also compares every set it wrote from the render's
 * edit (ruleset.h rs_set.base) element by element, and aborts when the
 * two differ; counts the sets it checked. */
extern bool dp_plan_verify;
extern unsigned long dp_plan_verified;
/* Pod sets (no ranges) the render listed whole again although the mirror
 * held them: each could have been an edit but for a change the engine
 * marked full (tests; render.c peer_sets). */
extern unsigned long dp_render_relisted;
/* A rule whose peers have both ranges and pods matches two sets, the
 * ranges' and the pods' (render.c peer_sets); tests set it false to
 * render one interval set merging both, as before, and compare. */
extern bool dp_split_mixed;
/* Peer set listings of at least this many addresses are radix-sorted
 * (render.c ranges_sort); tests set it out of reach to compare with qsort. */
extern size_t dp_radix_min;
/* Sorts ranges by their start (render.c). */
void dp_ranges_sort(struct ip_range *r, size_t n);

#endif

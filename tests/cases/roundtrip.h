/* The round trip of explain's suggestions, as a property over a set of
 * manifests: for every denied flow, apply the suggested change (of each
 * side that denies it) to the manifests, load them again, and expect the
 * flow allowed by the rule the suggestion names; and every other flow
 * that was denied and is now allowed must be allowed by that rule too. */
#ifndef CORRAL_TEST_ROUNDTRIP_H
#define CORRAL_TEST_ROUNDTRIP_H

#include "policy/util.h"

struct probe {
	int proto, port;
	bool v6;
};

struct rt_stats {
	size_t denied, fixed, skipped; /* skipped: quarantined addresses */
};

/* docs: json_t* manifests (left unchanged). Returns the number of
 * failures, each printed on stderr with what. */
int roundtrip_check(const struct vec *docs, const struct probe *probes, size_t nprobes, const char *what,
		    struct rt_stats *st);

#endif

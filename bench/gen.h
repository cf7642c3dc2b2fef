/* Deterministic synthetic clusters (seeded), as JSON objects decoded by
 * the same decoder the agent uses. Sizes from the performance brief. */
#ifndef CORRAL_BENCH_GEN_H
#define CORRAL_BENCH_GEN_H

#include "kube/manifest.h"

struct gen_size {
	const char *name;
	int pods, namespaces, policies, pods_per_node;
};

const struct gen_size *gen_size_find(const char *name);
/* Fills set with namespaces, pods and policies. */
void gen_cluster(const struct gen_size *sz, uint64_t seed, struct manifest_set *set);
/* Writes the same cluster as one JSON List manifest; 0 or -1. */
int gen_cluster_write(const struct gen_size *sz, uint64_t seed, const char *path);
/* A pod spec the generator would make for pod index i, with app label app. */
struct pod_spec *gen_pod(const struct gen_size *sz, uint64_t seed, int i, int app);

#endif

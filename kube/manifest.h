/* Folders and files of manifests: read, parse, expand List kinds, decode.
 * Used by agentctl (offline) and by the agent's files:DIR source. */
#ifndef CORRAL_KUBE_MANIFEST_H
#define CORRAL_KUBE_MANIFEST_H

#include "../policy/engine.h"
#include "decode.h"

#define MANIFEST_MAX_BYTES (64u << 20) /* larger files are refused */

struct manifest_set {
	struct vec nss;      /* struct ns_spec* */
	struct vec pods;     /* struct pod_spec* */
	struct vec policies; /* struct policy_spec* */
	struct diags diags;
	size_t files, objects;
};

/* Loads a file, or every *.yaml, *.yml and *.json below a folder (sorted).
 * Problems go to set->diags; returns -errno only when path cannot be read. */
int manifest_load_path(struct manifest_set *set, const char *path, const struct decode_opts *o);
/* Every manifest (*.yaml, *.yml, *.json, not hidden) below dir, sorted
 * folder by folder; dirs (may be NULL) gets each folder visited. Folders
 * that cannot be read go to d (may be NULL). Callers free the strings. */
void manifest_files(const char *dir, struct vec *files, struct vec *dirs, struct diags *d);
/* A whole file, at most max bytes; NULL and *err ("cannot open: ...") */
char *manifest_read_file(const char *path, size_t max, size_t *len, char **err);
/* Loads a buffer as if it were the file named name. */
void manifest_load_buffer(struct manifest_set *set, const char *name, const char *buf, size_t len,
			  const struct decode_opts *o);
/* Gives pods without an address a made-up one, deterministic for the set
 * (offline mode: workloads and pods not yet scheduled). */
void manifest_assign_addresses(struct manifest_set *set);
/* Moves every object into the engine (namespaces, pods, then policies). */
void manifest_apply(struct manifest_set *set, struct engine *e);
void manifest_set_free(struct manifest_set *set);

#endif

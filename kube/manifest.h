/* Folders and files of manifests: read, parse, expand List kinds, decode.
 * Used by agentctl (offline) and by the agent's files:DIR source. */
#ifndef CORRAL_KUBE_MANIFEST_H
#define CORRAL_KUBE_MANIFEST_H

#include <sys/stat.h>

#include "../policy/engine.h"
#include "decode.h"

/* What reading one folder may cost. Every file is read whole and its
 * documents one at a time, so reading costs at most about one file plus
 * one document (max_doc_nodes, ~100 bytes a node); what is kept is the
 * decoded objects, bounded by max_total_bytes. */
struct manifest_limits {
	size_t max_file_bytes;  /* a larger file is refused */
	size_t max_total_bytes; /* the folder's manifests together; later files (in order) are refused */
	size_t max_files;       /* manifests in the folder; later ones are refused */
	size_t max_dirs;        /* folders walked */
	size_t max_doc_nodes;   /* nodes of one document (KUBE_YAML_MAX_DOC_NODES) */
};
#define MANIFEST_MAX_FILE_BYTES (8u << 20)
#define MANIFEST_MAX_TOTAL_BYTES (64u << 20)
#define MANIFEST_MAX_FILES 10000u
#define MANIFEST_MAX_DIRS 1000u
#define MANIFEST_MAX_DEPTH 16
/* Fills the zero fields of l with the defaults above. */
void manifest_limits_default(struct manifest_limits *l);

struct manifest_set {
	struct vec nss;      /* struct ns_spec* */
	struct vec pods;     /* struct pod_spec* */
	struct vec policies; /* struct policy_spec* */
	struct vec nodes;    /* struct node_spec* */
	struct diags diags;
	size_t files, objects, docs;
	size_t unreadable;           /* files not read whole: their objects are missing */
	struct manifest_limits lim;  /* zero: defaults */
	size_t bytes;                /* of the files read so far (against max_total_bytes) */
	struct htab canon;           /* policy_spec* -> canonical JSON of its document */
	bool dups_resolved;          /* no file read since manifest_resolve_duplicates() */
};

/* A manifest found by manifest_files(), with what stat() said of it. */
struct manifest_file {
	char *path;
	struct stat st;
};

/* Loads a file, or every manifest below a folder (see manifest_files()).
 * Problems go to set->diags; returns -errno only when path cannot be read. */
int manifest_load_path(struct manifest_set *set, const char *path, const struct decode_opts *o);
/* Every manifest below dir: regular files named *.yaml, *.yml or *.json,
 * not hidden, sorted folder by folder. Each folder and each file (device
 * and inode) is taken once however many links lead to it, so links back
 * into the folder cannot multiply the walk; at most lim's files and
 * folders, MANIFEST_MAX_DEPTH deep. FIFOs, sockets and devices are
 * reported and skipped. files gets struct manifest_file*, dirs (may be
 * NULL) each folder visited (char*); problems go to d (may be NULL).
 * Returns whether the walk saw everything (no folder unreadable, no
 * limit reached). */
bool manifest_files(const char *dir, const struct manifest_limits *lim, struct vec *files, struct vec *dirs,
		    struct diags *d);
void manifest_files_free(struct vec *files);
/* Whether a file of that name (no folder) is a manifest: *.yaml, *.yml,
 * *.json, not hidden. */
bool manifest_name(const char *name);
/* A whole regular file, at most max bytes; NULL and *err otherwise ("not a
 * regular file", "cannot open: ..."). Never blocks on a FIFO or a device. */
char *manifest_read_file(const char *path, size_t max, size_t *len, char **err);
/* Loads a buffer as if it were the file named name. Its objects are taken
 * only if the whole buffer reads: -EINVAL (and set->unreadable counted)
 * when it does not, and then none of them is. */
int manifest_load_buffer(struct manifest_set *set, const char *name, const char *buf, size_t len,
			 const struct decode_opts *o);

/* The same, with the reason the buffer did not read in *err (to free)
 * instead of a diagnostic: the agent words it its own way. */
int manifest_read_buffer(struct manifest_set *set, const char *name, const char *buf, size_t len,
			 const struct decode_opts *o, char **err);

/* One definition of an object (kind, namespace, name) by one file. */
struct manifest_def {
	enum obj_type type;
	void *spec;        /* struct ns_spec*, pod_spec*, policy_spec* or node_spec* */
	const char *canon; /* policies: canonical JSON of the document (NULL: unknown) */
	const char *file;
};
/* The rule for an object defined more than once (defs in file order, n >
 * 1): out gets what to enforce (new references) and the returned message
 * (to free) names the files. Policies defined identically are enforced
 * once; defined differently, every copy is enforced as an invalid policy
 * (it isolates the pods it selects, allows nothing), the later ones named
 * NAME#2, NAME#3: never more open than any copy alone. Pods, nodes and
 * namespaces: the first file's definition. */
char *manifest_duplicates(const struct manifest_def *defs, size_t n, struct vec *out);
/* The canonical JSON of the document a policy of the set came from. */
const char *manifest_canon(const struct manifest_set *set, const void *policy_spec);
/* Applies that rule to the set, with an error for each duplicate. */
void manifest_resolve_duplicates(struct manifest_set *set);

/* Gives pods without an address a made-up one, deterministic for the set
 * (offline mode: workloads and pods not yet scheduled). */
void manifest_assign_addresses(struct manifest_set *set);
/* Moves every object into the engine (namespaces, nodes, pods, then policies),
 * duplicates resolved first if files were read into the set (objects a
 * program puts there itself, as the benchmarks' generator, are its own). */
void manifest_apply(struct manifest_set *set, struct engine *e);
void manifest_set_free(struct manifest_set *set);
/* The "Kind/namespace/name" of a decoded object (to free). */
char *manifest_key(enum obj_type type, const void *spec);

#endif

/* The files:DIR source of objects (see src_files.c). */
#ifndef CORRAL_SRC_FILES_H
#define CORRAL_SRC_FILES_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "kube/manifest.h"
#include "policy/engine.h"

struct src_files_opts {
	const char *app_label;
	struct manifest_limits lim; /* zero fields: the defaults */
	uint32_t settle_ms;         /* a file written in place, never closed: read after this quiet time */
};
#define SRC_FILES_SETTLE_MS 5000

struct src_files;
struct src_files *src_files_new(const char *dir, const struct src_files_opts *o, char **err);
void src_files_free(struct src_files *s);
/* inotify descriptor: readable when something in the folder changed. */
int src_files_fd(const struct src_files *s);
/* Drains pending events; true if there were any (rescan then). */
bool src_files_drain(struct src_files *s);
/* Reads what changed into e; returns how many objects changed. */
size_t src_files_scan(struct src_files *s, struct engine *e);
/* Milliseconds until a file being written in place should be looked at
 * again (a scan then), or -1. */
long src_files_next_ms(const struct src_files *s);
json_t *src_files_status(const struct src_files *s);
/* Problems in force: files that do not read (their previous objects are
 * kept), objects defined twice, folders or files refused. */
size_t src_files_errors(const struct src_files *s);

#endif

/* The files:DIR source of objects (see src_files.c). */
#ifndef CORRAL_SRC_FILES_H
#define CORRAL_SRC_FILES_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "policy/engine.h"

struct src_files;
struct src_files *src_files_new(const char *dir, const char *app_label, char **err);
void src_files_free(struct src_files *s);
/* inotify descriptor: readable when something in the folder changed. */
int src_files_fd(const struct src_files *s);
/* Drains pending events; true if there were any (rescan then). */
bool src_files_drain(struct src_files *s);
/* Reads what changed into e; returns how many objects changed. */
size_t src_files_scan(struct src_files *s, struct engine *e);
json_t *src_files_status(const struct src_files *s);
/* Files that do not parse (their previous objects are kept). */
size_t src_files_errors(const struct src_files *s);

#endif

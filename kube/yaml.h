/* YAML and JSON manifests to JSON documents (jansson). */
#ifndef CORRAL_KUBE_YAML_H
#define CORRAL_KUBE_YAML_H

#include <jansson.h>
#include <stddef.h>

#include "../policy/util.h"

/* Parses buf (one or more YAML documents, or one JSON value) and appends
 * each non-empty document to docs as a json_t* (new reference).
 * Returns 0, or -EINVAL with *err set (to be freed) naming line and column. */
int kube_yaml_parse(const char *buf, size_t len, struct vec *docs, char **err);

#endif

/* YAML and JSON manifests to JSON documents (jansson), read the way
 * kubectl reads them (see yaml.c). */
#ifndef CORRAL_KUBE_YAML_H
#define CORRAL_KUBE_YAML_H

#include <jansson.h>
#include <stddef.h>

#include "../policy/util.h"

/* Nodes (mappings, sequences, scalars, keys, alias expansions) one
 * document, or one item of a List, may hold: its JSON costs about 110
 * bytes a node, so this bounds what reading it costs (about 11 MB; a pod
 * is some 50 nodes, a NetworkPolicy with 60,000 ipBlock excepts 60,000). */
#define KUBE_YAML_MAX_DOC_NODES 100000u

struct kube_yaml_opts {
	size_t max_doc_nodes; /* 0: KUBE_YAML_MAX_DOC_NODES */
	/* Each complete, non-empty document, in order; doc is borrowed (freed
	 * once the call returns); line is where it starts (1-based). */
	void (*doc)(json_t *doc, size_t line, void *arg);
	/* If set, the items of a document's top-level "items" sequence (a
	 * List) come here one by one, before their document, which then has
	 * "items": []; each item has a node budget of its own. */
	void (*item)(json_t *item, size_t line, void *arg);
	/* Readings a YAML 1.2 reader would not make (YAML 1.1 booleans,
	 * octal): "line L column C: field: ..."; may be NULL. */
	void (*warn)(const char *msg, void *arg);
	void *arg;
	/* If set, each item of a List read item by item comes here first, as
	 * the text it starts (b[0..n): the item, maybe more items after it,
	 * not checked yet). It returns the item's length when it read it
	 * there (item is not called for it; the length must be the one
	 * json_value_end finds), or 0. */
	size_t (*raw)(const char *b, size_t n, void *arg);
};

/* Reads buf (YAML documents, or one JSON value) document by document, so
 * that only one document's JSON is alive at a time. Returns 0, or -EINVAL
 * with *err set (to be freed) naming line, column and field; documents
 * handed over before the error are then to be discarded by the caller: a
 * file that does not read whole is unparsable, never shorter. */
int kube_yaml_each(const char *buf, size_t len, const struct kube_yaml_opts *o, char **err);

/* The same, appending each non-empty document to docs as a json_t* (new
 * reference); on error, docs is left as it was. */
int kube_yaml_parse(const char *buf, size_t len, struct vec *docs, char **err);

/* A LIST answer of the API: the items of its "items" array one at a time
 * (each parsed alone, so the page's whole tree is never built), then the
 * List itself with "items": []. flags: jansson's decoding flags. 0, or
 * -EINVAL with *err (items handed over before it are to be discarded). */
/* A copy (malloc'd, *outlen bytes, NUL-terminated) of the JSON text b
 * without its "managedFields" members whose value is an array (the
 * server's field-ownership records, which corral never reads), or NULL
 * when there are none or the text does not scan. */
char *kube_json_strip_managed(const char *b, size_t n, size_t *outlen);
int kube_json_list_each(const char *buf, size_t len, size_t flags, void (*item)(json_t *item, void *arg),
			void (*doc)(json_t *list, void *arg), void *arg, char **err);
/* The same; raw (if set) sees each item's text first, as kube_yaml_opts'
 * raw does (a LIST item read without jansson, kube/podscan.h). */
int kube_json_list_each_raw(const char *buf, size_t len, size_t flags, size_t (*raw)(const char *b, size_t n, void *arg),
			    void (*item)(json_t *item, void *arg), void (*doc)(json_t *list, void *arg), void *arg,
			    char **err);
/* One item of a List's text as the functions above read it: its
 * managedFields cut, parsed with flags, integral reals made integers. 0,
 * or -EINVAL with *err (to free). */
int kube_json_item_load(const char *b, size_t n, size_t flags, json_t **out, char **err);

/* Where the JSON value starting at b[i] ends (one past it), or len when it
 * does not end well: strings and nesting followed, nothing built, nothing
 * checked (a List's items are found with it). For the tests. */
size_t kube_json_value_end(const char *b, size_t i, size_t len);

#endif

/* YAML and JSON manifests to JSON documents (jansson).
 *
 * kubectl turns YAML into JSON with sigs.k8s.io/yaml (YAMLToJSON), which
 * reads with go-yaml v2, a YAML 1.1 reader (its resolve.go); input that
 * starts with '{' or '[' goes to a JSON decoder instead (apimachinery's
 * YAMLOrJSONDecoder). corral reads the same bytes to the same values, or
 * refuses them (issue 17, item 6):
 *
 *   plain scalars                                 read as
 *     "", ~, null, Null, NULL                       null
 *     true, false (3 spellings each) and the        booleans: "y" and "on"
 *       YAML 1.1 words y, yes, on, n, no, off         are true, "NO" is false
 *       (y Y yes Yes YES on On ON, n N no ...)
 *     Go integer syntax once every "_" is gone:     integers: 010 is 8,
 *       sign, then 0x, 0o, 0b or a leading 0           0x1f90 is 8080,
 *       (octal), or decimal                            1_000 is 1000
 *     other decimal numbers,                        numbers; an integral one
 *       [-+](digits[.digits]|.digits)[e[-+]digits]     is an integer, as in the
 *                                                      JSON kubectl sends: "09"
 *                                                      is 9, "8e1" is 80
 *     anything else ("1:30", "2024-01-01",          strings
 *       "10.0.0.1", "_1")
 *   quoted scalars, !!str and other tags           strings
 *   !!int, !!float, !!bool, !!null                 the plain reading, which
 *                                                  must be of that type
 *   mapping keys                                   as the JSON kubectl sends:
 *                                                  010 is "8", on is "true"
 *   merge keys (<<)                                as go-yaml v2: the mapping
 *                                                  (or list of mappings, the
 *                                                  earlier winning) is merged
 *   anchors                                        per document; an alias
 *                                                  shares its anchor's value
 *
 * What JSON cannot carry or a reader would carry differently is an error
 * naming line, column and field: .inf, .nan, 1e999, integers past 64 bits,
 * NUL characters, !!binary, keys that read as null or as fractions, a key
 * set both before a << and by it (readers disagree on which wins), a
 * document of more nodes than the budget. Every failed jansson call is an
 * error too: the reader fails loudly, it never returns a shorter file
 * (issue 17, item 2: json_real(inf) used to end the file in silence). */
#define _GNU_SOURCE
#include "yaml.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "../policy/clip.h"

struct anchor_ent {
	char *name;
	json_t *val;
};

struct yctx {
	yaml_parser_t p;
	const struct kube_yaml_opts *o;
	struct anchor_ent *anchors; /* this document's */
	size_t nanchors;
	char *err;
	int depth;
	size_t nodes, max_nodes;         /* this document's, aliases expanded */
	size_t alias_nodes, alias_bytes; /* what its aliases expand to */
	struct sbuf path;                /* the field being read: spec.ingress[0] */
};

/* Aliases share values, so they cost no memory; these bound the work of
 * whoever walks the expanded tree ("billion laughs", and one 1 MB string
 * aliased 100,000 times). */
#define YAML_MAX_ALIAS_NODES 100000
#define YAML_MAX_ALIAS_BYTES (4u << 20)
#define YAML_MAX_DEPTH 128
#define YTAG "tag:yaml.org,2002:"

/* ---------- messages ---------- */

static char *located(struct yctx *c, const yaml_mark_t *m, const char *fmt, va_list ap)
{
	char *what, *out;
	if (vasprintf(&what, fmt, ap) < 0)
		abort();
	if (c->path.n)
		out = xasprintf("line %zu column %zu: %s: %s", m->line + 1, m->column + 1, c->path.s, what);
	else
		out = xasprintf("line %zu column %zu: %s", m->line + 1, m->column + 1, what);
	free(what);
	return out;
}

static void __attribute__((format(printf, 3, 4))) yerr(struct yctx *c, const yaml_mark_t *m, const char *fmt, ...)
{
	va_list ap;
	if (c->err)
		return;
	va_start(ap, fmt);
	c->err = located(c, m, fmt, ap);
	va_end(ap);
}

static void __attribute__((format(printf, 3, 4))) ywarn(struct yctx *c, const yaml_mark_t *m, const char *fmt, ...)
{
	va_list ap;
	if (!c->o->warn)
		return;
	va_start(ap, fmt);
	char *msg = located(c, m, fmt, ap);
	va_end(ap);
	c->o->warn(msg, c->o->arg);
	free(msg);
}

/* The path grows by a key or an index while the value under it is read. */
static size_t path_push_key(struct yctx *c, const char *k)
{
	static const char plain[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-/";
	size_t at = c->path.n;
	if (*k && !k[strspn(k, plain)])
		sbuf_addf(&c->path, "%s%s", at ? "." : "", CLIP(k));
	else
		sbuf_addf(&c->path, "[%s]", CLIP(k));
	return at;
}

static size_t path_push_index(struct yctx *c, size_t i)
{
	size_t at = c->path.n;
	sbuf_addf(&c->path, "[%zu]", i);
	return at;
}

static void path_pop(struct yctx *c, size_t at)
{
	c->path.n = at;
	if (c->path.s)
		c->path.s[at] = '\0';
}

/* ---------- scalars ---------- */

static const char *const null_words[] = { "~", "null", "Null", "NULL" };
/* go-yaml v2's booleans; from index 3 on, YAML 1.1 only */
static const char *const bool_words[2][11] = {
	{ "false", "False", "FALSE", "n", "N", "no", "No", "NO", "off", "Off", "OFF" },
	{ "true", "True", "TRUE", "y", "Y", "yes", "Yes", "YES", "on", "On", "ON" },
};
static const char *const nonfinite_words[] = { ".inf",	".Inf",	 ".INF",  "+.inf", "+.Inf", "+.INF",
					       "-.inf", "-.Inf", "-.INF", ".nan",  ".NaN",  ".NAN" };

static int word_index(const char *s, const char *const *w, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(s, w[i]))
			return (int)i;
	return -1;
}

/* Go's strconv.ParseInt(s, 0, 64), which go-yaml v2 applies once "_" are
 * removed: 1 with *v, 0 if s is no integer, -ERANGE past 64 bits. *octal
 * tells a leading-zero octal ("010"), the reading people do not expect. */
static int go_parse_int(const char *s, long long *v, bool *octal)
{
	bool neg = false, big = false, lead0 = false;
	unsigned base = 10;
	unsigned long long u = 0;
	*octal = false;
	if (*s == '+' || *s == '-')
		neg = *s++ == '-';
	if (s[0] == '0' && s[1]) {
		char p = (char)tolower((unsigned char)s[1]);
		base = p == 'x' ? 16 : p == 'b' ? 2 : 8;
		lead0 = !strchr("xob", p);
		s += lead0 ? 1 : 2;
	}
	if (!*s)
		return 0;
	for (; *s; s++) {
		unsigned d = isdigit((unsigned char)*s)	 ? (unsigned)(*s - '0')
			     : isxdigit((unsigned char)*s) ? (unsigned)(tolower((unsigned char)*s) - 'a' + 10)
							   : 99;
		if (d >= base)
			return 0;
		if (u > (ULLONG_MAX - d) / base)
			big = true;
		else
			u = u * base + d;
	}
	if (big || u > (unsigned long long)LLONG_MAX + neg)
		return -ERANGE;
	*octal = lead0 && u >= 8; /* 00-07 read the same in both bases */
	*v = neg ? (u == (unsigned long long)LLONG_MAX + 1 ? LLONG_MIN : -(long long)u) : (long long)u;
	return 1;
}

/* go-yaml's yamlStyleFloat: [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? */
static bool float_syntax(const char *s)
{
	if (*s == '-' || *s == '+')
		s++;
	bool lead = isdigit((unsigned char)*s);
	while (isdigit((unsigned char)*s))
		s++;
	if (*s == '.') {
		s++;
		if (!lead && !isdigit((unsigned char)*s))
			return false;
		while (isdigit((unsigned char)*s))
			s++;
	} else if (!lead) {
		return false;
	}
	if (*s == 'e' || *s == 'E') {
		s++;
		if (*s == '-' || *s == '+')
			s++;
		if (!isdigit((unsigned char)*s))
			return false;
		while (isdigit((unsigned char)*s))
			s++;
	}
	return !*s;
}

/* s as a number: 1 with *out, 0 if it is none, -ERANGE if JSON (or the
 * int64 every Kubernetes integer fits) cannot carry it. */
static int number_value(const char *s, bool ints, json_t **out, bool *octal)
{
	long long i;
	int rc = ints ? go_parse_int(s, &i, octal) : 0;
	if (rc > 0)
		*out = json_integer(i);
	if (rc)
		return rc;
	if (!float_syntax(s))
		return 0;
	errno = 0;
	double d = strtod(s, NULL);
	if (errno == ERANGE || !isfinite(d))
		return -ERANGE;
	if (d != floor(d))
		*out = json_real(d);
	else if (d >= -9223372036854775808.0 && d < 9223372036854775808.0)
		*out = json_integer((json_int_t)d); /* kubectl's JSON has "9" for 09 */
	else
		return -ERANGE;
	return 1;
}

/* go-yaml removes every "_" before reading an integer or a float; a
 * scalar starting with '.' goes to Go's ParseFloat as written, which
 * takes "_" only between two digits. NULL: not a number. */
static char *without_underscores(const char *s, bool between_digits_only)
{
	char *out = xmalloc(strlen(s) + 1), *o = out;
	for (const char *p = s; *p; p++) {
		if (*p != '_') {
			*o++ = *p;
			continue;
		}
		if (between_digits_only &&
		    (p == s || !isdigit((unsigned char)p[-1]) || !isdigit((unsigned char)p[1]))) {
			free(out);
			return NULL;
		}
	}
	*o = '\0';
	return out;
}

static json_t *string_value(struct yctx *c, const yaml_mark_t *m, const char *s, size_t n)
{
	if (memchr(s, '\0', n)) {
		/* C strings would end there: "web\0x" would read as "web" */
		yerr(c, m, "a string holds a NUL character (\\0), which no Kubernetes field may hold");
		return NULL;
	}
	json_t *v = json_stringn(s, n);
	if (!v)
		yerr(c, m, "a string that is not valid UTF-8");
	return v;
}

static json_t *numeric_scalar(struct yctx *c, const yaml_event_t *ev, const char *s)
{
	json_t *v = NULL;
	bool octal = false;
	char *plain = without_underscores(s, s[0] == '.');
	int rc = plain ? number_value(plain, s[0] != '.', &v, &octal) : 0;
	free(plain);
	if (rc < 0) {
		yerr(c, &ev->start_mark, "%s is out of range: no JSON number can carry it (quote it if it is text)", CLIP(s));
		return NULL;
	}
	if (rc == 0)
		return string_value(c, &ev->start_mark, s, ev->data.scalar.length);
	if (!v)
		yerr(c, &ev->start_mark, "%s cannot be represented", CLIP(s));
	else if (octal)
		ywarn(c, &ev->start_mark, "%s is read as the octal number %lld, as kubectl reads it; write %lld, or quote it",
		      CLIP(s), (long long)json_integer_value(v), (long long)json_integer_value(v));
	return v;
}

static json_t *plain_scalar(struct yctx *c, const yaml_event_t *ev)
{
	const char *s = (const char *)ev->data.scalar.value;
	int w;
	if (!ev->data.scalar.length || word_index(s, null_words, ARRAY_SIZE(null_words)) >= 0)
		return json_null();
	for (int b = 0; b < 2; b++)
		if ((w = word_index(s, bool_words[b], ARRAY_SIZE(bool_words[b]))) >= 0) {
			if (w >= 3)
				ywarn(c, &ev->start_mark,
				      "%s is read as %s (a YAML 1.1 boolean, as kubectl reads it); quote it to mean the text",
				      s, b ? "true" : "false");
			return json_boolean(b);
		}
	if (word_index(s, nonfinite_words, ARRAY_SIZE(nonfinite_words)) >= 0) {
		yerr(c, &ev->start_mark, "%s is not a number JSON can carry", s);
		return NULL;
	}
	if (s[0] == '.' || s[0] == '+' || s[0] == '-' || isdigit((unsigned char)s[0]))
		return numeric_scalar(c, ev, s);
	return string_value(c, &ev->start_mark, s, ev->data.scalar.length);
}

/* !!int, !!float, !!bool and !!null take the plain reading of the text
 * (quoted or not), which must be of that type; !!binary is refused; any
 * other tag, as in go-yaml, leaves a string. */
static json_t *tagged_scalar(struct yctx *c, const yaml_event_t *ev, const char *tag)
{
	static const char *const types[] = { "int", "float", "bool", "null" };
	const char *t = strncmp(tag, YTAG, strlen(YTAG)) ? "" : tag + strlen(YTAG);
	const char *s = (const char *)ev->data.scalar.value;
	int k = word_index(t, types, ARRAY_SIZE(types));
	if (!strcmp(t, "binary")) {
		yerr(c, &ev->start_mark, "!!binary values are not supported");
		return NULL;
	}
	if (k < 0)
		return string_value(c, &ev->start_mark, s, ev->data.scalar.length);
	json_t *v = plain_scalar(c, ev);
	bool ok = !v || (k == 0 ? json_is_integer(v)
			 : k == 1 ? json_is_number(v)
			 : k == 2 ? json_is_boolean(v)
				  : json_is_null(v));
	if (!ok) {
		yerr(c, &ev->start_mark, "\"%s\" is not a valid !!%s", CLIP(s), t);
		json_decref(v);
		v = NULL;
	}
	return v;
}

static json_t *scalar_value(struct yctx *c, const yaml_event_t *ev)
{
	if (ev->data.scalar.tag)
		return tagged_scalar(c, ev, (const char *)ev->data.scalar.tag);
	if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return string_value(c, &ev->start_mark, (const char *)ev->data.scalar.value, ev->data.scalar.length);
	return plain_scalar(c, ev);
}

/* ---------- nodes ---------- */

static json_t *parse_node(struct yctx *c, yaml_event_t *ev);

static bool next_event(struct yctx *c, yaml_event_t *ev)
{
	if (!yaml_parser_parse(&c->p, ev)) {
		const yaml_mark_t *m = &c->p.problem_mark; /* a syntax error is at a place, not in a field */
		if (!c->err)
			c->err = xasprintf("line %zu column %zu: %s", m->line + 1, m->column + 1,
					   c->p.problem ? c->p.problem : "malformed YAML");
		return false;
	}
	return true;
}

static bool count_nodes(struct yctx *c, const yaml_mark_t *m, size_t n)
{
	c->nodes += n;
	if (c->nodes <= c->max_nodes)
		return true;
	yerr(c, m, "the document has more than %zu nodes (values, keys, alias expansions): refused; split it into "
		   "several documents",
	     c->max_nodes);
	return false;
}

/* Counts the nodes and string bytes of v, stopping once past limit nodes. */
static void json_cost(json_t *v, size_t limit, size_t *nodes, size_t *bytes)
{
	size_t i;
	const char *k;
	json_t *x;
	(*nodes)++;
	if (json_is_string(v))
		*bytes += json_string_length(v);
	if (json_is_array(v)) {
		json_array_foreach(v, i, x) {
			if (*nodes > limit)
				return;
			json_cost(x, limit, nodes, bytes);
		}
	} else if (json_is_object(v)) {
		json_object_foreach(v, k, x) {
			if (*nodes > limit)
				return;
			*bytes += strlen(k);
			json_cost(x, limit, nodes, bytes);
		}
	}
}

static void anchor_put(struct yctx *c, const unsigned char *name, json_t *v)
{
	if (!name || !v)
		return;
	c->anchors = xrealloc(c->anchors, (c->nanchors + 1) * sizeof(*c->anchors));
	c->anchors[c->nanchors].name = xstrdup((const char *)name);
	c->anchors[c->nanchors].val = json_incref(v);
	c->nanchors++;
}

static void anchors_truncate(struct yctx *c, size_t n)
{
	for (size_t k = n; k < c->nanchors; k++) {
		free(c->anchors[k].name);
		json_decref(c->anchors[k].val);
	}
	c->nanchors = n;
}

static void anchors_clear(struct yctx *c)
{
	anchors_truncate(c, 0);
	free(c->anchors);
	c->anchors = NULL;
}

static json_t *alias_value(struct yctx *c, const yaml_event_t *ev)
{
	for (size_t i = c->nanchors; i-- > 0;) {
		if (strcmp(c->anchors[i].name, (const char *)ev->data.alias.anchor))
			continue;
		size_t nodes = 0, bytes = 0;
		json_cost(c->anchors[i].val, YAML_MAX_ALIAS_NODES + 1, &nodes, &bytes);
		c->alias_nodes += nodes;
		c->alias_bytes += bytes;
		if (c->alias_nodes > YAML_MAX_ALIAS_NODES || c->alias_bytes > YAML_MAX_ALIAS_BYTES) {
			yerr(c, &ev->start_mark, "aliases expand to too many nodes");
			return NULL;
		}
		if (!count_nodes(c, &ev->start_mark, nodes))
			return NULL;
		return json_incref(c->anchors[i].val); /* shared: nothing writes into a document */
	}
	yerr(c, &ev->start_mark, "unknown alias");
	return NULL;
}

static json_t *parse_seq(struct yctx *c)
{
	json_t *arr = json_array();
	yaml_event_t ev;
	for (size_t i = 0;; i++) {
		if (!next_event(c, &ev))
			goto fail;
		if (ev.type == YAML_SEQUENCE_END_EVENT) {
			yaml_event_delete(&ev);
			return arr;
		}
		size_t at = path_push_index(c, i);
		json_t *v = parse_node(c, &ev);
		yaml_mark_t m = ev.start_mark;
		yaml_event_delete(&ev);
		if (v && json_array_append_new(arr, v) < 0)
			yerr(c, &m, "the value cannot be stored");
		path_pop(c, at);
		if (!v || c->err)
			goto fail;
	}
fail:
	json_decref(arr);
	return NULL;
}

/* A mapping key as the JSON kubectl sends has it: sigs.k8s.io/yaml turns
 * go-yaml's integer and boolean keys into text (010 is "8", on is
 * "true"); "<<" (plain) is a merge. NULL: an error was set. */
static char *key_text(struct yctx *c, const yaml_event_t *ev, bool *merge)
{
	*merge = false;
	if (ev->type != YAML_SCALAR_EVENT) {
		yerr(c, &ev->start_mark, "mapping keys must be scalars");
		return NULL;
	}
	const char *raw = (const char *)ev->data.scalar.value;
	if (!ev->data.scalar.tag && ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && !strcmp(raw, "<<")) {
		*merge = true;
		return xstrdup("<<");
	}
	json_t *k = scalar_value(c, ev);
	char *s = NULL;
	if (json_is_string(k))
		s = xstrdup(json_string_value(k));
	else if (json_is_integer(k))
		s = xasprintf("%lld", (long long)json_integer_value(k));
	else if (json_is_boolean(k))
		s = xstrdup(json_is_true(k) ? "true" : "false");
	else if (k)
		yerr(c, &ev->start_mark, "the key %s reads as %s, which a JSON object cannot have as a key: quote it",
		     CLIP(raw), json_is_null(k) ? "null" : "a fraction");
	anchor_put(c, ev->data.scalar.anchor, k);
	json_decref(k);
	return s;
}

/* An explicit key: a key set by an earlier << may be overridden (every
 * reader agrees that explicit keys win), any other repeat is an error. */
static int map_set(struct yctx *c, json_t *obj, json_t *merged, const char *key, json_t *v, const yaml_mark_t *km)
{
	if (json_object_get(obj, key)) {
		if (!merged || !json_object_get(merged, key)) {
			yerr(c, km, "duplicate key \"%s\"", CLIP(key));
			json_decref(v);
			return -1;
		}
		json_object_del(merged, key);
	}
	if (json_object_set_new(obj, key, v) < 0) {
		yerr(c, km, "the key \"%s\" cannot be stored", CLIP(key));
		return -1;
	}
	return 0;
}

/* <<: a mapping or a list of mappings (the earlier wins), merged as go-yaml
 * v2 does. go-yaml lets the merge overwrite keys written before the <<,
 * other readers do not: such a key is an error, not a guess. */
static int map_merge(struct yctx *c, json_t *obj, json_t **merged, json_t *v, const yaml_mark_t *km)
{
	if (*merged) {
		yerr(c, km, "duplicate key \"<<\"");
		return -1;
	}
	*merged = json_object();
	size_t n = json_is_array(v) ? json_array_size(v) : 1;
	for (size_t i = 0; i < n; i++) {
		json_t *src = json_is_array(v) ? json_array_get(v, i) : v, *x;
		const char *k;
		if (!json_is_object(src)) {
			yerr(c, km, "<< merges mappings only");
			return -1;
		}
		json_object_foreach(src, k, x) {
			if (json_object_get(*merged, k))
				continue;
			if (json_object_get(obj, k)) {
				yerr(c, km, "\"%s\" is set before << and by it: YAML readers disagree on which wins; put << first",
				     CLIP(k));
				return -1;
			}
			if (json_object_set(obj, k, x) < 0 || json_object_set_new(*merged, k, json_null()) < 0) {
				yerr(c, km, "the key \"%s\" cannot be stored", CLIP(k));
				return -1;
			}
		}
	}
	return 0;
}

/* The items of a document's top-level "items" sequence (a List, as
 * `kubectl get -o yaml` writes), handed over one by one as they are read,
 * each with a node budget of its own: a List costs what its largest item
 * does, not the whole file. The document keeps an empty "items". */
static json_t *stream_items(struct yctx *c)
{
	yaml_event_t ev;
	size_t nodes = c->nodes;
	for (size_t i = 0;; i++) {
		if (!next_event(c, &ev))
			return NULL;
		if (ev.type == YAML_SEQUENCE_END_EVENT) {
			yaml_event_delete(&ev);
			c->nodes = nodes;
			return json_array();
		}
		size_t at = path_push_index(c, i), line = ev.start_mark.line + 1, nanchors = c->nanchors;
		c->nodes = 0;
		json_t *v = parse_node(c, &ev);
		yaml_event_delete(&ev);
		path_pop(c, at);
		anchors_truncate(c, nanchors); /* an item's anchors would keep it alive past its budget */
		if (!v)
			return NULL;
		c->o->item(v, line, c->o->arg);
		json_decref(v);
	}
}

static int map_entry(struct yctx *c, json_t *obj, json_t **merged, const char *key, bool merge, const yaml_mark_t *km)
{
	yaml_event_t ev;
	json_t *v;
	if (!count_nodes(c, km, 1) || !next_event(c, &ev)) /* the key costs a node too */
		return -1;
	if (c->o->item && c->depth == 1 && !merge && !strcmp(key, "items") && ev.type == YAML_SEQUENCE_START_EVENT &&
	    !ev.data.sequence_start.anchor)
		v = stream_items(c);
	else
		v = parse_node(c, &ev);
	yaml_event_delete(&ev);
	if (!v)
		return -1;
	if (!merge)
		return map_set(c, obj, *merged, key, v, km);
	int rc = map_merge(c, obj, merged, v, km);
	json_decref(v);
	return rc;
}

static json_t *parse_map(struct yctx *c)
{
	json_t *obj = json_object(), *merged = NULL; /* keys that came from << */
	yaml_event_t ev;
	for (;;) {
		if (!next_event(c, &ev))
			break;
		if (ev.type == YAML_MAPPING_END_EVENT) {
			yaml_event_delete(&ev);
			json_decref(merged);
			return obj;
		}
		bool merge;
		yaml_mark_t km = ev.start_mark;
		char *key = key_text(c, &ev, &merge);
		yaml_event_delete(&ev);
		if (!key)
			break;
		size_t at = path_push_key(c, key);
		int rc = map_entry(c, obj, &merged, key, merge, &km);
		path_pop(c, at);
		free(key);
		if (rc < 0)
			break;
	}
	json_decref(merged);
	json_decref(obj);
	return NULL;
}

static json_t *parse_node(struct yctx *c, yaml_event_t *ev)
{
	json_t *v = NULL;
	if (++c->depth > YAML_MAX_DEPTH) {
		yerr(c, &ev->start_mark, "nesting too deep");
	} else if (ev->type == YAML_ALIAS_EVENT) {
		v = alias_value(c, ev);
	} else if (count_nodes(c, &ev->start_mark, 1)) {
		unsigned char *anchor = NULL;
		if (ev->type == YAML_SCALAR_EVENT) {
			anchor = ev->data.scalar.anchor;
			v = scalar_value(c, ev);
		} else if (ev->type == YAML_SEQUENCE_START_EVENT) {
			anchor = ev->data.sequence_start.anchor;
			v = parse_seq(c);
		} else if (ev->type == YAML_MAPPING_START_EVENT) {
			anchor = ev->data.mapping_start.anchor;
			v = parse_map(c);
		}
		anchor_put(c, anchor, v);
	}
	c->depth--;
	if (!v) /* never a silent stop: whatever failed, the file fails */
		yerr(c, &ev->start_mark, "unexpected YAML event or a value that cannot be represented");
	return v;
}

/* ---------- documents ---------- */

static void read_document(struct yctx *c, size_t line)
{
	yaml_event_t ev;
	c->nodes = c->alias_nodes = c->alias_bytes = 0;
	if (!next_event(c, &ev))
		return;
	json_t *v = parse_node(c, &ev);
	yaml_event_delete(&ev);
	anchors_clear(c); /* anchors are per document, as in go-yaml */
	if (!v)
		return;
	if (next_event(c, &ev)) {
		if (ev.type != YAML_DOCUMENT_END_EVENT)
			yerr(c, &ev.start_mark, "expected the end of the document");
		yaml_event_delete(&ev);
	}
	if (!c->err && !json_is_null(v) && c->o->doc)
		c->o->doc(v, line, c->o->arg);
	json_decref(v);
}

/* An upper bound of the values and keys of a JSON text, known before
 * jansson builds it: one more than its separators and openings. */
static size_t json_node_bound(const char *buf, size_t len)
{
	size_t n = 1;
	bool in_str = false;
	for (size_t i = 0; i < len; i++) {
		char ch = buf[i];
		if (in_str) {
			if (ch == '\\')
				i++;
			else if (ch == '"')
				in_str = false;
		} else if (ch == '"') {
			in_str = true;
		} else if (ch == ',' || ch == ':' || ch == '[' || ch == '{') {
			n++;
		}
	}
	return n;
}

/* JSON as kubectl passes it on: Go reads numbers as float64 and writes an
 * integral one without a fraction, so 80.0 is the port 80. */
static void json_integral_reals(json_t *v)
{
	size_t i;
	const char *k;
	json_t *x;
	if (json_is_array(v)) {
		json_array_foreach(v, i, x) {
			double d = json_is_real(x) ? json_real_value(x) : 0.5;
			if (d == floor(d) && fabs(d) < 9e15)
				json_array_set_new(v, i, json_integer((json_int_t)d));
			else
				json_integral_reals(x);
		}
	} else if (json_is_object(v)) {
		json_object_foreach(v, k, x) {
			double d = json_is_real(x) ? json_real_value(x) : 0.5;
			if (d == floor(d) && fabs(d) < 9e15)
				json_object_set_new(v, k, json_integer((json_int_t)d));
			else
				json_integral_reals(x);
		}
	}
}

/* ---------- a JSON List, item by item ---------- */

static size_t json_ws(const char *b, size_t i, size_t len)
{
	while (i < len && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r'))
		i++;
	return i;
}

/* The closing quote of a string whose text starts at b[i] (past its
 * opening quote): its index, or len or more when it has none. A backslash
 * takes the byte after it as it is. Eight bytes a step where the host
 * reads words little-endian (the byte-at-a-time loop was 0.4 G
 * instructions of the agent's start at 150,000 pods): a word's first
 * quote or backslash is its lowest byte whose value matches (the
 * has-zero-byte test sets no bit below the first match). */
static size_t json_str_close(const char *b, size_t i, size_t len)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
	while (len >= 8 && i <= len - 8) {
		uint64_t w, q, e, m;
		memcpy(&w, b + i, 8);
		q = w ^ (ones * '"');
		e = w ^ (ones * '\\');
		m = (((q - ones) & ~q) | ((e - ones) & ~e)) & highs;
		if (!m) {
			i += 8;
			continue;
		}
		i += (size_t)__builtin_ctzll(m) / 8;
		if (b[i] == '"')
			return i;
		i += 2; /* the backslash and the byte it takes */
	}
#endif
	for (; i < len && b[i] != '"'; i++)
		if (b[i] == '\\')
			i++;
	return i;
}

/* What json_value_end makes of a byte outside strings. */
enum { JV_NONE, JV_QUOTE, JV_OPEN, JV_CLOSE, JV_SEP };
static const unsigned char jv_class[256] = {
	['"'] = JV_QUOTE, ['{'] = JV_OPEN, ['['] = JV_OPEN, ['}'] = JV_CLOSE, [']'] = JV_CLOSE,
	[','] = JV_SEP, [' '] = JV_SEP, ['\n'] = JV_SEP, ['\r'] = JV_SEP, ['\t'] = JV_SEP,
};

/* Where the JSON value starting at b[i] ends (one past it), or len when it
 * does not end well: strings and nesting are followed, nothing is built. */
static size_t json_value_end(const char *b, size_t i, size_t len)
{
	size_t depth = 0;
	for (; i < len; i++) {
		switch (jv_class[(unsigned char)b[i]]) {
		case JV_NONE:
			break;
		case JV_QUOTE:
			i = json_str_close(b, i + 1, len);
			if (i >= len)
				return len;
			if (!depth)
				return i + 1;
			break;
		case JV_OPEN:
			depth++;
			break;
		case JV_CLOSE:
			if (!depth)
				return i; /* a scalar ended by its container */
			if (!--depth)
				return i + 1;
			break;
		case JV_SEP:
			if (!depth)
				return i;
			break;
		}
	}
	return len;
}

size_t kube_json_value_end(const char *b, size_t i, size_t len)
{
	return json_value_end(b, i, len);
}

/* managedFields: the server's record of which manager owns which field,
 * about 40% of a real server's object (1.7 KB of a 4.5 KB pod), of which
 * corral reads nothing. Cut out before jansson builds it: a member of an
 * object whose key is exactly "managedFields" and whose value is an array
 * (the scan follows strings, keys and nesting, so a label or annotation of
 * that name, or the text inside a string, is kept). NULL when there is
 * nothing to cut or the text does not scan well (then the original is
 * parsed, and its errors reported, as it is). */
char *kube_json_strip_managed(const char *b, size_t n, size_t *outlen)
{
	static const char key[] = "\"managedFields\"";
	const size_t kl = sizeof(key) - 1;
	if (!memmem(b, n, key, kl))
		return NULL;
	char stack[128];
	int depth = 0;
	bool want_key = false, cut = false;
	char *o = xmalloc(n + 1);
	size_t w = 0, from = 0;
	for (size_t i = 0; i < n; i++) {
		char c = b[i];
		if (c == '"') {
			size_t s = i;
			for (i++; i < n && b[i] != '"'; i++)
				if (b[i] == '\\')
					i++;
			if (i >= n)
				goto give_up;
			bool is_key = want_key && depth && stack[depth - 1] == '{';
			want_key = false;
			if (!is_key || i - s + 1 != kl || memcmp(b + s, key, kl))
				continue;
			size_t j = json_ws(b, i + 1, n);
			if (j >= n || b[j] != ':')
				goto give_up;
			j = json_ws(b, j + 1, n);
			if (j >= n || b[j] != '[')
				continue; /* not the server's list: kept */
			size_t e = json_value_end(b, j, n);
			if (e >= n || e <= j || b[e - 1] != ']')
				goto give_up;
			size_t k = json_ws(b, e, n);
			memcpy(o + w, b + from, s - from);
			w += s - from;
			if (k < n && b[k] == ',') { /* a member follows: the comma goes with it */
				from = json_ws(b, k + 1, n);
				want_key = true;
			} else { /* the last member: the comma before it goes */
				while (w && (o[w - 1] == ' ' || o[w - 1] == '\t' || o[w - 1] == '\n' || o[w - 1] == '\r'))
					w--;
				if (w && o[w - 1] == ',')
					w--;
				from = e;
			}
			i = from - 1;
			cut = true;
			continue;
		}
		if (c == '{' || c == '[') {
			if (depth == (int)sizeof(stack))
				goto give_up;
			stack[depth++] = c;
			want_key = c == '{';
		} else if (c == '}' || c == ']') {
			if (!depth)
				goto give_up;
			depth--;
		} else if (c == ',') {
			want_key = depth && stack[depth - 1] == '{';
		}
	}
	if (!cut)
		goto give_up;
	memcpy(o + w, b + from, n - from);
	w += n - from;
	o[w] = 0;
	*outlen = w;
	return o;
give_up:
	free(o);
	return NULL;
}

/* The span of the top-level object's "items" array, [*lo, *hi) holding the
 * brackets; false if there is none to be found. */
static bool json_items_span(const char *b, size_t len, size_t *lo, size_t *hi)
{
	size_t i = json_ws(b, 0, len);
	if (i >= len || b[i] != '{')
		return false;
	for (i = json_ws(b, i + 1, len); i < len && b[i] == '"';) {
		size_t kend = json_value_end(b, i, len);
		bool is_items = kend - i == 7 && !memcmp(b + i, "\"items\"", 7);
		i = json_ws(b, kend, len);
		if (i >= len || b[i] != ':')
			return false;
		size_t v = json_ws(b, i + 1, len), vend = json_value_end(b, v, len);
		if (vend >= len)
			return false;
		if (is_items && b[v] == '[') {
			*lo = v;
			*hi = vend;
			return true;
		}
		i = json_ws(b, vend, len);
		if (i < len && b[i] == ',')
			i = json_ws(b, i + 1, len);
	}
	return false;
}

static size_t line_at(const char *b, size_t i)
{
	size_t n = 1;
	for (size_t k = 0; k < i; k++)
		n += b[k] == '\n';
	return n;
}

static int json_load_bounded(const char *buf, size_t len, size_t max, size_t flags, size_t line0, json_t **out,
			     char **err)
{
	json_error_t je;
	if (max != SIZE_MAX && json_node_bound(buf, len) > max) {
		*err = xasprintf("line %zu: the document has more than %zu nodes (values, keys): refused; split it", line0,
				 max);
		return -EINVAL;
	}
	if (!(*out = json_loadb(buf, len, flags, &je))) {
		*err = xasprintf("line %zu column %d: %s", line0 + (size_t)je.line - 1, je.column, je.text);
		return -EINVAL;
	}
	json_integral_reals(*out);
	return 0;
}

static int json_item_load(const char *b, size_t n, size_t max, size_t flags, size_t line, json_t **out, char **err)
{
	size_t slen = 0;
	char *stripped = kube_json_strip_managed(b, n, &slen);
	int rc = json_load_bounded(stripped ? stripped : b, stripped ? slen : n, max, flags, line, out, err);
	free(stripped);
	return rc;
}

int kube_json_item_load(const char *b, size_t n, size_t flags, json_t **out, char **err)
{
	*out = NULL;
	return json_item_load(b, n, SIZE_MAX, flags, 1, out, err);
}

/* A JSON List too large for one budget (`kubectl get -A -o json`): each
 * item is read on its own budget and handed over as it is read, then the
 * List itself with "items": [], as the YAML reader does (on an error the
 * caller discards what it was handed: a file is used whole or not at all). */
static int read_json_list(const char *buf, size_t len, const struct kube_yaml_opts *o, size_t max, size_t flags,
			  size_t lo, size_t hi, char **err)
{
	size_t line = 1, at = 0; /* lines counted once, as the items go by */
	/* what jansson does not see is checked here: the ']' that closes the
	 * items (json_value_end balances '[' against '}' too), the commas */
	if (buf[hi - 1] != ']') {
		*err = xasprintf("line %zu: the items of a List end with '%c', not ']'", line_at(buf, hi - 1), buf[hi - 1]);
		return -EINVAL;
	}
	for (size_t i = json_ws(buf, lo + 1, hi); i < hi - 1;) {
		size_t used = o->raw ? o->raw(buf + i, hi - 1 - i, o->arg) : 0;
		size_t end = used ? i + used : json_value_end(buf, i, hi - 1);
		json_t *v = NULL;
		if (!used) {
			for (; at < i; at++) /* lines counted only for the items jansson reads */
				line += buf[at] == '\n';
			if (json_item_load(buf + i, end - i, max, flags, line, &v, err) < 0)
				return -EINVAL;
			o->item(v, line, o->arg);
			json_decref(v);
		}
		i = json_ws(buf, end, hi - 1);
		if (i == hi - 1)
			break; /* the last item */
		if (buf[i] != ',') {
			*err = xasprintf("line %zu: expected ',' between the items of a List", line_at(buf, i));
			return -EINVAL;
		}
		i = json_ws(buf, i + 1, hi - 1);
		if (i == hi - 1) {
			*err = xasprintf("line %zu: a ',' after the last item of a List", line_at(buf, i));
			return -EINVAL;
		}
	}
	/* the List without its items, byte for byte (a NUL included: it must
	 * fail here as it does read whole, not cut the text short) */
	json_t *doc = NULL;
	size_t rlen = lo + 2 + (len - hi);
	char *rest = xmalloc(rlen);
	memcpy(rest, buf, lo);
	memcpy(rest + lo, "[]", 2);
	memcpy(rest + lo + 2, buf + hi, len - hi);
	int rc = json_load_bounded(rest, rlen, max, flags, 1, &doc, err);
	free(rest);
	if (rc == 0 && o->doc)
		o->doc(doc, 1, o->arg);
	json_decref(doc);
	return rc;
}

static int read_json(const char *buf, size_t len, const struct kube_yaml_opts *o, size_t max, char **err)
{
	json_error_t je;
	size_t lo, hi;
	if (json_node_bound(buf, len) > max && o->item && json_items_span(buf, len, &lo, &hi))
		/* strict JSON, as kubectl's JSON decoder: no duplicate keys, no \u0000 */
		return read_json_list(buf, len, o, max, JSON_REJECT_DUPLICATES, lo, hi, err);
	if (json_node_bound(buf, len) > max) {
		*err = xasprintf("the document has more than %zu nodes (values, keys): refused; split it", max);
		return -EINVAL;
	}
	/* strict JSON, as kubectl's JSON decoder: no duplicate keys, no \u0000 */
	json_t *v = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
	if (!v) {
		*err = xasprintf("line %d column %d: %s", je.line, je.column, je.text);
		return -EINVAL;
	}
	json_integral_reals(v);
	if (!json_is_null(v) && o->doc)
		o->doc(v, 1, o->arg);
	json_decref(v);
	return 0;
}

int kube_yaml_each(const char *buf, size_t len, const struct kube_yaml_opts *o, char **err)
{
	struct yctx c = { .o = o, .max_nodes = o->max_doc_nodes ? o->max_doc_nodes : KUBE_YAML_MAX_DOC_NODES };
	yaml_event_t ev;
	size_t i = 0;
	*err = NULL;
	while (i < len && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\n' || buf[i] == '\r'))
		i++;
	if (i < len && (buf[i] == '{' || buf[i] == '['))
		return read_json(buf, len, o, c.max_nodes, err);
	if (memchr(buf, '\0', len)) {
		*err = xstrdup("file holds a NUL byte: not a YAML or JSON manifest");
		return -EINVAL;
	}
	yaml_parser_initialize(&c.p);
	yaml_parser_set_input_string(&c.p, (const unsigned char *)buf, len);
	while (!c.err && next_event(&c, &ev)) {
		yaml_event_type_t t = ev.type;
		size_t line = ev.start_mark.line + 1;
		yaml_event_delete(&ev);
		if (t == YAML_STREAM_END_EVENT || t == YAML_NO_EVENT)
			break;
		if (t == YAML_DOCUMENT_START_EVENT)
			read_document(&c, line);
	}
	anchors_clear(&c);
	yaml_parser_delete(&c.p);
	sbuf_free(&c.path);
	if (c.err) {
		*err = c.err;
		return -EINVAL;
	}
	return 0;
}

static void collect(json_t *doc, size_t line, void *arg)
{
	(void)line;
	vec_push(arg, json_incref(doc));
}

int kube_yaml_parse(const char *buf, size_t len, struct vec *docs, char **err)
{
	struct kube_yaml_opts o = { .doc = collect, .arg = docs };
	size_t first = docs->n;
	int rc = kube_yaml_each(buf, len, &o, err);
	if (rc < 0) {
		for (size_t k = first; k < docs->n; k++)
			json_decref(docs->v[k]);
		docs->n = first;
	}
	return rc;
}

/* ---------- a List from the API, item by item ---------- */

struct api_list {
	void (*item)(json_t *item, void *arg);
	void (*doc)(json_t *list, void *arg);
	size_t (*raw)(const char *b, size_t n, void *arg);
	void *arg;
};

static void api_item(json_t *v, size_t line, void *arg)
{
	struct api_list *a = arg;
	(void)line;
	a->item(v, a->arg);
}

static void api_doc(json_t *v, size_t line, void *arg)
{
	struct api_list *a = arg;
	(void)line;
	a->doc(v, a->arg);
}

static size_t api_raw(const char *b, size_t n, void *arg)
{
	struct api_list *a = arg;
	return a->raw(b, n, a->arg);
}

int kube_json_list_each(const char *buf, size_t len, size_t flags, void (*item)(json_t *item, void *arg),
			void (*doc)(json_t *list, void *arg), void *arg, char **err)
{
	return kube_json_list_each_raw(buf, len, flags, NULL, item, doc, arg, err);
}

int kube_json_list_each_raw(const char *buf, size_t len, size_t flags, size_t (*raw)(const char *b, size_t n, void *arg),
			    void (*item)(json_t *item, void *arg), void (*doc)(json_t *list, void *arg), void *arg,
			    char **err)
{
	struct api_list a = { item, doc, raw, arg };
	struct kube_yaml_opts o = { .item = api_item, .doc = api_doc, .arg = &a, .raw = raw ? api_raw : NULL };
	size_t lo, hi;
	*err = NULL;
	if (json_items_span(buf, len, &lo, &hi))
		return read_json_list(buf, len, &o, SIZE_MAX, flags, lo, hi, err);
	json_t *v = NULL;
	int rc = json_load_bounded(buf, len, SIZE_MAX, flags, 1, &v, err);
	if (rc == 0)
		doc(v, arg);
	json_decref(v);
	return rc;
}

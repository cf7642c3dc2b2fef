#include "yaml.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

struct anchor_ent {
	char *name;
	json_t *val;
};

struct yctx {
	yaml_parser_t p;
	struct anchor_ent *anchors;
	size_t nanchors;
	char *err;
	int depth;
	size_t alias_nodes; /* nodes copied through aliases, against "billion laughs" */
};

#define YAML_MAX_ALIAS_NODES 100000

#define YAML_MAX_DEPTH 128

static bool is_int(const char *s)
{
	if (*s == '-' || *s == '+')
		s++;
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

static bool is_float(const char *s)
{
	char *end;
	if (!*s || strchr(s, 'x') || strchr(s, 'X') || !strpbrk(s, "0123456789"))
		return false;
	strtod(s, &end);
	return *end == '\0' && !strpbrk(s, "nNiI");
}

/* YAML 1.2 core schema for plain scalars; quoted scalars are strings. */
static json_t *scalar_value(const yaml_event_t *ev)
{
	const char *s = (const char *)ev->data.scalar.value;
	size_t n = ev->data.scalar.length;
	if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE || ev->data.scalar.tag)
		return json_stringn(s, n);
	if (!n || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL"))
		return json_null();
	if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE"))
		return json_true();
	if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE"))
		return json_false();
	if (is_int(s) && n < 19)
		return json_integer(strtoll(s, NULL, 10));
	if (is_float(s))
		return json_real(strtod(s, NULL));
	return json_stringn(s, n);
}

static void yerr(struct yctx *c, const yaml_mark_t *m, const char *what)
{
	if (!c->err)
		c->err = xasprintf("line %zu column %zu: %s", m->line + 1, m->column + 1, what);
}

static json_t *parse_node(struct yctx *c, yaml_event_t *ev);

/* Counts the nodes of v, stopping once past limit. */
static size_t json_count(json_t *v, size_t limit)
{
	size_t n = 1;
	size_t i;
	const char *k;
	json_t *x;
	if (json_is_array(v)) {
		json_array_foreach(v, i, x) {
			if (n > limit)
				break;
			n += json_count(x, limit - n);
		}
	} else if (json_is_object(v)) {
		json_object_foreach(v, k, x) {
			if (n > limit)
				break;
			n += json_count(x, limit - n);
		}
	}
	return n;
}

static void anchor_put(struct yctx *c, const unsigned char *name, json_t *v)
{
	if (!name)
		return;
	c->anchors = xrealloc(c->anchors, (c->nanchors + 1) * sizeof(*c->anchors));
	c->anchors[c->nanchors].name = xstrdup((const char *)name);
	c->anchors[c->nanchors].val = json_incref(v);
	c->nanchors++;
}

static bool next_event(struct yctx *c, yaml_event_t *ev)
{
	if (!yaml_parser_parse(&c->p, ev)) {
		yerr(c, &c->p.problem_mark, c->p.problem ? c->p.problem : "malformed YAML");
		return false;
	}
	return true;
}

static json_t *parse_seq(struct yctx *c)
{
	json_t *arr = json_array();
	yaml_event_t ev;
	for (;;) {
		if (!next_event(c, &ev))
			goto fail;
		if (ev.type == YAML_SEQUENCE_END_EVENT) {
			yaml_event_delete(&ev);
			return arr;
		}
		json_t *v = parse_node(c, &ev);
		yaml_event_delete(&ev);
		if (!v)
			goto fail;
		json_array_append_new(arr, v);
	}
fail:
	json_decref(arr);
	return NULL;
}

static json_t *parse_map(struct yctx *c)
{
	json_t *obj = json_object();
	yaml_event_t ev;
	for (;;) {
		if (!next_event(c, &ev))
			goto fail;
		if (ev.type == YAML_MAPPING_END_EVENT) {
			yaml_event_delete(&ev);
			return obj;
		}
		if (ev.type != YAML_SCALAR_EVENT) {
			yerr(c, &ev.start_mark, "mapping keys must be scalars");
			yaml_event_delete(&ev);
			goto fail;
		}
		char *key = xstrdup((const char *)ev.data.scalar.value);
		yaml_mark_t km = ev.start_mark;
		yaml_event_delete(&ev);
		if (!next_event(c, &ev)) {
			free(key);
			goto fail;
		}
		json_t *v = parse_node(c, &ev);
		yaml_event_delete(&ev);
		if (!v) {
			free(key);
			goto fail;
		}
		if (json_object_get(obj, key)) {
			char *m = xasprintf("duplicate key \"%s\"", key);
			yerr(c, &km, m);
			free(m);
			free(key);
			json_decref(v);
			goto fail;
		}
		json_object_set_new(obj, key, v);
		free(key);
	}
fail:
	json_decref(obj);
	return NULL;
}

static json_t *parse_node(struct yctx *c, yaml_event_t *ev)
{
	json_t *v = NULL;
	if (++c->depth > YAML_MAX_DEPTH) {
		yerr(c, &ev->start_mark, "nesting too deep");
		c->depth--;
		return NULL;
	}
	switch (ev->type) {
	case YAML_SCALAR_EVENT:
		v = scalar_value(ev);
		anchor_put(c, ev->data.scalar.anchor, v);
		break;
	case YAML_SEQUENCE_START_EVENT: {
		unsigned char *a = ev->data.sequence_start.anchor;
		v = parse_seq(c);
		if (v)
			anchor_put(c, a, v);
		break;
	}
	case YAML_MAPPING_START_EVENT: {
		unsigned char *a = ev->data.mapping_start.anchor;
		v = parse_map(c);
		if (v)
			anchor_put(c, a, v);
		break;
	}
	case YAML_ALIAS_EVENT:
		for (size_t i = c->nanchors; i-- > 0;)
			if (!strcmp(c->anchors[i].name, (const char *)ev->data.alias.anchor)) {
				c->alias_nodes += json_count(c->anchors[i].val, YAML_MAX_ALIAS_NODES);
				if (c->alias_nodes > YAML_MAX_ALIAS_NODES) {
					yerr(c, &ev->start_mark, "aliases expand to too many nodes");
					c->depth--;
					return NULL;
				}
				v = json_deep_copy(c->anchors[i].val);
				break;
			}
		if (!v && !c->err)
			yerr(c, &ev->start_mark, "unknown alias");
		break;
	default:
		yerr(c, &ev->start_mark, "unexpected YAML event");
		break;
	}
	c->depth--;
	return v;
}

static int parse_json(const char *buf, size_t len, struct vec *docs, char **err)
{
	json_error_t je;
	json_t *v = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
	if (!v) {
		*err = xasprintf("line %d column %d: %s", je.line, je.column, je.text);
		return -EINVAL;
	}
	vec_push(docs, v);
	return 0;
}

int kube_yaml_parse(const char *buf, size_t len, struct vec *docs, char **err)
{
	struct yctx c = { 0 };
	yaml_event_t ev;
	size_t first = docs->n;
	size_t i = 0;
	*err = NULL;
	while (i < len && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\n' || buf[i] == '\r'))
		i++;
	if (i < len && (buf[i] == '{' || buf[i] == '['))
		return parse_json(buf, len, docs, err);
	if (memchr(buf, '\0', len)) {
		*err = xstrdup("file holds a NUL byte: not a YAML or JSON manifest");
		return -EINVAL;
	}
	yaml_parser_initialize(&c.p);
	yaml_parser_set_input_string(&c.p, (const unsigned char *)buf, len);
	for (;;) {
		if (!next_event(&c, &ev))
			break;
		if (ev.type == YAML_STREAM_END_EVENT) {
			yaml_event_delete(&ev);
			break;
		}
		if (ev.type == YAML_DOCUMENT_START_EVENT) {
			yaml_event_delete(&ev);
			if (!next_event(&c, &ev))
				break;
			json_t *v = parse_node(&c, &ev);
			yaml_event_delete(&ev);
			if (!v)
				break;
			if (json_is_null(v))
				json_decref(v);
			else
				vec_push(docs, v);
			if (!next_event(&c, &ev)) /* document end */
				break;
		}
		yaml_event_delete(&ev);
	}
	for (size_t k = 0; k < c.nanchors; k++) {
		free(c.anchors[k].name);
		json_decref(c.anchors[k].val);
	}
	free(c.anchors);
	yaml_parser_delete(&c.p);
	if (c.err) {
		for (size_t k = first; k < docs->n; k++)
			json_decref(docs->v[k]);
		docs->n = first;
		*err = c.err;
		return -EINVAL;
	}
	return 0;
}

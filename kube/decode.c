#define _GNU_SOURCE
#include "decode.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/clip.h"
#include "policy/fqdn.h"

struct dctx {
	const struct decode_opts *o;
	struct diags *d;
	const char *file;
	const char *kind;
	/* the object, "ns/name" or "name" in messages (written out only for
	 * one): pointers into the object being decoded or its options */
	const char *obj_ns, *obj_name;
	bool invalid;   /* an error that makes the policy allow nothing */
	bool target_unknown; /* the policy's targets could not be read */
	char *first;    /* first error message */
};

/* A field path ("spec.ingress[3].from[0].podSelector"), written out only
 * when a message names it: each level of the walk adds a segment on its
 * own stack, and a field read without a problem costs no text at all
 * (formatting every path up front was 0.5 G instructions of the agent's
 * start at 150,000 pods). Every message reads as it did when the walk
 * built the text itself. */
enum fseg {
	FP_TEXT,  /* s as it is ("", "spec.podSelector", a rule's path) */
	FP_FIELD, /* ".s", or s alone after an empty path */
	FP_DOT,   /* ".s", whatever comes before */
	FP_INDEX, /* "[i]" */
	FP_KEY,   /* "[s]" (a label key) */
};
struct fpath {
	const struct fpath *up;
	enum fseg seg;
	const char *s;
	size_t i;
};
/* Segments live until the end of the enclosing block (compound literals). */
#define FP(text) (&(const struct fpath){ NULL, FP_TEXT, (text), 0 })
#define FP_FIELD(up, name) (&(const struct fpath){ (up), FP_FIELD, (name), 0 })
#define FP_DOT(up, name) (&(const struct fpath){ (up), FP_DOT, (name), 0 })
#define FP_INDEX(up, idx) (&(const struct fpath){ (up), FP_INDEX, NULL, (idx) })
#define FP_KEY(up, key) (&(const struct fpath){ (up), FP_KEY, (key), 0 })

static void fpath_put(struct sbuf *b, const struct fpath *p)
{
	if (!p)
		return;
	fpath_put(b, p->up);
	switch (p->seg) {
	case FP_TEXT:
		sbuf_add(b, p->s);
		break;
	case FP_FIELD:
		if (b->n)
			sbuf_add(b, ".");
		sbuf_add(b, p->s);
		break;
	case FP_DOT:
		sbuf_add(b, ".");
		sbuf_add(b, p->s);
		break;
	case FP_INDEX:
		sbuf_addf(b, "[%zu]", p->i);
		break;
	case FP_KEY:
		sbuf_add(b, "[");
		sbuf_add(b, p->s);
		sbuf_add(b, "]");
		break;
	}
}

/* The path's text (malloc'd), or NULL for no path. */
static char *fpath_text(const struct fpath *p)
{
	struct sbuf b = { 0 };
	if (!p)
		return NULL;
	fpath_put(&b, p);
	return sbuf_steal(&b);
}

static void dmsg(struct dctx *c, bool warning, const struct fpath *fp, const char *fmt, va_list ap)
{
	char *m, *path = fpath_text(fp);
	char *obj = !c->obj_name ? NULL
		    : c->obj_ns ? xasprintf("%s/%s", c->obj_ns, c->obj_name)
				: xstrdup(c->obj_name);
	if (vasprintf(&m, fmt, ap) < 0)
		abort();
	diags_add(c->d, warning, c->file, c->kind, obj, path, "%s", m);
	free(obj);
	if (!warning) {
		c->invalid = true;
		if (!c->first) { /* quoted by status and logs: clipped */
			char *f = xasprintf("%s: %s", path && *path ? path : c->kind, m);
			c->first = clip_msg(f, 0);
			free(f);
		}
	}
	free(m);
	free(path);
}

static void __attribute__((format(printf, 3, 4))) derr(struct dctx *c, const struct fpath *path, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	dmsg(c, false, path, fmt, ap);
	va_end(ap);
}

static void __attribute__((format(printf, 3, 4))) dwarn(struct dctx *c, const struct fpath *path, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	dmsg(c, true, path, fmt, ap);
	va_end(ap);
}

static const char *json_type_name(const json_t *v)
{
	if (!v)
		return "missing";
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "a list";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
		return "an integer";
	case JSON_REAL:
		return "a number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "a boolean";
	default:
		return "null";
	}
}

/* ---------- validators ---------- */

static bool alnum(char ch)
{
	return isascii((unsigned char)ch) && isalnum((unsigned char)ch);
}

bool k8s_label_value_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0)
		return true;
	if (n > 63 || !alnum(s[0]) || !alnum(s[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!alnum(s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
			return false;
	return true;
}

bool k8s_dns_label_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 63 || !alnum(s[0]) || !alnum(s[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '-'))
			return false;
	return true;
}

static bool dns_subdomain_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 253)
		return false;
	char *dup = xstrdup(s), *save = NULL, *tok;
	bool ok = s[0] != '.' && s[n - 1] != '.' && !strstr(s, "..");
	for (tok = strtok_r(dup, ".", &save); ok && tok; tok = strtok_r(NULL, ".", &save))
		ok = k8s_dns_label_ok(tok);
	free(dup);
	return ok;
}

bool k8s_dns_name_ok(const char *s)
{
	return dns_subdomain_ok(s) && strchr(s, '.') != NULL;
}

bool k8s_label_key_ok(const char *s)
{
	const char *slash = strchr(s, '/');
	const char *name = s;
	if (slash) {
		char *prefix = xstrdup(s);
		prefix[slash - s] = '\0';
		bool ok = dns_subdomain_ok(prefix);
		free(prefix);
		if (!ok)
			return false;
		name = slash + 1;
	}
	return *name && k8s_label_value_ok(name);
}

bool k8s_port_name_ok(const char *s)
{
	size_t n = strlen(s);
	bool letter = false;
	if (n == 0 || n > 15 || s[0] == '-' || s[n - 1] == '-' || strstr(s, "--"))
		return false;
	for (size_t i = 0; i < n; i++) {
		if (islower((unsigned char)s[i]))
			letter = true;
		else if (!isdigit((unsigned char)s[i]) && s[i] != '-')
			return false;
	}
	return letter;
}

/* ---------- helpers ---------- */

/* Reports every key of obj not in allowed. fatal: an error, else a
 * warning in agent mode. */
static void check_fields(struct dctx *c, json_t *obj, const struct fpath *path, const char *const *allowed,
			 bool fatal)
{
	const char *k;
	json_t *v;
	json_object_foreach(obj, k, v) {
		bool ok = false;
		for (const char *const *a = allowed; *a; a++)
			if (!strcmp(*a, k))
				ok = true;
		if (ok || (!fatal && c->o->mode == DECODE_API))
			continue;
		if (fatal || c->o->mode == DECODE_STRICT)
			derr(c, FP_FIELD(path, k), "unknown field");
		else
			dwarn(c, FP_FIELD(path, k), "unknown field, ignored");
	}
}

/* A string's text, or NULL if it is not a string or holds a NUL character
 * (the API server stores "\u0000" in free text, and the client reads it
 * with JSON_ALLOW_NUL so that one such object cannot stop a stream): cut
 * at the NUL, "web\u0000x" would read as "web". */
static const char *sval(const json_t *v)
{
	const char *s = json_string_value(v);
	return s && strlen(s) == json_string_length(v) ? s : NULL;
}

/* NULL if absent or null; reports a wrong type. */
static json_t *get_typed(struct dctx *c, json_t *obj, const char *key, const struct fpath *path, json_type t)
{
	json_t *v = json_object_get(obj, key);
	if (!v || json_is_null(v))
		return NULL;
	if (json_typeof(v) != t) {
		const char *want = t == JSON_OBJECT ? "an object" : t == JSON_ARRAY ? "a list" : "a string";
		derr(c, FP_FIELD(path, key), "must be %s, not %s", want, json_type_name(v));
		return NULL;
	}
	return v;
}

static const char *get_str(struct dctx *c, json_t *obj, const char *key, const struct fpath *path)
{
	json_t *v = get_typed(c, obj, key, path, JSON_STRING);
	if (v && !sval(v)) {
		derr(c, FP_FIELD(path, key), "holds a NUL character");
		return NULL;
	}
	return v ? json_string_value(v) : NULL;
}

/* ---------- labels and selectors ---------- */

static void dec_labels(struct dctx *c, json_t *v, const struct fpath *path, struct labelset *out)
{
	const char *k;
	json_t *x;
	if (!v)
		return;
	json_object_foreach(v, k, x) {
		const struct fpath *p = FP_KEY(path, k);
		if (!json_is_string(x))
			derr(c, p, "label value must be a string, not %s", json_type_name(x));
		else if (!sval(x))
			derr(c, p, "label value holds a NUL character");
		else if (!k8s_label_key_ok(k))
			derr(c, p, "invalid label key \"%s\"", k);
		else if (!k8s_label_value_ok(json_string_value(x)))
			derr(c, p, "invalid label value \"%s\"", json_string_value(x));
		else
			labelset_set(out, k, json_string_value(x));
	}
}

static const char *const sel_fields[] = { "matchLabels", "matchExpressions", NULL };
static const char *const expr_fields[] = { "key", "operator", "values", NULL };

static int dec_expr(struct dctx *c, json_t *e, const struct fpath *path, struct selector *out)
{
	static const struct {
		const char *name;
		enum sel_op op;
		bool values;
	} ops[] = {
		{ "In", SEL_IN, true },
		{ "NotIn", SEL_NOT_IN, true },
		{ "Exists", SEL_EXISTS, false },
		{ "DoesNotExist", SEL_DOES_NOT_EXIST, false },
	};
	int before = c->d->errors;
	if (!json_is_object(e)) {
		derr(c, path, "must be an object, not %s", json_type_name(e));
		return -EINVAL;
	}
	check_fields(c, e, path, expr_fields, true);
	const char *key = get_str(c, e, "key", path), *op = get_str(c, e, "operator", path);
	json_t *vals = get_typed(c, e, "values", path, JSON_ARRAY);
	if (!key || !k8s_label_key_ok(key)) {
		derr(c, FP_DOT(path, "key"), key ? "invalid label key \"%s\"" : "required%s", key ? key : "");
		return -EINVAL;
	}
	size_t i;
	for (i = 0; i < ARRAY_SIZE(ops); i++)
		if (op && !strcmp(op, ops[i].name))
			break;
	if (i == ARRAY_SIZE(ops)) {
		derr(c, FP_DOT(path, "operator"), "must be In, NotIn, Exists or DoesNotExist%s%s%s", op ? ", not \"" : "",
		     op ? op : "", op ? "\"" : "");
		return -EINVAL;
	}
	size_t n = vals ? json_array_size(vals) : 0;
	const struct fpath *p = FP_DOT(path, "values");
	if (ops[i].values && n == 0)
		derr(c, p, "operator %s needs at least one value", op);
	else if (!ops[i].values && n)
		derr(c, p, "operator %s takes no values", op);
	const char **sv = xcalloc(n ? n : 1, sizeof(*sv));
	for (size_t j = 0; j < n; j++) {
		json_t *x = json_array_get(vals, j);
		if (!sval(x) || !k8s_label_value_ok(json_string_value(x)))
			derr(c, p, "value %zu is not a valid label value", j);
		else
			sv[j] = json_string_value(x);
	}
	if ((int)c->d->errors == before)
		selector_add(out, key, ops[i].op, sv, (uint32_t)n);
	free(sv);
	return (int)c->d->errors == before ? 0 : -EINVAL;
}

/* v: the selector object or NULL (absent: everything). */
static int dec_selector(struct dctx *c, json_t *v, const struct fpath *path, struct selector *out)
{
	int before = c->d->errors;
	memset(out, 0, sizeof(*out));
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_object(v)) {
		derr(c, path, "must be an object, not %s", json_type_name(v));
		return -EINVAL;
	}
	check_fields(c, v, path, sel_fields, true);
	const struct fpath *p = FP_DOT(path, "matchLabels");
	json_t *ml = get_typed(c, v, "matchLabels", path, JSON_OBJECT);
	const char *k;
	json_t *x;
	if (ml)
		json_object_foreach(ml, k, x) {
			const struct fpath *q = FP_KEY(p, k);
			if (!k8s_label_key_ok(k))
				derr(c, q, "invalid label key \"%s\"", k);
			else if (!json_is_string(x))
				derr(c, q, "must be a string, not %s", json_type_name(x));
			else if (!sval(x))
				derr(c, q, "holds a NUL character");
			else if (!k8s_label_value_ok(json_string_value(x)))
				derr(c, q, "invalid label value \"%s\"", json_string_value(x));
			else {
				const char *val = json_string_value(x);
				selector_add(out, k, SEL_IN, &val, 1);
			}
		}
	json_t *me = get_typed(c, v, "matchExpressions", path, JSON_ARRAY);
	size_t i;
	if (me)
		json_array_foreach(me, i, x) {
			dec_expr(c, x, FP_INDEX(FP_DOT(path, "matchExpressions"), i), out);
		}
	selector_normalize(out);
	if ((int)c->d->errors != before) {
		selector_free(out);
		return -EINVAL;
	}
	return 0;
}

/* ---------- ports ---------- */

static int dec_port_num(struct dctx *c, json_t *v, const struct fpath *path, uint16_t *out)
{
	if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 65535) {
		if (json_is_integer(v))
			derr(c, path, "port %lld out of range 1-65535", (long long)json_integer_value(v));
		else
			derr(c, path, "must be a port number 1-65535, not %s", json_type_name(v));
		return -EINVAL;
	}
	*out = (uint16_t)json_integer_value(v);
	return 0;
}

static int dec_protocol(struct dctx *c, json_t *e, const struct fpath *path)
{
	json_t *v = json_object_get(e, "protocol");
	int proto = PROTO_TCP; /* absent: TCP */
	if (v && !json_is_null(v)) {
		proto = sval(v) ? proto_parse(json_string_value(v)) : -1;
		if (proto < 0)
			derr(c, FP_DOT(path, "protocol"), "must be TCP, UDP or SCTP%s%s%s", json_is_string(v) ? ", not \"" : "",
			     json_is_string(v) ? json_string_value(v) : "", json_is_string(v) ? "\"" : "");
	}
	return proto;
}

/* One entry of ports[]; named ports allowed when named is true. */
static int dec_port_entry(struct dctx *c, json_t *e, const struct fpath *path, bool named, bool need_port,
			  struct port_match *pm)
{
	static const char *const fields[] = { "protocol", "port", "endPort", NULL };
	int before = c->d->errors;
	memset(pm, 0, sizeof(*pm));
	if (!json_is_object(e)) {
		derr(c, path, "must be an object, not %s", json_type_name(e));
		return -EINVAL;
	}
	check_fields(c, e, path, fields, true);
	int proto = dec_protocol(c, e, path);
	json_t *port = json_object_get(e, "port"), *end = json_object_get(e, "endPort");
	const struct fpath *pp = FP_DOT(path, "port"), *ep = FP_DOT(path, "endPort");
	pm->proto = (uint8_t)(proto < 0 ? 0 : proto);
	if (port && json_is_null(port))
		port = NULL;
	if (end && json_is_null(end))
		end = NULL;
	if (!port && need_port)
		derr(c, pp, "required");
	if (port && json_is_string(port) && named) {
		const char *n = json_string_value(port);
		if (!sval(port))
			derr(c, pp, "holds a NUL character");
		else if (!k8s_port_name_ok(n))
			derr(c, pp, "\"%s\" is neither a port number nor a valid port name", n);
		else
			pm->name = istr_get(n);
		if (end)
			derr(c, ep, "needs a numeric port, not the named port \"%s\"", n);
	} else if (port) {
		if (dec_port_num(c, port, pp, &pm->lo) == 0) {
			pm->hi = pm->lo;
			if (end && dec_port_num(c, end, ep, &pm->hi) == 0 && pm->hi < pm->lo)
				derr(c, ep, "%u is less than port %u", pm->hi, pm->lo);
		}
	} else if (end) {
		derr(c, ep, "needs port to be set");
	}
	return (int)c->d->errors == before ? 0 : -EINVAL;
}

/* ports: NULL or [] means every port of every protocol. */
static void dec_ports(struct dctx *c, json_t *obj, const struct fpath *path, bool named, bool need_port,
		      struct rule *r)
{
	json_t *ports = get_typed(c, obj, "ports", path, JSON_ARRAY), *e;
	size_t i;
	r->any_port = !ports || json_array_size(ports) == 0;
	if (r->any_port)
		return;
	r->ports = xcalloc(json_array_size(ports), sizeof(*r->ports));
	json_array_foreach(ports, i, e) {
		if (dec_port_entry(c, e, FP_INDEX(FP_DOT(path, "ports"), i), named, need_port, &r->ports[r->nports]) == 0)
			r->nports++;
		else
			istr_put(r->ports[r->nports].name);
	}
}

/* ---------- NetworkPolicy ---------- */

static int dec_ipblock(struct dctx *c, json_t *v, const struct fpath *path, struct peer *pe)
{
	static const char *const fields[] = { "cidr", "except", NULL };
	int before = c->d->errors;
	ip128 lo, hi;
	bool hb;
	check_fields(c, v, path, fields, true);
	const char *cidr = get_str(c, v, "cidr", path);
	const struct fpath *p = FP_DOT(path, "cidr");
	pe->kind = PEER_CIDR;
	if (!cidr) {
		derr(c, p, "required");
		return -EINVAL;
	}
	if (cidr_parse(cidr, &lo, &hi, &hb) < 0) {
		derr(c, p, "\"%s\" is not a valid CIDR", cidr);
		return -EINVAL;
	}
	pe->text = xstrdup(cidr);
	range_set_add_cidr(&pe->ranges, cidr, lo, hi);
	json_t *ex = get_typed(c, v, "except", path, JSON_ARRAY), *x;
	size_t i, n = ex ? json_array_size(ex) : 0, m = 0;
	/* carved out all at once: one except at a time was quadratic */
	struct ip_range *cut = xmalloc((n ? n : 1) * sizeof(*cut));
	pe->except = n ? xcalloc(n, sizeof(*pe->except)) : NULL;
	json_array_foreach(ex, i, x) {
		const char *s = sval(x);
		bool parsed = s && cidr_parse(s, &cut[m].lo, &cut[m].hi, &hb) == 0;
		if (!parsed || ip_cmp(cut[m].lo, lo) < 0 || ip_cmp(cut[m].hi, hi) > 0) {
			const struct fpath *q = FP_INDEX(FP_DOT(path, "except"), i);
			if (parsed)
				derr(c, q, "%s is not inside cidr %s", s, cidr);
			else
				derr(c, q, "\"%s\" is not a valid CIDR", s ? s : json_type_name(x));
			continue;
		}
		pe->except[pe->nexcept++] = xstrdup(s);
		m++;
	}
	range_set_sub_many(&pe->ranges, cut, m);
	free(cut);
	return (int)c->d->errors == before ? 0 : -EINVAL;
}

static void dec_np_peer(struct dctx *c, json_t *v, const struct fpath *path, istr own_ns, struct peer *pe)
{
	static const char *const fields[] = { "podSelector", "namespaceSelector", "ipBlock", NULL };
	if (!json_is_object(v)) {
		derr(c, path, "must be an object, not %s", json_type_name(v));
		return;
	}
	check_fields(c, v, path, fields, true);
	json_t *ps = json_object_get(v, "podSelector"), *ns = json_object_get(v, "namespaceSelector");
	json_t *ib = get_typed(c, v, "ipBlock", path, JSON_OBJECT);
	if (ps && json_is_null(ps))
		ps = NULL;
	if (ns && json_is_null(ns))
		ns = NULL;
	if (ib && (ps || ns)) {
		derr(c, path, "ipBlock cannot be combined with podSelector or namespaceSelector");
		return;
	}
	if (ib) {
		dec_ipblock(c, ib, FP_DOT(path, "ipBlock"), pe);
		return;
	}
	if (!ps && !ns) {
		derr(c, path, "must set podSelector, namespaceSelector or ipBlock");
		return;
	}
	pe->kind = PEER_PODS;
	dec_selector(c, ps, FP_DOT(path, "podSelector"), &pe->podsel);
	if (ns)
		dec_selector(c, ns, FP_DOT(path, "namespaceSelector"), &pe->nssel);
	else {
		pe->ns = istr_ref(own_ns); /* podSelector alone: own namespace */
	}
}

static void dec_np_rule(struct dctx *c, json_t *v, const char *rpath, enum dir d, istr own_ns, struct rule *r)
{
	static const char *const in_fields[] = { "from", "ports", NULL };
	static const char *const eg_fields[] = { "to", "ports", NULL };
	const char *pk = d == DIR_INGRESS ? "from" : "to";
	const struct fpath *path = FP(rpath);
	r->path = istr_get(rpath);
	if (!json_is_object(v)) {
		derr(c, path, "must be an object, not %s", json_type_name(v));
		return;
	}
	check_fields(c, v, path, d == DIR_INGRESS ? in_fields : eg_fields, true);
	dec_ports(c, v, path, true, false, r);
	json_t *peers = get_typed(c, v, pk, path, JSON_ARRAY), *x;
	size_t i;
	r->any_peer = !peers || json_array_size(peers) == 0;
	if (r->any_peer)
		return;
	r->peers = xcalloc(json_array_size(peers), sizeof(*r->peers));
	json_array_foreach(peers, i, x) {
		dec_np_peer(c, x, FP_INDEX(FP_DOT(path, pk), i), own_ns, &r->peers[r->npeers++]);
	}
}

/* "prefix.key[i]", a rule's path (kept by the rule), in buf: prefix and
 * key are this file's own words, so it always fits (a vasprintf per rule
 * was 1,500 instructions). */
static const char *rule_path(char (*buf)[64], const char *prefix, const char *key, size_t i)
{
	size_t pl = strlen(prefix), kl = strlen(key), at = sizeof(*buf);
	char num[24], *w = *buf;
	size_t nl = 0;
	do
		num[sizeof(num) - ++nl] = (char)('0' + i % 10);
	while ((i /= 10) && nl < sizeof(num));
	if (pl + 1 + kl + 1 + nl + 2 > at)
		abort(); /* a caller passed a longer prefix or key */
	memcpy(w, prefix, pl);
	w[pl] = '.';
	memcpy(w + pl + 1, key, kl);
	w[pl + 1 + kl] = '[';
	memcpy(w + pl + kl + 2, num + sizeof(num) - nl, nl);
	memcpy(w + pl + kl + 2 + nl, "]", 2);
	return w;
}

static void dec_rules(struct dctx *c, json_t *spec, const char *prefix, const char *key, enum dir d,
		      struct policy_spec *pol,
		      void (*one)(struct dctx *, json_t *, const char *, enum dir, istr, struct rule *))
{
	json_t *arr = get_typed(c, spec, key, FP(prefix), JSON_ARRAY), *x;
	size_t i;
	if (!arr)
		return;
	pol->rules[d] = xcalloc(json_array_size(arr) ? json_array_size(arr) : 1, sizeof(struct rule));
	json_array_foreach(arr, i, x) {
		char buf[64];
		one(c, x, rule_path(&buf, prefix, key, i), d, pol->ns, &pol->rules[d][pol->nrules[d]++]);
	}
}

static void dec_netpol(struct dctx *c, json_t *obj, struct policy_spec *pol)
{
	static const char *const fields[] = { "podSelector", "policyTypes", "ingress", "egress", NULL };
	json_t *spec = get_typed(c, obj, "spec", FP(""), JSON_OBJECT);
	if (!spec) {
		if (!json_object_get(obj, "spec"))
			derr(c, FP("spec"), "required");
		c->target_unknown = true;
		pol->isolates[DIR_INGRESS] = pol->isolates[DIR_EGRESS] = true;
		return;
	}
	check_fields(c, spec, FP("spec"), fields, false);
	json_t *ps = json_object_get(spec, "podSelector");
	/* Absent, the API server reads it as {} (LabelSelector is a value in
	 * NetworkPolicySpec, not a pointer): every pod of the namespace. */
	if (!ps && c->o->mode == DECODE_STRICT)
		dwarn(c, FP("spec.podSelector"), "absent: read as {} (every pod of the namespace), as the API server does");
	if (dec_selector(c, ps, FP("spec.podSelector"), &pol->target) < 0)
		c->target_unknown = true; /* fail closed: every pod of the namespace */
	json_t *types = get_typed(c, spec, "policyTypes", FP("spec"), JSON_ARRAY), *x;
	json_t *egress = json_object_get(spec, "egress");
	size_t i;
	if (!types) {
		/* API server default: Ingress always, Egress if it has rules */
		pol->isolates[DIR_INGRESS] = true;
		pol->isolates[DIR_EGRESS] = json_is_array(egress) && json_array_size(egress) > 0;
		if (json_object_get(spec, "policyTypes") && !json_is_null(json_object_get(spec, "policyTypes")))
			pol->isolates[DIR_EGRESS] = true; /* unreadable: isolate both */
	} else {
		json_array_foreach(types, i, x) {
			const char *t = sval(x) ? json_string_value(x) : "";
			if (!strcmp(t, "Ingress"))
				pol->isolates[DIR_INGRESS] = true;
			else if (!strcmp(t, "Egress"))
				pol->isolates[DIR_EGRESS] = true;
			else {
				derr(c, FP_INDEX(FP("spec.policyTypes"), i), "must be Ingress or Egress, not \"%s\"",
				     json_is_string(x) ? t : json_type_name(x));
				pol->isolates[DIR_INGRESS] = pol->isolates[DIR_EGRESS] = true;
			}
		}
		if (!json_array_size(types)) {
			derr(c, FP("spec.policyTypes"), "must list Ingress, Egress or both");
			pol->isolates[DIR_INGRESS] = pol->isolates[DIR_EGRESS] = true;
		}
	}
	dec_rules(c, spec, "spec", "ingress", DIR_INGRESS, pol, dec_np_rule);
	dec_rules(c, spec, "spec", "egress", DIR_EGRESS, pol, dec_np_rule);
}

/* ---------- AccessPolicy ---------- */

static const char *app_keys(const struct dctx *c)
{
	return c->o->app_label && *c->o->app_label ? c->o->app_label : APP_LABELS_DEFAULT;
}

/* The first key of the application label list, for messages. */
static char *app_key0(const struct dctx *c)
{
	const char *l = app_keys(c), *comma = strchr(l, ',');
	return comma ? xasprintf("%.*s", (int)(comma - l), l) : xstrdup(l);
}

/* A policy's targets for application app: one selector per key of the
 * application label list (model.h), the first in target, the others in
 * alt. "*" selects every pod. */
static void set_app_target(struct dctx *c, struct policy_spec *pol, const char *app)
{
	struct selector sel[APP_KEYS_MAX];
	if (!strcmp(app, "*"))
		return;
	uint32_t n = app_selectors(app_keys(c), app, sel);
	pol->target = sel[0];
	if (n > 1) {
		pol->alt = xcalloc(n - 1, sizeof(*pol->alt));
		for (uint32_t i = 1; i < n; i++)
			pol->alt[pol->nalt++] = sel[i];
	}
}

/* A rule's peers for application app in namespace ns (NULL: every
 * namespace): one peer per key, ORed. */
static void set_app_peers(struct dctx *c, struct rule *r, const char *app, istr ns)
{
	struct selector sel[APP_KEYS_MAX];
	uint32_t n = strcmp(app, "*") ? app_selectors(app_keys(c), app, sel) : 0;
	r->npeers = n ? n : 1;
	r->peers = xcalloc(r->npeers, sizeof(*r->peers));
	for (uint32_t i = 0; i < r->npeers; i++) {
		r->peers[i].kind = PEER_PODS;
		r->peers[i].ns = istr_ref(ns);
		if (n)
			r->peers[i].podsel = sel[i];
	}
}

static void dec_ap_rule(struct dctx *c, json_t *v, const char *rpath, enum dir d, istr own_ns, struct rule *r)
{
	static const char *const fields[] = { "application", "namespace", "ports", NULL };
	const struct fpath *path = FP(rpath);
	r->path = istr_get(rpath);
	(void)d;
	if (!json_is_object(v)) {
		derr(c, path, "must be an object, not %s", json_type_name(v));
		return;
	}
	check_fields(c, v, path, fields, true);
	const char *app = get_str(c, v, "application", path), *ns = get_str(c, v, "namespace", path);
	const struct fpath *p = FP_DOT(path, "application");
	if (!app)
		derr(c, p, "required (an application name, or \"*\" for any)");
	else if (strcmp(app, "*") && (!*app || !k8s_label_value_ok(app)))
		derr(c, p, "\"%s\" is not a valid application name (a label value: at most 63 characters, "
			   "alphanumeric at both ends, '-', '_' or '.' inside) nor \"*\"", app);
	if (ns && strcmp(ns, "*") && !k8s_dns_label_ok(ns))
		derr(c, FP_DOT(path, "namespace"), "\"%s\" is not a valid namespace name (a DNS-1123 label) nor \"*\"",
		     ns);
	dec_ports(c, v, path, false, true, r);
	if (!app)
		return;
	istr pns = !ns ? istr_ref(own_ns) : strcmp(ns, "*") ? istr_get(ns) : NULL;
	set_app_peers(c, r, app, pns);
	istr_put(pns);
	r->ap_app = istr_get(app);
	r->ap_ns = istr_get(ns ? ns : own_ns);
}

/* One external entry: outbound (d DIR_EGRESS) it may name a host, an
 * address, a range or an entity; inbound an address, a range or an
 * entity (a DNS name says nothing about where a packet comes from). */
static void dec_ap_external(struct dctx *c, json_t *v, const char *rpath, enum dir d, struct policy_spec *pol,
			    struct rule *r)
{
	static const char *const fields[] = { "host", "ipv4", "cidr", "entity", "ports", NULL };
	static const char *const in_fields[] = { "ipv4", "cidr", "entity", "ports", NULL };
	const struct fpath *path = FP(rpath);
	r->path = istr_get(rpath);
	if (!json_is_object(v)) {
		derr(c, path, "must be an object, not %s", json_type_name(v));
		return;
	}
	if (d == DIR_INGRESS && json_object_get(v, "host")) {
		derr(c, FP_DOT(path, "host"), "inbound entries name where traffic comes from: an ipv4, a cidr or an entity, not a "
			   "DNS name");
		return;
	}
	check_fields(c, v, path, d == DIR_INGRESS ? in_fields : fields, true);
	const char *host = get_str(c, v, "host", path), *ipv4 = get_str(c, v, "ipv4", path);
	const char *cidr = get_str(c, v, "cidr", path), *ent = get_str(c, v, "entity", path);
	int n = !!host + !!ipv4 + !!cidr + !!ent;
	if (n != 1) {
		derr(c, path, d == DIR_INGRESS ? "must set exactly one of ipv4, cidr or entity (%d set)"
					       : "must set exactly one of host, ipv4, cidr or entity (%d set)", n);
		return;
	}
	dec_ports(c, v, path, false, true, r);
	r->npeers = 1;
	r->peers = xcalloc(1, sizeof(*r->peers));
	struct peer *pe = &r->peers[0];
	ip128 lo, hi;
	bool hb;
	if (ent) {
		int e = entity_parse(ent);
		pe->kind = PEER_ENTITY;
		pe->text = xstrdup(ent);
		if (e < 0) {
			derr(c, FP_DOT(path, "entity"), "\"%s\" is not an entity (nodes, world or kube-apiserver)", ent);
		} else {
			pe->entity = (uint32_t)e;
		}
		return;
	}
	if (host) {
		if (!fqdn_pattern_ok(host))
			derr(c, FP_DOT(path, "host"), "\"%s\" is not a lower-case DNS name of two labels or more, optionally after \"*.\" "
				   "(no scheme, port or path)", host);
		pe->kind = PEER_HOST;
		pe->text = xstrdup(host);
		pol->nhosts++;
		if (r->any_port) { /* host default: 443/TCP */
			r->any_port = false;
			r->ports = xcalloc(1, sizeof(*r->ports));
			r->ports[0] = (struct port_match){ PROTO_TCP, 443, 443, NULL };
			r->nports = 1;
		}
		return;
	}
	pe->kind = PEER_CIDR;
	if (ipv4) {
		const struct fpath *p = FP_DOT(path, "ipv4");
		if (ip_parse(ipv4, &lo) < 0 || !ip_is_v4(lo) || strchr(ipv4, ':'))
			derr(c, p, "\"%s\" is not a dotted-quad IPv4 address", ipv4);
		else
			range_set_add(&pe->ranges, lo, lo);
		pe->text = xstrdup(ipv4);
	} else {
		const struct fpath *p = FP_DOT(path, "cidr");
		if (cidr_parse(cidr, &lo, &hi, &hb) < 0)
			derr(c, p, "\"%s\" is not a valid CIDR", cidr);
		else if (hb)
			derr(c, p, "\"%s\" has bits set past the prefix length", cidr);
		else
			range_set_add_cidr(&pe->ranges, cidr, lo, hi);
		pe->text = xstrdup(cidr);
	}
}

/* spec.inbound.external or spec.outbound.external: rules after the
 * direction's application rules. */
static void dec_ap_externals(struct dctx *c, json_t *parent, const char *prefix, enum dir d,
			     struct policy_spec *pol)
{
	json_t *ext = get_typed(c, parent, "external", FP(prefix), JSON_ARRAY), *x;
	size_t i, base = pol->nrules[d];
	if (!ext)
		return;
	pol->rules[d] = xrealloc(pol->rules[d], (base + json_array_size(ext) + 1) * sizeof(struct rule));
	json_array_foreach(ext, i, x) {
		struct rule *r = &pol->rules[d][pol->nrules[d]++];
		memset(r, 0, sizeof(*r));
		char buf[64];
		dec_ap_external(c, x, rule_path(&buf, prefix, "external", i), d, pol, r);
	}
}

static void dec_access(struct dctx *c, json_t *obj, struct policy_spec *pol)
{
	static const char *const fields[] = { "application", "inbound", "outbound", NULL };
	static const char *const in_fields[] = { "rules", "external", NULL };
	static const char *const out_fields[] = { "rules", "external", NULL };
	pol->isolates[DIR_INGRESS] = pol->isolates[DIR_EGRESS] = true;
	json_t *spec = get_typed(c, obj, "spec", FP(""), JSON_OBJECT);
	if (!spec) {
		if (!json_object_get(obj, "spec"))
			derr(c, FP("spec"), "required");
		c->target_unknown = true;
		return;
	}
	check_fields(c, spec, FP("spec"), fields, false);
	const char *app = get_str(c, spec, "application", FP("spec"));
	if (!app && !json_object_get(spec, "application")) {
		char *k0 = app_key0(c);
		derr(c, FP("spec.application"), "required: the application (pods labelled %s=NAME) this policy is for",
		     k0);
		free(k0);
		c->target_unknown = true;
	} else if (!app) {
		c->target_unknown = true; /* a wrong type, reported by get_str */
	} else if (!*app || !k8s_label_value_ok(app)) {
		derr(c, FP("spec.application"), "\"%s\" is not a valid application name (a label value: at most 63 "
					    "characters, alphanumeric at both ends, '-', '_' or '.' inside)", app);
		c->target_unknown = true;
	} else {
		pol->app = istr_get(app);
		set_app_target(c, pol, app);
	}
	json_t *in = get_typed(c, spec, "inbound", FP("spec"), JSON_OBJECT);
	json_t *out = get_typed(c, spec, "outbound", FP("spec"), JSON_OBJECT);
	if (in) {
		check_fields(c, in, FP("spec.inbound"), in_fields, false);
		dec_rules(c, in, "spec.inbound", "rules", DIR_INGRESS, pol, dec_ap_rule);
		dec_ap_externals(c, in, "spec.inbound", DIR_INGRESS, pol);
	}
	if (out) {
		check_fields(c, out, FP("spec.outbound"), out_fields, false);
		dec_rules(c, out, "spec.outbound", "rules", DIR_EGRESS, pol, dec_ap_rule);
		dec_ap_externals(c, out, "spec.outbound", DIR_EGRESS, pol);
	}
}

/* ---------- Pods and workloads ---------- */

static void dec_container_ports(struct dctx *c, json_t *conts, const struct fpath *path, struct pod_spec *pod)
{
	json_t *ct, *pt;
	size_t i, j;
	if (!json_is_array(conts))
		return;
	json_array_foreach(conts, i, ct) {
		json_t *ports = json_object_get(ct, "ports");
		if (!json_is_array(ports))
			continue;
		json_array_foreach(ports, j, pt) {
			const struct fpath *p = FP_INDEX(FP_DOT(FP_INDEX(path, i), "ports"), j);
			json_t *num = json_object_get(pt, "containerPort");
			json_t *name = json_object_get(pt, "name");
			int proto = dec_protocol(c, pt, p);
			struct cport cp = { NULL, (uint8_t)(proto < 0 ? 0 : proto), 0 };
			if (proto >= 0 && dec_port_num(c, num, FP_DOT(p, "containerPort"), &cp.port) == 0) {
				if (sval(name)) /* else no name: a named port that does not resolve */
					cp.name = istr_get(json_string_value(name));
				pod->ports = xrealloc(pod->ports, (pod->nports + 1) * sizeof(*pod->ports));
				pod->ports[pod->nports++] = cp;
			}
		}
	}
}

static void dec_pod_template(struct dctx *c, json_t *meta, json_t *spec, const struct fpath *path,
			     struct pod_spec *pod)
{
	dec_labels(c, get_typed(c, meta, "labels", path, JSON_OBJECT), FP_DOT(path, "metadata.labels"), &pod->labels);
	if (!spec)
		return;
	const char *node = get_str(c, spec, "nodeName", path);
	if (node)
		pod->node = istr_get(node);
	pod->host_network = json_is_true(json_object_get(spec, "hostNetwork"));
	dec_container_ports(c, json_object_get(spec, "containers"), FP_DOT(path, "spec.containers"), pod);
	dec_container_ports(c, json_object_get(spec, "initContainers"), FP_DOT(path, "spec.initContainers"), pod);
}

static void pod_add_addr(struct dctx *c, struct pod_spec *pod, const char *s, const struct fpath *path)
{
	ip128 a;
	if (ip_parse(s, &a) < 0) {
		derr(c, path, "\"%s\" is not an IP address", s);
		return;
	}
	for (uint32_t i = 0; i < pod->naddr; i++) {
		if (ip_eq(pod->addr[i], a))
			return;
		if (ip_is_v4(pod->addr[i]) == ip_is_v4(a)) {
			derr(c, path, "a pod has at most one address per family; %s ignored", s);
			return;
		}
	}
	pod->addr[pod->naddr++] = a;
}

static int dec_pod(struct dctx *c, json_t *obj, struct pod_spec *pod)
{
	json_t *spec = get_typed(c, obj, "spec", FP(""), JSON_OBJECT);
	json_t *status = get_typed(c, obj, "status", FP(""), JSON_OBJECT);
	dec_pod_template(c, json_object_get(obj, "metadata"), spec, FP(""), pod);
	pod->phase = PHASE_RUNNING;
	if (!status)
		return 0;
	const char *ph = get_str(c, status, "phase", FP("status"));
	if (ph)
		pod->phase = pod_phase_parse(ph, strlen(ph));
	json_t *ips = get_typed(c, status, "podIPs", FP("status"), JSON_ARRAY), *x;
	size_t i;
	if (ips)
		json_array_foreach(ips, i, x) {
			const struct fpath *p = FP_DOT(FP_INDEX(FP("status.podIPs"), i), "ip");
			json_t *ip = json_is_object(x) ? json_object_get(x, "ip") : NULL;
			if (!sval(ip))
				derr(c, p, "required string");
			else if (pod->naddr < 2)
				pod_add_addr(c, pod, json_string_value(ip), p);
		}
	const char *ip = get_str(c, status, "podIP", FP("status"));
	if (ip && !pod->naddr)
		pod_add_addr(c, pod, ip, FP("status.podIP"));
	return 0;
}

static int dec_workload(struct dctx *c, json_t *obj, struct pod_spec *pod)
{
	json_t *spec = json_object_get(obj, "spec");
	const char *path = "spec.template";
	if (!strcmp(c->kind, "CronJob")) {
		spec = json_object_get(json_object_get(spec, "jobTemplate"), "spec");
		path = "spec.jobTemplate.spec.template";
	}
	json_t *tmpl = json_object_get(spec, "template");
	if (!json_is_object(tmpl)) {
		derr(c, FP(path), "required: the pod template");
		return -EINVAL;
	}
	dec_pod_template(c, json_object_get(tmpl, "metadata"), json_object_get(tmpl, "spec"), FP(path), pod);
	pod->phase = PHASE_RUNNING;
	pod->workload = xstrdup(c->kind);
	return 0;
}

/* ---------- objects ---------- */

static const char *const workload_kinds[] = { "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet",
					       "Job", "CronJob", NULL };

/* Kinds of the groups corral reads that it has no use for. */
static const char *const ignored_kinds[] = {
	"Service", "ConfigMap", "Secret", "ServiceAccount", "Endpoints", "EndpointSlice", "Event",
	"PersistentVolumeClaim", "PersistentVolume", "LimitRange", "ResourceQuota", "ReplicationController",
	"Ingress", "IngressClass", "ControllerRevision", "Binding", "PodTemplate",
	"ComponentStatus", "ServiceCIDR", "IPAddress", NULL
};

static bool in_list(const char *const *l, const char *s)
{
	for (; *l; l++)
		if (!strcmp(*l, s))
			return true;
	return false;
}

/* Groups whose kinds corral knows; objects of other groups (CRDs of other
 * projects, RBAC, ...) are not corral's business and are skipped. */
static bool group_known(const char *api)
{
	return !strcmp(api, "v1") || !strncmp(api, "apps/", 5) || !strncmp(api, "batch/", 6) ||
	       !strncmp(api, "networking.k8s.io/", 18) || !strncmp(api, "corral.dev/", 11);
}

static int dec_meta(struct dctx *c, json_t *obj, bool namespaced, istr *ns, istr *name)
{
	json_t *meta = get_typed(c, obj, "metadata", FP(""), JSON_OBJECT);
	const char *n = meta ? get_str(c, meta, "name", FP("metadata")) : NULL;
	const char *s = meta ? get_str(c, meta, "namespace", FP("metadata")) : NULL;
	if (!s && namespaced)
		s = c->o->default_ns ? c->o->default_ns : "default";
	c->obj_name = n;
	c->obj_ns = n && namespaced ? s : NULL;
	if (!n || !*n) {
		derr(c, FP("metadata.name"), "required");
		return -EINVAL;
	}
	if (namespaced && !k8s_dns_label_ok(s)) {
		derr(c, FP("metadata.namespace"), "\"%s\" is not a valid namespace name", s);
		return -EINVAL;
	}
	*name = istr_get(n);
	*ns = namespaced ? istr_get(s) : NULL;
	return 0;
}

static int dec_policy(struct dctx *c, json_t *obj, enum policy_kind kind, struct decoded *out)
{
	struct policy_spec *pol = xcalloc(1, sizeof(*pol));
	pol->kind = kind;
	pol->source = istr_get(c->file);
	if (dec_meta(c, obj, true, &pol->ns, &pol->name) < 0) {
		policy_spec_free(pol);
		return -EINVAL;
	}
	if (kind == KIND_NETPOL)
		dec_netpol(c, obj, pol);
	else
		dec_access(c, obj, pol);
	pol->valid = !c->invalid;
	if (!pol->valid)
		pol->error = xstrdup(c->first ? c->first : "invalid");
	/* Fail closed: targets we cannot read are every pod of the namespace
	 * (the rules of an invalid policy allow nothing). An API object the
	 * server accepted but we cannot read is unreadable, whatever failed. */
	if (c->target_unknown) {
		selector_free(&pol->target);
		for (uint32_t i = 0; i < pol->nalt; i++)
			selector_free(&pol->alt[i]);
		pol->nalt = 0;
	}
	pol->unreadable = c->target_unknown || (c->invalid && c->o->mode == DECODE_API);
	out->type = OBJ_POLICY;
	out->pol = pol;
	return 0;
}

static int dec_podlike(struct dctx *c, json_t *obj, bool workload, struct decoded *out)
{
	struct pod_spec *pod = xcalloc(1, sizeof(*pod));
	istr name = NULL;
	pod->source = istr_get(c->file);
	int rc = dec_meta(c, obj, true, &pod->ns, &name);
	pod->name = name ? xstrdup(name) : NULL; /* a pod's name is not interned (model.h) */
	istr_put(name);
	if (rc < 0 || (workload ? dec_workload(c, obj, pod) : dec_pod(c, obj, pod)) < 0) {
		pod_spec_free(pod);
		return -EINVAL;
	}
	if (c->invalid) { /* fail closed: matched by no selector, quarantined */
		pod->unreadable = true;
		pod->error = xstrdup(c->first ? c->first : "unreadable");
	}
	out->type = OBJ_POD;
	out->pod = pod_spec_pack(pod);
	return 0;
}

static int dec_namespace(struct dctx *c, json_t *obj, struct decoded *out)
{
	struct ns_spec *ns = xcalloc(1, sizeof(*ns));
	istr none;
	ns->source = istr_get(c->file);
	if (dec_meta(c, obj, false, &none, &ns->name) < 0) {
		ns_spec_free(ns);
		return -EINVAL;
	}
	if (!k8s_dns_label_ok(ns->name))
		derr(c, FP("metadata.name"), "\"%s\" is not a valid namespace name", ns->name);
	json_t *meta = json_object_get(obj, "metadata");
	dec_labels(c, get_typed(c, meta, "labels", FP("metadata"), JSON_OBJECT), FP("metadata.labels"), &ns->labels);
	labelset_set(&ns->labels, "kubernetes.io/metadata.name", ns->name);
	if (c->invalid) { /* fail closed: matches no namespace selector */
		ns->unreadable = true;
		ns->error = xstrdup(c->first ? c->first : "unreadable");
	}
	out->type = OBJ_NAMESPACE;
	out->ns = ns;
	return 0;
}

/* One address of a Node or of the API server's EndpointSlice (room for it
 * was made), or an error naming where it is and what it says. */
static void node_addr(struct dctx *c, struct node_spec *n, const struct fpath *path, const char *a)
{
	ip128 ip;
	if (!a || ip_parse(a, &ip) < 0)
		derr(c, path, "\"%s\" is not an IP address", a ? a : "(not a string)");
	else
		n->addr[n->naddr++] = ip;
}

/* A decoded node_spec: unreadable (fail closed) if anything was not. */
static int node_done(struct dctx *c, struct node_spec *n, struct decoded *out)
{
	if (c->invalid) {
		n->unreadable = true;
		n->error = xstrdup(c->first ? c->first : "unreadable");
	}
	out->type = OBJ_NODE;
	out->node = n;
	return 0;
}

/* A Node: status.addresses of type InternalIP and ExternalIP (the
 * addresses its host-network pods and its kubelet send from), and
 * spec.podCIDRs (or the older spec.podCIDR). */
static int dec_node(struct dctx *c, json_t *obj, struct decoded *out)
{
	struct node_spec *n = xcalloc(1, sizeof(*n));
	istr none;
	json_t *x;
	size_t i;
	n->source = istr_get(c->file);
	if (dec_meta(c, obj, false, &none, &n->name) < 0) {
		node_spec_free(n);
		return -EINVAL;
	}
	json_t *spec = get_typed(c, obj, "spec", FP(""), JSON_OBJECT);
	json_t *status = get_typed(c, obj, "status", FP(""), JSON_OBJECT);
	json_t *cidrs = spec ? get_typed(c, spec, "podCIDRs", FP("spec"), JSON_ARRAY) : NULL;
	const char *one = spec && !cidrs ? get_str(c, spec, "podCIDR", FP("spec")) : NULL;
	json_t *addrs = status ? get_typed(c, status, "addresses", FP("status"), JSON_ARRAY) : NULL;
	for (i = 0; i < (cidrs ? json_array_size(cidrs) : !!one); i++) {
		const char *s = cidrs ? sval(json_array_get(cidrs, i)) : one;
		const struct fpath *p = cidrs ? FP_INDEX(FP("spec.podCIDRs"), i) : FP("spec.podCIDR");
		ip128 lo, hi;
		bool hb;
		if (!s || cidr_parse(s, &lo, &hi, &hb) < 0)
			derr(c, p, "\"%s\" is not a valid CIDR", s ? s : "(not a string)");
		else { /* through a set of its own: an IPv6 prefix carves the
			* IPv4-mapped block out of the whole set */
			struct range_set part = { 0 };
			range_set_add_cidr(&part, s, lo, hi);
			range_set_union(&n->podcidrs, &part);
			range_set_free(&part);
		}
	}
	n->addr = xcalloc(json_array_size(addrs) + 1, sizeof(*n->addr));
	json_array_foreach(addrs, i, x) {
		const char *type = sval(json_object_get(x, "type")), *a = sval(json_object_get(x, "address"));
		if (!type || (strcmp(type, "InternalIP") && strcmp(type, "ExternalIP")))
			continue; /* Hostname, InternalDNS, ExternalDNS: names */
		node_addr(c, n, FP_DOT(FP_INDEX(FP("status.addresses"), i), "address"), a);
	}
	return node_done(c, n, out);
}

/* The EndpointSlice of the Service default/kubernetes (label
 * kubernetes.io/service-name=kubernetes): the API server's endpoint
 * addresses, those not known unready, as a node_spec with apiserver set
 * (model.h). Any other EndpointSlice is not read (OBJ_NONE). */
static int dec_apiserver_slice(struct dctx *c, json_t *obj, struct decoded *out)
{
	json_t *md = json_object_get(obj, "metadata");
	const char *svc = sval(json_object_get(json_object_get(md, "labels"), "kubernetes.io/service-name"));
	const char *ns = sval(json_object_get(md, "namespace"));
	const char *where = ns ? ns : c->o->default_ns ? c->o->default_ns : "default";
	if (!svc || strcmp(svc, "kubernetes") || strcmp(where, "default"))
		return 0;
	struct node_spec *n = xcalloc(1, sizeof(*n));
	istr sns;
	n->source = istr_get(c->file);
	n->apiserver = true;
	if (dec_meta(c, obj, true, &sns, &n->name) < 0) {
		node_spec_free(n);
		return -EINVAL;
	}
	istr_put(sns);
	const char *type = get_str(c, obj, "addressType", FP(""));
	json_t *eps = json_object_get(obj, "endpoints"), *ep;
	size_t i, total = 0;
	json_array_foreach(eps, i, ep) total += json_array_size(json_object_get(ep, "addresses"));
	n->addr = xcalloc(total + 1, sizeof(*n->addr));
	if (type && strcmp(type, "IPv4") && strcmp(type, "IPv6"))
		total = 0; /* FQDN: names, not addresses */
	json_array_foreach(eps, i, ep) {
		if (!total)
			break;
		json_t *ready = json_object_get(json_object_get(ep, "conditions"), "ready");
		if (json_is_false(ready))
			continue; /* unknown (null) counts as ready, as for kube-proxy */
		json_t *addrs = json_object_get(ep, "addresses"), *x;
		size_t k;
		json_array_foreach(addrs, k, x) {
			node_addr(c, n, FP_INDEX(FP_DOT(FP_INDEX(FP("endpoints"), i), "addresses"), k), sval(x));
		}
	}
	return node_done(c, n, out);
}

int kube_decode(json_t *obj, const char *file, const struct decode_opts *o, struct diags *d, struct decoded *out)
{
	struct dctx c = { .o = o, .d = d, .file = file, .kind = NULL };
	int ret = 0;
	memset(out, 0, sizeof(*out));
	if (!json_is_object(obj)) {
		diags_add(d, false, file, NULL, NULL, NULL, "an object must be a mapping, not %s", json_type_name(obj));
		return -EINVAL;
	}
	json_t *kv = json_object_get(obj, "kind"), *av = json_object_get(obj, "apiVersion");
	const char *kind = json_is_string(kv) ? json_string_value(kv) : NULL;
	const char *api = json_is_string(av) ? json_string_value(av) : NULL;
	if (!kind || !api) {
		json_t *meta = json_object_get(obj, "metadata");
		json_t *name = meta ? json_object_get(meta, "name") : NULL;
		diags_add(d, false, file, kind ? kind : "object", json_is_string(name) ? json_string_value(name) : NULL,
			  kind ? "apiVersion" : "kind", "required");
		return -EINVAL;
	}
	c.kind = kind;
	if (!strcmp(kind, "EndpointSlice") && !strcmp(api, "discovery.k8s.io/v1")) {
		/* read only the kubernetes Service's (the kube-apiserver entity) */
		ret = dec_apiserver_slice(&c, obj, out);
		free(c.first);
		return ret;
	}
	if (!group_known(api) || in_list(ignored_kinds, kind))
		return 0;
	if (!strcmp(kind, "Namespace") && !strcmp(api, "v1"))
		ret = dec_namespace(&c, obj, out);
	else if (!strcmp(kind, "Pod") && !strcmp(api, "v1"))
		ret = dec_podlike(&c, obj, false, out);
	else if (!strcmp(kind, "Node") && !strcmp(api, "v1"))
		ret = dec_node(&c, obj, out);
	else if (!strcmp(kind, "NetworkPolicy") && !strcmp(api, "networking.k8s.io/v1"))
		ret = dec_policy(&c, obj, KIND_NETPOL, out);
	else if (!strcmp(kind, "AccessPolicy") && !strcmp(api, "corral.dev/v1"))
		ret = dec_policy(&c, obj, KIND_ACCESS, out);
	else if (in_list(workload_kinds, kind) && (!strncmp(api, "apps/", 5) || !strncmp(api, "batch/", 6))) {
		if (o->workloads)
			ret = dec_podlike(&c, obj, true, out);
	} else {
		json_t *meta = json_object_get(obj, "metadata");
		json_t *name = meta ? json_object_get(meta, "name") : NULL;
		diags_add(d, false, file, kind, json_is_string(name) ? json_string_value(name) : NULL, "kind",
			  "unknown kind \"%s\" for apiVersion \"%s\"", kind, api);
		ret = -EINVAL;
	}
	free(c.first);
	return ret;
}

/* A Pod read from its JSON text without a tree (see podscan.h).
 *
 * 1. The scan: one pass over the text, checking it as jansson 2.14 checks
 *    it (src/load.c: tokens, escapes, surrogate pairs, control characters;
 *    src/utf.c: UTF-8 without overlong forms, surrogates or code points
 *    past U+10FFFF), and stricter where being exact would cost code: a
 *    duplicate key, an escape in a key, \u0000, nesting past SCAN_DEPTH,
 *    an integer of more than 18 digits or a real that could overflow are
 *    "not sure". Every member on the path of a field decode.c reads is
 *    read, with the types decode.c accepts; every other value is only
 *    checked.
 * 2. The pod: what was read goes through decode.c's checks (label keys
 *    and values, the namespace, protocols, addresses); the first problem
 *    is "not sure" too, so that kube_decode words it.
 *
 * managedFields needs nothing special: kube_json_strip_managed cuts only
 * members of valid JSON (this scan's whole text) that no field read here
 * lies under. */
#define _GNU_SOURCE
#include "kube/podscan.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "kube/client.h"
#include "kube/stream.h"
#include "kube/yaml.h"

#define SCAN_DEPTH 32 /* objects and arrays nested deeper: not sure (jansson: 2048) */
#define SCAN_KEYS 64  /* members of one object, each checked against the others */
#define SCAN_LABELS 64
#define SCAN_PORTS 64
#define SCAN_IPS 8
#define SCAN_ARENA 4096 /* bytes of the strings read, NUL-terminated: more is not sure */

struct span {
	const char *s;
	size_t n;
};

struct sport {
	struct span name, proto;
	bool has_name, has_proto, has_port;
	uint16_t port;
};

struct scan {
	const char *p, *end;
	int depth;
	struct span name, ns, rv, node, phase, podip;
	bool has_name, has_ns, has_rv, has_node, has_phase, has_podip, meta, host;
	uint32_t nlabels, nports[2], nips;
	struct span lkey[SCAN_LABELS], lval[SCAN_LABELS];
	struct sport ports[2][SCAN_PORTS]; /* containers, initContainers */
	struct span ips[SCAN_IPS];
	int which; /* the container list being read: 0 or 1 */
	struct sport *port;
	int type; /* a watch event's: 1 ADDED, 2 MODIFIED, 0 none */
	bool object;
};

/* ---------- 1. the scan ---------- */

static inline char at(const struct scan *s)
{
	return s->p < s->end ? *s->p : 0; /* a NUL byte in the text matches nothing expected either */
}

static inline void ws(struct scan *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
		s->p++;
}

static bool key_is(struct span k, const char *name)
{
	size_t n = strlen(name);
	return k.n == n && !memcmp(k.s, name, n);
}

static int hex4(const char *p)
{
	int v = 0;
	for (int i = 0; i < 4; i++) {
		char c = p[i];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v += c - '0';
		else if (c >= 'a' && c <= 'f')
			v += c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v += c - 'A' + 10;
		else
			return -1;
	}
	return v;
}

/* One escape at p (after the backslash); its length, or 0 when jansson
 * refuses it or it is \u0000 (a NUL: not sure). */
static size_t escape_len(const char *p, const char *end)
{
	if (p >= end)
		return 0;
	if (strchr("\"\\/bfnrt", *p) && *p)
		return 1;
	if (*p != 'u' || end - p < 5)
		return 0;
	int v = hex4(p + 1);
	if (v <= 0 || (v >= 0xDC00 && v <= 0xDFFF))
		return 0;
	if (v < 0xD800 || v > 0xDBFF)
		return 5;
	/* a high surrogate: a low one must follow at once */
	if (end - p < 11 || p[5] != '\\' || p[6] != 'u')
		return 0;
	int lo = hex4(p + 7);
	return lo >= 0xDC00 && lo <= 0xDFFF ? 11 : 0;
}

/* One UTF-8 sequence at p, its first byte >= 0x80: its length, or 0. */
static size_t utf8_len(const unsigned char *p, const unsigned char *end)
{
	size_t n;
	uint32_t v;
	if (*p >= 0xC2 && *p <= 0xDF)
		n = 2, v = *p & 0x1F;
	else if (*p >= 0xE0 && *p <= 0xEF)
		n = 3, v = *p & 0x0F;
	else if (*p >= 0xF0 && *p <= 0xF4)
		n = 4, v = *p & 0x07;
	else
		return 0;
	if ((size_t)(end - p) < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if (p[i] < 0x80 || p[i] > 0xBF)
			return 0;
		v = (v << 6) | (p[i] & 0x3F);
	}
	if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF) || (n == 3 && v < 0x800) || (n == 4 && v < 0x10000))
		return 0;
	return n;
}

enum { ESC = 1, ESC_ALIAS = 2 };

/* The bytes a string holds as they are: ASCII, not a control character,
 * not '"' (0x22) or '\\' (0x5c). One load a byte in the loop below. */
static const unsigned char str_plain[256] = { [0x20 ... 0x21] = 1, [0x23 ... 0x5b] = 1, [0x5d ... 0x7f] = 1 };

/* A string at s->p ('"'): its raw text (between the quotes) into *out;
 * *esc: ESC when it holds an escape, ESC_ALIAS too when one of them is
 * \u or \/ (the only escapes that write what another text writes: with
 * none of them, equal texts are equal strings, so keys compare raw). */
static bool str_scan(struct scan *s, struct span *out, int *esc)
{
	const unsigned char *p = (const unsigned char *)s->p + 1, *end = (const unsigned char *)s->end;
	*esc = 0;
	for (;;) {
		while (p < end && str_plain[*p])
			p++;
		if (p >= end || *p < 0x20)
			return false; /* unterminated, or a control character */
		if (*p == '"')
			break;
		size_t n = *p == '\\' ? escape_len((const char *)p + 1, s->end) : utf8_len(p, end);
		if (!n)
			return false;
		if (*p == '\\') {
			*esc |= ESC | (p[1] == 'u' || p[1] == '/' ? ESC_ALIAS : 0);
			n++;
		}
		p += n;
	}
	out->s = s->p + 1;
	out->n = (size_t)((const char *)p - out->s);
	s->p = (const char *)p + 1;
	return true;
}

/* A string read as a field's value: no escape (a read string with one
 * goes to the reference path, which decodes it). */
static bool str_read(struct scan *s, struct span *out)
{
	int esc;
	return at(s) == '"' && str_scan(s, out, &esc) && !esc;
}

static inline bool digit(char c)
{
	return c >= '0' && c <= '9';
}

/* A number as jansson lexes it; *plain: an integer without sign,
 * fraction or exponent, its value in *v. Not sure past 18 digits (an
 * integer jansson may find too big) or for a real that might overflow. */
static bool num_scan(struct scan *s, bool *plain, uint64_t *v)
{
	const char *p = s->p, *start = p;
	size_t digits = 0, exp_digits = 0;
	bool real = false;
	*v = 0;
	if (p < s->end && *p == '-')
		p++;
	if (p < s->end && *p == '0') {
		p++;
		digits = 1;
	} else {
		for (; p < s->end && digit(*p); p++, digits++)
			*v = *v * 10 + (uint64_t)(*p - '0');
	}
	if (!digits || digits > 18)
		return false;
	if (p < s->end && *p == '.') {
		real = true;
		if (++p >= s->end || !digit(*p))
			return false;
		while (p < s->end && digit(*p))
			p++;
	}
	if (p < s->end && (*p == 'e' || *p == 'E')) {
		real = true;
		if (++p < s->end && (*p == '+' || *p == '-'))
			p++;
		for (; p < s->end && digit(*p); p++)
			exp_digits++;
		if (!exp_digits || exp_digits > 2)
			return false;
	}
	if (real && p - start > 40)
		return false; /* under 10^40 x 10^99: finite */
	*plain = !real && *start != '-';
	s->p = p;
	return true;
}

static bool lit_scan(struct scan *s, const char *word)
{
	size_t n = strlen(word);
	if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n))
		return false;
	s->p += n; /* "truex": what follows is not a separator, the caller refuses it */
	return true;
}

typedef bool (*member_fn)(struct scan *s, struct span key);
typedef bool (*elem_fn)(struct scan *s, size_t i);

static bool value_skip(struct scan *s);

/* An object at s->p: each member's value to fn (NULL: checked only). */
static bool obj_each(struct scan *s, member_fn fn)
{
	struct span keys[SCAN_KEYS];
	size_t nk = 0;
	if (++s->depth > SCAN_DEPTH)
		return false;
	s->p++;
	ws(s);
	if (at(s) == '}') {
		s->p++;
		s->depth--;
		return true;
	}
	for (;;) {
		struct span k;
		int esc;
		if (at(s) != '"' || !str_scan(s, &k, &esc) || (esc & ESC_ALIAS) || nk == SCAN_KEYS)
			return false; /* managedFields' keys have escapes ("k:{\"ip\":...}"), not these */
		for (size_t i = 0; i < nk; i++)
			if (keys[i].n == k.n && !memcmp(keys[i].s, k.s, k.n))
				return false; /* jansson keeps the last (a LIST) or refuses it (a watch) */
		keys[nk++] = k;
		ws(s);
		if (at(s) != ':')
			return false;
		s->p++;
		ws(s);
		if (!(fn ? fn(s, k) : value_skip(s)))
			return false;
		ws(s);
		if (at(s) == '}')
			break;
		if (at(s) != ',')
			return false;
		s->p++;
		ws(s);
	}
	s->p++;
	s->depth--;
	return true;
}

static bool arr_each(struct scan *s, elem_fn fn)
{
	if (++s->depth > SCAN_DEPTH)
		return false;
	s->p++;
	ws(s);
	if (at(s) == ']') {
		s->p++;
		s->depth--;
		return true;
	}
	for (size_t i = 0;; i++) {
		if (!(fn ? fn(s, i) : value_skip(s)))
			return false;
		ws(s);
		if (at(s) == ']')
			break;
		if (at(s) != ',')
			return false;
		s->p++;
		ws(s);
	}
	s->p++;
	s->depth--;
	return true;
}

static bool value_skip(struct scan *s)
{
	struct span x;
	int esc;
	bool plain;
	uint64_t v;
	switch (at(s)) {
	case '{':
		return obj_each(s, NULL);
	case '[':
		return arr_each(s, NULL);
	case '"':
		return str_scan(s, &x, &esc);
	case 't':
		return lit_scan(s, "true");
	case 'f':
		return lit_scan(s, "false");
	case 'n':
		return lit_scan(s, "null");
	default:
		return (at(s) == '-' || digit(at(s))) && num_scan(s, &plain, &v);
	}
}

/* A string field decode.c reads with get_str: a string, or null (absent). */
static bool opt_str(struct scan *s, struct span *out, bool *has)
{
	*has = at(s) == '"';
	return *has ? str_read(s, out) : lit_scan(s, "null");
}

/* ---- metadata ---- */

static bool label_member(struct scan *s, struct span key)
{
	if (s->nlabels == SCAN_LABELS || memchr(key.s, '\\', key.n))
		return false; /* the reference decodes it (and finds it is no label key) */
	s->lkey[s->nlabels] = key;
	return str_read(s, &s->lval[s->nlabels++]);
}

static bool meta_member(struct scan *s, struct span key)
{
	if (key_is(key, "name"))
		return (s->has_name = true) && str_read(s, &s->name);
	if (key_is(key, "namespace"))
		return opt_str(s, &s->ns, &s->has_ns);
	if (key_is(key, "labels"))
		return at(s) == '{' ? obj_each(s, label_member) : lit_scan(s, "null");
	if (key_is(key, "resourceVersion")) { /* the client's; not a string: none */
		if (at(s) != '"')
			return value_skip(s);
		s->has_rv = true;
		return str_read(s, &s->rv);
	}
	return value_skip(s);
}

/* ---- spec ---- */

static bool port_member(struct scan *s, struct span key)
{
	struct sport *p = s->port;
	if (key_is(key, "containerPort")) {
		bool plain;
		uint64_t v;
		if (!(at(s) == '-' || digit(at(s))) || !num_scan(s, &plain, &v) || !plain || v < 1 || v > 65535)
			return false;
		p->port = (uint16_t)v;
		p->has_port = true;
		return true;
	}
	if (key_is(key, "protocol"))
		return opt_str(s, &p->proto, &p->has_proto);
	if (key_is(key, "name")) /* anything but a string: no name, no error */
		return at(s) == '"' ? (p->has_name = true) && str_read(s, &p->name) : value_skip(s);
	return value_skip(s);
}

static bool port_elem(struct scan *s, size_t i)
{
	(void)i;
	if (at(s) != '{' || s->nports[s->which] == SCAN_PORTS)
		return false;
	s->port = &s->ports[s->which][s->nports[s->which]++];
	memset(s->port, 0, sizeof(*s->port));
	return obj_each(s, port_member) && s->port->has_port;
}

static bool container_member(struct scan *s, struct span key)
{
	if (key_is(key, "ports") && at(s) == '[')
		return arr_each(s, port_elem);
	return value_skip(s); /* ports that are not a list are not read */
}

static bool container_elem(struct scan *s, size_t i)
{
	(void)i;
	return at(s) == '{' ? obj_each(s, container_member) : value_skip(s);
}

static bool spec_member(struct scan *s, struct span key)
{
	if (key_is(key, "nodeName"))
		return opt_str(s, &s->node, &s->has_node);
	if (key_is(key, "hostNetwork")) {
		s->host = at(s) == 't';
		return value_skip(s);
	}
	bool init = key_is(key, "initContainers");
	if ((init || key_is(key, "containers")) && at(s) == '[') {
		s->which = init;
		return arr_each(s, container_elem);
	}
	return value_skip(s);
}

/* ---- status ---- */

static bool ip_member(struct scan *s, struct span key)
{
	if (!key_is(key, "ip"))
		return value_skip(s);
	s->nips++; /* counted when it is read: one "ip" each, see ip_elem */
	return s->nips <= SCAN_IPS && str_read(s, &s->ips[s->nips - 1]);
}

static bool ip_elem(struct scan *s, size_t i)
{
	if (at(s) != '{')
		return false;
	return obj_each(s, ip_member) && s->nips == i + 1;
}

static bool status_member(struct scan *s, struct span key)
{
	if (key_is(key, "phase"))
		return opt_str(s, &s->phase, &s->has_phase);
	if (key_is(key, "podIPs"))
		return at(s) == '[' ? arr_each(s, ip_elem) : lit_scan(s, "null");
	if (key_is(key, "podIP"))
		return opt_str(s, &s->podip, &s->has_podip);
	return value_skip(s);
}

static bool top_member(struct scan *s, struct span key)
{
	if (key_is(key, "metadata"))
		return at(s) == '{' && (s->meta = true) && obj_each(s, meta_member);
	if (key_is(key, "spec"))
		return at(s) == '{' ? obj_each(s, spec_member) : lit_scan(s, "null");
	if (key_is(key, "status"))
		return at(s) == '{' ? obj_each(s, status_member) : lit_scan(s, "null");
	return value_skip(s); /* kind and apiVersion included: the resource says them */
}

/* A watch event: {"type": "ADDED" or "MODIFIED", "object": the pod}. */
static bool event_member(struct scan *s, struct span key)
{
	if (key_is(key, "object")) {
		s->object = true;
		return at(s) == '{' && obj_each(s, top_member);
	}
	if (!key_is(key, "type"))
		return value_skip(s);
	struct span t;
	if (!str_read(s, &t))
		return false;
	s->type = key_is(t, "ADDED") ? 1 : key_is(t, "MODIFIED") ? 2 : 0;
	return s->type != 0; /* the others are not a pod to read */
}

/* ---------- 2. the pod ---------- */

struct arena {
	char b[SCAN_ARENA];
	size_t n;
};

static const char *arena_str(struct arena *a, struct span x)
{
	if (x.n >= sizeof(a->b) - a->n)
		return NULL;
	char *r = a->b + a->n;
	memcpy(r, x.s, x.n);
	r[x.n] = 0;
	a->n += x.n + 1;
	return r;
}

/* pod_add_addr of decode.c, which reports what returns false here */
static bool pod_addr(struct pod_spec *pod, struct arena *a, struct span x)
{
	const char *s = arena_str(a, x);
	ip128 ip;
	if (!s || ip_parse(s, &ip) < 0)
		return false;
	for (uint32_t i = 0; i < pod->naddr; i++) {
		if (ip_eq(pod->addr[i], ip))
			return true;
		if (ip_is_v4(pod->addr[i]) == ip_is_v4(ip))
			return false;
	}
	pod->addr[pod->naddr++] = ip;
	return true;
}

/* Label keys and values (checked, as arena strings), sorted by key as
 * labelset_set keeps them; the keys are unique (a duplicate was refused). */
static bool pod_labels(const struct scan *s, struct arena *a, const char **k, const char **v)
{
	for (uint32_t i = 0; i < s->nlabels; i++) {
		const char *key = arena_str(a, s->lkey[i]), *val = arena_str(a, s->lval[i]);
		if (!key || !val || !k8s_label_key_ok(key) || !k8s_label_value_ok(val))
			return false;
		uint32_t j = i;
		for (; j > 0 && strcmp(k[j - 1], key) > 0; j--) {
			k[j] = k[j - 1];
			v[j] = v[j - 1];
		}
		k[j] = key;
		v[j] = val;
	}
	return true;
}

/* Container ports, then init containers' (decode.c's order); names as
 * arena strings, interned once everything is known to be good. */
static bool pod_ports(const struct scan *s, struct arena *a, struct cport *ports, const char **names)
{
	uint32_t n = 0;
	for (int w = 0; w < 2; w++)
		for (uint32_t i = 0; i < s->nports[w]; i++, n++) {
			const struct sport *p = &s->ports[w][i];
			const char *proto = p->has_proto ? arena_str(a, p->proto) : "TCP";
			int pr = proto ? proto_parse(proto) : -1;
			names[n] = p->has_name ? arena_str(a, p->name) : NULL;
			if (pr < 0 || (p->has_name && !names[n]))
				return false;
			ports[n] = (struct cport){ NULL, (uint8_t)pr, p->port };
		}
	return true;
}

static bool pod_status(const struct scan *s, struct arena *a, struct pod_spec *pod)
{
	pod->phase = s->has_phase ? pod_phase_parse(s->phase.s, s->phase.n) : PHASE_RUNNING;
	for (uint32_t i = 0; i < s->nips; i++)
		if (pod->naddr < 2 && !pod_addr(pod, a, s->ips[i]))
			return false;
	return !s->has_podip || pod->naddr || pod_addr(pod, a, s->podip);
}

/* What was read, checked as decode.c checks it, into one block
 * (pod_spec_packed_copy) built from the stack: nothing is interned before
 * everything is known to be good, so a pod the scan gives up on leaves
 * nothing to undo. */
static struct pod_spec *pod_build(const struct scan *s, const struct decode_opts *o)
{
	struct arena a = { .n = 0 };
	const char *lk[SCAN_LABELS], *lv[SCAN_LABELS], *pn[2 * SCAN_PORTS];
	struct label labels[SCAN_LABELS];
	struct cport ports[2 * SCAN_PORTS];
	struct pod_spec pod = { .labels = { s->nlabels, labels }, .nports = s->nports[0] + s->nports[1], .ports = ports };
	const char *name = arena_str(&a, s->name);
	const char *ns = s->has_ns ? arena_str(&a, s->ns) : o->default_ns ? o->default_ns : "default";
	const char *node = s->has_node ? arena_str(&a, s->node) : NULL;
	if (!name || !*name || !ns || !k8s_dns_label_ok(ns) || (s->has_node && !node) || !pod_labels(s, &a, lk, lv) ||
	    !pod_ports(s, &a, ports, pn) || !pod_status(s, &a, &pod))
		return NULL;
	pod.source = istr_get("api");
	pod.ns = istr_get(ns);
	pod.node = node ? istr_get(node) : NULL;
	pod.name = name; /* copied into the block */
	pod.host_network = s->host;
	for (uint32_t i = 0; i < s->nlabels; i++)
		labels[i] = (struct label){ istr_get(lk[i]), istr_get(lv[i]) };
	for (uint32_t i = 0; i < pod.nports; i++)
		ports[i].name = pn[i] ? istr_get(pn[i]) : NULL;
	if (!pod.nports)
		pod.ports = NULL;
	if (!pod.labels.n)
		pod.labels.v = NULL;
	return pod_spec_packed_copy(&pod);
}

static bool scan_pod(const char *b, size_t n, bool prefix, bool event, const struct decode_opts *o,
		     struct pod_scan *out, size_t *used)
{
	struct scan scan, *s = &scan; /* 7 KB, and obj_each's keys 1 KB a level: the stack */
	bool ok = o->mode == DECODE_API;
	memset(s, 0, offsetof(struct scan, lkey));
	s->type = 0;
	s->object = false;
	s->p = b;
	s->end = b + n;
	out->pod = NULL;
	out->rv = NULL;
	ws(s);
	ok = ok && at(s) == '{' && obj_each(s, event ? event_member : top_member);
	ok = ok && (!event || (s->type && s->object));
	out->type = s->type;
	*used = (size_t)(s->p - b);
	if (!prefix)
		ws(s);
	ok = ok && (prefix || s->p == s->end) && s->meta && s->has_name;
	if (ok)
		out->pod = pod_build(s, o);
	if (out->pod && s->has_rv) {
		out->rv = xmalloc(s->rv.n + 1);
		memcpy(out->rv, s->rv.s, s->rv.n);
		out->rv[s->rv.n] = 0;
	}
	return out->pod != NULL;
}

bool kube_pod_scan(const char *b, size_t n, const struct decode_opts *o, struct pod_scan *out)
{
	size_t used;
	return scan_pod(b, n, false, false, o, out, &used);
}

bool kube_pod_scan_event(const char *b, size_t n, const struct decode_opts *o, struct pod_scan *out)
{
	size_t used;
	return scan_pod(b, n, false, true, o, out, &used);
}

size_t kube_pod_scan_prefix(const char *b, size_t n, const struct decode_opts *o, struct pod_scan *out)
{
	size_t used;
	return scan_pod(b, n, true, false, o, out, &used) ? used : 0;
}

/* ---------- the reference, for tests ---------- */

static const char *pod_diff(const struct pod_spec *a, const struct pod_spec *b)
{
	if (a->ns != b->ns || strcmp(a->name, b->name) || a->node != b->node)
		return "namespace, name or node";
	if (a->labels.n != b->labels.n)
		return "label count";
	for (uint32_t i = 0; i < a->labels.n; i++)
		if (a->labels.v[i].key != b->labels.v[i].key || a->labels.v[i].val != b->labels.v[i].val)
			return "labels";
	if (a->naddr != b->naddr || memcmp(a->addr, b->addr, sizeof(a->addr[0]) * a->naddr))
		return "addresses";
	if (a->phase != b->phase || a->host_network != b->host_network || a->source != b->source)
		return "phase, hostNetwork or source";
	if (a->nports != b->nports)
		return "port count";
	for (uint32_t i = 0; i < a->nports; i++)
		if (a->ports[i].name != b->ports[i].name || a->ports[i].proto != b->ports[i].proto ||
		    a->ports[i].port != b->ports[i].port)
			return "ports";
	if (a->unreadable != b->unreadable || !a->error != !b->error || a->workload || b->workload ||
	    a->synthetic_addr != b->synthetic_addr || a->packed != b->packed || a->refs != b->refs)
		return "flags";
	return NULL;
}

/* As the agent reads the text: a LIST item (kube_json_list_each) or a
 * watch event's object (kube/stream.c: strict, and no integral reals). */
static json_t *reference_load(const char *b, size_t n, bool watch)
{
	json_t *o = NULL;
	char *err = NULL;
	if (!watch) {
		kube_json_item_load(b, n, JSON_ALLOW_NUL, &o, &err);
		free(err);
		return o;
	}
	size_t slen = 0;
	char *stripped = kube_json_strip_managed(b, n, &slen);
	o = json_loadb(stripped ? stripped : b, stripped ? slen : n, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, NULL);
	free(stripped);
	return o;
}

/* sc against the reference's object o (borrowed, NULL when it did not
 * parse): -1 with *why when they differ, else 1. Frees sc. */
static int compare(struct pod_scan *sc, json_t *o, char **why)
{
	struct decode_opts opts = { DECODE_API, false, APP_LABELS_DEFAULT, "default" };
	struct diags d = { 0 };
	struct decoded dec = { 0 };
	const char *rv = json_string_value(json_object_get(json_object_get(o, "metadata"), "resourceVersion"));
	char *rvc = rv ? xstrdup(rv) : NULL; /* kube_decode_listed changes the object */
	int rc = o ? kube_decode_listed(KRES_PODS, o, &opts, &d, &dec) : -EINVAL;
	const char *diff = !o ? "the reference cannot parse it" : rc < 0 || dec.type != OBJ_POD ? "the reference refuses it"
			 : d.v.n ? "the reference has a problem with it" : pod_diff(sc->pod, dec.pod);
	if (!diff && (!rvc != !sc->rv || (rvc && strcmp(rvc, sc->rv))))
		diff = "resourceVersion";
	if (diff) {
		char *m = d.v.n ? diag_format(d.v.v[0]) : NULL;
		*why = xasprintf("scanned and reference differ (%s)%s%s", diff, m ? ": " : "", m ? m : "");
		free(m);
	}
	pod_spec_free(dec.pod);
	pod_spec_free(sc->pod);
	free(sc->rv);
	free(rvc);
	diags_free(&d);
	return diff ? -1 : 1;
}

int kube_pod_scan_check(const char *b, size_t n, bool watch, char **why)
{
	struct decode_opts opts = { DECODE_API, false, APP_LABELS_DEFAULT, "default" };
	struct pod_scan sc;
	*why = NULL;
	if (!kube_pod_scan(b, n, &opts, &sc))
		return 0;
	json_t *o = reference_load(b, n, watch);
	int rc = compare(&sc, o, why);
	json_decref(o);
	return rc;
}

struct event_got {
	enum kube_ev type;
	json_t *object;
};

static int event_got(const struct kube_event *ev, void *arg)
{
	struct event_got *g = arg;
	g->type = ev->type;
	json_decref(g->object);
	g->object = json_incref(ev->object);
	return 0;
}

int kube_pod_scan_check_event(const char *b, size_t n, char **why)
{
	struct decode_opts opts = { DECODE_API, false, APP_LABELS_DEFAULT, "default" };
	struct pod_scan sc;
	*why = NULL;
	if (memchr(b, '\n', n) || !kube_pod_scan_event(b, n, &opts, &sc))
		return 0; /* one line: the stream cuts lines before anything reads them */
	/* the reference: the stream's own reading of the line (kube/stream.c) */
	struct kube_stream st = { 0 };
	struct event_got g = { KEV_ERROR, NULL };
	char *err = NULL;
	int rc = kube_stream_feed(&st, b, n, event_got, &g, &err);
	if (rc == 0)
		rc = kube_stream_feed(&st, "\n", 1, event_got, &g, &err);
	kube_stream_reset(&st);
	free(err);
	if (rc == 0 && g.object && g.type != (sc.type == 1 ? KEV_ADDED : KEV_MODIFIED)) {
		*why = xstrdup("scanned and reference differ (the event type)");
		pod_spec_free(sc.pod);
		free(sc.rv);
		rc = -1;
	} else {
		rc = compare(&sc, rc == 0 ? g.object : NULL, why);
	}
	json_decref(g.object);
	return rc;
}

struct page_got {
	struct vec pods; /* struct pod_spec*, a NULL for an item the reference could not decode */
	json_t *list;
	bool scan;
};

static void page_item(json_t *item, void *arg)
{
	struct page_got *g = arg;
	struct decode_opts opts = { DECODE_API, false, APP_LABELS_DEFAULT, "default" };
	struct diags d = { 0 };
	struct decoded dec = { 0 };
	if (json_is_object(item) && kube_decode_listed(KRES_PODS, item, &opts, &d, &dec) == 0 && dec.type == OBJ_POD)
		vec_push(&g->pods, dec.pod);
	else
		vec_push(&g->pods, NULL);
	diags_free(&d);
}

static size_t page_raw(const char *b, size_t n, void *arg)
{
	struct page_got *g = arg;
	struct decode_opts opts = { DECODE_API, false, APP_LABELS_DEFAULT, "default" };
	struct pod_scan sc;
	size_t used = g->scan ? kube_pod_scan_prefix(b, n, &opts, &sc) : 0;
	if (used) {
		vec_push(&g->pods, sc.pod);
		free(sc.rv);
	}
	return used;
}

static void page_list(json_t *list, void *arg)
{
	struct page_got *g = arg;
	json_decref(g->list);
	g->list = json_incref(list);
}

static const char *page_diff(const struct page_got *a, const struct page_got *b)
{
	if (a->pods.n != b->pods.n)
		return "item count";
	for (size_t i = 0; i < a->pods.n; i++) {
		const struct pod_spec *x = a->pods.v[i], *y = b->pods.v[i];
		if (!x != !y)
			return "an item read by one only";
		if (x && (x->unreadable != y->unreadable || (!x->unreadable && pod_diff(x, y))))
			return "an item";
	}
	return !a->list != !b->list || (a->list && !json_equal(a->list, b->list)) ? "the List" : NULL;
}

int kube_pod_scan_check_page(const char *b, size_t n, char **why)
{
	struct page_got g[2] = { { .scan = false }, { .scan = true } };
	char *err[2] = { NULL, NULL };
	int rc[2];
	for (int k = 0; k < 2; k++)
		rc[k] = kube_json_list_each_raw(b, n, JSON_ALLOW_NUL, page_raw, page_item, page_list, &g[k], &err[k]);
	const char *diff = rc[0] != rc[1] || !err[0] != !err[1] || (err[0] && strcmp(err[0], err[1])) ? "the verdict"
			   : rc[0] == 0 ? page_diff(&g[0], &g[1]) : NULL;
	*why = diff ? xasprintf("page read with and without the scan differs (%s): %s / %s", diff,
				err[0] ? err[0] : "ok", err[1] ? err[1] : "ok")
		    : NULL;
	for (int k = 0; k < 2; k++) {
		for (size_t i = 0; i < g[k].pods.n; i++)
			pod_spec_free(g[k].pods.v[i]);
		vec_free(&g[k].pods);
		json_decref(g[k].list);
		free(err[k]);
	}
	return diff ? -1 : 0;
}

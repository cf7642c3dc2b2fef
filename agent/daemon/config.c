#define _GNU_SOURCE
#include "agent/daemon/config.h"

#include <errno.h>
#include <stddef.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/daemon/log.h"
#include "agent/dataplane/dataplane.h"
#include "kube/decode.h"
#include "kube/manifest.h"
#include "policy/addr.h"
#include "policy/clip.h"
#include "kube/yaml.h"

void agent_config_defaults(struct agent_config *c)
{
	memset(c, 0, sizeof(*c));
	c->app_label = xstrdup(APP_LABELS_DEFAULT);
	c->pod_cidrs = xstrdup("");
	c->apiserver_addrs = xstrdup("");
	c->dns_default = true;
	c->log_rate = 10;
	c->log_burst = 20;
	c->nflog_group = 100;
	c->metrics_address = xstrdup("127.0.0.1:9464");
	c->debounce_ms = 20;
	c->log_format = xstrdup("text");
	c->log_level = xstrdup("info");
	c->source_check = true;
	c->deny_unexplained = true;
	c->revoke_flows = true;
	c->revoke_interval_ms = 100;
	c->revoke_mark = DP_REVOKED_MARK;
	c->dns_proxy_port = 15053;
	c->dns_proxy_addresses = xstrdup("auto");
	c->dns_upstreams = xstrdup("");
	c->dns_service_addresses = xstrdup("");
	c->dns_grace_s = 5;
	c->dns_max_ttl_s = 86400;
	c->dns_max_per_name = 1024;
	/* loopback, "this network", link-local (cloud metadata services),
	 * multicast and reserved, and their IPv6 kin: no name may open them */
	c->dns_forbidden = xstrdup("0.0.0.0/8,127.0.0.0/8,169.254.0.0/16,224.0.0.0/3,::/128,::1/128,"
				   "fe80::/10,ff00::/8");
	c->drop_events = true;
	c->drop_events_per_minute = 6;
}

void agent_config_free(struct agent_config *c)
{
	free(c->app_label);
	free(c->pod_cidrs);
	free(c->apiserver_addrs);
	free(c->metrics_address);
	free(c->log_format);
	free(c->log_level);
	free(c->dns_proxy_addresses);
	free(c->dns_upstreams);
	free(c->dns_service_addresses);
	free(c->dns_forbidden);
	memset(c, 0, sizeof(*c));
}

/* ---------- settings, one row each ---------- */

enum ctype { C_STRING, C_BOOL, C_UINT };

typedef int (*cvalid_fn)(const char *v, char **why);

struct csetting {
	const char *key;  /* in the file */
	const char *flag; /* on the command line, or NULL */
	enum ctype type;
	size_t off;
	uint32_t lo, hi;  /* C_UINT */
	unsigned width;   /* C_UINT: bytes of the field (2 or 4) */
	cvalid_fn valid;  /* C_STRING: NULL or a check */
};

/* An ordered comma list of label keys, one to APP_KEYS_MAX, each once. */
static int valid_label_keys(const char *v, char **why)
{
	char *dup = xstrdup(v), *save = NULL;
	const char *seen[APP_KEYS_MAX];
	size_t n = 0;
	int rc = 0;
	for (char *t = strtok_r(dup, ",", &save); t && !rc; t = strtok_r(NULL, ",", &save)) {
		for (size_t i = 0; i < n && !rc; i++)
			if (!strcmp(seen[i], t)) {
				*why = xasprintf("\"%s\" is listed twice", CLIP(t));
				rc = -EINVAL;
			}
		if (rc)
			break;
		if (!k8s_label_key_ok(t)) {
			*why = xasprintf("\"%s\" is not a valid label key", CLIP(t));
			rc = -EINVAL;
		} else if (n == APP_KEYS_MAX) {
			*why = xasprintf("at most %d keys", APP_KEYS_MAX);
			rc = -EINVAL;
		} else {
			seen[n++] = t;
		}
	}
	if (!rc && !n) {
		*why = xstrdup("must list at least one label key");
		rc = -EINVAL;
	}
	free(dup);
	return rc;
}

static int valid_log_format(const char *v, char **why)
{
	if (!strcmp(v, "text") || !strcmp(v, "json"))
		return 0;
	*why = xasprintf("must be text or json, not \"%s\"", v);
	return -EINVAL;
}

static int valid_log_level(const char *v, char **why)
{
	if (log_level_parse(v) >= 0)
		return 0;
	*why = xasprintf("must be debug, info, warn or error, not \"%s\"", v);
	return -EINVAL;
}

/* "" (no metrics) or HOST:PORT, HOST an IPv4 address or [IPv6] */
static int valid_address(const char *v, char **why)
{
	if (!*v)
		return 0;
	const char *colon = strrchr(v, ':');
	uint64_t port;
	bool bracketed = v[0] == '[';
	if (colon && parse_uint(colon + 1, 1, 65535, &port) == 0 && colon > v &&
	    (bracketed ? colon[-1] == ']' && colon - v >= 3 : !memchr(v, ':', (size_t)(colon - v))) &&
	    (size_t)(colon - v) < 64)
		return 0;
	*why = xasprintf("\"%s\" is not HOST:PORT (an IPv4 address or [IPv6] and a port 1-65535)", v);
	return -EINVAL;
}

/* v with every $(NAME) replaced by the environment variable NAME (as the
 * kubelet expands a container's arguments), so that one ConfigMap can say
 * "$(HOST_IP):9464" for every node. A value holding a colon (an IPv6
 * address) that is not already in brackets gets them: "[fd00::1]:9464".
 * NULL with *why when a variable is unset or empty. */
static char *expand_env(const char *v, char **why)
{
	struct sbuf b = { 0 };
	for (const char *p = v; *p;) {
		const char *end = !strncmp(p, "$(", 2) ? strchr(p + 2, ')') : NULL;
		if (!end) {
			sbuf_addn(&b, p++, 1);
			continue;
		}
		char name[128];
		snprintf(name, sizeof(name), "%.*s", (int)(end - p - 2), p + 2);
		const char *val = getenv(name);
		if (!val || !*val) {
			*why = xasprintf("$(%s): the environment variable %s is not set", CLIP(name), CLIP(name));
			sbuf_free(&b);
			return NULL;
		}
		bool bracket = strchr(val, ':') && (p == v || p[-1] != '[');
		sbuf_addf(&b, "%s%s%s", bracket ? "[" : "", val, bracket ? "]" : "");
		p = end + 1;
	}
	return b.s ? sbuf_steal(&b) : xstrdup("");
}

/* A comma list of IP addresses (cidr false) or prefixes (cidr true). */
static int valid_list(const char *v, bool cidr, char **why)
{
	char *dup = xstrdup(v), *save = NULL;
	int rc = 0;
	for (char *t = strtok_r(dup, ",", &save); t && !rc; t = strtok_r(NULL, ",", &save)) {
		ip128 lo, hi;
		bool hb;
		if (cidr ? cidr_parse(t, &lo, &hi, &hb) < 0 || hb : ip_parse(t, &lo) < 0) {
			*why = xasprintf("\"%s\" is not %s", CLIP(t), cidr ? "a prefix (no bits past its length)" : "an IP address");
			rc = -EINVAL;
		}
	}
	free(dup);
	return rc;
}

static int valid_addrs(const char *v, char **why)
{
	return valid_list(v, false, why);
}

static int valid_proxy_addrs(const char *v, char **why)
{
	return strcmp(v, "auto") ? valid_list(v, false, why) : 0;
}

static int valid_cidrs(const char *v, char **why)
{
	return valid_list(v, true, why);
}

#define F(field) offsetof(struct agent_config, field)
static const struct csetting settings[] = {
	{ "appLabels", "--app-labels", C_STRING, F(app_label), 0, 0, 0, valid_label_keys },
	{ "appLabel", "--app-label", C_STRING, F(app_label), 0, 0, 0, valid_label_keys }, /* the old name */
	{ "podCidrs", "--pod-cidrs", C_STRING, F(pod_cidrs), 0, 0, 0, valid_cidrs },
	{ "apiServerAddresses", "--apiserver-addresses", C_STRING, F(apiserver_addrs), 0, 0, 0, valid_addrs },
	{ "dnsDefault", NULL, C_BOOL, F(dns_default), 0, 0, 0, NULL },
	{ "logRate", NULL, C_UINT, F(log_rate), 1, 10000, 4, NULL },
	{ "logBurst", NULL, C_UINT, F(log_burst), 1, 10000, 4, NULL },
	{ "nflogGroup", NULL, C_UINT, F(nflog_group), 1, 65535, 2, NULL },
	{ "metricsAddress", "--metrics-address", C_STRING, F(metrics_address), 0, 0, 0, valid_address },
	{ "debounceMs", "--debounce-ms", C_UINT, F(debounce_ms), 0, 10000, 4, NULL },
	{ "logFormat", "--log-format", C_STRING, F(log_format), 0, 0, 0, valid_log_format },
	{ "logLevel", "--log-level", C_STRING, F(log_level), 0, 0, 0, valid_log_level },
	{ "sourceCheck", NULL, C_BOOL, F(source_check), 0, 0, 0, NULL },
	{ "denyUnexplainedAddresses", NULL, C_BOOL, F(deny_unexplained), 0, 0, 0, NULL },
	{ "revokeFlows", "--revoke-flows", C_BOOL, F(revoke_flows), 0, 0, 0, NULL },
	{ "revokeIntervalMs", "--revoke-interval-ms", C_UINT, F(revoke_interval_ms), 10, 60000, 4, NULL },
	{ "revokeMark", NULL, C_UINT, F(revoke_mark), 1, 0xffffffffu, 4, NULL },
	{ "filesMaxFileBytes", NULL, C_UINT, F(files_max_file_bytes), 1024, 1u << 30, 4, NULL },
	{ "filesMaxTotalBytes", NULL, C_UINT, F(files_max_total_bytes), 1024, 0xffffffffu, 4, NULL },
	{ "filesMaxFiles", NULL, C_UINT, F(files_max_files), 1, 1000000, 4, NULL },
	{ "filesMaxDocumentNodes", NULL, C_UINT, F(files_max_doc_nodes), 1000, 100000000, 4, NULL },
	{ "filesSettleMs", NULL, C_UINT, F(files_settle_ms), 100, 600000, 4, NULL },
	{ "dnsProxyPort", "--dns-proxy-port", C_UINT, F(dns_proxy_port), 0, 65535, 2, NULL },
	{ "dnsProxyAddresses", "--dns-proxy-addresses", C_STRING, F(dns_proxy_addresses), 0, 0, 0, valid_proxy_addrs },
	{ "dnsUpstreams", "--dns-upstreams", C_STRING, F(dns_upstreams), 0, 0, 0, valid_addrs },
	{ "dnsServiceAddresses", NULL, C_STRING, F(dns_service_addresses), 0, 0, 0, valid_addrs },
	{ "dnsGraceSeconds", "--dns-grace-seconds", C_UINT, F(dns_grace_s), 0, 3600, 4, NULL },
	{ "dnsMaxTtlSeconds", NULL, C_UINT, F(dns_max_ttl_s), 1, 604800, 4, NULL },
	{ "dnsMaxAddressesPerName", NULL, C_UINT, F(dns_max_per_name), 1, 65536, 4, NULL },
	{ "dnsForbiddenRanges", NULL, C_STRING, F(dns_forbidden), 0, 0, 0, valid_cidrs },
	{ "dropEvents", "--drop-events", C_BOOL, F(drop_events), 0, 0, 0, NULL },
	{ "dropEventsPerMinute", "--drop-events-per-minute", C_UINT, F(drop_events_per_minute), 1, 600, 4, NULL },
};
#undef F

/* String settings in which $(NAME) stands for an environment variable. */
static const char *const env_settings[] = { "metricsAddress" };

static bool takes_env(const struct csetting *st)
{
	for (size_t i = 0; i < ARRAY_SIZE(env_settings); i++)
		if (!strcmp(env_settings[i], st->key))
			return true;
	return false;
}

static char *known_keys(void)
{
	struct sbuf b = { 0 };
	for (size_t i = 0; i < ARRAY_SIZE(settings); i++)
		sbuf_addf(&b, "%s%s", i ? ", " : "", settings[i].key);
	return sbuf_steal(&b);
}

static void set_uint(void *field, unsigned width, uint32_t v)
{
	if (width == 2)
		*(uint16_t *)field = (uint16_t)v;
	else
		*(uint32_t *)field = v;
}

/* One setting from the file (a JSON value) or a flag (text: typed by the
 * setting, numbers through parse_uint). */
static int set_one(struct agent_config *c, const struct csetting *st, json_t *jv, const char *text, char **err)
{
	void *field = (char *)c + st->off;
	char *why = NULL;
	switch (st->type) {
	case C_BOOL:
		if (jv ? !json_is_boolean(jv) : strcmp(text, "true") && strcmp(text, "false"))
			why = xstrdup("must be true or false");
		else
			*(bool *)field = jv ? json_is_true(jv) : !strcmp(text, "true");
		break;
	case C_UINT: {
		uint64_t v = 0;
		bool ok = jv ? json_is_integer(jv) && json_integer_value(jv) >= st->lo && json_integer_value(jv) <= st->hi
			     : parse_uint(text, st->lo, st->hi, &v) == 0;
		if (!ok)
			why = xasprintf("must be an integer from %u to %u", st->lo, st->hi);
		else
			set_uint(field, st->width, jv ? (uint32_t)json_integer_value(jv) : (uint32_t)v);
		break;
	}
	case C_STRING: {
		const char *v = jv ? json_string_value(jv) : text;
		char *x = v && takes_env(st) ? expand_env(v, &why) : NULL;
		if (!v)
			why = xstrdup("must be a string");
		else if (!why && (!st->valid || st->valid(x ? x : v, &why) == 0)) {
			free(*(char **)field);
			*(char **)field = xstrdup(x ? x : v);
		}
		free(x);
		break;
	}
	}
	if (!why)
		return 0;
	*err = xasprintf("%s: %s", jv ? st->key : st->flag, why);
	free(why);
	return -EINVAL;
}

static int apply(struct agent_config *c, json_t *o, char **err)
{
	const char *key;
	json_t *v;
	json_object_foreach(o, key, v) {
		size_t i = 0;
		while (i < ARRAY_SIZE(settings) && strcmp(settings[i].key, key))
			i++;
		if (i == ARRAY_SIZE(settings)) {
			char *known = known_keys();
			*err = xasprintf("%s: unknown setting (known: %s)", CLIP(key), known);
			free(known);
			return -EINVAL;
		}
		if (set_one(c, &settings[i], v, NULL, err) < 0)
			return -EINVAL;
	}
	return 0;
}

int agent_config_flag(struct agent_config *c, const char *flag, const char *val, char **err)
{
	for (size_t i = 0; i < ARRAY_SIZE(settings); i++)
		if (settings[i].flag && !strcmp(settings[i].flag, flag))
			return set_one(c, &settings[i], NULL, val, err);
	return -ENOENT;
}

void agent_config_flags_help(FILE *out)
{
	for (size_t i = 0; i < ARRAY_SIZE(settings); i++) {
		if (settings[i].flag) {
			char lhs[64];
			snprintf(lhs, sizeof(lhs), "%s %s", settings[i].flag,
				 settings[i].type == C_BOOL ? "true|false" : settings[i].type == C_UINT ? "N" : "VALUE");
			fprintf(out, "  %-33s the setting %s of the configuration file\n", lhs, settings[i].key);
		}
	}
}

int agent_config_parse(struct agent_config *c, const char *name, const char *buf, size_t len, char **err)
{
	struct vec docs = { 0 };
	char *perr = NULL;
	int rc = -EINVAL;
	if (kube_yaml_parse(buf, len, &docs, &perr) < 0) {
		*err = xasprintf("%s: %s", name, perr);
	} else if (docs.n > 1 || (docs.n == 1 && !json_is_object((json_t *)docs.v[0]))) {
		*err = xasprintf("%s: expected one mapping of settings", name);
	} else {
		char *e = NULL;
		rc = docs.n ? apply(c, docs.v[0], &e) : 0;
		if (rc < 0) {
			*err = xasprintf("%s: %s", name, e);
			free(e);
		}
	}
	free(perr);
	for (size_t i = 0; i < docs.n; i++)
		json_decref(docs.v[i]);
	vec_free(&docs);
	return rc;
}

int agent_config_load(struct agent_config *c, const char *path, char **err)
{
	size_t len;
	char *rerr = NULL;
	/* a settings file is small: a larger one is refused whole, never cut */
	char *buf = manifest_read_file(path, AGENT_CONFIG_MAX_BYTES, &len, &rerr);
	if (!buf) {
		*err = xasprintf("%s: %s", path, rerr);
		free(rerr);
		return -EINVAL;
	}
	int rc = agent_config_parse(c, path, buf, len, err);
	free(buf);
	return rc;
}

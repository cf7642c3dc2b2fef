#define _GNU_SOURCE
#include "agent/config.h"

#include <errno.h>
#include <stddef.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/log.h"
#include "kube/decode.h"
#include "kube/yaml.h"

void agent_config_defaults(struct agent_config *c)
{
	memset(c, 0, sizeof(*c));
	c->app_label = xstrdup("app");
	c->dns_default = true;
	c->log_rate = 10;
	c->log_burst = 20;
	c->nflog_group = 100;
	c->metrics_address = xstrdup("127.0.0.1:9464");
	c->debounce_ms = 20;
	c->log_format = xstrdup("text");
	c->log_level = xstrdup("info");
	c->source_check = true;
	c->revoke_flows = true;
}

void agent_config_free(struct agent_config *c)
{
	free(c->app_label);
	free(c->metrics_address);
	free(c->log_format);
	free(c->log_level);
	memset(c, 0, sizeof(*c));
}

static int get_uint(json_t *v, const char *key, uint32_t lo, uint32_t hi, uint32_t *out, char **err)
{
	if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
		*err = xasprintf("%s: must be an integer from %u to %u", key, lo, hi);
		return -1;
	}
	*out = (uint32_t)json_integer_value(v);
	return 0;
}

static int get_bool(json_t *v, const char *key, bool *out, char **err)
{
	if (!json_is_boolean(v)) {
		*err = xasprintf("%s: must be true or false", key);
		return -1;
	}
	*out = json_is_true(v);
	return 0;
}

static int get_string(json_t *v, const char *key, char **out, char **err)
{
	if (!json_is_string(v)) {
		*err = xasprintf("%s: must be a string", key);
		return -1;
	}
	free(*out);
	*out = xstrdup(json_string_value(v));
	return 0;
}

/* The files source's bounds: key, field, lowest and highest value. */
static const struct files_key {
	const char *key;
	size_t off;
	uint32_t lo, hi;
} files_keys[] = {
	{ "filesMaxFileBytes", offsetof(struct agent_config, files_max_file_bytes), 1024, 1u << 30 },
	{ "filesMaxTotalBytes", offsetof(struct agent_config, files_max_total_bytes), 1024, 0xffffffffu },
	{ "filesMaxFiles", offsetof(struct agent_config, files_max_files), 1, 1000000 },
	{ "filesMaxDocumentNodes", offsetof(struct agent_config, files_max_doc_nodes), 1000, 100000000 },
	{ "filesSettleMs", offsetof(struct agent_config, files_settle_ms), 100, 600000 },
};

static int apply_files(struct agent_config *c, const char *key, json_t *v, char **err)
{
	for (size_t i = 0; i < ARRAY_SIZE(files_keys); i++)
		if (!strcmp(key, files_keys[i].key))
			return get_uint(v, key, files_keys[i].lo, files_keys[i].hi,
					(uint32_t *)((char *)c + files_keys[i].off), err);
	*err = xasprintf("%s: unknown setting (known files settings: filesMaxFileBytes, filesMaxTotalBytes, "
			 "filesMaxFiles, filesMaxDocumentNodes, filesSettleMs)", key);
	return -1;
}

static int apply(struct agent_config *c, json_t *o, char **err)
{
	const char *key;
	json_t *v;
	uint32_t u = 0;
	json_object_foreach(o, key, v) {
		int rc = 0;
		if (!strcmp(key, "appLabel")) {
			rc = get_string(v, key, &c->app_label, err);
			if (!rc && !k8s_label_key_ok(c->app_label)) {
				*err = xasprintf("appLabel: \"%s\" is not a valid label key", c->app_label);
				rc = -1;
			}
		} else if (!strcmp(key, "dnsDefault")) {
			if (!json_is_boolean(v)) {
				*err = xasprintf("dnsDefault: must be true or false");
				rc = -1;
			} else
				c->dns_default = json_is_true(v);
		} else if (!strcmp(key, "logRate"))
			rc = get_uint(v, key, 1, 10000, &c->log_rate, err);
		else if (!strcmp(key, "logBurst"))
			rc = get_uint(v, key, 1, 10000, &c->log_burst, err);
		else if (!strcmp(key, "nflogGroup")) {
			rc = get_uint(v, key, 1, 65535, &u, err);
			c->nflog_group = (uint16_t)u;
		} else if (!strcmp(key, "metricsAddress")) {
			rc = get_string(v, key, &c->metrics_address, err);
			if (!rc && *c->metrics_address && !strrchr(c->metrics_address, ':')) {
				*err = xasprintf("metricsAddress: \"%s\" is not HOST:PORT", c->metrics_address);
				rc = -1;
			}
		} else if (!strcmp(key, "debounceMs"))
			rc = get_uint(v, key, 0, 10000, &c->debounce_ms, err);
		else if (!strcmp(key, "logFormat")) {
			rc = get_string(v, key, &c->log_format, err);
			if (!rc && strcmp(c->log_format, "text") && strcmp(c->log_format, "json")) {
				*err = xasprintf("logFormat: must be text or json, not \"%s\"", c->log_format);
				rc = -1;
			}
		} else if (!strcmp(key, "logLevel")) {
			rc = get_string(v, key, &c->log_level, err);
			if (!rc && log_level_parse(c->log_level) < 0) {
				*err = xasprintf("logLevel: must be debug, info, warn or error, not \"%s\"", c->log_level);
				rc = -1;
			}
		} else if (!strcmp(key, "sourceCheck")) {
			rc = get_bool(v, key, &c->source_check, err);
		} else if (!strcmp(key, "revokeFlows")) {
			rc = get_bool(v, key, &c->revoke_flows, err);
		} else if (!strncmp(key, "files", 5)) {
			rc = apply_files(c, key, v, err);
		} else {
			*err = xasprintf("%s: unknown setting (known: appLabel, dnsDefault, logRate, logBurst, nflogGroup, "
					 "metricsAddress, debounceMs, logFormat, logLevel, sourceCheck, revokeFlows, filesMaxFileBytes, "
					 "filesMaxTotalBytes, filesMaxFiles, filesMaxDocumentNodes, filesSettleMs)", key);
			rc = -1;
		}
		if (rc < 0)
			return -1;
	}
	return 0;
}

int agent_config_load(struct agent_config *c, const char *path, char **err)
{
	FILE *f = fopen(path, "rb");
	char buf[65536];
	struct vec docs = { 0 };
	char *perr = NULL;
	if (!f) {
		*err = xasprintf("%s: %s", path, strerror(errno));
		return -1;
	}
	size_t n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	int rc = -1;
	if (kube_yaml_parse(buf, n, &docs, &perr) < 0) {
		*err = xasprintf("%s: %s", path, perr);
	} else if (docs.n > 1 || (docs.n == 1 && !json_is_object((json_t *)docs.v[0]))) {
		*err = xasprintf("%s: expected one mapping of settings", path);
	} else {
		char *e = NULL;
		rc = docs.n ? apply(c, docs.v[0], &e) : 0;
		if (rc < 0) {
			*err = xasprintf("%s: %s", path, e);
			free(e);
		}
	}
	free(perr);
	for (size_t i = 0; i < docs.n; i++)
		json_decref(docs.v[i]);
	vec_free(&docs);
	return rc;
}

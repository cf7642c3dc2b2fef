#define _GNU_SOURCE
#include "manifest.h"
#include "yaml.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>


static void take(struct manifest_set *set, struct decoded *d)
{
	switch (d->type) {
	case OBJ_NAMESPACE:
		vec_push(&set->nss, d->ns);
		break;
	case OBJ_POD:
		vec_push(&set->pods, d->pod);
		break;
	case OBJ_POLICY:
		vec_push(&set->policies, d->pol);
		break;
	case OBJ_NONE:
		break;
	}
}

static void load_doc(struct manifest_set *set, const char *name, json_t *doc, const struct decode_opts *o,
		     int depth)
{
	json_t *kind = json_object_get(doc, "kind"), *items = json_object_get(doc, "items"), *x;
	size_t i, l;
	if (json_is_string(kind) && (l = strlen(json_string_value(kind))) >= 4 &&
	    !strcmp(json_string_value(kind) + l - 4, "List") && json_is_array(items) && depth < 4) {
		json_array_foreach(items, i, x)
			load_doc(set, name, x, o, depth + 1);
		return;
	}
	struct decoded d;
	set->objects++;
	if (kube_decode(doc, name, o, &set->diags, &d) == 0)
		take(set, &d);
}

void manifest_load_buffer(struct manifest_set *set, const char *name, const char *buf, size_t len,
			  const struct decode_opts *o)
{
	struct vec docs = { 0 };
	char *err = NULL;
	set->files++;
	if (kube_yaml_parse(buf, len, &docs, &err) < 0) {
		diags_add(&set->diags, false, name, NULL, NULL, NULL, "%s", err);
		free(err);
	}
	for (size_t i = 0; i < docs.n; i++) {
		load_doc(set, name, docs.v[i], o, 0);
		json_decref(docs.v[i]);
	}
	vec_free(&docs);
}

char *manifest_read_file(const char *path, size_t max, size_t *len, char **err)
{
	FILE *f = fopen(path, "rb");
	struct sbuf b = { 0 };
	char chunk[65536];
	size_t n;
	if (!f) {
		*err = xasprintf("cannot open: %s", strerror(errno));
		return NULL;
	}
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (b.n + n > max) {
			*err = xasprintf("larger than %zu MiB", max >> 20);
			fclose(f);
			sbuf_free(&b);
			return NULL;
		}
		sbuf_addn(&b, chunk, n);
	}
	if (ferror(f)) {
		*err = xasprintf("cannot read: %s", strerror(errno));
		fclose(f);
		sbuf_free(&b);
		return NULL;
	}
	fclose(f);
	*len = b.n;
	return sbuf_steal(&b);
}

static bool manifest_name(const char *n)
{
	size_t l = strlen(n);
	return n[0] != '.' && ((l > 5 && !strcmp(n + l - 5, ".yaml")) || (l > 4 && !strcmp(n + l - 4, ".yml")) ||
			       (l > 5 && !strcmp(n + l - 5, ".json")));
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void walk(const char *dir, struct vec *files, struct vec *dirs, struct diags *d, int depth)
{
	DIR *dh = depth <= 16 ? opendir(dir) : NULL;
	struct dirent *de;
	struct vec names = { 0 };
	if (!dh) {
		if (d)
			diags_add(d, false, dir, NULL, NULL, NULL, "cannot read folder: %s",
				  depth > 16 ? "nested too deep (a link loop?)" : strerror(errno));
		return;
	}
	if (dirs)
		vec_push(dirs, xstrdup(dir));
	while ((de = readdir(dh))) {
		if (de->d_name[0] == '.')
			continue;
		char *full = xasprintf("%s/%s", dir, de->d_name);
		struct stat cst;
		if (stat(full, &cst) == 0 && (S_ISDIR(cst.st_mode) || manifest_name(de->d_name)))
			vec_push(&names, full);
		else
			free(full);
	}
	closedir(dh);
	vec_sort(&names, name_cmp); /* per folder: the same order on every machine */
	for (size_t i = 0; i < names.n; i++) {
		struct stat cst;
		if (stat(names.v[i], &cst) == 0 && S_ISDIR(cst.st_mode)) {
			walk(names.v[i], files, dirs, d, depth + 1);
			free(names.v[i]);
		} else {
			vec_push(files, names.v[i]);
		}
	}
	vec_free(&names);
}

void manifest_files(const char *dir, struct vec *files, struct vec *dirs, struct diags *d)
{
	walk(dir, files, dirs, d, 0);
}

static int load_file(struct manifest_set *set, const char *path, const struct decode_opts *o)
{
	size_t len;
	char *err = NULL, *text = manifest_read_file(path, MANIFEST_MAX_BYTES, &len, &err);
	if (!text) {
		diags_add(&set->diags, false, path, NULL, NULL, NULL, "%s", err);
		free(err);
		return -EIO;
	}
	manifest_load_buffer(set, path, text, len, o);
	free(text);
	return 0;
}

int manifest_load_path(struct manifest_set *set, const char *path, const struct decode_opts *o)
{
	struct stat st;
	if (stat(path, &st) < 0) {
		int err = errno;
		diags_add(&set->diags, false, path, NULL, NULL, NULL, "cannot read: %s", strerror(err));
		return -err;
	}
	if (!S_ISDIR(st.st_mode))
		return load_file(set, path, o);
	struct vec files = { 0 };
	size_t errors = set->diags.errors;
	manifest_files(path, &files, NULL, &set->diags);
	if (set->diags.errors > errors && !files.n) {
		vec_free(&files);
		return -EACCES;
	}
	for (size_t i = 0; i < files.n; i++) {
		load_file(set, files.v[i], o);
		free(files.v[i]);
	}
	vec_free(&files);
	return 0;
}

static int pod_spec_cmp(const void *a, const void *b)
{
	const struct pod_spec *x = *(const struct pod_spec *const *)a, *y = *(const struct pod_spec *const *)b;
	int c = strcmp(x->ns, y->ns);
	return c ? c : strcmp(x->name, y->name);
}

/* Made-up addresses come from 10.244.0.0/16 (a common pod range), picked
 * by a hash of ns/name and probed linearly past collisions, in name order:
 * the same folder always gives the same addresses. */
void manifest_assign_addresses(struct manifest_set *set)
{
	struct ptrset used = { 0 };
	vec_sort(&set->pods, pod_spec_cmp);
	for (size_t i = 0; i < set->pods.n; i++) {
		struct pod_spec *p = set->pods.v[i];
		for (uint32_t j = 0; j < p->naddr; j++)
			ptrset_add(&used, (void *)(uintptr_t)(p->addr[j].lo + 1));
	}
	for (size_t i = 0; i < set->pods.n; i++) {
		struct pod_spec *p = set->pods.v[i];
		if (p->naddr || p->host_network)
			continue;
		char *key = xasprintf("%s/%s", p->ns, p->name);
		uint32_t h = (uint32_t)hash_str(key) % 65534u;
		free(key);
		for (uint32_t k = 0; k < 65534u; k++) {
			ip128 a = ip_from_v4(0x0af40000u + 1 + (h + k) % 65534u);
			if (ptrset_add(&used, (void *)(uintptr_t)(a.lo + 1))) {
				p->addr[p->naddr++] = a;
				p->synthetic_addr = true;
				break;
			}
		}
	}
	ptrset_free(&used);
}

void manifest_apply(struct manifest_set *set, struct engine *e)
{
	for (size_t i = 0; i < set->nss.n; i++)
		engine_ns_upsert(e, set->nss.v[i]);
	for (size_t i = 0; i < set->pods.n; i++)
		engine_pod_upsert(e, set->pods.v[i]);
	for (size_t i = 0; i < set->policies.n; i++)
		engine_policy_upsert(e, set->policies.v[i]);
	set->nss.n = set->pods.n = set->policies.n = 0;
}

void manifest_set_free(struct manifest_set *set)
{
	for (size_t i = 0; i < set->nss.n; i++)
		ns_spec_free(set->nss.v[i]);
	for (size_t i = 0; i < set->pods.n; i++)
		pod_spec_free(set->pods.v[i]);
	for (size_t i = 0; i < set->policies.n; i++)
		policy_spec_free(set->policies.v[i]);
	vec_free(&set->nss);
	vec_free(&set->pods);
	vec_free(&set->policies);
	diags_free(&set->diags);
}

/* The files:DIR source: a folder of manifests, watched with inotify.
 *
 * Each file is re-read only when its bytes change. A file that no longer
 * parses keeps its last good objects in force (an editor's half-written
 * save must never delete a policy and open traffic); objects that vanish
 * from a file that parses are deleted. */
#define _GNU_SOURCE
#include "agent/src_files.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/log.h"
#include "kube/manifest.h"
#include "kube/yaml.h"

struct ffile {
	char *path;
	uint64_t hash;
	bool seen;
	struct vec keys; /* char* object keys this file defines */
	char *error;     /* the file does not parse: its old objects stay */
	size_t problems; /* decode errors in its objects */
};

struct owner {
	char *key;
	struct ffile *file;
};

struct src_files {
	char *dir;
	struct decode_opts opts;
	int ino;
	struct htab files;  /* struct ffile by path */
	struct htab owners; /* struct owner by key */
	size_t objects;
};

static bool ffile_eq(const void *item, const void *key)
{
	return !strcmp(((const struct ffile *)item)->path, key);
}

static bool owner_eq(const void *item, const void *key)
{
	return !strcmp(((const struct owner *)item)->key, key);
}

struct src_files *src_files_new(const char *dir, const char *app_label, char **err)
{
	struct stat st;
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		*err = xasprintf("files source: %s is not a readable folder", dir);
		return NULL;
	}
	struct src_files *s = xcalloc(1, sizeof(*s));
	s->dir = xstrdup(dir);
	s->opts = (struct decode_opts){ DECODE_AGENT, false, xstrdup(app_label), "default" };
	s->ino = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (s->ino < 0) {
		*err = xasprintf("files source: inotify: %s", strerror(errno));
		src_files_free(s);
		return NULL;
	}
	return s;
}

static void ffile_free(struct ffile *f)
{
	for (size_t i = 0; i < f->keys.n; i++)
		free(f->keys.v[i]);
	vec_free(&f->keys);
	free(f->path);
	free(f->error);
	free(f);
}

void src_files_free(struct src_files *s)
{
	if (!s)
		return;
	struct ffile *f;
	struct owner *o;
	htab_foreach(&s->files, f) ffile_free(f);
	htab_foreach(&s->owners, o) {
		free(o->key);
		free(o);
	}
	htab_free(&s->files);
	htab_free(&s->owners);
	if (s->ino >= 0)
		close(s->ino);
	free((char *)s->opts.app_label);
	free(s->dir);
	free(s);
}

int src_files_fd(const struct src_files *s)
{
	return s->ino;
}

bool src_files_drain(struct src_files *s)
{
	char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool any = false;
	while (read(s->ino, buf, sizeof(buf)) > 0)
		any = true;
	return any;
}

static char *key_of(const char *kind, const char *ns, const char *name)
{
	return xasprintf("%s/%s/%s", kind, ns ? ns : "", name);
}

static void engine_delete_key(struct engine *e, const char *key)
{
	char kind[32], ns[256], name[256];
	if (sscanf(key, "%31[^/]/%255[^/]/%255s", kind, ns, name) != 3 &&
	    !(sscanf(key, "%31[^/]//%255s", kind, name) == 2 && (ns[0] = 0, 1)))
		return;
	if (!strcmp(kind, "Namespace"))
		engine_ns_delete(e, name);
	else if (!strcmp(kind, "Pod"))
		engine_pod_delete(e, ns, name);
	else
		engine_policy_delete(e, strcmp(kind, "AccessPolicy") ? KIND_NETPOL : KIND_ACCESS, ns, name);
}

static void own(struct src_files *s, struct ffile *f, char *key)
{
	struct owner *o = htab_find(&s->owners, hash_str(key), owner_eq, key);
	if (!o) {
		o = xcalloc(1, sizeof(*o));
		o->key = xstrdup(key);
		htab_insert(&s->owners, hash_str(key), o);
		s->objects++;
	} else if (o->file != f) {
		log_msg(LOG_WARN, "source", "%s is defined in %s and in %s; %s wins", key, o->file->path, f->path,
			f->path);
	}
	o->file = f;
	vec_push(&f->keys, key);
}

/* Deletes the objects f owned that are not in keep (NULL: all). */
static size_t disown(struct src_files *s, struct ffile *f, struct engine *e, const struct vec *keep)
{
	size_t changed = 0;
	for (size_t i = 0; i < f->keys.n; i++) {
		char *k = f->keys.v[i];
		bool kept = false;
		for (size_t j = 0; keep && j < keep->n && !kept; j++)
			kept = !strcmp(keep->v[j], k);
		struct owner *o = htab_find(&s->owners, hash_str(k), owner_eq, k);
		if (!kept && o && o->file == f) {
			engine_delete_key(e, k);
			htab_remove(&s->owners, hash_str(k), owner_eq, k);
			free(o->key);
			free(o);
			s->objects--;
			changed++;
		}
		free(k);
	}
	f->keys.n = 0;
	return changed;
}

static size_t load_file(struct src_files *s, struct ffile *f, const char *buf, size_t len, struct engine *e)
{
	struct vec docs = { 0 };
	char *perr = NULL;
	if (kube_yaml_parse(buf, len, &docs, &perr) < 0) {
		if (!f->error || strcmp(f->error, perr))
			log_msg(LOG_ERROR, "source",
				"%s: %s; its previous objects stay in force until the file parses again", f->path, perr);
		free(f->error);
		f->error = perr;
		for (size_t i = 0; i < docs.n; i++)
			json_decref(docs.v[i]);
		vec_free(&docs);
		return 0;
	}
	for (size_t i = 0; i < docs.n; i++)
		json_decref(docs.v[i]);
	vec_free(&docs);
	free(f->error);
	f->error = NULL;
	struct manifest_set ms = { 0 };
	manifest_load_buffer(&ms, f->path, buf, len, &s->opts);
	for (size_t i = 0; i < ms.diags.v.n; i++) {
		struct diag *d = ms.diags.v.v[i];
		char *m = diag_format(d);
		log_msg(d->warning ? LOG_WARN : LOG_ERROR, "decode", "%s", m);
		free(m);
	}
	f->problems = ms.diags.errors;
	struct vec keys = { 0 };
	for (size_t i = 0; i < ms.nss.n; i++)
		vec_push(&keys, key_of("Namespace", NULL, ((struct ns_spec *)ms.nss.v[i])->name));
	for (size_t i = 0; i < ms.pods.n; i++) {
		struct pod_spec *p = ms.pods.v[i];
		vec_push(&keys, key_of("Pod", p->ns, p->name));
	}
	for (size_t i = 0; i < ms.policies.n; i++) {
		struct policy_spec *p = ms.policies.v[i];
		vec_push(&keys, key_of(policy_kind_name(p->kind), p->ns, p->name));
	}
	size_t changed = disown(s, f, e, &keys);
	changed += ms.nss.n + ms.pods.n + ms.policies.n;
	manifest_apply(&ms, e);
	manifest_set_free(&ms);
	for (size_t i = 0; i < keys.n; i++)
		own(s, f, keys.v[i]);
	vec_free(&keys);
	return changed;
}

size_t src_files_scan(struct src_files *s, struct engine *e)
{
	struct vec paths = { 0 }, dirs = { 0 };
	struct diags d = { 0 };
	struct ffile *f;
	size_t changed = 0;
	htab_foreach(&s->files, f) f->seen = false;
	manifest_files(s->dir, &paths, &dirs, &d);
	for (size_t i = 0; i < d.v.n; i++) {
		char *m = diag_format(d.v.v[i]);
		log_msg(LOG_ERROR, "source", "%s", m);
		free(m);
	}
	diags_free(&d);
	for (size_t i = 0; i < dirs.n; i++) { /* idempotent: folders that appeared are watched too */
		inotify_add_watch(s->ino, dirs.v[i],
				  IN_CREATE | IN_DELETE | IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM |
					  IN_DELETE_SELF);
		free(dirs.v[i]);
	}
	vec_free(&dirs);
	for (size_t i = 0; i < paths.n; i++) {
		char *p = paths.v[i], *err = NULL;
		size_t len;
		char *buf = manifest_read_file(p, MANIFEST_MAX_BYTES, &len, &err);
		f = htab_find(&s->files, hash_str(p), ffile_eq, p);
		if (!buf) {
			/* unreadable (being replaced, too large): keep what it had */
			log_msg(LOG_ERROR, "source", "%s: %s; its previous objects stay in force", p, err);
			free(err);
			if (f)
				f->seen = true;
			free(p);
			continue;
		}
		uint64_t h = hash_bytes(buf, len, 7);
		if (!f) {
			f = xcalloc(1, sizeof(*f));
			f->path = xstrdup(p);
			htab_insert(&s->files, hash_str(f->path), f);
		} else if (f->hash == h && !f->error) {
			f->seen = true;
			free(buf);
			free(p);
			continue;
		}
		f->seen = true;
		f->hash = h;
		changed += load_file(s, f, buf, len, e);
		free(buf);
		free(p);
	}
	vec_free(&paths);
	struct vec gone = { 0 };
	htab_foreach(&s->files, f) if (!f->seen) vec_push(&gone, f);
	for (size_t i = 0; i < gone.n; i++) {
		f = gone.v[i];
		log_msg(LOG_INFO, "source", "%s removed: its %zu objects are deleted", f->path, f->keys.n);
		changed += disown(s, f, e, NULL);
		htab_remove(&s->files, hash_str(f->path), ffile_eq, f->path);
		ffile_free(f);
	}
	vec_free(&gone);
	return changed;
}

json_t *src_files_status(const struct src_files *s)
{
	json_t *errs = json_array();
	struct ffile *f;
	size_t files = 0;
	htab_foreach(&s->files, f) {
		files++;
		if (f->error)
			json_array_append_new(errs, json_sprintf("%s: %s (previous objects kept)", f->path, f->error));
	}
	return json_pack("{s:s, s:I, s:I, s:o}", "source", "files", "files", (json_int_t)files, "objects",
			 (json_int_t)s->objects, "errors", errs);
}

size_t src_files_errors(const struct src_files *s)
{
	size_t n = 0;
	struct ffile *f;
	htab_foreach(&s->files, f) n += f->error != NULL;
	return n;
}

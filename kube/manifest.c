#define _GNU_SOURCE
#include "manifest.h"
#include "yaml.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../policy/clip.h"

void manifest_limits_default(struct manifest_limits *l)
{
	if (!l->max_file_bytes)
		l->max_file_bytes = MANIFEST_MAX_FILE_BYTES;
	if (!l->max_total_bytes)
		l->max_total_bytes = MANIFEST_MAX_TOTAL_BYTES;
	if (!l->max_files)
		l->max_files = MANIFEST_MAX_FILES;
	if (!l->max_dirs)
		l->max_dirs = MANIFEST_MAX_DIRS;
	if (!l->max_doc_nodes)
		l->max_doc_nodes = KUBE_YAML_MAX_DOC_NODES;
}

char *manifest_key(enum obj_type type, const void *spec)
{
	const struct pod_spec *p = spec;
	const struct policy_spec *q = spec;
	switch (type) {
	case OBJ_NAMESPACE:
		return xasprintf("Namespace//%s", ((const struct ns_spec *)spec)->name);
	case OBJ_POD:
		return xasprintf("Pod/%s/%s", p->ns, p->name);
	case OBJ_POLICY:
		return xasprintf("%s/%s/%s", policy_kind_name(q->kind), q->ns, q->name);
	case OBJ_NODE:
		return xasprintf("Node//%s", ((const struct node_spec *)spec)->name);
	case OBJ_NONE:
		break;
	}
	return xstrdup("");
}

/* ---------- canonical text of policies (duplicates compare it) ---------- */

struct canon_ent {
	const void *spec;
	char *text;
};

static bool canon_eq(const void *item, const void *key)
{
	return ((const struct canon_ent *)item)->spec == key;
}

static void canon_put(struct manifest_set *set, const void *spec, char *text)
{
	struct canon_ent *c = xcalloc(1, sizeof(*c));
	c->spec = spec;
	c->text = text;
	htab_insert(&set->canon, hash_ptr(spec), c);
}

const char *manifest_canon(const struct manifest_set *set, const void *spec)
{
	struct canon_ent *c = htab_find(&set->canon, hash_ptr(spec), canon_eq, spec);
	return c ? c->text : NULL;
}

static void canon_del(struct manifest_set *set, const void *spec)
{
	struct canon_ent *c = htab_remove(&set->canon, hash_ptr(spec), canon_eq, spec);
	if (c) {
		free(c->text);
		free(c);
	}
}

/* ---------- documents ---------- */

static void take(struct manifest_set *set, struct decoded *d, json_t *doc)
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
		/* identity by content: two copies are "identical" only if the
		 * whole documents are, compared as text, never by a hash */
		canon_put(set, d->pol, json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS));
		break;
	case OBJ_NODE:
		vec_push(&set->nodes, d->node);
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
		take(set, &d, doc);
}

/* A file's objects go to a set of its own, moved to the caller's set only
 * once the whole file has read: a file that fails half-way is unparsable,
 * never shorter (issue 17, item 2). */
struct file_load {
	struct manifest_set one;
	struct manifest_set items; /* of the document being read, if it is a List */
	const char *name;
	const struct decode_opts *o;
};

static bool is_list(json_t *doc)
{
	const char *k = json_string_value(json_object_get(doc, "kind"));
	size_t l = k ? strlen(k) : 0;
	return l >= 4 && !strcmp(k + l - 4, "List");
}

static void set_move(struct manifest_set *to, struct manifest_set *from);

/* A List's items arrive one by one before the List itself (kube_yaml_each
 * streams them); whether they count is known once its kind is read. */
static void file_item(json_t *item, size_t line, void *arg)
{
	struct file_load *fl = arg;
	(void)line;
	load_doc(&fl->items, fl->name, item, fl->o, 1);
}

static void file_doc(json_t *doc, size_t line, void *arg)
{
	struct file_load *fl = arg;
	(void)line;
	fl->one.docs++;
	if (is_list(doc))
		set_move(&fl->one, &fl->items);
	manifest_set_free(&fl->items); /* items of something else than a List: not objects */
	memset(&fl->items, 0, sizeof(fl->items));
	load_doc(&fl->one, fl->name, doc, fl->o, 0);
}

static void file_warn(const char *msg, void *arg)
{
	struct file_load *fl = arg;
	diags_add(&fl->one.diags, true, fl->name, NULL, NULL, NULL, "%s", msg);
}

static void diags_move(struct diags *to, struct diags *from)
{
	for (size_t i = 0; i < from->v.n; i++)
		vec_push(&to->v, from->v.v[i]);
	to->errors += from->errors;
	to->warnings += from->warnings;
	from->v.n = from->errors = from->warnings = 0;
}

static void vec_move(struct vec *to, struct vec *from)
{
	for (size_t i = 0; i < from->n; i++)
		vec_push(to, from->v[i]);
	from->n = 0;
}

/* Moves from's objects, diagnostics and counts to the end of to. */
static void set_move(struct manifest_set *to, struct manifest_set *from)
{
	struct canon_ent *c;
	diags_move(&to->diags, &from->diags);
	vec_move(&to->nss, &from->nss);
	vec_move(&to->pods, &from->pods);
	vec_move(&to->policies, &from->policies);
	vec_move(&to->nodes, &from->nodes);
	htab_foreach(&from->canon, c) htab_insert(&to->canon, hash_ptr(c->spec), c);
	htab_free(&from->canon);
	to->objects += from->objects;
	to->docs += from->docs;
	from->objects = from->docs = 0;
}

int manifest_read_buffer(struct manifest_set *set, const char *name, const char *buf, size_t len,
			 const struct decode_opts *o, char **err)
{
	struct file_load fl = { .name = name, .o = o };
	struct kube_yaml_opts yo = { set->lim.max_doc_nodes, file_doc, file_item, file_warn, &fl, NULL };
	set->files++;
	set->dups_resolved = false;
	int rc = kube_yaml_each(buf, len, &yo, err);
	diags_move(&set->diags, &fl.one.diags);
	diags_move(&set->diags, &fl.items.diags); /* a List cut short: what its items said */
	if (rc < 0) {
		set->unreadable++;
		manifest_set_free(&fl.one);
		manifest_set_free(&fl.items);
		return rc;
	}
	set_move(set, &fl.one);
	manifest_set_free(&fl.one);
	manifest_set_free(&fl.items);
	return 0;
}

int manifest_load_buffer(struct manifest_set *set, const char *name, const char *buf, size_t len,
			 const struct decode_opts *o)
{
	char *err = NULL;
	int rc = manifest_read_buffer(set, name, buf, len, o, &err);
	if (rc < 0) {
		diags_add(&set->diags, false, name, NULL, NULL, NULL, "%s; nothing in this file is used", err);
		free(err);
	}
	return rc;
}

/* ---------- files ---------- */

static const char *file_type(mode_t m)
{
	return S_ISFIFO(m) ? "a FIFO" : S_ISSOCK(m) ? "a socket" : S_ISCHR(m) ? "a character device"
	       : S_ISBLK(m) ? "a block device" : S_ISDIR(m) ? "a folder" : "not a regular file";
}

static char *read_fd(int fd, size_t hint, size_t max, size_t *len, char **err)
{
	size_t cap = (hint < max ? hint : max) + 1, n = 0;
	char *buf = xmalloc(cap + 1);
	for (;;) {
		if (n == cap) { /* the file grew while read */
			cap = cap * 2 > max + 1 ? max + 1 : cap * 2;
			buf = xrealloc(buf, cap + 1);
		}
		ssize_t r = read(fd, buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			*err = xasprintf("cannot read: %s", strerror(errno));
			break;
		}
		n += (size_t)r;
		if (n > max) {
			*err = xasprintf("larger than the limit of %zu bytes per file: refused", max);
			break;
		}
		if (r == 0) {
			buf[n] = '\0';
			*len = n;
			return buf;
		}
	}
	free(buf);
	return NULL;
}

char *manifest_read_file(const char *path, size_t max, size_t *len, char **err)
{
	/* O_NONBLOCK: opening a FIFO to read would wait for a writer, and the
	 * agent with it (issue 20, item 6); fstat: only regular files are read */
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	struct stat st;
	char *buf = NULL;
	if (fd < 0) {
		*err = xasprintf("cannot open: %s", strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) < 0)
		*err = xasprintf("cannot read: %s", strerror(errno));
	else if (!S_ISREG(st.st_mode))
		*err = xasprintf("%s, not a regular file: not read", file_type(st.st_mode));
	else if ((uint64_t)st.st_size > max)
		*err = xasprintf("%lld bytes, larger than the limit of %zu bytes per file: refused",
				 (long long)st.st_size, max);
	else
		buf = read_fd(fd, (size_t)st.st_size, max, len, err);
	close(fd);
	return buf;
}

bool manifest_name(const char *n)
{
	size_t l = strlen(n);
	return n[0] != '.' && ((l > 5 && !strcmp(n + l - 5, ".yaml")) || (l > 4 && !strcmp(n + l - 4, ".yml")) ||
			       (l > 5 && !strcmp(n + l - 5, ".json")));
}

struct devino {
	dev_t dev;
	ino_t ino;
};

static bool devino_eq(const void *item, const void *key)
{
	const struct devino *a = item, *b = key;
	return a->dev == b->dev && a->ino == b->ino;
}

/* true the first time a folder or file (device, inode) is met */
static bool seen_first(struct htab *seen, const struct stat *st)
{
	struct devino k = { st->st_dev, st->st_ino };
	uint64_t h = hash_bytes(&k, sizeof(k), 0);
	if (htab_find(seen, h, devino_eq, &k))
		return false;
	struct devino *n = xmalloc(sizeof(*n));
	*n = k;
	htab_insert(seen, h, n);
	return true;
}

struct walk {
	const struct manifest_limits *lim;
	struct vec *files, *dirs;
	struct diags *d;
	struct htab seen; /* struct devino: folders and files taken */
	size_t nfiles, ndirs;
	bool files_full, dirs_full;
	bool complete; /* every folder read, no limit reached */
};

static void __attribute__((format(printf, 3, 4))) walk_diag(struct walk *w, const char *path, const char *fmt, ...)
{
	va_list ap;
	char *m;
	if (!w->d)
		return;
	va_start(ap, fmt);
	if (vasprintf(&m, fmt, ap) < 0)
		abort();
	va_end(ap);
	diags_add(w->d, false, path, NULL, NULL, NULL, "%s", m);
	free(m);
}

static int mf_cmp(const void *a, const void *b)
{
	return strcmp((*(struct manifest_file *const *)a)->path, (*(struct manifest_file *const *)b)->path);
}

/* The folders and manifests of one folder, sorted (the same order on
 * every machine); what is neither is skipped without a stat when readdir
 * says it is a regular file. */
static void walk_list(struct walk *w, const char *dir, DIR *dh, struct vec *ents)
{
	struct dirent *de;
	while ((de = readdir(dh))) {
		bool named = manifest_name(de->d_name);
		if (de->d_name[0] == '.' || (de->d_type == DT_REG && !named))
			continue;
		struct manifest_file *f = xcalloc(1, sizeof(*f));
		f->path = xasprintf("%s/%s", dir, de->d_name);
		if (stat(f->path, &f->st) < 0) {
			if (named)
				walk_diag(w, f->path, "cannot read: %s", strerror(errno));
		} else if (S_ISDIR(f->st.st_mode) || (named && S_ISREG(f->st.st_mode))) {
			vec_push(ents, f);
			continue;
		} else if (named) {
			walk_diag(w, f->path, "%s, not a regular file: not read", file_type(f->st.st_mode));
		}
		free(f->path);
		free(f);
	}
	vec_sort(ents, mf_cmp);
}

static void walk_take(struct walk *w, struct manifest_file *f)
{
	if (!seen_first(&w->seen, &f->st)) { /* the same file through another link: read once */
		free(f->path);
		free(f);
		return;
	}
	if (++w->nfiles > w->lim->max_files) {
		w->complete = false;
		if (!w->files_full)
			walk_diag(w, f->path, "more than %zu manifests: this one and the ones after it are not read",
				  w->lim->max_files);
		w->files_full = true;
		free(f->path);
		free(f);
		return;
	}
	vec_push(w->files, f);
}

static void walk_dir(struct walk *w, const char *dir, const struct stat *st, int depth)
{
	struct vec ents = { 0 };
	if (!seen_first(&w->seen, st)) /* reached again through a link: once is enough (issue 20, item 7) */
		return;
	if (++w->ndirs > w->lim->max_dirs || depth > MANIFEST_MAX_DEPTH)
		w->complete = false;
	if (w->ndirs > w->lim->max_dirs) {
		if (!w->dirs_full)
			walk_diag(w, dir, "more than %zu folders: this one and the ones after it are not read",
				  w->lim->max_dirs);
		w->dirs_full = true;
		return;
	}
	if (depth > MANIFEST_MAX_DEPTH) {
		walk_diag(w, dir, "cannot read folder: nested deeper than %d folders", MANIFEST_MAX_DEPTH);
		return;
	}
	DIR *dh = opendir(dir);
	if (!dh) {
		w->complete = false;
		walk_diag(w, dir, "cannot read folder: %s", strerror(errno));
		return;
	}
	if (w->dirs)
		vec_push(w->dirs, xstrdup(dir));
	walk_list(w, dir, dh, &ents);
	closedir(dh);
	for (size_t i = 0; i < ents.n; i++) {
		struct manifest_file *f = ents.v[i];
		if (S_ISDIR(f->st.st_mode)) {
			walk_dir(w, f->path, &f->st, depth + 1);
			free(f->path);
			free(f);
		} else {
			walk_take(w, f);
		}
	}
	vec_free(&ents);
}

bool manifest_files(const char *dir, const struct manifest_limits *lim, struct vec *files, struct vec *dirs,
		    struct diags *d)
{
	struct manifest_limits l = lim ? *lim : (struct manifest_limits){ 0 };
	struct walk w = { .lim = &l, .files = files, .dirs = dirs, .d = d, .complete = true };
	struct stat st;
	struct devino *x;
	manifest_limits_default(&l);
	if (stat(dir, &st) < 0) {
		w.complete = false;
		walk_diag(&w, dir, "cannot read folder: %s", strerror(errno));
	} else {
		walk_dir(&w, dir, &st, 0);
	}
	htab_foreach(&w.seen, x) free(x);
	htab_free(&w.seen);
	return w.complete;
}

void manifest_files_free(struct vec *files)
{
	for (size_t i = 0; i < files->n; i++) {
		struct manifest_file *f = files->v[i];
		free(f->path);
		free(f);
	}
	vec_free(files);
}

static int load_file(struct manifest_set *set, const char *path, const struct decode_opts *o)
{
	size_t len;
	char *err = NULL, *text = manifest_read_file(path, set->lim.max_file_bytes, &len, &err);
	if (text && set->bytes + len > set->lim.max_total_bytes) {
		free(text);
		text = NULL;
		err = xasprintf("refused: with it, the manifests read pass the limit of %zu bytes in all",
				set->lim.max_total_bytes);
	}
	if (!text) {
		diags_add(&set->diags, false, path, NULL, NULL, NULL, "%s", err);
		set->unreadable++;
		free(err);
		return -EIO;
	}
	set->bytes += len;
	manifest_load_buffer(set, path, text, len, o);
	free(text);
	return 0;
}

int manifest_load_path(struct manifest_set *set, const char *path, const struct decode_opts *o)
{
	struct stat st;
	manifest_limits_default(&set->lim);
	if (stat(path, &st) < 0) {
		int err = errno;
		diags_add(&set->diags, false, path, NULL, NULL, NULL, "cannot read: %s", strerror(err));
		set->unreadable++;
		return -err;
	}
	if (!S_ISDIR(st.st_mode))
		return load_file(set, path, o);
	struct vec files = { 0 };
	size_t errors = set->diags.errors;
	manifest_files(path, &set->lim, &files, NULL, &set->diags);
	if (set->diags.errors > errors && !files.n) {
		vec_free(&files);
		set->unreadable++;
		return -EACCES;
	}
	for (size_t i = 0; i < files.n; i++)
		load_file(set, ((struct manifest_file *)files.v[i])->path, o);
	manifest_files_free(&files);
	return 0;
}

/* ---------- duplicates (issue 17, item 5) ---------- */

static const char *def_name(const struct manifest_def *d)
{
	return d->type == OBJ_NAMESPACE ? ((const struct ns_spec *)d->spec)->name
	       : d->type == OBJ_POD	? ((const struct pod_spec *)d->spec)->name
	       : d->type == OBJ_NODE	? ((const struct node_spec *)d->spec)->name
					: ((const struct policy_spec *)d->spec)->name;
}

static void spec_ref(enum obj_type t, void *spec)
{
	if (t == OBJ_NAMESPACE)
		((struct ns_spec *)spec)->refs++;
	else if (t == OBJ_POD)
		((struct pod_spec *)spec)->refs++;
	else if (t == OBJ_NODE)
		((struct node_spec *)spec)->refs++;
	else
		((struct policy_spec *)spec)->refs++;
}

static void spec_unref(enum obj_type t, void *spec)
{
	if (t == OBJ_NAMESPACE)
		ns_spec_free(spec);
	else if (t == OBJ_POD)
		pod_spec_free(spec);
	else if (t == OBJ_NODE)
		node_spec_free(spec);
	else
		policy_spec_free(spec);
}

/* A policy that isolates what p selects, in p's directions, and allows
 * nothing: what an invalid object is enforced as. */
static struct policy_spec *policy_invalid_copy(const struct policy_spec *p, const char *name, const char *why)
{
	struct policy_spec *q = xcalloc(1, sizeof(*q));
	q->kind = p->kind;
	q->ns = istr_ref(p->ns);
	q->name = istr_get(name);
	selector_copy(&q->target, &p->target);
	q->alt = p->nalt ? xcalloc(p->nalt, sizeof(*q->alt)) : NULL;
	for (q->nalt = 0; q->nalt < p->nalt; q->nalt++)
		selector_copy(&q->alt[q->nalt], &p->alt[q->nalt]);
	memcpy(q->isolates, p->isolates, sizeof(q->isolates));
	q->valid = false;
	q->unreadable = p->unreadable;
	q->error = xstrdup(why);
	q->app = istr_ref(p->app);
	q->source = istr_ref(p->source);
	return q;
}

static char *file_list(const struct manifest_def *defs, size_t n)
{
	struct sbuf b = { 0 };
	for (size_t i = 0; i < n; i++)
		sbuf_addf(&b, "%s%s", i == 0 ? "" : i + 1 < n ? ", " : " and ", CLIP(defs[i].file));
	return sbuf_steal(&b);
}

char *manifest_duplicates(const struct manifest_def *defs, size_t n, struct vec *out)
{
	char *files = file_list(defs, n), *msg;
	bool same = defs[0].type == OBJ_POLICY;
	for (size_t i = 1; same && i < n; i++)
		same = defs[i].canon && defs[0].canon && !strcmp(defs[i].canon, defs[0].canon);
	if (defs[0].type != OBJ_POLICY || same) {
		spec_ref(defs[0].type, defs[0].spec);
		vec_push(out, defs[0].spec);
		msg = same ? xasprintf("is defined identically in %s: enforced once; remove the extra copies", files)
			   : xasprintf("is defined in %s: the definition in %s (the first in file order) is used "
				       "until only one is left",
				       files, CLIP(defs[0].file));
		free(files);
		return msg;
	}
	/* Copies that differ: which one the author meant is unknown, and
	 * either could open what the other closes. Each copy is enforced as
	 * invalid: together they isolate every pod either selects, in every
	 * direction either isolates, and allow nothing. */
	for (size_t i = 0; i < n; i++) {
		char *name = i ? xasprintf("%s#%zu", def_name(&defs[0]), i + 1) : xstrdup(def_name(&defs[0]));
		char *why = xasprintf("defined differently in %s (copy %zu of %zu, from %s): every copy isolates the "
				      "pods it selects and allows nothing until only one is left",
				      files, i + 1, n, CLIP(defs[i].file));
		vec_push(out, policy_invalid_copy(defs[i].spec, name, why));
		free(name);
		free(why);
	}
	msg = xasprintf("is defined differently in %s: until only one is left, every copy is enforced as an invalid "
			"policy (it isolates the pods it selects and allows nothing), the later ones named %s#2...",
			files, def_name(&defs[0]));
	free(files);
	return msg;
}

struct dup_rec {
	char *key;
	size_t pos;
};

static int dup_rec_cmp(const void *a, const void *b)
{
	const struct dup_rec *x = *(struct dup_rec *const *)a, *y = *(struct dup_rec *const *)b;
	int c = strcmp(x->key, y->key);
	return c ? c : (x->pos > y->pos) - (x->pos < y->pos);
}

static const char *spec_source(enum obj_type t, const void *spec)
{
	const char *s = t == OBJ_NAMESPACE ? ((const struct ns_spec *)spec)->source
			: t == OBJ_POD	   ? ((const struct pod_spec *)spec)->source
			: t == OBJ_NODE	   ? ((const struct node_spec *)spec)->source
					   : ((const struct policy_spec *)spec)->source;
	return s ? s : "-";
}

/* One run of the same key at positions recs[0..n) of v: the rule's
 * objects take the run's first places, the other places are emptied. */
static void resolve_run(struct manifest_set *set, enum obj_type t, struct vec *v, struct dup_rec **recs, size_t n)
{
	struct manifest_def *defs = xcalloc(n, sizeof(*defs));
	struct vec out = { 0 };
	for (size_t i = 0; i < n; i++) {
		void *spec = v->v[recs[i]->pos];
		defs[i] = (struct manifest_def){ t, spec, t == OBJ_POLICY ? manifest_canon(set, spec) : NULL,
						 spec_source(t, spec) };
	}
	char *msg = manifest_duplicates(defs, n, &out);
	const struct policy_spec *ps = defs[0].spec;
	const char *kind = t == OBJ_NAMESPACE ? "Namespace" : t == OBJ_POD ? "Pod" : t == OBJ_NODE ? "Node"
											   : policy_kind_name(ps->kind);
	char *obj = t == OBJ_NAMESPACE || t == OBJ_NODE ? xstrdup(def_name(&defs[0]))
					: xasprintf("%s/%s", t == OBJ_POD ? ((const struct pod_spec *)defs[0].spec)->ns : ps->ns,
						    def_name(&defs[0]));
	diags_add(&set->diags, false, defs[1].file, kind, obj, NULL, "%s", msg);
	for (size_t i = 0; i < n; i++) {
		if (t == OBJ_POLICY)
			canon_del(set, defs[i].spec);
		spec_unref(t, defs[i].spec);
		v->v[recs[i]->pos] = i < out.n ? out.v[i] : NULL;
	}
	free(obj);
	free(msg);
	vec_free(&out);
	free(defs);
}

static void resolve_vec(struct manifest_set *set, enum obj_type t, struct vec *v)
{
	struct vec recs = { 0 };
	for (size_t i = 0; i < v->n; i++) {
		struct dup_rec *r = xmalloc(sizeof(*r));
		r->key = manifest_key(t, v->v[i]);
		r->pos = i;
		vec_push(&recs, r);
	}
	vec_sort(&recs, dup_rec_cmp);
	for (size_t i = 0, j; i < recs.n; i = j) {
		for (j = i + 1; j < recs.n && !strcmp(((struct dup_rec *)recs.v[i])->key, ((struct dup_rec *)recs.v[j])->key);)
			j++;
		if (j - i > 1)
			resolve_run(set, t, v, (struct dup_rec **)recs.v + i, j - i);
	}
	size_t k = 0; /* close the emptied places, keeping the order */
	for (size_t i = 0; i < v->n; i++)
		if (v->v[i])
			v->v[k++] = v->v[i];
	v->n = k;
	for (size_t i = 0; i < recs.n; i++) {
		free(((struct dup_rec *)recs.v[i])->key);
		free(recs.v[i]);
	}
	vec_free(&recs);
}

void manifest_resolve_duplicates(struct manifest_set *set)
{
	set->dups_resolved = true;
	resolve_vec(set, OBJ_NAMESPACE, &set->nss);
	resolve_vec(set, OBJ_POD, &set->pods);
	resolve_vec(set, OBJ_POLICY, &set->policies);
	resolve_vec(set, OBJ_NODE, &set->nodes);
}

/* ---------- offline addresses, the engine ---------- */

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
	if (set->files && !set->dups_resolved) /* the engine keys objects by name: never "the last one wins" */
		manifest_resolve_duplicates(set);
	for (size_t i = 0; i < set->nss.n; i++)
		engine_ns_upsert(e, set->nss.v[i]);
	for (size_t i = 0; i < set->nodes.n; i++)
		engine_node_upsert(e, set->nodes.v[i]);
	for (size_t i = 0; i < set->pods.n; i++)
		engine_pod_upsert(e, set->pods.v[i]);
	for (size_t i = 0; i < set->policies.n; i++) {
		canon_del(set, set->policies.v[i]);
		engine_policy_upsert(e, set->policies.v[i]);
	}
	set->nss.n = set->pods.n = set->policies.n = set->nodes.n = 0;
}

void manifest_set_free(struct manifest_set *set)
{
	struct canon_ent *c;
	for (size_t i = 0; i < set->nss.n; i++)
		ns_spec_free(set->nss.v[i]);
	for (size_t i = 0; i < set->pods.n; i++)
		pod_spec_free(set->pods.v[i]);
	for (size_t i = 0; i < set->policies.n; i++)
		policy_spec_free(set->policies.v[i]);
	for (size_t i = 0; i < set->nodes.n; i++)
		node_spec_free(set->nodes.v[i]);
	htab_foreach(&set->canon, c) {
		free(c->text);
		free(c);
	}
	htab_free(&set->canon);
	vec_free(&set->nss);
	vec_free(&set->pods);
	vec_free(&set->policies);
	vec_free(&set->nodes);
	diags_free(&set->diags);
}

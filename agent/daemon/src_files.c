/* The files:DIR source: a folder of manifests, watched with inotify.
 *
 * No file in the folder can stop the agent or shorten what it enforces
 * (issues 17 and 20):
 *   - a file that does not read whole (bad YAML, a value JSON cannot
 *     carry, over a limit, not a regular file, unreadable) keeps its last
 *     good objects in force and says why, in the log and in status;
 *   - so does a file that used to define objects and now holds no
 *     document at all: that is what an in-place rewrite (`kubectl get -o
 *     yaml > f`, `cat a > f`) looks like between the truncation and the
 *     write. To delete a file's objects, delete the file;
 *   - a file written in place (modified, and not yet closed by its writer,
 *     as inotify tells) is read once its writer closes it, or once it has
 *     not changed for settle_ms (a writer that never closes);
 *   - an object stays while any file defines it; one defined by several
 *     files is an error and follows manifest_duplicates();
 *   - FIFOs, sockets and devices are never opened; each folder and file
 *     is walked once however many links lead to it; files, folders, bytes
 *     and nodes per document are bounded (struct manifest_limits);
 *   - problems are logged when they appear or change, at most
 *     SAY_PER_SCAN lines a scan; status always lists them all.
 * A file is read again only when stat() says it changed (inode, size,
 * times), or when it was read so soon after its last change that a later
 * change in the same clock tick would not show in its times (the kernel's
 * file times are coarse: "racily clean", as git calls it). */
#define _GNU_SOURCE
#include "agent/daemon/src_files.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent/daemon/log.h"
#include "policy/clip.h"

#define SAY_PER_SCAN 20
#define RACY_NS 2000000000LL /* 2 s: well past any file system's time granularity */

struct entry;
struct ffile;

struct fdef { /* one object as one file defines it */
	struct ffile *file;
	struct entry *ent;
	enum obj_type type;
	void *spec; /* one reference, held while the file defines it */
	char *canon;
};

struct ffile {
	char *path;
	struct stat st;          /* when last read */
	long long read_ns;       /* CLOCK_REALTIME of that read */
	char *bytes;             /* the bytes last read (equality, not a hash, says it is unchanged) */
	size_t nbytes;
	bool seen, have, refused;
	uint32_t order;          /* in this scan's walk: duplicates' "first file" */
	struct vec defs;         /* struct fdef* */
	char *error;             /* why its last good objects stay */
};

struct applied {
	char *name;
	void *spec; /* the reference the engine holds */
};

struct entry { /* one kind/ns/name and every file that defines it */
	char *key, *ns;
	enum obj_type type;
	enum policy_kind kind;
	struct vec defs;    /* struct fdef* */
	struct vec applied; /* struct applied*: what the engine holds (NAME, NAME#2...) */
	char *dup;          /* the duplicate error */
	bool touched;
};

struct watch {
	int wd;
	char *dir;
	bool seen;
};

struct writing { /* a file modified in place, not closed yet */
	char *path;
	long long since_ns; /* CLOCK_MONOTONIC of the last modification seen */
};

struct src_files {
	char *dir;
	struct decode_opts opts;
	struct manifest_limits lim;
	uint32_t settle_ms;
	int ino;
	struct htab files;   /* struct ffile by path */
	struct htab entries; /* struct entry by key */
	struct htab watches; /* struct watch by wd */
	struct htab writing; /* struct writing by path */
	struct vec touched;  /* struct entry* to resolve again */
	struct vec problems; /* char*: the walk's, in force */
	struct vec said;     /* char*: problems already logged */
	size_t say_left, say_over;
	long next_ms; /* a file being written in place is due then */
};

static long long now_ns(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static bool ffile_eq(const void *item, const void *key)
{
	return !strcmp(((const struct ffile *)item)->path, key);
}

static bool entry_eq(const void *item, const void *key)
{
	return !strcmp(((const struct entry *)item)->key, key);
}

static bool watch_eq(const void *item, const void *key)
{
	return ((const struct watch *)item)->wd == *(const int *)key;
}

static bool writing_eq(const void *item, const void *key)
{
	return !strcmp(((const struct writing *)item)->path, key);
}

static uint64_t wd_hash(int wd)
{
	return hash_bytes(&wd, sizeof(wd), 0);
}

/* ---------- saying problems once ---------- */

static bool said_before(struct vec *said, const char *m)
{
	for (size_t i = 0; i < said->n; i++)
		if (!strcmp(said->v[i], m))
			return true;
	return false;
}

/* Logs m unless the same problem was logged at the last scan: a problem in
 * force is in status, not in every scan's log (issue 20, item 7). */
static void say(struct src_files *s, struct vec *now, enum log_level l, const char *m)
{
	if (now)
		vec_push(now, xstrdup(m));
	if (now && said_before(&s->said, m))
		return;
	if (!s->say_left) {
		s->say_over++;
		return;
	}
	s->say_left--;
	log_msg(l, "source", "%s", m);
}

/* ---------- objects and the engine ---------- */

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

static const char *spec_name(enum obj_type t, const void *spec)
{
	return t == OBJ_NAMESPACE ? ((const struct ns_spec *)spec)->name
	       : t == OBJ_POD	  ? ((const struct pod_spec *)spec)->name
	       : t == OBJ_NODE	  ? ((const struct node_spec *)spec)->name
				  : ((const struct policy_spec *)spec)->name;
}

/* Hands one reference of spec to the engine. */
static void engine_put(struct engine *e, enum obj_type t, void *spec)
{
	if (t == OBJ_NAMESPACE)
		engine_ns_upsert(e, spec);
	else if (t == OBJ_POD)
		engine_pod_upsert(e, spec);
	else if (t == OBJ_NODE)
		engine_node_upsert(e, spec);
	else
		engine_policy_upsert(e, spec);
}

static void engine_del(struct engine *e, const struct entry *en, const char *name)
{
	if (en->type == OBJ_NAMESPACE)
		engine_ns_delete(e, name);
	else if (en->type == OBJ_POD)
		engine_pod_delete(e, en->ns, name);
	else if (en->type == OBJ_NODE)
		engine_node_delete(e, name);
	else
		engine_policy_delete(e, en->kind, en->ns, name);
}

static struct entry *entry_get(struct src_files *s, enum obj_type t, const void *spec)
{
	char *key = manifest_key(t, spec);
	struct entry *en = htab_find(&s->entries, hash_str(key), entry_eq, key);
	if (en) {
		free(key);
		return en;
	}
	en = xcalloc(1, sizeof(*en));
	en->key = key;
	en->type = t;
	en->ns = xstrdup(t == OBJ_POD ? ((const struct pod_spec *)spec)->ns
			 : t == OBJ_POLICY ? ((const struct policy_spec *)spec)->ns
					   : "");
	en->kind = t == OBJ_POLICY ? ((const struct policy_spec *)spec)->kind : KIND_NETPOL;
	htab_insert(&s->entries, hash_str(key), en);
	return en;
}

static void touch(struct src_files *s, struct entry *en)
{
	if (!en->touched)
		vec_push(&s->touched, en);
	en->touched = true;
}

static int def_order_cmp(const void *a, const void *b)
{
	const struct fdef *x = *(struct fdef *const *)a, *y = *(struct fdef *const *)b;
	return (x->file->order > y->file->order) - (x->file->order < y->file->order);
}

/* What the entry's definitions enforce: references in want. */
static void entry_want(struct src_files *s, struct entry *en, struct vec *want)
{
	char *old = en->dup;
	en->dup = NULL;
	if (en->defs.n == 1) {
		struct fdef *d = en->defs.v[0];
		spec_ref(d->type, d->spec);
		vec_push(want, d->spec);
	} else if (en->defs.n > 1) {
		vec_sort(&en->defs, def_order_cmp);
		struct manifest_def *md = xcalloc(en->defs.n, sizeof(*md));
		for (size_t i = 0; i < en->defs.n; i++) {
			struct fdef *d = en->defs.v[i];
			md[i] = (struct manifest_def){ d->type, d->spec, d->canon, d->file->path };
		}
		char *m = manifest_duplicates(md, en->defs.n, want);
		free(md);
		en->dup = xasprintf("%s %s", en->key, m);
		free(m);
		if (!old || strcmp(old, en->dup))
			say(s, NULL, LOG_ERROR, en->dup);
	}
	free(old);
}

static struct applied *applied_find(struct entry *en, const char *name)
{
	for (size_t i = 0; i < en->applied.n; i++)
		if (!strcmp(((struct applied *)en->applied.v[i])->name, name))
			return en->applied.v[i];
	return NULL;
}

/* Brings the engine to what the entry's definitions say now. */
static size_t entry_apply(struct src_files *s, struct entry *en, struct engine *e)
{
	struct vec want = { 0 };
	size_t changed = 0;
	entry_want(s, en, &want);
	for (size_t i = 0; i < en->applied.n; i++) { /* names no longer wanted */
		struct applied *a = en->applied.v[i];
		bool kept = false;
		for (size_t j = 0; j < want.n && !kept; j++)
			kept = !strcmp(spec_name(en->type, want.v[j]), a->name);
		if (kept)
			continue;
		engine_del(e, en, a->name);
		free(a->name);
		free(a);
		en->applied.v[i--] = en->applied.v[--en->applied.n];
		changed++;
	}
	for (size_t j = 0; j < want.n; j++) {
		const char *name = spec_name(en->type, want.v[j]);
		struct applied *a = applied_find(en, name);
		if (a && a->spec == want.v[j]) { /* the engine has it already */
			spec_unref(en->type, want.v[j]);
			continue;
		}
		if (!a) {
			a = xcalloc(1, sizeof(*a));
			a->name = xstrdup(name);
			vec_push(&en->applied, a);
		}
		a->spec = want.v[j];
		engine_put(e, en->type, want.v[j]);
		changed++;
	}
	vec_free(&want);
	return changed;
}

static void entry_free(struct entry *en)
{
	for (size_t i = 0; i < en->applied.n; i++) {
		free(((struct applied *)en->applied.v[i])->name);
		free(en->applied.v[i]);
	}
	vec_free(&en->applied);
	vec_free(&en->defs);
	free(en->dup);
	free(en->key);
	free(en->ns);
	free(en);
}

static size_t apply_touched(struct src_files *s, struct engine *e)
{
	size_t changed = 0;
	for (size_t i = 0; i < s->touched.n; i++) {
		struct entry *en = s->touched.v[i];
		en->touched = false;
		changed += entry_apply(s, en, e);
		if (!en->defs.n) {
			htab_remove(&s->entries, hash_str(en->key), entry_eq, en->key);
			entry_free(en);
		}
	}
	s->touched.n = 0;
	return changed;
}

/* ---------- files ---------- */

static void file_drop_defs(struct src_files *s, struct ffile *f)
{
	for (size_t i = 0; i < f->defs.n; i++) {
		struct fdef *d = f->defs.v[i];
		vec_remove(&d->ent->defs, d);
		touch(s, d->ent);
		spec_unref(d->type, d->spec);
		free(d->canon);
		free(d);
	}
	f->defs.n = 0;
}

static void file_add_def(struct src_files *s, struct ffile *f, enum obj_type t, void *spec, const char *canon)
{
	struct fdef *d = xcalloc(1, sizeof(*d));
	d->file = f;
	d->type = t;
	d->spec = spec; /* the set's reference becomes the file's */
	d->canon = canon ? xstrdup(canon) : NULL;
	d->ent = entry_get(s, t, spec);
	vec_push(&d->ent->defs, d);
	vec_push(&f->defs, d);
	touch(s, d->ent);
}

/* The file read whole: its objects are now the set's. */
static void file_replace(struct src_files *s, struct ffile *f, struct manifest_set *ms)
{
	file_drop_defs(s, f);
	for (size_t i = 0; i < ms->nss.n; i++)
		file_add_def(s, f, OBJ_NAMESPACE, ms->nss.v[i], NULL);
	for (size_t i = 0; i < ms->pods.n; i++)
		file_add_def(s, f, OBJ_POD, ms->pods.v[i], NULL);
	for (size_t i = 0; i < ms->policies.n; i++)
		file_add_def(s, f, OBJ_POLICY, ms->policies.v[i], manifest_canon(ms, ms->policies.v[i]));
	for (size_t i = 0; i < ms->nodes.n; i++)
		file_add_def(s, f, OBJ_NODE, ms->nodes.v[i], NULL);
	ms->nss.n = ms->pods.n = ms->policies.n = ms->nodes.n = 0;
}

/* Sets (or clears, err NULL) why f keeps its objects; logged on change. */
static void file_error(struct src_files *s, struct ffile *f, char *err)
{
	bool same = f->error && err && !strcmp(f->error, err);
	free(f->error);
	f->error = err;
	if (err && !same) {
		char *m = f->defs.n ? xasprintf("%s: %s; the %zu objects it defined stay in force until it reads again",
						f->path, err, f->defs.n)
				    : xasprintf("%s: %s", f->path, err);
		say(s, NULL, LOG_ERROR, m);
		free(m);
	}
}

static void log_diags(struct src_files *s, struct diags *d)
{
	for (size_t i = 0; i < d->v.n; i++) {
		struct diag *x = d->v.v[i];
		char *m = diag_format(x);
		if (s->say_left) {
			s->say_left--;
			log_msg(x->warning ? LOG_WARN : LOG_ERROR, "decode", "%s", m);
		} else {
			s->say_over++;
		}
		free(m);
	}
}

/* Parses buf as f's new content: its objects, or the reason it keeps its
 * old ones. */
static void file_parse(struct src_files *s, struct ffile *f, const char *buf, size_t len)
{
	struct manifest_set ms = { .lim = s->lim };
	char *err = NULL;
	int rc = manifest_read_buffer(&ms, f->path, buf, len, &s->opts, &err);
	log_diags(s, &ms.diags);
	if (rc == 0 && !ms.docs && f->defs.n) {
		/* between an in-place rewrite's truncation and its write
		 * (issue 20, item 5): never read as "delete everything" */
		err = xstrdup("holds no document (being rewritten in place?); to delete its objects, delete the file");
		rc = -ENODATA;
	}
	if (rc < 0) {
		file_error(s, f, err);
	} else {
		file_error(s, f, NULL);
		file_replace(s, f, &ms);
	}
	manifest_set_free(&ms);
}

static bool same_stat(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	       a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* Whether f must be read again: it changed, or its last read cannot tell. */
static bool file_stale(const struct ffile *f, const struct stat *st)
{
	long long ctime_ns = st->st_ctim.tv_sec * 1000000000LL + st->st_ctim.tv_nsec;
	return !f->have || f->refused || !same_stat(&f->st, st) || f->read_ns - ctime_ns < RACY_NS;
}

static void file_read(struct src_files *s, struct ffile *f, const struct manifest_file *mf)
{
	size_t len;
	char *err = NULL;
	long long t = now_ns(CLOCK_REALTIME);
	char *buf = manifest_read_file(mf->path, s->lim.max_file_bytes, &len, &err);
	f->st = mf->st;
	f->read_ns = t;
	f->have = true;
	f->refused = false;
	if (!buf) {
		file_error(s, f, err);
		return;
	}
	bool same = f->bytes && f->nbytes == len && !memcmp(f->bytes, buf, len);
	if (!same || f->error || !f->defs.n)
		file_parse(s, f, buf, len);
	free(f->bytes);
	f->bytes = buf;
	f->nbytes = len;
}

static struct ffile *file_get(struct src_files *s, const char *path)
{
	struct ffile *f = htab_find(&s->files, hash_str(path), ffile_eq, path);
	if (!f) {
		f = xcalloc(1, sizeof(*f));
		f->path = xstrdup(path);
		htab_insert(&s->files, hash_str(f->path), f);
	}
	return f;
}

static void file_free(struct src_files *s, struct ffile *f)
{
	file_drop_defs(s, f);
	vec_free(&f->defs);
	free(f->error);
	free(f->bytes);
	free(f->path);
	free(f);
}

/* ---------- writes in place (inotify) ---------- */

static bool being_written(struct src_files *s, const char *path, long long now, long *next_ms)
{
	struct writing *w = htab_find(&s->writing, hash_str(path), writing_eq, path);
	if (!w)
		return false;
	long long left = w->since_ns + (long long)s->settle_ms * 1000000LL - now;
	if (left <= 0) { /* a writer that never closes: read what is there */
		htab_remove(&s->writing, hash_str(path), writing_eq, path);
		free(w->path);
		free(w);
		return false;
	}
	long ms = (long)(left / 1000000LL) + 1;
	if (*next_ms < 0 || ms < *next_ms)
		*next_ms = ms;
	return true;
}

static void writing_mark(struct src_files *s, const char *path, bool writing)
{
	struct writing *w = htab_find(&s->writing, hash_str(path), writing_eq, path);
	if (writing && !w) {
		w = xcalloc(1, sizeof(*w));
		w->path = xstrdup(path);
		htab_insert(&s->writing, hash_str(path), w);
	}
	if (writing) {
		w->since_ns = now_ns(CLOCK_MONOTONIC);
	} else if (w) {
		htab_remove(&s->writing, hash_str(path), writing_eq, path);
		free(w->path);
		free(w);
	}
}

static void on_event(struct src_files *s, const struct inotify_event *ev)
{
	if (!ev->len || !manifest_name(ev->name))
		return;
	struct watch *w = htab_find(&s->watches, wd_hash(ev->wd), watch_eq, &ev->wd);
	if (!w)
		return;
	char *path = xasprintf("%s/%s", w->dir, ev->name);
	if (ev->mask & IN_MODIFY)
		writing_mark(s, path, true);
	/* closed after writing, or replaced whole: complete */
	if (ev->mask & (IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE))
		writing_mark(s, path, false);
	free(path);
}

bool src_files_drain(struct src_files *s)
{
	char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool any = false;
	ssize_t n;
	while ((n = read(s->ino, buf, sizeof(buf))) > 0) {
		any = true;
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;
			on_event(s, ev);
			p += sizeof(*ev) + ev->len;
		}
	}
	return any;
}

/* Every folder walked is watched (idempotent); folders no longer walked
 * are not. */
static void watch_dirs(struct src_files *s, struct vec *dirs)
{
	struct watch *w;
	struct vec gone = { 0 };
	htab_foreach(&s->watches, w) w->seen = false;
	for (size_t i = 0; i < dirs->n; i++) {
		int wd = inotify_add_watch(s->ino, dirs->v[i],
					   IN_CREATE | IN_DELETE | IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_TO |
						   IN_MOVED_FROM | IN_DELETE_SELF | IN_MOVE_SELF | IN_ATTRIB);
		if (wd >= 0) {
			w = htab_find(&s->watches, wd_hash(wd), watch_eq, &wd);
			if (!w) {
				w = xcalloc(1, sizeof(*w));
				w->wd = wd;
				htab_insert(&s->watches, wd_hash(wd), w);
			}
			free(w->dir);
			w->dir = xstrdup(dirs->v[i]);
			w->seen = true;
		}
		free(dirs->v[i]);
	}
	dirs->n = 0;
	htab_foreach(&s->watches, w) if (!w->seen) vec_push(&gone, w);
	for (size_t i = 0; i < gone.n; i++) {
		w = gone.v[i];
		inotify_rm_watch(s->ino, w->wd);
		htab_remove(&s->watches, wd_hash(w->wd), watch_eq, &w->wd);
		free(w->dir);
		free(w);
	}
	vec_free(&gone);
}

/* ---------- scans ---------- */

/* The walk: its problems are said once and kept for status; true when it
 * saw the whole folder (else files it did not see are not deleted). */
static bool scan_walk(struct src_files *s, struct vec *files, struct vec *now_said)
{
	struct vec dirs = { 0 };
	struct diags d = { 0 };
	for (size_t i = 0; i < s->problems.n; i++)
		free(s->problems.v[i]);
	s->problems.n = 0;
	bool complete = manifest_files(s->dir, &s->lim, files, &dirs, &d);
	for (size_t i = 0; i < d.v.n; i++) {
		char *m = diag_format(d.v.v[i]);
		vec_push(&s->problems, xstrdup(m));
		say(s, now_said, LOG_ERROR, m);
		free(m);
	}
	diags_free(&d);
	watch_dirs(s, &dirs);
	vec_free(&dirs);
	return complete;
}

static void scan_file(struct src_files *s, struct manifest_file *mf, uint32_t order, size_t *total, long long mono,
		      long *next_ms)
{
	struct ffile *f = file_get(s, mf->path);
	f->seen = true;
	f->order = order;
	if (*total + (size_t)mf->st.st_size > s->lim.max_total_bytes) {
		char *err = xasprintf("refused: with it, the manifests read pass the limit of %zu bytes in all",
				      s->lim.max_total_bytes);
		f->refused = true;
		file_error(s, f, err);
		return;
	}
	*total += (size_t)mf->st.st_size;
	if (being_written(s, f->path, mono, next_ms))
		return; /* what it had stays until its writer is done */
	if (file_stale(f, &mf->st))
		file_read(s, f, mf);
}

/* Files gone from the folder: their objects go, unless the walk was cut
 * short (then a file merely not seen keeps them). */
static void scan_gone(struct src_files *s, bool complete)
{
	struct vec gone = { 0 };
	struct ffile *f;
	htab_foreach(&s->files, f) if (!f->seen) vec_push(&gone, f);
	for (size_t i = 0; i < gone.n && complete; i++) {
		f = gone.v[i];
		log_msg(f->defs.n ? LOG_INFO : LOG_DEBUG, "source",
			"%s removed: the %zu objects it defined go, unless another file defines them", f->path, f->defs.n);
		htab_remove(&s->files, hash_str(f->path), ffile_eq, f->path);
		file_free(s, f);
	}
	vec_free(&gone);
}

size_t src_files_scan(struct src_files *s, struct engine *e)
{
	struct vec files = { 0 }, now_said = { 0 };
	struct ffile *f;
	size_t total = 0;
	long next_ms = -1;
	long long mono = now_ns(CLOCK_MONOTONIC);
	s->say_left = SAY_PER_SCAN;
	s->say_over = 0;
	src_files_drain(s); /* the latest writes in place, before any file is read */
	htab_foreach(&s->files, f) f->seen = false;
	bool complete = scan_walk(s, &files, &now_said);
	for (size_t i = 0; i < files.n; i++)
		scan_file(s, files.v[i], (uint32_t)i, &total, mono, &next_ms);
	manifest_files_free(&files);
	scan_gone(s, complete);
	size_t changed = apply_touched(s, e);
	if (s->say_over)
		log_msg(LOG_ERROR, "source", "%zu more problems not logged: see agentctl status", s->say_over);
	for (size_t i = 0; i < s->said.n; i++)
		free(s->said.v[i]);
	vec_free(&s->said);
	s->said = now_said;
	s->next_ms = next_ms;
	return changed;
}

long src_files_next_ms(const struct src_files *s)
{
	return s->next_ms;
}

/* ---------- life cycle, status ---------- */

struct src_files *src_files_new(const char *dir, const struct src_files_opts *o, char **err)
{
	struct stat st;
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		*err = xasprintf("files source: %s is not a readable folder", dir);
		return NULL;
	}
	struct src_files *s = xcalloc(1, sizeof(*s));
	s->dir = xstrdup(dir);
	s->opts = (struct decode_opts){ DECODE_AGENT, false, xstrdup(o->app_label), "default" };
	s->lim = o->lim;
	manifest_limits_default(&s->lim);
	s->settle_ms = o->settle_ms ? o->settle_ms : SRC_FILES_SETTLE_MS;
	s->ino = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (s->ino < 0) {
		*err = xasprintf("files source: inotify: %s", strerror(errno));
		src_files_free(s);
		return NULL;
	}
	return s;
}

void src_files_free(struct src_files *s)
{
	if (!s)
		return;
	struct ffile *f;
	struct entry *en;
	struct watch *w;
	struct writing *wr;
	htab_foreach(&s->files, f) file_free(s, f);
	htab_foreach(&s->entries, en) entry_free(en);
	htab_foreach(&s->watches, w) {
		free(w->dir);
		free(w);
	}
	htab_foreach(&s->writing, wr) {
		free(wr->path);
		free(wr);
	}
	htab_free(&s->files);
	htab_free(&s->entries);
	htab_free(&s->watches);
	htab_free(&s->writing);
	vec_free(&s->touched);
	for (size_t i = 0; i < s->problems.n; i++)
		free(s->problems.v[i]);
	vec_free(&s->problems);
	for (size_t i = 0; i < s->said.n; i++)
		free(s->said.v[i]);
	vec_free(&s->said);
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

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every problem in force, sorted (status is read by people and tests). */
static void problems(const struct src_files *s, struct vec *out)
{
	struct ffile *f;
	struct entry *en;
	htab_foreach(&s->files, f) if (f->error) vec_push(out, xasprintf("%s: %s (previous objects kept)", f->path,
									   f->error));
	htab_foreach(&s->entries, en) if (en->dup) vec_push(out, xstrdup(en->dup));
	for (size_t i = 0; i < s->problems.n; i++)
		vec_push(out, xstrdup(s->problems.v[i]));
	vec_sort(out, str_cmp);
}

json_t *src_files_status(const struct src_files *s)
{
	json_t *errs = json_array();
	struct vec v = { 0 };
	problems(s, &v);
	for (size_t i = 0; i < v.n; i++) {
		char *m = clip_msg(v.v[i], 0);
		json_array_append_new(errs, json_string(m));
		free(m);
		free(v.v[i]);
	}
	vec_free(&v);
	return json_pack("{s:s, s:I, s:I, s:o, s:{s:I, s:I, s:I, s:I, s:I}}", "source", "files", "files",
			 (json_int_t)s->files.n, "objects", (json_int_t)s->entries.n, "errors", errs, "limits",
			 "maxFileBytes", (json_int_t)s->lim.max_file_bytes, "maxTotalBytes",
			 (json_int_t)s->lim.max_total_bytes, "maxFiles", (json_int_t)s->lim.max_files,
			 "maxDocumentNodes", (json_int_t)s->lim.max_doc_nodes, "settleMs", (json_int_t)s->settle_ms);
}

size_t src_files_errors(const struct src_files *s)
{
	struct vec v = { 0 };
	problems(s, &v);
	for (size_t i = 0; i < v.n; i++)
		free(v.v[i]);
	size_t n = v.n;
	vec_free(&v);
	return n;
}

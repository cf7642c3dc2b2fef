#define _GNU_SOURCE
#include "diag.h"

#include "clip.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

void diags_add(struct diags *d, bool warning, const char *file, const char *kind, const char *obj,
	       const char *path, const char *fmt, ...)
{
	struct diag *x = xcalloc(1, sizeof(*x));
	va_list ap;
	char *msg;
	x->warning = warning;
	/* every part may quote input: clipped, so that one huge value cannot
	 * be repeated into every line of check, status and the logs */
	x->file = clip_msg(file ? file : "-", 1024);
	x->kind = kind ? clip_msg(kind, 256) : NULL;
	x->obj = obj ? clip_msg(obj, 512) : NULL;
	x->path = path && *path ? clip_msg(path, 512) : NULL;
	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		abort();
	va_end(ap);
	x->msg = clip_msg(msg, 0);
	free(msg);
	vec_push(&d->v, x);
	if (warning)
		d->warnings++;
	else
		d->errors++;
}

char *diag_format(const struct diag *x)
{
	struct sbuf b = { 0 };
	sbuf_addf(&b, "%s: ", x->file);
	if (x->kind)
		sbuf_addf(&b, "%s %s: ", x->kind, x->obj ? x->obj : "(unnamed)");
	if (x->path)
		sbuf_addf(&b, "%s: ", x->path);
	if (x->warning)
		sbuf_add(&b, "warning: ");
	sbuf_add(&b, x->msg);
	return sbuf_steal(&b);
}

void diags_free(struct diags *d)
{
	for (size_t i = 0; i < d->v.n; i++) {
		struct diag *x = d->v.v[i];
		free(x->file);
		free(x->kind);
		free(x->obj);
		free(x->path);
		free(x->msg);
		free(x);
	}
	vec_free(&d->v);
	d->errors = d->warnings = 0;
}

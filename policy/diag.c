#define _GNU_SOURCE
#include "diag.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

void diags_add(struct diags *d, bool warning, const char *file, const char *kind, const char *obj,
	       const char *path, const char *fmt, ...)
{
	struct diag *x = xcalloc(1, sizeof(*x));
	va_list ap;
	x->warning = warning;
	x->file = xstrdup(file ? file : "-");
	x->kind = kind ? xstrdup(kind) : NULL;
	x->obj = obj ? xstrdup(obj) : NULL;
	x->path = path && *path ? xstrdup(path) : NULL;
	va_start(ap, fmt);
	if (vasprintf(&x->msg, fmt, ap) < 0)
		abort();
	va_end(ap);
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

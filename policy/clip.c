#define _GNU_SOURCE
#include "clip.h"

#include <stdio.h>
#include <string.h>

#include "util.h"

/* The largest cut <= at that does not split a UTF-8 sequence, so that
 * clipped text stays valid UTF-8 (the JSON logs and status need it). */
static size_t utf8_cut(const char *s, size_t at)
{
	while (at > 0 && ((unsigned char)s[at] & 0xc0) == 0x80)
		at--;
	return at;
}

static void clip_into(struct sbuf *b, const char *s, size_t n, size_t max)
{
	if (n <= max) {
		sbuf_addn(b, s, n);
		return;
	}
	size_t cut = utf8_cut(s, max);
	sbuf_addn(b, s, cut);
	sbuf_addf(b, "...(%zu bytes)", n);
}

const char *clip_str(char *buf, size_t cap, const char *s, size_t max)
{
	size_t n = strlen(s);
	if (n <= max)
		return s;
	if (max + 40 > cap)
		max = cap > 40 ? cap - 40 : 0;
	size_t cut = utf8_cut(s, max);
	snprintf(buf, cap, "%.*s...(%zu bytes)", (int)cut, s, n);
	return buf;
}

char *clip_msg(const char *msg, size_t max)
{
	struct sbuf b = { 0 };
	const char *p = msg;
	if (!max)
		max = CLIP_MSG_MAX;
	sbuf_add(&b, "");
	while (*p) {
		const char *q = strchr(p, '"');
		if (!q) {
			sbuf_add(&b, p);
			break;
		}
		sbuf_addn(&b, p, (size_t)(q - p) + 1); /* up to the opening quote */
		const char *end = strchr(q + 1, '"');
		size_t n = end ? (size_t)(end - q - 1) : strlen(q + 1);
		clip_into(&b, q + 1, n, CLIP_QUOTE_MAX);
		if (!end)
			break;
		sbuf_add(&b, "\"");
		p = end + 1;
	}
	if (b.n > max) {
		size_t total = b.n, cut = utf8_cut(b.s, max);
		b.n = cut;
		b.s[cut] = '\0';
		sbuf_addf(&b, "...(message of %zu bytes cut)", total);
	}
	return sbuf_steal(&b);
}

/* Input quoted in messages, cut to a readable size.
 *
 * Diagnostics, logs and status quote what a manifest or the API sent
 * (label values, keys, names, paths). One oversized value (a 1 MB label)
 * must not be copied into every log line and status answer (issue 20,
 * item 9), so every place that formats such a message goes through here:
 * diags_add() and the agent's log_msg() clip whole messages, and code that
 * quotes one value can clip it first with CLIP(). */
#ifndef CORRAL_CLIP_H
#define CORRAL_CLIP_H

#include <stddef.h>

#define CLIP_QUOTE_MAX 96   /* bytes of one quoted value kept */
#define CLIP_MSG_MAX 2048   /* bytes of a whole message kept */
#define CLIP_BUF (CLIP_QUOTE_MAX + 40)

/* s itself when at most max bytes, else its first max bytes (cut at a
 * UTF-8 character boundary) followed by "...(N bytes)", written into buf
 * (cap >= max + 40). */
const char *clip_str(char *buf, size_t cap, const char *s, size_t max);
/* A value to quote in a message; the buffer lives until the end of the
 * enclosing block (a compound literal), so use it as a call argument. */
#define CLIP(s) clip_str((char[CLIP_BUF]){ 0 }, CLIP_BUF, (s), CLIP_QUOTE_MAX)

/* A copy of msg (malloc'd) in which every "double-quoted" run longer than
 * CLIP_QUOTE_MAX is cut as clip_str() does, and the whole at most max
 * bytes (0: CLIP_MSG_MAX). A quote left open runs to the end. */
char *clip_msg(const char *msg, size_t max);

#endif

/* Structured logs on stderr: text (time level event: message) or one JSON
 * object per line. */
#ifndef CORRAL_LOG_H
#define CORRAL_LOG_H

#include <stdbool.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

void log_setup(bool json, enum log_level min);
int log_level_parse(const char *s); /* -1 if unknown */
void log_msg(enum log_level l, const char *event, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif

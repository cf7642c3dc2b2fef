/* Dropped packets, as the kernel logs them to an NFLOG group. */
#ifndef CORRAL_NFLOG_H
#define CORRAL_NFLOG_H

#include <stddef.h>
#include <stdint.h>

struct nflog_pkt {
	const char *prefix; /* the rule's log prefix, e.g. "corral:i:g7 " */
	uint8_t family;     /* 4 or 6 */
	uint8_t src[16], dst[16];
	uint8_t proto;
	uint16_t sport, dport;
	const uint8_t *payload;
	size_t len;
};

typedef void (*nflog_cb)(const struct nflog_pkt *p, void *arg);

struct nflog;
/* Binds NFLOG group in the caller's network namespace; NULL and *err. */
struct nflog *nflog_open(uint16_t group, char **err);
void nflog_close(struct nflog *l);
int nflog_fd(const struct nflog *l);
/* Reads what is pending (the socket is polled by the caller). */
int nflog_read(struct nflog *l, nflog_cb cb, void *arg);
/* The NFLOG messages in buf (as read from the socket): cb for each logged
 * IP packet. 0 or -errno. The fuzz target fuzz-nflog feeds it. */
int nflog_parse_msgs(const void *buf, size_t len, nflog_cb cb, void *arg);
/* The flow of an IP packet. */
int nflog_parse(const uint8_t *pkt, size_t len, struct nflog_pkt *out);

#endif

/* Test hooks of util.c: not for production code. */
#ifndef CORRAL_UTIL_PRIVATE_H
#define CORRAL_UTIL_PRIVATE_H

/* From now on every hash is the same constant, so every item of every
 * hash table lands in one bucket: tests prove with it that equality, never
 * the hash, decides identity (interned strings, peer sets, groups, port
 * sets). Call it first, before anything is hashed: it cannot be undone. */
void util_test_hash_constant(void);

#endif

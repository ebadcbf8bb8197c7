/*
 * Fork detection without a syscall per command: a counter bumped in every
 * forked child by a pthread_atfork handler. An object records the value when
 * it is made; a different value later means "I am a copy in a child".
 */
#ifndef AREDIS_UTIL_FORK_H
#define AREDIS_UTIL_FORK_H

/* The current generation (registers the atfork handler on first use). */
unsigned aredis__fork_generation(void);

#endif

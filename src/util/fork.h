/*
 * Fork detection without a syscall per command: a counter bumped in every
 * forked child by a pthread_atfork handler. An object records the value when
 * it is made; a different value later means "I am a copy in a child".
 */
#ifndef AREDIS_UTIL_FORK_H
#define AREDIS_UTIL_FORK_H

/* The current generation; registers the atfork handler on first use. Call
 * it when an object that must notice a fork is made. */
unsigned aredis__fork_generation(void);

/* The current generation without the registration check (one load): for
 * hot paths of objects made with aredis__fork_generation(). */
extern volatile unsigned aredis__fork_gen_value;
static inline unsigned aredis__fork_current(void) { return aredis__fork_gen_value; }

#endif

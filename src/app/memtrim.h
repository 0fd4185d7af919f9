/* Returning freed heap pages to the system once connections have closed
 * (memtrim.c). */
#ifndef FG_MEMTRIM_H
#define FG_MEMTRIM_H

struct event_base;
struct memtrim;

/* Checks every period_s seconds, first calling doze(arg) (idle streams
 * give back their parsers); NULL when out of memory. */
struct memtrim *memtrim_start(struct event_base *base, unsigned period_s, void (*doze)(void *arg),
			      void *arg);
void memtrim_stop(struct memtrim **m);

#endif

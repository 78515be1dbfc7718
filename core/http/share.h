/* share.h: internal to core/http — a region's share of the HTTP workers
 * (share.c). */
#ifndef SARYE_HTTP_SHARE_H
#define SARYE_HTTP_SHARE_H

#define SHARE_NONE (-1)       /* a request of no region: not counted */
#define SHARE_TOTAL_ONLY (-2) /* counted in the total only (no slot left) */

/* Starts counting against a pool of threads workers. */
void share_start(int threads);
/* A request of region (NULL or "": none) starts being served: 0 with
 * *ticket to give back to share_leave, or -1 when the region holds its
 * share of nearly busy workers (answer 503 region_busy; nothing to give
 * back). */
int share_enter(const char *region, int *ticket);
void share_leave(int ticket);
/* Requests refused so far (/metrics). */
unsigned long share_refused(void);

#endif

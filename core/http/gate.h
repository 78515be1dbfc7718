/* gate.h: internal to core/http — connection limits in front of CivetWeb's
 * workers (gate.c). */
#ifndef SARYE_HTTP_GATE_H
#define SARYE_HTTP_GATE_H

#include <stdbool.h>

/* Starts counting open connections per client address, refusing one more
 * past max_per_address (0: no limit); idle connects are deferred by the
 * kernel from now on. */
void gate_start(int max_per_address);
/* Addresses the limit does not apply to (trusted proxies: every client
 * behind one shares its address; the proxy limits them itself). NULL: none. */
void gate_exempt(bool (*exempt)(const char *addr));
void gate_stop(void);
/* A connection from addr (CivetWeb's numeric remote_addr) closed. */
void gate_closed(const char *addr);
/* Connections refused at the door so far. */
unsigned long gate_refused(void);

#endif

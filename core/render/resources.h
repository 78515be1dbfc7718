/*
 * render/resources.h: welfare resources, their seats and waitlist entries
 * as the API shows them (render.h's manner: absent values are null; what
 * is derived on the way out — free seats, a place in line, days waited —
 * is computed here, on the day given).
 */
#ifndef SARYE_RENDER_RESOURCES_H
#define SARYE_RENDER_RESOURCES_H

#include <jansson.h>

#include "store/resources.h"

json_t *render_resource(const resource_row *r);
json_t *render_resources(const resource_list *l);
json_t *render_allocation(const allocation_row *a);
json_t *render_allocations(const allocation_list *l);
/* An entry of the waitlist on today. full: its case, person and need are
 * shown (the viewer sees the case); otherwise only its place, priority,
 * organisation and the days waited. */
json_t *render_waitlist(const waitlist_row *w, const char *today, bool full);

#endif

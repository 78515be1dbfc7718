/*
 * outbound: delivery of outbox messages to external agencies with libcurl's
 * multi interface, from one background thread: many messages in flight,
 * connection reuse, connect and total timeouts per agency, the message id
 * as Idempotency-Key on every attempt, retries with exponential backoff and
 * jitter (honouring Retry-After) for 408, 429, 5xx, timeouts and connection
 * errors, dead letter for other 4xx, and a circuit breaker per agency.
 * Messages live in the store's outbox table, so a restart resumes whatever
 * was not delivered. Agency endpoints and tokens come from configuration
 * only (agency.<id>.url, .token, .timeout_ms).
 */
#ifndef SARYE_OUTBOUND_H
#define SARYE_OUTBOUND_H

#include <jansson.h>
#include <stdbool.h>

#include "base/err.h"
#include "config/config.h"

int outbound_start(const config *cfg, char *err, size_t errlen);
/* Stops the worker; messages in flight stay queued for the next start. */
void outbound_stop(void);
/* Wakes the worker (a message was just committed, or one is retried). */
void outbound_kick(void);
/* Prometheus lines per agency: queued, in flight, delivered, retried, dead,
 * breaker state; caller frees. */
char *outbound_metrics(void);

/* A synchronous look-up of a configured agency (plugins' sarye.http, before
 * any transaction): POST body as JSON to the agency's URL + path, within
 * budget_ms. 503 agency_unavailable naming the agency on a timeout, a
 * connection error or a 5xx; 422 for an agency that is not configured;
 * 503 agency_busy (details.retry_after) at once when the agency already has
 * agency.<id>.concurrency (default lookup.concurrency) look-ups waiting. */
int outbound_call(const char *agency, const char *path, json_t *body, int budget_ms, json_t **out, err_t *e);
/* Whether agency.<id>.url is configured (outbound_call can reach it). */
bool outbound_agency_configured(const char *agency);

#endif

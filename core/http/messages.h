/*
 * messages: error messages in Korean, keyed by the stable error code. The
 * code stays the English id; only the human text changes, and only for a
 * client that prefers Korean (Accept-Language, q-values honoured). The
 * catalogue is data (messages_ko.c); a unit test checks that every code
 * the server can answer has its entry.
 */
#ifndef SARYE_HTTP_MESSAGES_H
#define SARYE_HTTP_MESSAGES_H

#include <stdbool.h>

#include "base/err.h"

/* The Korean text of an error code, or NULL when the catalogue has none. */
const char *messages_ko(const char *code);
/* Entry i of the catalogue (sorted by code): its code, or NULL past the end;
 * *text receives the Korean message. For tests. */
const char *messages_ko_at(int i, const char **text);

/* True when an Accept-Language header prefers Korean to English (the
 * server's default): the q of the best range matching "ko" is higher than
 * English's, or equal and listed first. NULL or "" prefers English. */
bool messages_prefers_ko(const char *accept_language);

/* Rewrites e->message in Korean: the catalogue's text for e->code, then
 * what the details name (the field, the accepted values, a rule's reason,
 * the plugin file and line). The English message moves to
 * details.message_en. Returns false (e unchanged) for a code without an
 * entry. */
bool messages_translate_ko(err_t *e);

#endif

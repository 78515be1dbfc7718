/*
 * err: the error every layer hands up to HTTP. It carries the status and
 * the snake_case code of API.md's error shape, a message a person can act
 * on, and optional details (a jansson object owned by the err).
 */
#ifndef SARYE_ERR_H
#define SARYE_ERR_H

#include <jansson.h>

typedef struct {
    int status;        /* HTTP status: 4xx for the caller's fault, 5xx for ours */
    char code[48];     /* snake_case, e.g. "validation_failed" */
    char message[512]; /* human text */
    json_t *details;   /* NULL or an object; owned */
} err_t;

/* Sets e (status, code, printf message). Any previous details are dropped. */
void err_set(err_t *e, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Adds details[key] = value (steals the reference). */
void err_detail(err_t *e, const char *key, json_t *value);
void err_clear(err_t *e);
/* The response body {"error": {...}}; new reference. */
json_t *err_json(const err_t *e);

#endif

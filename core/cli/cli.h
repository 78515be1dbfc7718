/*
 * cli: the plugin author's commands (`sarye plugin new|check|test|lint|
 * replay`). main.c owns the rest of the command line and hands these the
 * way it loads the configuration and opens the store.
 */
#ifndef SARYE_CLI_H
#define SARYE_CLI_H

#include "config/config.h"

typedef struct {
    /* defaults < file < environment < these options (each may be NULL);
     * 0, or 1 after printing why */
    int (*load_config)(const char *config_file, const char *db, const char *plugins, config *cfg);
    /* opens and migrates the store and the key; 0, or 1 after printing why */
    int (*open_store)(const config *cfg);
} cli_env;

/* argv[0] is "plugin". Returns the exit status: 0, 1 (a check, test, lint
 * or replay found something), 2 (usage). */
int cli_plugin(int argc, char **argv, const cli_env *env);

extern const char CLI_PLUGIN_USAGE[];

#endif

/* `fedgate check`: a health check of a configuration and of the host it
 * runs on, section by section, each finding with a level and a fix. */
#ifndef FG_HEALTH_H
#define FG_HEALTH_H

/* argv[0] is "check". Options: -c FILE (the configuration, default as for
 * every command), --config (print the effective configuration or its
 * errors instead: conf_check_main). Prints the findings and a summary to
 * standard output. Returns the exit status: 0 no error (warnings allowed),
 * 1 at least one error, 2 usage error. */
int check_main(int argc, char **argv);

#endif

/* `fedgate serve`: the daemon: loads config, opens listeners, runs the loop. */
#ifndef FG_SERVE_H
#define FG_SERVE_H

/* Returns the process exit status. */
int serve_main(const char *conf_path);

#endif

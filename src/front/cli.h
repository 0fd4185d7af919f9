/* The administrative CLI (`fedgate partner|gateway|audit ...`): argv to a
 * command of the command layer, run in the daemon over the control socket
 * when one runs, else directly on the store; output for people or --json. */
#ifndef FG_CLI_H
#define FG_CLI_H

/* argv[0] is the first command word ("partner", "gateway", "audit").
 * Returns the exit status: 0 done, 1 refused (nothing saved), 2 usage,
 * 3 not found. */
int cli_main(int argc, char **argv);

#endif

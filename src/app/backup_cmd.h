/* `fedgate backup FILE` and `fedgate restore FILE`. */
#ifndef FG_BACKUP_CMD_H
#define FG_BACKUP_CMD_H

/* argv[0] is "backup" or "restore". Returns the exit status: 0 done, 1
 * refused (nothing changed), 2 usage. */
int backup_main(int argc, char **argv);

#endif

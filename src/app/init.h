/* `fedgate init`: writes a working configuration and a self-signed certificate. */
#ifndef FG_INIT_H
#define FG_INIT_H

/* argv[0] is "init". Options: --domain D (default "localhost"), --dir DIR
 * (default "."), -c FILE (config path; overrides DIR/fedgate.conf).
 * Returns the process exit status: 0 written, 1 refused (file exists, bad
 * domain, I/O error: message on stderr), 2 usage error. */
int init_main(int argc, char **argv);

#endif

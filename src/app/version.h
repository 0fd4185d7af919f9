/* `fedgate version`: fedgate's version and each linked library's. */
#ifndef FG_VERSION_H
#define FG_VERSION_H

#include <stdio.h>

/* Prints "fedgate X.Y.Z" and one line per library: the version in use at
 * run time, and the one the headers said at build time where it differs
 * (a library upgraded under the binary). */
void version_print(FILE *f);

#endif

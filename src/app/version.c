/* `fedgate version`, as `prosodyctl about` does it: a bug report needs the
 * versions of the libraries that parse peers' bytes, not only ours. Each
 * library is asked for its own version at run time (the shared object that
 * was loaded); the headers' version is shown next to it when they differ. */
#include "version.h"

#include <event2/event.h>
#include <expat.h>
#include <gsasl.h>
#include <hiredis/hiredis.h>
#include <idn2.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <openssl/crypto.h>
#include <openssl/opensslv.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stringprep.h>
#include <string.h>
#include <unbound.h>

#define STR_(x) #x
#define STR(x)	STR_(x)

#ifndef FG_INIH_VERSION
#define FG_INIH_VERSION "unknown"
#endif

static void line(FILE *f, const char *name, const char *run, const char *built)
{
	if (run == NULL)
		run = "unknown";
	if (built != NULL && strcmp(run, built) != 0)
		fprintf(f, "  %-11s %s (built with %s)\n", name, run, built);
	else
		fprintf(f, "  %-11s %s\n", name, run);
}

void version_print(FILE *f)
{
	const char *expat = XML_ExpatVersion(); /* "expat_2.5.0" */
	const char *us = expat ? strchr(expat, '_') : NULL;

	fprintf(f, "fedgate %s\n", FG_VERSION);
	fprintf(f, "libraries (in use; \"built with\" where the headers were another):\n");
	line(f, "libevent", event_get_version(), LIBEVENT_VERSION);
	line(f, "OpenSSL", OpenSSL_version(OPENSSL_VERSION_STRING), OPENSSL_VERSION_STR);
	line(f, "SQLite", sqlite3_libversion(), SQLITE_VERSION);
	/* 150018 = 15.18; libpq's headers carry no version to compare. */
	char pq[32];
	int v = PQlibVersion();
	snprintf(pq, sizeof(pq), "%d.%d", v / 10000, v % 10000);
	line(f, "libpq", pq, NULL);
	/* hiredis has no run-time version call. */
	line(f, "hiredis",
	     STR(HIREDIS_MAJOR) "." STR(HIREDIS_MINOR) "." STR(
		     HIREDIS_PATCH) " (built with; it has no run-time version)",
	     NULL);
#if JANSSON_VERSION_HEX >= 0x020d00
	line(f, "jansson", jansson_version_str(), JANSSON_VERSION);
#else
	line(f, "jansson", JANSSON_VERSION " (headers; no run-time query)", NULL);
#endif
	line(f, "expat", us ? us + 1 : expat,
	     STR(XML_MAJOR_VERSION) "." STR(XML_MINOR_VERSION) "." STR(XML_MICRO_VERSION));
	line(f, "GNU SASL", gsasl_check_version(NULL), GSASL_VERSION);
	line(f, "libidn2", idn2_check_version(NULL), IDN2_VERSION);
	line(f, "libidn", stringprep_check_version(NULL), STRINGPREP_VERSION);
	line(f, "libunbound", ub_version(),
	     STR(UNBOUND_VERSION_MAJOR) "." STR(UNBOUND_VERSION_MINOR) "." STR(
		     UNBOUND_VERSION_MICRO));
	line(f, "libsodium", sodium_version_string(), SODIUM_VERSION_STRING);
	line(f, "inih", "r" FG_INIH_VERSION " (built with; it has no run-time version)", NULL);
}

/* Status codes and the diagnostic list: library code returns a dl_status and
 * records what went wrong here; only cmd/ prints diagnostics and exits. */
#ifndef DL_STATUS_H
#define DL_STATUS_H

#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The values double as the process exit codes (docs/cli.md). */
typedef enum {
  DL_OK = 0,
  DL_EINTERNAL = 1,    /* a bug in dltrain */
  DL_EUSAGE = 2,       /* bad command line */
  DL_ECONFIG = 3,      /* net or solver file invalid, shapes that do not fit */
  DL_EDATA = 4,        /* data file missing, truncated or inconsistent */
  DL_EDIVERGED = 5,    /* non-finite loss or gradient */
  DL_EDEVICE = 6,      /* GPU asked for but not usable */
  DL_EIO = 7,          /* snapshot or log could not be read or written */
  DL_ENOMEM = 8,       /* allocation failed or over a limit */
  DL_EINTERRUPTED = 130 /* stopped by a signal after writing a snapshot */
} dl_status;

/* A position in a config file; line and col are 1-based, 0 when unknown. */
typedef struct dl_loc {
  const char *file;
  int line, col;
} dl_loc;

/* Records a message and returns `code`, so callers can `return dl_error(...)`. */
dl_status dl_error(dl_status code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Same, prefixed with "file:line:col: " when loc is known. */
dl_status dl_error_at(dl_status code, const dl_loc *loc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

int dl_diag_count(void);
const char *dl_diag_text(void); /* all messages, one per line */
void dl_diag_print(FILE *f);
void dl_diag_clear(void);
const char *dl_status_name(dl_status s);

/* Programmer errors (never user input): print and abort. */
#define DL_ASSERT(cond)                                                        \
  do {                                                                         \
    if (!(cond)) dl_assert_fail(#cond, __FILE__, __LINE__);                    \
  } while (0)
#ifdef __cplusplus
[[noreturn]] void dl_assert_fail(const char *expr, const char *file, int line);
#else
_Noreturn void dl_assert_fail(const char *expr, const char *file, int line);
#endif

/* Allocation that reports to the diagnostic list instead of crashing. */
void *dl_malloc(size_t bytes);
void *dl_calloc(size_t n, size_t size);
char *dl_strdup(const char *s);

#ifdef __cplusplus
}
#endif

#endif

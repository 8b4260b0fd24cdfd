/* test_files.c - every file the library reads is opened without blocking:
 * FIFOs, directories and devices are refused with what they are. */
#include <sys/stat.h>

#include "../base/file.h"
#include "testutil.h"

Test(files, fifo_is_refused_without_blocking) {
  char dir[] = "/tmp/ra-fifo-XXXXXX";
  cr_assert(mkdtemp(dir));
  char fifo[64];
  snprintf(fifo, sizeof fifo, "%s/p", dir);
  cr_assert_eq(mkfifo(fifo, 0600), 0);
  char err[256];
  uint64_t size;
  cr_assert_eq(file_open_regular(fifo, &size, err, sizeof err), -1);
  cr_assert(strstr(err, "not a regular file (a FIFO)"), "%s", err);
  cr_assert_eq(file_open_regular("/tmp", &size, err, sizeof err), -1);
  cr_assert(strstr(err, "a directory"), "%s", err);
  cr_assert_eq(file_open_regular("/dev/null", &size, err, sizeof err), -1);
  cr_assert(strstr(err, "a character device"), "%s", err);
  remove(fifo);
  rmdir(dir);
}

Test(files, read_all_reads_and_limits) {
  RaAlloc a = ra_alloc_default();
  char *buf;
  size_t len;
  char err[256];
  cr_assert_eq(file_read_all(&a, "tests/data/small.tsv", 1 << 20, &buf, &len, err, sizeof err), 0,
               "%s", err);
  cr_assert(len > 0 && buf[len] == 0);
  ra_free_mem(&a, buf, len + 1);
  cr_assert_eq(file_read_all(&a, "tests/data/small.tsv", 3, &buf, &len, err, sizeof err), -1);
  cr_assert(strstr(err, "too large"), "%s", err);
  cr_assert_eq(file_read_all(&a, "tests/data/none.tsv", 3, &buf, &len, err, sizeof err), -1);
  cr_assert(strstr(err, "No such file"), "%s", err);
}

/* The command line, given a FIFO as the spec, a module, data, a checkpoint,
 * a resume checkpoint, says so at once (a hang is a
 * failure by the time limit: status 124). */
Test(files, rac_refuses_fifos_everywhere) {
  TuRun r = tu_sh(20,
                  "set -e; d=$(mktemp -d); trap 'rm -rf $d' EXIT; mkfifo $d/p\n"
                  "sed 's#data/fortunes.tsv#'$d/p'#' examples/fortunes.ra > $d/f.ra\n"
                  "for c in \"check $d/p\" \"run $d/f.ra\" \"eval examples/fortunes.ra --ckpt $d/p\" "
                  "\"run examples/fortunes.ra --resume $d/p\" "
                  "\"predict examples/fortunes.ra --ckpt $d/p --file $d/p\"; do\n"
                  "  set +e; $RAC $c --quiet; echo \"status $?\"; set -e\n"
                  "done\n");
  cr_assert_eq(r.status, 0, "status %d\n%s\n%s", r.status, r.out, r.err);
  const char *o = r.out;
  int n = 0;
  for (const char *q = o; (q = strstr(q, "status 1")); q++) n++;
  cr_assert_eq(n, 5, "every command fails with status 1:\n%s\n%s", r.out, r.err);
  n = 0;
  for (const char *q = r.err; (q = strstr(q, "a FIFO")); q++) n++;
  cr_assert_eq(n, 5, "every message names the FIFO:\n%s", r.err);
  tu_run_free(&r);
}

/* A FIFO given as the log has no reader: an error at once, not a wait in
 * open() for one. */
Test(files, fifo_as_log_is_an_error_not_a_hang) {
  TuRun r = tu_sh(30, "d=$(mktemp -d); trap 'rm -rf $d' EXIT; mkfifo $d/p\n"
                      "$RAC run examples/reverse.ra --set steps=2 --set save=$d/c.safetensors "
                      "--log $d/p --quiet");
  cr_assert_eq(r.status, 1, "status %d\n%s", r.status, r.err);
  cr_assert(strstr(r.err, "a FIFO with no reader"), "%s", r.err);
  tu_run_free(&r);
}

/* test_embed.c - the library edge as a user meets it: `make embed-check`
 * (install into a prefix, build examples/embed outside the tree with
 * pkg-config, shared and static, run it, run it under valgrind), the files
 * `make install` puts in place and `make uninstall` takes away, and the
 * symbols libra.so exports (ra_* only). */
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ra.h"
#include "testutil.h"

/* The build folder (build or build-san): the parent of this binary's. */
static const char *build_dir(void) {
  static char dir[1024];
  if (!dir[0]) {
    ssize_t n = readlink("/proc/self/exe", dir, sizeof dir - 1);
    cr_assert(n > 0);
    dir[n] = 0;
    for (int i = 0; i < 2; i++) {
      char *s = strrchr(dir, '/');
      if (s) *s = 0;
    }
  }
  return dir;
}

/* Runs a shell command; its output (stdout and stderr) in *out. */
static int run(const char *cmd, char **out) {
  char file[] = "/tmp/rac_embed_out_XXXXXX";
  int fd = mkstemp(file);
  cr_assert(fd >= 0);
  close(fd);
  char full[4096];
  snprintf(full, sizeof full, "(%s) > %s 2>&1", cmd, file);
  int rc = system(full);
  *out = tu_read_file(file, NULL);
  unlink(file);
  if (!*out) *out = strdup("");
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static bool exists(const char *prefix, const char *path) {
  char p[4096];
  struct stat st;
  snprintf(p, sizeof p, "%s%s", prefix, path);
  return lstat(p, &st) == 0;
}

static void embed_check(void) {
  char cmd[2048], *out;
  snprintf(cmd, sizeof cmd, "make --no-print-directory B=%s embed-check", build_dir());
  int rc = run(cmd, &out);
  cr_assert_eq(rc, 0, "make embed-check failed:\n%s", out);
  cr_assert(strstr(out, "embed-check: ok") != NULL, "%s", out);
  free(out);
}

static void install_and_uninstall(void) {
  char stage[] = "/tmp/rac_stage_XXXXXX";
  cr_assert_not_null(mkdtemp(stage));
  char prefix[1100], cmd[4096], *out;
  snprintf(prefix, sizeof prefix, "%s/prefix", build_dir());
  /* the same build folder and PREFIX as embed-check, staged with DESTDIR */
  const char *mk = "make --no-print-directory SAN= B=%s/embed-build PREFIX=%s DESTDIR=%s %s";
  snprintf(cmd, sizeof cmd, mk, build_dir(), prefix, stage, "install");
  int rc = run(cmd, &out);
  cr_assert_eq(rc, 0, "make install failed:\n%s", out);
  free(out);
  char root[2400];
  snprintf(root, sizeof root, "%s%s", stage, prefix);
  static const char *files[] = {
      "/bin/rac", "/include/ra.h", "/lib/libra.a", "/lib/libra.so", "/lib/libra.so.0",
      ("/lib/libra.so." RA_VERSION_STRING), "/lib/pkgconfig/ra.pc",
      "/share/man/man1/rac.1", "/share/rac/stdlib/std/encoder.ra"};
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
    cr_assert(exists(root, files[i]), "make install did not install %s", files[i]);
  /* the soname and the links */
  char link[256];
  char p[2600];
  snprintf(p, sizeof p, "%s/lib/libra.so", root);
  ssize_t n = readlink(p, link, sizeof link - 1);
  cr_assert_gt(n, 0);
  link[n] = 0;
  cr_assert_str_eq(link, "libra.so.0");
  snprintf(cmd, sizeof cmd, "readelf -d %s/lib/libra.so." RA_VERSION_STRING, root);
  cr_assert_eq(run(cmd, &out), 0);
  cr_assert(strstr(out, "Library soname: [libra.so.0]") != NULL, "%s", out);
  free(out);
  /* pkg-config reads the installed ra.pc */
  snprintf(cmd, sizeof cmd, "PKG_CONFIG_PATH=%s/lib/pkgconfig pkg-config --static --cflags --libs ra", root);
  cr_assert_eq(run(cmd, &out), 0, "%s", out);
  char want[2600];
  snprintf(want, sizeof want, "-I%s/include -L%s/lib -lra -lopenblas -lffi -ljansson", prefix, prefix);
  cr_assert(strstr(out, want) != NULL, "pkg-config says: %s", out);
  free(out);
  snprintf(cmd, sizeof cmd, mk, build_dir(), prefix, stage, "uninstall");
  rc = run(cmd, &out);
  cr_assert_eq(rc, 0, "make uninstall failed:\n%s", out);
  free(out);
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
    cr_assert(!exists(root, files[i]), "make uninstall left %s", files[i]);
  cr_assert(!exists(root, "/share/rac"), "make uninstall left share/rac");
  snprintf(cmd, sizeof cmd, "rm -rf %s", stage);
  cr_assert_eq(system(cmd), 0);
}

/* One test, so that the two never run make in the same folder at once. */
Test(embed, embed_check_then_install_and_uninstall, .timeout = 600) {
  embed_check();
  install_and_uninstall();
}

Test(embed, only_ra_symbols_exported) {
  char cmd[1200], *out;
  snprintf(cmd, sizeof cmd, "nm -D --defined-only %s/libra.so | awk '{print $3}'", build_dir());
  cr_assert_eq(run(cmd, &out), 0, "%s", out);
  int n = 0;
  for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
    cr_assert(strncmp(line, "ra_", 3) == 0, "libra.so exports '%s'", line);
    n++;
  }
  cr_assert_geq(n, 20, "only %d symbols exported", n);
  free(out);
}

/* rac.c - the command line, over ra.h only: argument parsing and printing.
 *
 *   rac run FILE [--train NAME] [--set key=value]... [--repulsion none|svgd|spos|penalty]
 *                [--threads N] [--seed N] [--jit] [--no-fuse] [--no-chains]
 *                [--resume CKPT] [--allow-extern]
 *                [--log FILE.jsonl] [--quiet]
 *   rac check FILE | ir FILE [--grad] [--opt] [--plan] | params FILE
 *   rac eval FILE --ckpt CKPT [--split test] [--ablate-heads [--out FILE.svg]] (cli/ablate.c)
 *   rac predict FILE --ckpt CKPT [--input TEXT | --file F]
 *   rac bench FILE [--steps N] [--profile]
 *   mpirun -np N rac run|eval|bench FILE ...  (data parallel: docs/distributed.md)
 *   rac sweep FILE --out DIR [axes]  (cli/sweep.c) | plot LOG... --out FILE.svg  (cli/plot.c)
 *
 * Exit status: 0 success, 1 an error in the user's files or data, 2 usage;
 * 130 / 143 when SIGINT / SIGTERM stopped training (after saving the
 * checkpoint of the steps taken; a second signal ends rac at once).
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#endif

#include "ablate.h"
#include "plot.h"
#include "ra.h"
#include "stdlib_dir.h"
#include "sweep.h"

static const char *usage_text =
    "usage: rac <command> FILE [options]\n"
    "\n"
    "commands:\n"
    "  run FILE      compile and train (the first train block, or --train NAME)\n"
    "  check FILE    parse and type-check; diagnostics only (reads no data)\n"
    "  ir FILE       print the IR [--grad] [--opt] [--plan] [--model NAME]\n"
    "  params FILE   parameter paths, shapes and counts [--model NAME]\n"
    "  eval FILE     evaluate a checkpoint: --ckpt CKPT [--split train|valid|test]\n"
    "                [--ablate-heads [--out FILE.svg]]: the metric with heads removed\n"
    "  predict FILE  predict with a checkpoint: --ckpt CKPT (--input TEXT | --file F)\n"
    "                a language model continues each line: [--tokens N] (200)\n"
    "                [--temperature T] (0.8) [--top-k K] (all) [--greedy]\n"
    "  bench FILE    time training steps [--steps N]: steps/s, samples/s, GFLOP/s, memory\n"
    "                [--profile]: the step's time by node kind, the optimizer, the particles\n"
  "  sweep FILE    train every combination of the axes, then tables and plots:\n"
  "                --out DIR [--repulsion K1,K2,...] [--seeds A..B|A,B,...]\n"
  "                [--set KEY=V1,V2,...]... [--baseline VALUE] [--jobs N] [--threads T]\n"
  "  plot LOG...   plot run logs (loss, validation metrics, head diversity): --out FILE.svg\n"
    "\n"
    "options of run, eval, predict and bench:\n"
    "  --train NAME          the train block (its model's name, or model:data)\n"
    "  --set KEY=VALUE       override a train clause (epochs=2, lr=1e-3, batch=16, ...)\n"
    "  --repulsion KIND      none, svgd, spos or penalty for every attention layer\n"
    "  --threads N           worker threads (default: the train block's, else all cores up to 8)\n"
    "  --seed N              the run's seed (default: the train block's)\n"
    "  --resume CKPT         continue training from a checkpoint (weights, optimizer, step)\n"
    "  --allow-extern        allow extern functions to load native code\n"
    "  --log FILE.jsonl      write metrics as JSON Lines\n"
    "  --quiet               print only the final result\n"
    "  --jit                 use the LLVM JIT (when built with it)\n"
    "  --no-fuse, --no-chains  compile without fused nodes, run without chains\n"
    "                        (the same bits, slower: for comparing)\n"
    "  --mpi-bucket BYTES    under mpirun: gradient buckets reduced during the backward\n"
    "                        pass (default 262144; 0: one reduction after it)\n"
    "\n"
    "mpirun -np N rac run FILE trains data-parallel on N processes (run, eval and bench;\n"
    "the batch is shared among them; rank 0 prints, logs and saves)\n"
    "\n"
    "rac --help | --version\n";

/* The signal that asked training to stop (0: none); the library polls it
 * between steps (ra_set_stop_flag). */
static volatile sig_atomic_t stop_signal = 0;

static void on_stop_signal(int sig) {
  if (stop_signal) { /* the second one: no more waiting */
    signal(sig, SIG_DFL);
    raise(sig);
    return;
  }
  stop_signal = sig;
}

/* SIGINT and SIGTERM stop training after the current step; a signal that
 * was ignored when rac started (a background job of a script) stays so. */
static void catch_stop_signals(void) {
  int sigs[] = {SIGINT, SIGTERM};
  for (int i = 0; i < 2; i++) {
    struct sigaction old, sa;
    if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler == SIG_IGN) continue;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(sigs[i], &sa, NULL);
  }
}

/* Data files are read through a memory mapping (docs/data.md): one that is
 * truncated while in use raises SIGBUS at the next read of a page it lost.
 * Say so, then end as the signal would. */
static void on_bus_error(int sig) {
  static const char msg[] =
      "rac: bus error (SIGBUS): a data file read through a memory mapping was truncated, or its "
      "storage failed, while in use; steps after the last saved checkpoint are lost\n";
  ssize_t w = write(2, msg, sizeof msg - 1);
  (void)w;
  signal(sig, SIG_DFL);
  raise(sig);
}

static void catch_bus_error(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_bus_error;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESETHAND;
  sigaction(SIGBUS, &sa, NULL);
}

/* A word as the shell reads it back: as is when it is plain, else in
 * single quotes. */
static void put_shell_word(const char *w, FILE *f) {
  bool plain = *w != 0;
  for (const char *p = w; *p && plain; p++)
    plain = strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-+=/.,:@%", *p) != NULL;
  if (plain) { fputs(w, f); return; }
  fputc('\'', f);
  for (const char *p = w; *p; p++) {
    if (*p == '\'') fputs("'\\''", f);
    else fputc(*p, f);
  }
  fputc('\'', f);
}

/* After a stop: the command that continues the run (this one, with
 * --resume at the checkpoint just written). */
static void print_resume_line(int argc, char **argv, const char *ckpt) {
  fputs("rac: to resume: ", stderr);
  put_shell_word(argv[0], stderr);
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--resume") && i + 1 < argc) { i++; continue; }
    fputc(' ', stderr);
    put_shell_word(argv[i], stderr);
  }
  fputs(" --resume ", stderr);
  put_shell_word(ckpt, stderr);
  fputc('\n', stderr);
}

static int usage(const char *fmt, const char *arg) {
  fprintf(stderr, "rac: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\nTry 'rac --help'.\n");
  return 2;
}

typedef struct Args {
  const char *cmd, *file, *train, *model, *ckpt, *split, *input, *infile, *out;
  long long steps;
  int grad, opt, plan, ablate, profile;
} Args;

/* Lines from the library: a line led by '\r' redraws the progress bar;
 * any other line first clears a bar that is showing. */
static void log_line(void *ud, const char *line) {
  int *bar = ud;
  if (line[0] == '\r') {
    fputs(line, stderr);
    fflush(stderr);
    *bar = 1;
    return;
  }
  if (*bar) fputs("\r\x1b[K", stderr);
  *bar = 0;
  fputs(line, stderr);
  fputc('\n', stderr);
}

static int fail(ra_ctx *ctx) {
  /* a data-parallel run's errors are agreed by its ranks: rank 0 prints */
  if (ra_mpi_rank(ctx, NULL) > 0) return ra_errcode(ctx) == RA_EUSAGE ? 2 : 1;
  const char *e = ra_error(ctx);
  size_t n = strlen(e);
  fputs(e, stderr);
  if (n && e[n - 1] != '\n') fputc('\n', stderr);
  int code = ra_errcode(ctx);
  return code == RA_EUSAGE ? 2 : 1;
}

/* The options that take a value (the next argument). */
static const char *const value_opts[] = {"--train",   "--model",   "--ckpt",      "--split",
                                         "--input",   "--file",    "--steps",     "--threads",
                                         "--seed",    "--repulsion", "--resume",  "--log",
                                         "--set",     "--tokens",  "--temperature", "--top-k",
                                         "--mpi-bucket", "--out"};

static int takes_value(const char *s) {
  for (size_t i = 0; i < sizeof value_opts / sizeof value_opts[0]; i++)
    if (!strcmp(s, value_opts[i])) return 1;
  return 0;
}

static int set_opt(ra_ctx *ctx, const char *k, const char *v) {
  if (ra_set_option(ctx, k, v) != 0) {
    fprintf(stderr, "rac: %s\n", ra_error(ctx));
    return 2;
  }
  return 0;
}

static int rac_main(int argc, char **argv);

/* Whether the run started MPI (ra_mpi_rank): a sanitizer build then skips
 * its leak check, since Open MPI's components, unloaded by MPI_Finalize,
 * leave allocations the check cannot attribute. */
static int started_mpi = 0;

/* OpenBLAS's exit handler joins its own server threads, and a server thread
 * whose buffer could not be mapped (under `ulimit -v`) retries for ever: rac
 * flushes its output and leaves without running exit handlers (the leak
 * check of a sanitizer build runs first). */
int main(int argc, char **argv) {
  catch_bus_error();
  int rc = rac_main(argc, argv);
  fflush(NULL);
#if defined(__SANITIZE_ADDRESS__)
  if (!started_mpi) __lsan_do_leak_check();
#endif
  _exit(rc);
}

/* --set KEY=VALUE: the option "set.KEY". */
static int set_kv(ra_ctx *ctx, const char *kv) {
  const char *eq = strchr(kv, '=');
  if (!eq || eq == kv) return usage("--set needs KEY=VALUE, got '%s'", kv);
  size_t klen = (size_t)(eq - kv) + 5;
  char *key = malloc(klen);
  if (!key) {
    fprintf(stderr, "rac: out of memory\n");
    return 1;
  }
  snprintf(key, klen, "set.%.*s", (int)(eq - kv), kv);
  int rc = set_opt(ctx, key, eq + 1);
  free(key);
  return rc;
}

/* The arguments after the command: FILE and options, into a and ctx. */
static int parse_args(ra_ctx *ctx, int argc, char **argv, Args *a) {
  for (int i = 2; i < argc; i++) {
    const char *s = argv[i];
    /* An option that takes a value takes the next argument, whatever it is;
     * with none left it is a usage error. */
    const char *next = NULL;
    if (takes_value(s)) {
      if (i + 1 >= argc) return usage("option %s needs a value", s);
      next = argv[++i];
    }
    int rc = 0;
    if (s[0] != '-') {
      if (a->file) return usage("unexpected argument '%s'", s);
      a->file = s;
    } else if (!strcmp(s, "--train")) a->train = next;
    else if (!strcmp(s, "--model")) a->model = next;
    else if (!strcmp(s, "--ckpt")) a->ckpt = next;
    else if (!strcmp(s, "--split")) a->split = next;
    else if (!strcmp(s, "--input")) a->input = next;
    else if (!strcmp(s, "--file")) a->infile = next;
    else if (!strcmp(s, "--grad")) a->grad = 1;
    else if (!strcmp(s, "--opt")) a->opt = 1;
    else if (!strcmp(s, "--plan")) a->plan = 1;
    else if (!strcmp(s, "--ablate-heads")) a->ablate = 1;
    else if (!strcmp(s, "--out")) a->out = next;
    else if (!strcmp(s, "--quiet")) rc = set_opt(ctx, "quiet", "1");
    else if (!strcmp(s, "--allow-extern")) rc = set_opt(ctx, "allow_extern", "1");
    else if (!strcmp(s, "--jit")) rc = set_opt(ctx, "jit", "1");
    else if (!strcmp(s, "--no-fuse")) rc = set_opt(ctx, "fuse", "0");
    else if (!strcmp(s, "--no-chains")) rc = set_opt(ctx, "chains", "0");
    else if (!strcmp(s, "--steps")) {
      char *end;
      errno = 0;
      a->steps = strtoll(next, &end, 10);
      if (errno || *end || a->steps < 1) rc = usage("--steps needs a positive integer, got '%s'", next);
    } else if (!strcmp(s, "--threads")) rc = set_opt(ctx, "threads", next);
    else if (!strcmp(s, "--seed")) rc = set_opt(ctx, "seed", next);
    else if (!strcmp(s, "--repulsion")) rc = set_opt(ctx, "repulsion", next);
    else if (!strcmp(s, "--resume")) rc = set_opt(ctx, "resume", next);
    else if (!strcmp(s, "--log")) rc = set_opt(ctx, "log", next);
    else if (!strcmp(s, "--set")) rc = set_kv(ctx, next);
    else if (!strcmp(s, "--tokens")) rc = set_opt(ctx, "predict.tokens", next);
    else if (!strcmp(s, "--temperature")) rc = set_opt(ctx, "predict.temperature", next);
    else if (!strcmp(s, "--top-k")) rc = set_opt(ctx, "predict.top_k", next);
    else if (!strcmp(s, "--greedy")) rc = set_opt(ctx, "predict.greedy", "1");
    else if (!strcmp(s, "--mpi-bucket")) rc = set_opt(ctx, "mpi.bucket_bytes", next);
    else if (!strcmp(s, "--profile")) {
      a->profile = 1;
      rc = set_opt(ctx, "bench.profile", "1");
    }
    else rc = usage("unknown option '%s'", s);
    if (rc) return rc;
  }
  if (!a->file) return usage("'%s' needs a FILE", a->cmd);
  if (a->ablate && strcmp(a->cmd, "eval"))
    return usage("--ablate-heads is an option of eval, not of '%s'", a->cmd);
  if (a->out && !a->ablate) return usage("--out goes with eval --ablate-heads%s", "");
  if (a->profile && strcmp(a->cmd, "bench"))
    return usage("--profile is an option of bench, not of '%s'", a->cmd);
  return 0;
}

/* Runs a loaded spec's command; the exit status. */
static int run_command(ra_ctx *ctx, const Args *a, int argc, char **argv) {
  int rc = 0;
  const char *text = NULL;
  if (!strcmp(a->cmd, "check")) {
    /* loading checked everything */
  } else if (!strcmp(a->cmd, "ir") || !strcmp(a->cmd, "params")) {
    const char *what = !strcmp(a->cmd, "params") ? "params"
                       : a->plan                  ? "plan"
                       : a->grad && a->opt        ? "grad+opt"
                       : a->grad                  ? "grad"
                       : a->opt                   ? "opt"
                                                  : "ir";
    if (ra_dump(ctx, a->model, what, &text) != 0) rc = fail(ctx);
    else fputs(text, stdout);
  } else if (!strcmp(a->cmd, "run")) {
    catch_stop_signals();
    ra_set_stop_flag(ctx, &stop_signal);
    if (ra_train(ctx, a->train, NULL, NULL) != 0) {
      rc = fail(ctx);
      if (ra_errcode(ctx) == RA_ESTOPPED && stop_signal) {
        if (ra_last_save(ctx) && ra_mpi_rank(ctx, NULL) <= 0)
          print_resume_line(argc, argv, ra_last_save(ctx));
        rc = 128 + stop_signal;
      }
    }
  } else if (!strcmp(a->cmd, "eval")) {
    if (!a->ckpt) rc = usage("eval needs --ckpt CKPT%s", "");
    else if (a->ablate) rc = cli_ablate(ctx, a->train, a->ckpt, a->split, a->out);
    else if (ra_eval(ctx, a->train, a->ckpt, a->split, &text) != 0) rc = fail(ctx);
    else if (ra_mpi_rank(ctx, NULL) <= 0) printf("%s\n", text);
  } else if (!strcmp(a->cmd, "predict")) {
    if (!a->ckpt) rc = usage("predict needs --ckpt CKPT%s", "");
    else if (!a->input && !a->infile) rc = usage("predict needs --input TEXT or --file F%s", "");
    else if (ra_predict(ctx, a->train, a->ckpt, a->input, a->infile, &text) != 0) rc = fail(ctx);
    else fputs(text, stdout);
  } else if (!strcmp(a->cmd, "bench")) {
    if (ra_bench(ctx, a->train, a->steps ? a->steps : 20, &text) != 0) rc = fail(ctx);
    else if (ra_mpi_rank(ctx, NULL) <= 0) fputs(text, stdout);
  }
  return rc;
}

static int rac_main(int argc, char **argv) {
  if (argc < 2) {
    fputs(usage_text, stderr);
    return 2;
  }
  if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
    fputs(usage_text, stdout);
    return 0;
  }
  if (!strcmp(argv[1], "--version")) {
    const char *kernels = "";
    const char *gemm = ra_gemm_backend(&kernels);
    const char *mpi = ra_mpi_library();
    printf("rac %s (library %s)\ngemm: %s (%s)\nmpi: %s\n", RA_VERSION_STRING, ra_version_string(),
           gemm, kernels, mpi ? mpi : "none (this build has no MPI)");
    return 0;
  }
  if (ra_version() / 100 != RA_VERSION_NUM / 100) {
    fprintf(stderr, "rac: library version %s does not match rac %s\n", ra_version_string(), RA_VERSION_STRING);
    return 1;
  }
  if (!strcmp(argv[1], "sweep")) return rac_sweep_main(argc - 2, argv + 2);
  if (!strcmp(argv[1], "plot")) return rac_plot_main(argc - 2, argv + 2);
  Args a = {0};
  a.cmd = argv[1];
  const char *cmds[] = {"run", "check", "ir", "params", "eval", "predict", "bench"};
  int known = 0;
  for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) known |= !strcmp(a.cmd, cmds[i]);
  if (!known) return usage("unknown command '%s'", a.cmd);

  /* past a file size limit (ulimit -f) a write fails with EFBIG and is
   * reported with the file's name, instead of the signal killing rac */
  signal(SIGXFSZ, SIG_IGN);
  ra_ctx *ctx = ra_new();
  if (!ctx) {
    fprintf(stderr, "rac: out of memory\n");
    return 1;
  }
  ra_set_option(ctx, "color", isatty(2) ? "1" : "0");
  cli_find_stdlib(ctx);
  int bar = 0; /* a progress bar is showing */
  int rc = parse_args(ctx, argc, argv, &a);
  if (rc == 0 && ra_load_file(ctx, a.file) != 0) {
    /* a --set that names neither a setting nor a const of the spec */
    if (ra_errcode(ctx) == RA_EUSAGE) fputs("rac: ", stderr);
    rc = fail(ctx);
  }
  if (rc == 0) {
    const char *warn = ra_diagnostics(ctx);
    if (warn && *warn) fputs(warn, stderr);
    ra_set_log(ctx, log_line, &bar);
    if (isatty(2)) ra_set_option(ctx, "progress", "1");
    rc = run_command(ctx, &a, argc, argv);
  }
  started_mpi = ra_mpi_rank(ctx, NULL) >= 0;
  ra_free(ctx);
  return rc;
}

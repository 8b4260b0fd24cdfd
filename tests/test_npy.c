/* test_npy.c - the npy loader (docs/data.md): the arrays of
 * tests/data/npy (written by tests/gen_npy.py) against the same data in
 * CSV, each dtype and format version, and every malformed file. */
#include <stdint.h>

#include "testutil.h"
#include "../runtime/data/data.h"

static char err[1024];

static DataDecl npy_decl(const char *x, const char *y) {
  DataDecl d;
  memset(&d, 0, sizeof d);
  d.name = "t";
  d.loader = LOADER_NPY;
  d.path = x;
  d.split[0] = 0.8;
  d.split[1] = 0.1;
  d.split[2] = 0.1;
  d.seed = 7;
  d.fields[0].role = FIELD_FEATURES;
  d.fields[0].path = x;
  d.nfields = 1;
  if (y) {
    d.fields[1].role = FIELD_LABEL;
    d.fields[1].path = y;
    d.fields[1].shape.dtype = IR_I32;
    d.nfields = 2;
  }
  return d;
}

static DataSet *load_ok(const DataDecl *d) {
  err[0] = 0;
  DataSet *ds = data_load(ra_alloc_default(), d, err, sizeof err);
  cr_assert(ds != NULL, "load failed: %s", err);
  return ds;
}

/* The regression data as CSV (label f32[1] as sema types it) and as npy
 * (x float32, y float64 of shape (n, 1)): the same floats, bit for bit,
 * and the same splits. */
Test(npy, same_values_as_csv) {
  DataDecl c;
  memset(&c, 0, sizeof c);
  c.name = "t";
  c.loader = LOADER_CSV;
  c.path = "tests/data/regression.csv";
  c.split[0] = 0.8;
  c.split[1] = 0.1;
  c.split[2] = 0.1;
  c.seed = 7;
  c.fields[0].role = FIELD_LABEL;
  c.fields[0].column = 0;
  c.fields[0].typed = true;
  c.fields[0].shape.dtype = IR_F32;
  c.fields[0].shape.rank = 1;
  c.fields[0].shape.dim[0] = 1;
  c.fields[1].role = FIELD_FEATURES;
  c.fields[1].col_lo = 1;
  c.fields[1].col_hi = 4;
  c.nfields = 2;
  DataSet *a = load_ok(&c);
  DataDecl n = npy_decl("tests/data/npy/reg_x.npy", "tests/data/npy/reg_y.npy");
  n.fields[1].typed = true;
  n.fields[1].shape = c.fields[0].shape;
  DataSet *b = load_ok(&n);
  cr_assert_eq(a->n, 200);
  cr_assert_eq(b->n, a->n);
  cr_assert_eq(b->in_type[0].dtype, IR_F32);
  cr_assert_eq(b->in_type[0].rank, 1);
  cr_assert_eq(b->in_type[0].dim[0], 4);
  cr_assert_eq(b->tgt_type.dtype, IR_F32);
  cr_assert(memcmp(a->in_data[0], b->in_data[0], 200 * 4 * 4) == 0);
  cr_assert(memcmp(a->tgt_data, b->tgt_data, 200 * 4) == 0);
  for (int s = 0; s < 3; s++) {
    cr_assert_eq(a->split_n[s], b->split_n[s]);
    cr_assert(memcmp(a->split_idx[s], b->split_idx[s], sizeof(uint32_t) * (size_t)a->split_n[s]) == 0);
  }
  data_free(a);
  data_free(b);
}

/* int64 ids in format 2.0 and int32 class labels in 3.0: the values of the
 * CSV's first 40 lines. */
Test(npy, int64_ids_and_versions) {
  DataDecl d = npy_decl("tests/data/npy/ids_x.npy", "tests/data/npy/ids_y.npy");
  DataSet *ds = load_ok(&d);
  cr_assert_eq(ds->n, 40);
  cr_assert_eq(ds->in_type[0].dtype, IR_I32);
  cr_assert_eq(ds->in_type[0].dim[0], 12);
  cr_assert_eq(ds->tgt_type.rank, 0);
  cr_assert_eq(ds->classes, 2);
  char *csv = tu_read_file("tests/data/token_ids.csv", NULL);
  cr_assert(csv);
  const char *s = csv;
  const int32_t *x = ds->in_data[0];
  for (int i = 0; i < 40; i++) {
    long v[13];
    for (int j = 0; j < 13; j++) {
      char *end;
      v[j] = strtol(s, &end, 10);
      s = end + 1;
    }
    cr_assert_eq(ds->tgt_data[i], v[0], "label %d", i);
    for (int j = 0; j < 12; j++) cr_assert_eq(x[i * 12 + j], v[j + 1], "id %d,%d", i, j);
  }
  free(csv);
  data_free(ds);
}

/* Every malformed file, as the input array (or the label beside a good
 * input): one message each, naming the file (tests/golden/npy_errors.txt). */
Test(npy, malformed_files) {
  static const char *const inputs[] = {
      "bad_magic", "bad_version", "truncated_preamble", "truncated_header", "truncated_data",
      "extra_data", "not_dict", "missing_shape", "negative_shape", "scalar", "fortran",
      "big_endian", "uint8", "f64_range", "missing_file"};
  static const char *const labels[] = {"short_label", "i64_range", "f64_range"};
  char all[8192];
  size_t n = 0;
  char x[128], y[128];
  for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
    snprintf(x, sizeof x, "tests/data/npy/%s.npy", inputs[i]);
    DataDecl d = npy_decl(x, NULL);
    d.split[0] = 1;
    d.split[1] = d.split[2] = 0;
    DataSet *ds = data_load(ra_alloc_default(), &d, err, sizeof err);
    cr_assert(ds == NULL, "%s loaded", x);
    n += (size_t)snprintf(all + n, sizeof all - n, "%s\n", err);
  }
  for (size_t i = 0; i < sizeof labels / sizeof labels[0]; i++) {
    snprintf(y, sizeof y, "tests/data/npy/%s.npy", labels[i]);
    DataDecl d = npy_decl("tests/data/npy/good_x.npy", y);
    d.split[0] = 1;
    d.split[1] = d.split[2] = 0;
    d.fields[1].typed = true;
    d.fields[1].shape.dtype = IR_I32; /* a class label */
    DataSet *ds = data_load(ra_alloc_default(), &d, err, sizeof err);
    cr_assert(ds == NULL, "%s loaded", y);
    n += (size_t)snprintf(all + n, sizeof all - n, "%s\n", err);
  }
  /* the input's shape against the type it feeds */
  DataDecl d = npy_decl("tests/data/npy/good_x.npy", NULL);
  d.split[0] = 1;
  d.fields[0].typed = true;
  d.fields[0].shape.dtype = IR_F32;
  d.fields[0].shape.rank = 1;
  d.fields[0].shape.dim[0] = 5;
  cr_assert(data_load(ra_alloc_default(), &d, err, sizeof err) == NULL);
  n += (size_t)snprintf(all + n, sizeof all - n, "%s\n", err);
  d.fields[0].shape.dtype = IR_I32;
  d.fields[0].shape.dim[0] = 4;
  cr_assert(data_load(ra_alloc_default(), &d, err, sizeof err) == NULL);
  n += (size_t)snprintf(all + n, sizeof all - n, "%s\n", err);
  tu_golden("tests/golden/npy_errors.txt", all);
}

/* A FIFO given as an array is refused without blocking. */
Test(npy, fifo_is_refused) {
  const char *p = tu_tmp("fifo.npy");
  unlink(p);
  cr_assert(mkfifo(p, 0600) == 0);
  DataDecl d = npy_decl(p, NULL);
  cr_assert(data_load(ra_alloc_default(), &d, err, sizeof err) == NULL);
  cr_assert(strstr(err, "FIFO"), "%s", err);
  unlink(p);
}

static const char *REG_MODEL =
    "model r {\n"
    "  input x : f32[4]\n"
    "  target y : f32[1]\n"
    "  h = linear(x, out: 1)\n"
    "  output yhat = h\n"
    "  loss mse(h, y)\n"
    "}\n"
    "train r on d {\n"
    "  optimizer adam { lr 3e-2 }\n"
    "  batch 16\n"
    "  epochs 3\n"
    "}\n";

/* The same data as CSV and as npy trains to the same losses, step by step. */
Test(npy, trains_as_the_csv_does) {
  char text[2048];
  const char *a = tu_tmp("csv.ra"), *b = tu_tmp("npy.ra");
  snprintf(text, sizeof text, "data d = csv(\"tests/data/regression.csv\") {\n"
                              "  label column 0\n  features columns 1..4\n}\n%s", REG_MODEL);
  cr_assert(tu_write_file(a, text) == 0);
  snprintf(text, sizeof text, "data d = npy(\"tests/data/npy/reg_x.npy\") {\n"
                              "  label npy(\"tests/data/npy/reg_y.npy\")\n}\n%s", REG_MODEL);
  cr_assert(tu_write_file(b, text) == 0);
  const char *la = tu_tmp("csv.jsonl"), *lb = tu_tmp("npy.jsonl");
  TuRun r = tu_sh(120, "$RAC check %s && $RAC run %s --quiet --set log=%s && "
                       "$RAC run %s --quiet --set log=%s && "
                       "grep '\"event\":\"step\"' %s > %s.s && grep '\"event\":\"step\"' %s > %s.s && "
                       "test $(wc -l < %s.s) -ge 30 && cmp %s.s %s.s",
                  b, a, la, b, lb, la, la, lb, lb, la, la, lb);
  cr_assert_eq(r.status, 0, "status %d\n%s%s", r.status, r.out, r.err);
  tu_run_free(&r);
  /* and the ids as int64 (2.0) with class labels (3.0) train too */
  const char *c = tu_tmp("ids.ra");
  cr_assert(tu_write_file(c, "data d = npy(\"tests/data/npy/ids_x.npy\") {\n"
                             "  label npy(\"tests/data/npy/ids_y.npy\")\n"
                             "  split train 0.5 valid 0.25 test 0.25\n}\n"
                             "model c {\n  input t : int[12]\n  target label : class(2)\n"
                             "  logits = linear(mean(embed(t, vocab: 20, dim: 8)), out: 2)\n"
                             "  loss cross_entropy(logits, label)\n}\n"
                             "train c on d {\n  batch 4\n  epochs 2\n}\n") == 0);
  r = tu_sh(120, "$RAC run %s 2>&1", c);
  cr_assert_eq(r.status, 0, "status %d\n%s", r.status, r.out);
  cr_assert(strstr(r.out, "test loss"), "%s", r.out);
  tu_run_free(&r);
}

/* input npy("x2.npy"): a second input array, as many examples; the same
 * floats as the CSV's columns, and the label after both. */
Test(npy, two_input_arrays) {
  DataDecl d = npy_decl("tests/data/npy/reg_xa.npy", NULL);
  d.fields[1].role = FIELD_FEATURES;
  d.fields[1].path = "tests/data/npy/reg_xb.npy";
  d.fields[2].role = FIELD_LABEL;
  d.fields[2].path = "tests/data/npy/reg_y.npy";
  d.fields[2].typed = true;
  d.fields[2].shape.dtype = IR_F32;
  d.fields[2].shape.rank = 1;
  d.fields[2].shape.dim[0] = 1;
  d.nfields = 3;
  DataSet *two = load_ok(&d);
  DataDecl one = npy_decl("tests/data/npy/reg_x.npy", NULL);
  DataSet *ds = load_ok(&one);
  cr_assert_eq(two->nin, 2);
  cr_assert_eq(two->n, ds->n);
  cr_assert_eq(two->in_type[0].dim[0], 2);
  cr_assert_eq(two->in_type[1].dim[0], 2);
  const float *a = two->in_data[0], *b = two->in_data[1], *x = ds->in_data[0];
  for (int64_t i = 0; i < ds->n; i++) {
    cr_assert(a[2 * i] == x[4 * i] && a[2 * i + 1] == x[4 * i + 1], "example %lld", (long long)i);
    cr_assert(b[2 * i] == x[4 * i + 2] && b[2 * i + 1] == x[4 * i + 3], "example %lld", (long long)i);
  }
  cr_assert_not_null(two->tgt_data);
  for (int s = 0; s < 3; s++) cr_assert_eq(two->split_n[s], ds->split_n[s]);
  data_free(ds);
  data_free(two);
  /* a second array with another number of examples names both */
  d.fields[1].path = "tests/data/npy/good_x.npy";
  err[0] = 0;
  cr_assert_null(data_load(ra_alloc_default(), &d, err, sizeof err));
  cr_assert(strstr(err, "tests/data/npy/good_x.npy: the input 2 array has 3 examples (shape (3, 4)), but the first input array has"),
            "%s", err);
}

/* A spec with two npy inputs trains (rac on the built tree). */
Test(npy, a_model_of_two_input_arrays_trains) {
  const char *spec = tu_tmp("two.ra");
  char text[8192], cwd[1024];
  cr_assert(getcwd(cwd, sizeof cwd));
  snprintf(text, sizeof text,
           "data d = npy(\"%s/tests/data/npy/reg_xa.npy\") {\n"
           "  input npy(\"%s/tests/data/npy/reg_xb.npy\")\n"
           "  label npy(\"%s/tests/data/npy/reg_y.npy\")\n"
           "}\n"
           "model r {\n  input a : f32[2]\n  input b : f32[2]\n  target y : f32[1]\n"
           "  h = linear(a, out: 1) + linear(b, out: 1)\n  output yhat = h\n  loss mse(h, y)\n}\n"
           "train r on d {\n  optimizer adam { lr 3e-2 }\n  batch 16\n  epochs 10\n}\n",
           cwd, cwd, cwd);
  cr_assert(tu_write_file(spec, text) == 0);
  TuRun r = tu_sh(120, "$RAC run %s --quiet 2>&1", spec);
  cr_assert_eq(r.status, 0, "run: %d\n%s", r.status, r.out);
  double loss = -1;
  const char *p = strstr(r.out, "test loss ");
  cr_assert(p, "%s", r.out);
  loss = atof(p + 10);
  cr_assert(loss >= 0 && loss < 0.01, "test loss %g (y is linear in the inputs)\n%s", loss, r.out);
  tu_run_free(&r);
  /* a model with more inputs than arrays is an error at the train block */
  snprintf(text, sizeof text,
           "data d = npy(\"%s/tests/data/npy/reg_xa.npy\") {\n  label npy(\"%s/tests/data/npy/reg_y.npy\")\n}\n"
           "model r {\n  input a : f32[2]\n  input b : f32[2]\n  target y : f32[1]\n"
           "  h = linear(a, out: 1) + linear(b, out: 1)\n  loss mse(h, y)\n}\n"
           "train r on d {\n  batch 16\n  epochs 1\n}\n",
           cwd, cwd);
  cr_assert(tu_write_file(spec, text) == 0);
  r = tu_sh(60, "$RAC check %s", spec);
  cr_assert_eq(r.status, 1, "%s", r.err);
  cr_assert(strstr(r.err, "data 'd' gives 1 input but model 'r' takes 2"), "%s", r.err);
  cr_assert(strstr(r.err, "each further input is a clause input npy(\"x2.npy\")"), "%s", r.err);
  tu_run_free(&r);
}

// The galnn program: help, version, and clear errors (exit status 1,
// "galnn: error: ..." on stderr) for unknown commands and bad flag values.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "testutil.h"

// Run bin/galnn with args; capture stdout+stderr into out; return exit status.
static int run(const char *args, char *out, size_t len) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "./bin/galnn %s 2>&1", args);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, len - 1, p);
    out[n] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_help_version(void **s) {
    (void)s;
    char out[4096];
    assert_int_equal(run("version", out, sizeof out), 0);
    assert_non_null(strstr(out, "galnn " GN_VERSION));
    assert_int_equal(run("help", out, sizeof out), 0);
    assert_non_null(strstr(out, "demo"));
    assert_int_equal(run("help demo", out, sizeof out), 0);
    assert_non_null(strstr(out, "usage: galnn demo"));
    assert_int_equal(run("demo --help", out, sizeof out), 0);
    assert_non_null(strstr(out, "--threads"));
}

static void test_errors(void **s) {
    (void)s;
    char out[4096];
    assert_int_equal(run("", out, sizeof out), 1);
    assert_non_null(strstr(out, "usage"));
    assert_int_equal(run("frobnicate", out, sizeof out), 1);
    assert_non_null(strstr(out, "galnn: error: unknown command 'frobnicate'"));
    assert_int_equal(run("help frobnicate", out, sizeof out), 1);
    assert_int_equal(run("demo --threads many", out, sizeof out), 1);
    assert_non_null(strstr(out, "galnn: error: --threads: 'many'"));
    assert_int_equal(run("demo --epochs 0", out, sizeof out), 1);
    assert_int_equal(run("demo --seed", out, sizeof out), 1);
    assert_non_null(strstr(out, "--seed needs a value"));
    assert_int_equal(run("demo --bogus 1", out, sizeof out), 1);
    assert_non_null(strstr(out, "unknown option '--bogus'"));
}

static void test_mi_knn(void **s) {
    (void)s;
    char out[4096];
    FILE *f = fopen("/tmp/galnn_cli_mi.csv", "w");
    assert_non_null(f);
    fprintf(f, "id,a,b,c\n");
    for (int i = 0; i < 400; i++) fprintf(f, "r%d,%d,%d,%s\n", i, i % 17, (i % 17) * 2 + i % 3, i == 5 ? "-9999" : "1");
    fclose(f);
    assert_int_equal(run("mi --in /tmp/galnn_cli_mi.csv --x a --y b --json", out, sizeof out), 0);
    assert_non_null(strstr(out, "\"mi\": "));
    assert_true(atof(strstr(out, "\"mi\": ") + 6) > 1.0); // b is nearly a function of a
    assert_int_equal(run("mi --in /tmp/galnn_cli_mi.csv --x a --y c --estimator gauss", out, sizeof out), 1);
    assert_non_null(strstr(out, "singular")); // c is constant once its null is dropped
    assert_int_equal(run("mi --in /tmp/galnn_cli_mi.csv --x a --y nope", out, sizeof out), 1);
    assert_non_null(strstr(out, "no column 'nope'"));
    assert_int_equal(run("mi --in /tmp/galnn_cli_mi.csv --x a --y b --estimator ksg9", out, sizeof out), 1);
    assert_int_equal(run("knn --ref /tmp/galnn_cli_mi.csv --cols a,b --k 3 --out /tmp/galnn_cli_nn.csv", out, sizeof out), 0);
    assert_non_null(strstr(out, "3 neighbours of 400 queries"));
    assert_int_equal(run("knn --ref /tmp/galnn_cli_mi.csv --cols a --k 400 --out /tmp/galnn_cli_nn.csv", out, sizeof out), 1);
    assert_non_null(strstr(out, "k = 400"));
    remove("/tmp/galnn_cli_mi.csv"), remove("/tmp/galnn_cli_nn.csv");
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_help_version), cmocka_unit_test(test_errors),
                                       cmocka_unit_test(test_mi_knn)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}

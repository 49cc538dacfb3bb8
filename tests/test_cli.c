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

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_help_version), cmocka_unit_test(test_errors)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}

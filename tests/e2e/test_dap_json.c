/* The JSON parser the DAP client relies on: what lldb-vscode sends parses
 * to the values a test asserts on, and anything that is not JSON is
 * refused rather than half-read. No KVM needed. */
#include "json.h"
#include "testmain.h"

#include <CUnit/CUnit.h>
#include <stdlib.h>
#include <string.h>

static struct json *parse(const char *s)
{
    return json_parse(s, strlen(s), NULL);
}

static void test_a_dap_message(void)
{
    static const char msg[] =
        "{\"body\": {\"stackFrames\": [{\"column\": 5, \"id\": 524288, \"line\": 52, "
        "\"name\": \"main\", \"source\": {\"name\": \"main.c\", \"path\": \"/src/main.c\"}}, "
        "{\"id\": 524289, \"line\": 25, \"name\": \"_start\"}], \"totalFrames\": 2}, "
        "\"command\": \"stackTrace\", \"request_seq\": 6, \"seq\": 0, \"success\": true, "
        "\"type\": \"response\", \"message\": null}";
    struct json *m = parse(msg);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_STRING_EQUAL(json_str(m, "command"), "stackTrace");
    CU_ASSERT_STRING_EQUAL(json_str(m, "body.stackFrames.0.name"), "main");
    CU_ASSERT_STRING_EQUAL(json_str(m, "body.stackFrames.0.source.path"), "/src/main.c");
    CU_ASSERT_STRING_EQUAL(json_str(m, "body.stackFrames.1.name"), "_start");
    double v = 0;
    CU_ASSERT(json_num(m, "body.stackFrames.0.line", &v) && v == 52);
    CU_ASSERT(json_num(m, "body.stackFrames.0.id", &v) && v == 524288);
    CU_ASSERT(json_true(m, "success"));
    CU_ASSERT_EQUAL(json_get(m, "body.stackFrames")->len, 2);
    CU_ASSERT_EQUAL(json_get(m, "message")->type, JSON_NULL);
    /* Missing steps, and steps of the wrong kind, find nothing. */
    CU_ASSERT_PTR_NULL(json_get(m, "body.stackFrames.2"));
    CU_ASSERT_PTR_NULL(json_get(m, "body.stackFrames.x"));
    CU_ASSERT_PTR_NULL(json_get(m, "body.stackFrames.-1"));
    CU_ASSERT_PTR_NULL(json_get(m, "command.0"));
    CU_ASSERT_PTR_NULL(json_str(m, "request_seq"));
    CU_ASSERT_FALSE(json_num(m, "command", &v));
    CU_ASSERT_FALSE(json_true(m, "seq"));
    CU_ASSERT_PTR_EQUAL(json_get(m, ""), m);
    json_free(m);
}

static void test_strings_and_escapes(void)
{
    struct json *m = parse("[\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\", \"\\u00e9\\u20ac\", "
                           "\"\\ud83d\\ude00\", \"nul\\u0000in\", \"\"]");
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_STRING_EQUAL(json_str(m, "0"), "a\"b\\c/d\b\f\n\r\t");
    CU_ASSERT_STRING_EQUAL(json_str(m, "1"), "\xc3\xa9\xe2\x82\xac");
    CU_ASSERT_STRING_EQUAL(json_str(m, "2"), "\xf0\x9f\x98\x80");
    const struct json *nul = json_get(m, "3");
    CU_ASSERT(nul->len == 6 && memcmp(nul->str, "nul\0in", 6) == 0);
    CU_ASSERT_STRING_EQUAL(json_str(m, "4"), "");
    json_free(m);

    char *q = json_quote("path \"with\" \\ and\n\x01");
    CU_ASSERT_STRING_EQUAL(q, "\"path \\\"with\\\" \\\\ and\\u000a\\u0001\"");
    struct json *back = parse(q);
    CU_ASSERT_STRING_EQUAL(json_str(back, ""), "path \"with\" \\ and\n\x01");
    json_free(back);
    free(q);
}

static void test_numbers_and_literals(void)
{
    struct json *m = parse(" { \"a\" : -0.5e2 , \"b\":0,\"c\":true,\"d\":false,\"e\":1E+3 } ");
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    double v;
    CU_ASSERT(json_num(m, "a", &v) && v == -50);
    CU_ASSERT(json_num(m, "b", &v) && v == 0);
    CU_ASSERT(json_true(m, "c"));
    CU_ASSERT_FALSE(json_true(m, "d"));
    CU_ASSERT_EQUAL(json_get(m, "d")->type, JSON_BOOL);
    CU_ASSERT(json_num(m, "e", &v) && v == 1000);
    json_free(m);
}

static void test_refuses_what_is_not_json(void)
{
    static const char *const bad[] = {
        "",          " ",           "{",            "}",          "[1,]",        "[,1]",
        "{\"a\"}",   "{\"a\":}",    "{a:1}",        "{'a':1}",    "[1 2]",       "01",
        "1.",        ".5",          "-",            "1e",         "+1",          "0x10",
        "NaN",       "Infinity",    "tru",          "nulls",      "\"abc",       "\"\\x\"",
        "\"\\u12\"", "\"\\u12g4\"", "\"\\ud800\"",  "\"\\udc00\"", "\"\\ud800\\u0041\"",
        "\"a\nb\"",  "{} {}",       "[1]x",         "1e999",      "\"\\",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *err = NULL;
        struct json *v = json_parse(bad[i], strlen(bad[i]), &err);
        if (v || !err)
            fprintf(stderr, "accepted: %s\n", bad[i]);
        CU_ASSERT_PTR_NULL(v);
        CU_ASSERT_PTR_NOT_NULL(err);
        json_free(v);
    }
    /* The length bounds the input: a valid prefix of a longer buffer. */
    struct json *v = json_parse("[1]garbage", 3, NULL);
    CU_ASSERT_PTR_NOT_NULL(v);
    json_free(v);
    CU_ASSERT_PTR_NULL(json_parse("\"abc\"", 4, NULL));
    CU_ASSERT_PTR_NULL(json_parse(NULL, 0, NULL));
}

static void test_depth_is_bounded(void)
{
    char deep[2 * (JSON_MAX_DEPTH + 2) + 1];
    size_t n = JSON_MAX_DEPTH + 2;
    memset(deep, '[', n);
    memset(deep + n, ']', n);
    deep[2 * n] = 0;
    CU_ASSERT_PTR_NULL(parse(deep));
    /* Just inside the limit is fine. */
    n = JSON_MAX_DEPTH + 1;
    memset(deep, '[', n);
    memset(deep + n, ']', n);
    deep[2 * n] = 0;
    struct json *v = parse(deep);
    CU_ASSERT_PTR_NOT_NULL(v);
    json_free(v);
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("dap json", NULL, NULL);
    CU_add_test(s, "a DAP response", test_a_dap_message);
    CU_add_test(s, "strings and escapes", test_strings_and_escapes);
    CU_add_test(s, "numbers and literals", test_numbers_and_literals);
    CU_add_test(s, "refuses what is not JSON", test_refuses_what_is_not_json);
    CU_add_test(s, "nesting depth is bounded", test_depth_is_bounded);
}

int main(void)
{
    return test_main("test_dap_json", register_suites, false);
}

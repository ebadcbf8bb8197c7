/*
 * Redis Cluster hash slots (src/proto/slot.c), no server: the CRC16 against
 * its bit-by-bit definition (every table entry, and random strings), the
 * standard check value, keys and hash tags against the slots a Redis 7.0
 * server gave for them (CLUSTER KEYSLOT), and a command's slot from its
 * keys: keyless, one slot, hash-tagged keys together, CROSSSLOT, keys that
 * cannot be known.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aredis/writer.h"
#include "proto/slot.h"
#include "proto/writer_internal.h"
#include "ts.h"

/* The definition: MSB first, polynomial 0x1021, initial value 0. */
static uint16_t crc16_bitwise(const char *p, size_t n) {
    uint16_t crc = 0;
    for (size_t i = 0; i < n; i++) {
        crc ^= (uint16_t)((unsigned char)p[i] << 8);
        for (int b = 0; b < 8; b++)
            crc = (uint16_t)((crc & 0x8000) ? (crc << 1) ^ 0x1021 : crc << 1);
    }
    return crc;
}

static void test_crc16_definition(void **state) {
    (void)state;
    /* CRC16/XMODEM's check value. */
    assert_int_equal(aredis__crc16("123456789", 9), 0x31c3);
    assert_int_equal(aredis__crc16("", 0), 0);
    /* A one-byte input's CRC is its table entry: all 256 checked. */
    for (int b = 0; b < 256; b++) {
        char c = (char)b;
        assert_int_equal(aredis__crc16(&c, 1), crc16_bitwise(&c, 1));
    }
    /* And longer ones. */
    srand(42);
    for (int i = 0; i < 2000; i++) {
        char buf[64];
        size_t n = (size_t)(rand() % (int)sizeof buf);
        for (size_t j = 0; j < n; j++)
            buf[j] = (char)(rand() & 0xff);
        assert_int_equal(aredis__crc16(buf, n), crc16_bitwise(buf, n));
    }
}

/* What `CLUSTER KEYSLOT` answered on Redis 7.0.15 for these keys. */
static const struct {
    const char *key;
    size_t len; /* 0: strlen */
    unsigned slot;
} k_server[] = {
    {"123456789", 0, 12739},
    {"foo", 0, 12182},
    {"bar", 0, 5061},
    {"hello", 0, 866},
    {"somekey", 0, 11058},
    {"foo{hash_tag}", 0, 2515},
    {"somethingelse{hash_tag}", 0, 2515},
    {"{user1000}.following", 0, 3443},
    {"{user1000}.followers", 0, 3443},
    {"{}", 0, 15257},     /* an empty tag is no tag */
    {"{}abc", 0, 5980},   /* ...the whole key counts */
    {"a{}b", 0, 13694},   /* ...even with a '{' later: only the first counts */
    {"{a", 0, 10276},     /* no closing brace */
    {"a}b{c}", 0, 7365},  /* a '}' before the '{' does not close it */
    {"{{a}}", 0, 10276},  /* the tag is "{a" */
    {"{a}{b}", 0, 15495}, /* the first tag */
    {"x{y}z{w}", 0, 12222},
    {"", 0, 0},
    {"user:{42}:name", 0, 8000},
    {"}{x}", 0, 16287},
    {"a\0b", 3, 8383}, /* binary */
};

static void test_key_slots_match_server(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof k_server / sizeof *k_server; i++) {
        size_t n = k_server[i].len ? k_server[i].len : strlen(k_server[i].key);
        if (aredis__key_slot(k_server[i].key, n) != k_server[i].slot)
            fail_msg("key %zu (\"%s\"): slot %u, the server said %u", i, k_server[i].key,
                     aredis__key_slot(k_server[i].key, n), k_server[i].slot);
    }
    /* A tag and its key hash alike. */
    assert_int_equal(aredis__key_slot("{tag}x", 6), aredis__key_slot("tag", 3));
}

/* The slot of a command given as a format. */
static int slot_of(int *first, const char *fmt, ...) {
    aredis__buf b = {0};
    va_list ap;
    va_start(ap, fmt);
    aredis_err e = aredis__write_vfmt(&b, fmt, ap);
    va_end(ap);
    assert_int_equal(e, AREDIS_ERR_OK);
    int s = aredis__cmd_slot(NULL, b.data + b.off, b.len - b.off, first);
    aredis__buf_free(&b);
    return s;
}

static void test_command_slots(void **state) {
    (void)state;
    int first;
    assert_int_equal(slot_of(&first, "GET foo"), 12182);
    assert_int_equal(first, 1);
    assert_int_equal(slot_of(NULL, "SET %s %s", "bar", "v"), 5061);
    /* Keyless commands. */
    assert_int_equal(slot_of(&first, "PING"), AREDIS__SLOT_NONE);
    assert_int_equal(first, -1);
    assert_int_equal(slot_of(NULL, "INFO server"), AREDIS__SLOT_NONE);
    /* Several keys: one slot with a tag, CROSSSLOT without. */
    assert_int_equal(slot_of(NULL, "MGET {u}a {u}b {u}c"), (int)aredis__key_slot("u", 1));
    assert_int_equal(slot_of(NULL, "MSET {u}a 1 {u}b 2"), (int)aredis__key_slot("u", 1));
    assert_int_equal(slot_of(NULL, "MGET foo bar"), AREDIS__SLOT_CROSS);
    assert_int_equal(slot_of(NULL, "DEL foo{x} bar{x} baz"), AREDIS__SLOT_CROSS);
    /* Keys after a key count; a key in second place. */
    assert_int_equal(slot_of(NULL, "EVAL %s 2 {k}1 {k}2 arg", "return 1"),
                     (int)aredis__key_slot("k", 1));
    assert_int_equal(slot_of(NULL, "EVAL %s 0", "return 1"), AREDIS__SLOT_NONE);
    assert_int_equal(slot_of(&first, "XREAD COUNT 1 STREAMS s1 0"), (int)aredis__key_slot("s1", 2));
    assert_int_equal(first, 4);
    /* Many keys (past the stack's room for arguments): still checked. */
    {
        const char *argv[401];
        size_t lens[401];
        char keys[400][16];
        argv[0] = "MSET";
        lens[0] = 4;
        for (int i = 0; i < 200; i++) {
            snprintf(keys[2 * i], sizeof keys[0], "{big}%d", i);
            snprintf(keys[2 * i + 1], sizeof keys[0], "v");
        }
        for (int i = 0; i < 400; i++) {
            argv[i + 1] = keys[i];
            lens[i + 1] = strlen(keys[i]);
        }
        aredis__buf b = {0};
        assert_int_equal(aredis__write_argv(&b, 401, argv, lens), AREDIS_ERR_OK);
        assert_int_equal(aredis__cmd_slot(NULL, b.data + b.off, b.len - b.off, NULL),
                         (int)aredis__key_slot("big", 3));
        aredis__buf_free(&b);
        snprintf(keys[398], sizeof keys[0], "elsewhere");
        lens[399] = strlen(keys[398]);
        assert_int_equal(aredis__write_argv(&b, 401, argv, lens), AREDIS_ERR_OK);
        assert_int_equal(aredis__cmd_slot(NULL, b.data + b.off, b.len - b.off, NULL),
                         AREDIS__SLOT_CROSS);
        aredis__buf_free(&b);
    }
    /* Keys that cannot be known, and no command at all. */
    assert_int_equal(slot_of(NULL, "SORT foo BY bar"), AREDIS__SLOT_UNKNOWN);
    assert_int_equal(slot_of(NULL, "NOSUCHCOMMAND foo"), AREDIS__SLOT_UNKNOWN);
    assert_int_equal(aredis__cmd_slot(NULL, "garbage", 7, NULL), AREDIS__SLOT_UNKNOWN);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc16_definition),
        cmocka_unit_test(test_key_slots_match_server),
        cmocka_unit_test(test_command_slots),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

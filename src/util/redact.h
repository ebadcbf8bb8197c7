/*
 * Redaction: render commands, URIs and server messages as text that is safe
 * to log or hand to an observer — every credential replaced by "<redacted>".
 *
 * The rule everywhere: when in doubt, redact. A secret is never copied into
 * the output, not even partly (no length, no first character), and input
 * that cannot be parsed is not echoed.
 *
 * Every function writes at most outlen bytes including a terminating NUL
 * (when outlen > 0), marks cut output with "...", and returns the length of
 * the text written (excluding the NUL).
 */
#ifndef AREDIS_UTIL_REDACT_H
#define AREDIS_UTIL_REDACT_H

#include <stddef.h>

#define AREDIS__REDACTED "<redacted>"

/*
 * Render one encoded RESP command ("*N\r\n$L\r\narg\r\n...") as readable
 * text: `SET key value`. Arguments are separated by spaces; an argument
 * that is empty or holds bytes other than printable ASCII is quoted, with
 * \" \\ \n \r \t and \xHH escapes; an argument longer than 64 bytes is cut
 * with "..."; bytes after the first command are ignored. Secrets, matched
 * case-insensitively:
 *   AUTH <every argument>
 *   HELLO ... AUTH <user> <pass>
 *   MIGRATE ... AUTH <pass> | AUTH2 <user> <pass>
 *   CONFIG SET ... <name> <value>: the value when the name holds "pass" or
 *     "auth" (requirepass, masterauth, tls-key-file-pass,
 *     tls-client-key-file-pass, ...), for every pair
 *   ACL SETUSER <name> <rule>...: rules starting with > < # ! (and a
 *     selector "(...)" holding one)
 *   SENTINEL SET|CONFIG ... <name> <value>: as CONFIG SET (auth-pass, ...)
 * Input that is not a well-formed command gives "<malformed command>" (or
 * what could be parsed followed by "...").
 */
size_t aredis__redact_command(const char *resp, size_t len, char *out, size_t outlen);

/*
 * Is this encoded command one whose arguments may hold a secret (AUTH,
 * HELLO, MIGRATE, CONFIG, ACL, SENTINEL)? Cheap: looks at the name only.
 */
int aredis__redact_is_sensitive(const char *resp, size_t len);

/*
 * Copy a URI with its password replaced: the part after the first ':' of
 * the userinfo (`scheme://user:<redacted>@host`), or the whole userinfo
 * when it has no ':' (some clients read `redis://secret@host` as a
 * password); and the value of every query parameter whose name holds "pass"
 * or "auth" (`?password=<redacted>`). Malformed input is handled the same
 * way, erring towards redacting more.
 */
size_t aredis__redact_uri(const char *uri, char *out, size_t outlen);

/*
 * A server's message about a secret-bearing command, made safe: every
 * quoted token ('...', "...", `...`, as Redis quotes the arguments it
 * echoes) becomes <redacted>; control bytes become spaces.
 */
size_t aredis__redact_message(const char *msg, size_t len, char *out, size_t outlen);

/*
 * Copy msg with every occurrence of each of the nsecrets strings (NULL or
 * empty ones are skipped) replaced by <redacted>; control bytes become
 * spaces.
 */
size_t aredis__redact_secrets(const char *msg, size_t len, const char *const *secrets,
                              size_t nsecrets, char *out, size_t outlen);

#endif

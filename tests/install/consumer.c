/* A program built against an installed aredis: proves the headers, the
 * library, aredis.pc and the CMake package work together. */
#include <aredis/aredis.h>
#include <stdio.h>

int main(void) {
    aredis_loop *loop = aredis_loop_new();
    aredis_client *c = aredis_client_new(loop, NULL);
    printf("aredis %s: %s\n", aredis_version(), c && loop ? "ok" : "failed");
    aredis_client_free(c);
    aredis_loop_free(loop);
    return c && loop ? 0 : 1;
}

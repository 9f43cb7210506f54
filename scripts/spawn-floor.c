/* The machine's floor for scripts/lateness.py: a C launcher that sleeps to each whole second
 * and posix_spawn()s N copies of the stamp job at once, for SECONDS seconds (default 5). No
 * database, no logs: what starting N processes together costs here. With "setsid" each job
 * starts in a session of its own (POSIX_SPAWN_SETSID), as Belfry starts its jobs: the kernel
 * then makes each a scheduler autogroup of its own.
 * Usage: spawn-floor N STAMP OUTFILE [SECONDS [setsid]] */
#define _GNU_SOURCE
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>
extern char **environ;
int main(int argc, char **argv) {
    int n = atoi(argv[1]);
    char *args[] = {argv[2], argv[3], NULL};
    int rounds = argc > 4 ? atoi(argv[4]) : 5;
    posix_spawnattr_t attributes;
    posix_spawnattr_init(&attributes);
    if (argc > 5 && strcmp(argv[5], "setsid") == 0) posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSID);
    for (int round = 0; round < rounds; round++) {
        struct timespec now; clock_gettime(CLOCK_REALTIME, &now);
        /* sleep to next second */
        struct timespec target = { now.tv_sec + 1, 0 };
        clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &target, NULL);
        char slot[64]; struct tm tm; time_t t = target.tv_sec; gmtime_r(&t, &tm);
        strftime(slot, sizeof slot, "BELFRY_TRIGGER_TIME=%Y-%m-%dT%H:%M:%SZ", &tm);
        putenv(slot);
        for (int i = 0; i < n; i++) { pid_t pid; posix_spawn(&pid, argv[2], NULL, &attributes, args, environ); }
        while (wait(NULL) > 0) {}
    }
    return 0;
}

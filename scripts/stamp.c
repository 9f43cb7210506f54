/* Appends "SLOT NOW" (epoch seconds, epoch nanoseconds) to the file named by argv[1]: the
 * instant this process started, next to the slot it was started for. The slot is
 * $BELFRY_TRIGGER_TIME (RFC 3339, UTC) under belfry; under cron, the minute it started in. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    if (argc < 2) return 2;
    long long slot = (now.tv_sec / 60) * 60;
    const char *text = getenv("BELFRY_TRIGGER_TIME");
    if (text && *text) {
        struct tm tm;
        memset(&tm, 0, sizeof tm);
        if (!strptime(text, "%Y-%m-%dT%H:%M:%S", &tm)) return 3;
        slot = (long long)timegm(&tm);
    }
    char line[64];
    int length = snprintf(line, sizeof line, "%lld %lld\n", slot, (long long)now.tv_sec * 1000000000LL + now.tv_nsec);
    int fd = open(argv[1], O_WRONLY | O_APPEND | O_CREAT, 0644);
    if (fd < 0) return 4;
    if (write(fd, line, length) != length) return 5;
    return close(fd);
}

// The launch path of an attempt: posix_spawn, which glibc implements with clone(CLONE_VM |
// CLONE_VFORK), costs about half of a fork-based launch in a large process. The flags and file
// actions that need _GNU_SOURCE are not visible to Swift, hence this file.
#define _GNU_SOURCE
#include "CBelfrySpawn.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <unistd.h>

int belfry_spawn(const char *path, char *const argv[], char *const envp[], const char *directory, int output,
                 pid_t *pid_out) {
    // Standard output and error are made from `output` by dup2; below 3 it would be overwritten.
    int own = -1;
    if (output < 3) {
        own = fcntl(output, F_DUPFD_CLOEXEC, 3);
        if (own < 0) return errno;
        output = own;
    }
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attributes;
    int error = posix_spawn_file_actions_init(&actions);
    if (error == 0) {
        error = posix_spawnattr_init(&attributes);
        if (error != 0) posix_spawn_file_actions_destroy(&actions);
    }
    if (error != 0) {
        if (own >= 0) close(own);
        return error;
    }
    // The daemon ignores SIGPIPE; a job must not inherit that, nor any blocked signal.
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    if (error == 0) error = posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    if (error == 0) error = posix_spawnattr_setsigmask(&attributes, &none);
    if (error == 0) error = posix_spawnattr_setsigdefault(&attributes, &all);
    if (error == 0 && directory != NULL) error = posix_spawn_file_actions_addchdir_np(&actions, directory);
    if (error == 0) error = posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    if (error == 0) error = posix_spawn_file_actions_adddup2(&actions, output, 1);
    if (error == 0) error = posix_spawn_file_actions_adddup2(&actions, output, 2);
    // Descriptors the daemon opened without O_CLOEXEC (a library's) do not leak into jobs.
    if (error == 0) error = posix_spawn_file_actions_addclosefrom_np(&actions, 3);
    if (error == 0) error = posix_spawn(pid_out, path, &actions, &attributes, argv, envp);
    posix_spawnattr_destroy(&attributes);
    posix_spawn_file_actions_destroy(&actions);
    if (own >= 0) close(own);
    return error;
}

int belfry_pidfd_open(pid_t pid) {
#ifdef SYS_pidfd_open
    return (int)syscall(SYS_pidfd_open, pid, 0);
#else
    errno = ENOSYS;
    return -1;
#endif
}

// The launch path of an attempt: posix_spawn, which glibc implements with clone(CLONE_VM |
// CLONE_VFORK). The flags and file actions that need _GNU_SOURCE are not visible to Swift,
// hence this file.
#define _GNU_SOURCE
#include "CBelfrySpawn.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
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

// In the child of fork(): reports `error` on `report` and ends.
static void fail(int report, int error) {
    while (write(report, &error, sizeof error) < 0 && errno == EINTR) {}
    _exit(127);
}

int belfry_spawn_as(const char *path, char *const argv[], char *const envp[], const char *directory, int output,
                    uid_t uid, gid_t gid, const gid_t *groups, int group_count, pid_t *pid_out) {
    int report[2];
    if (pipe2(report, O_CLOEXEC) != 0) return errno;
    // Every signal blocked across the fork, so that no handler of the daemon's runs in the child
    // before its dispositions are reset; the child unblocks them at the end.
    sigset_t all, previous;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &previous);
    // glibc's fork(), not a bare clone: it leaves the child a consistent list of its one thread.
    pid_t pid = fork();
    if (pid != 0) pthread_sigmask(SIG_SETMASK, &previous, NULL);
    if (pid < 0) {
        int error = errno;
        close(report[0]);
        close(report[1]);
        return error;
    }
    if (pid == 0) {
        close(report[0]);
        // Only system calls from here to execve: the child of a threaded process may find any
        // lock of the parent's held.
        if (setsid() < 0) fail(report[1], errno);
        if (syscall(SYS_setgroups, group_count, groups) != 0) fail(report[1], errno);
        if (syscall(SYS_setgid, gid) != 0) fail(report[1], errno);
        if (syscall(SYS_setuid, uid) != 0) fail(report[1], errno);
        if (directory != NULL && chdir(directory) != 0) fail(report[1], errno);
        // Default dispositions and an empty mask, as POSIX_SPAWN_SETSIGDEF and SETSIGMASK give.
        struct sigaction default_action = {.sa_handler = SIG_DFL};
        for (int signal = 1; signal < NSIG; signal++) {
            if (signal != SIGKILL && signal != SIGSTOP) sigaction(signal, &default_action, NULL);
        }
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        int input = open("/dev/null", O_RDONLY);
        if (input < 0) fail(report[1], errno);
        // `output` and the report pipe are moved above 2 before 0, 1 and 2 are made.
        int out = fcntl(output, F_DUPFD, 3);
        int channel = fcntl(report[1], F_DUPFD_CLOEXEC, 3);
        if (out < 0 || channel < 0) fail(report[1], errno);
        if (dup2(input, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0) fail(channel, errno);
        // Every other descriptor closed but the report channel, which exec closes.
        if (channel > 3) syscall(SYS_close_range, 3, channel - 1, 0);
        syscall(SYS_close_range, channel + 1, ~0U, 0);
        execve(path, argv, envp);
        fail(channel, errno);
    }
    close(report[1]);
    int error = 0;
    ssize_t got;
    while ((got = read(report[0], &error, sizeof error)) < 0 && errno == EINTR) {}
    close(report[0]);
    if (got == sizeof error) {
        // The child did not exec: it has ended, or is about to.
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
        return error;
    }
    *pid_out = pid;
    return 0;
}

int belfry_pidfd_open(pid_t pid) {
#ifdef SYS_pidfd_open
    return (int)syscall(SYS_pidfd_open, pid, 0);
#else
    errno = ENOSYS;
    return -1;
#endif
}

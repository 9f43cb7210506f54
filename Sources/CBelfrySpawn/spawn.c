// The launch path of an attempt: vfork and system calls to execve, where Swift cannot go.
#define _GNU_SOURCE
#include "CBelfrySpawn.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

// In a child, before exec, with every signal blocked: default dispositions (the daemon ignores
// SIGPIPE, and none of its handlers may run in the child), then an empty mask (a job inherits no
// blocked signal). System calls only.
static void default_signals(void) {
    struct sigaction default_action = {.sa_handler = SIG_DFL};
    for (int signal = 1; signal < NSIG; signal++) {
        if (signal != SIGKILL && signal != SIGSTOP) sigaction(signal, &default_action, NULL);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

int belfry_spawn(const char *path, char *const argv[], char *const envp[], const char *directory, int output,
                 pid_t *pid_out) {
    // Standard output and error are made from `output` by dup2; below 3 it would be overwritten.
    int own = -1;
    if (output < 3) {
        own = fcntl(output, F_DUPFD_CLOEXEC, 3);
        if (own < 0) return errno;
        output = own;
    }
    // vfork(), as glibc's posix_spawn does (clone with CLONE_VM | CLONE_VFORK), but on this
    // thread's stack: posix_spawn maps a stack for each child and unmaps it after, and unmapping
    // memory in a threaded process interrupts the other CPUs to flush their TLBs (as much of a
    // burst's launching time as the spawn's own close_range, perf). The child shares the
    // daemon's memory until execve and this thread waits meanwhile: system calls only, and the
    // error of a failed one is written where this thread reads it.
    volatile int failure = 0;
    // Every signal blocked across the vfork, so that no handler of the daemon's runs in the
    // child (on the daemon's memory) before its dispositions are reset.
    sigset_t all, previous;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &previous);
    pid_t pid = vfork();
    if (pid == 0) {
        if (setsid() < 0) {
            failure = errno;
            _exit(127);
        }
        default_signals();
        if (directory != NULL && chdir(directory) != 0) {
            failure = errno;
            _exit(127);
        }
        int input = open("/dev/null", O_RDONLY);
        if (input < 0 || dup2(input, 0) < 0 || dup2(output, 1) < 0 || dup2(output, 2) < 0) {
            failure = errno;
            _exit(127);
        }
        // Every other descriptor closed: those the daemon opened without O_CLOEXEC (a
        // library's) do not leak into jobs.
        syscall(SYS_close_range, 3, ~0U, 0);
        execve(path, argv, envp);
        failure = errno;
        _exit(127);
    }
    int error = pid < 0 ? errno : failure;
    pthread_sigmask(SIG_SETMASK, &previous, NULL);
    if (own >= 0) close(own);
    if (pid > 0 && error != 0) {
        // The child did not exec: it has ended.
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
        return error;
    }
    if (error == 0) *pid_out = pid;
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
        default_signals();
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

int belfry_pipe_cloexec(int fds[2]) {
    return pipe2(fds, O_CLOEXEC);
}

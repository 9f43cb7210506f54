#ifndef BELFRY_SPAWN_H
#define BELFRY_SPAWN_H

#include <sys/types.h>

/// Starts `path` with `argv` and `envp` in a session of its own (so its whole group can be
/// signalled), with default signal dispositions and an empty signal mask, standard input on
/// /dev/null, standard output and error on `output`, no other descriptor, in `directory` when
/// not NULL. Returns 0 and the process's pid in `pid_out`, or the errno of what failed.
int belfry_spawn(const char *path, char *const argv[], char *const envp[], const char *directory, int output,
                 pid_t *pid_out);

/// The same as `belfry_spawn`, as user `uid` with group `gid` and supplementary groups `groups`
/// (`group_count` of them): fork(2), the changes made with raw system calls (glibc's setgid and
/// setuid would wait for threads the child does not have), execve(2). The errno of a failed
/// change or exec is reported through a pipe.
int belfry_spawn_as(const char *path, char *const argv[], char *const envp[], const char *directory, int output,
                    uid_t uid, gid_t gid, const gid_t *groups, int group_count, pid_t *pid_out);

/// pidfd_open(2): a descriptor that becomes readable when the process `pid` ends; -1 (errno
/// set) where the kernel has none.
int belfry_pidfd_open(pid_t pid);

/// pipe2(2) with O_CLOEXEC: both ends closed on exec, made so in one system call (Swift's Glibc
/// module leaves pipe2 out: it needs _GNU_SOURCE). Returns 0, or -1 with errno set.
int belfry_pipe_cloexec(int fds[2]);

#endif

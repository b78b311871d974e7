/* What Swift cannot import from Glibc: futex, memfd and seals, SCM_RIGHTS, prctl, prefetch,
 * the cycle counter.
 * Every function returns -errno on failure (never sets errno for the caller to read). */
#ifndef CAPUSSYS_H
#define CAPUSSYS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Sleeps while *word == expected, at most timeout_ns (negative: no limit).
 * 0 when woken or the word changed; -ETIMEDOUT, -EINTR or -EAGAIN otherwise.
 * Shared (not private) futex: the word may live in memory mapped by several processes. */
int apussys_futex_wait(uint32_t *word, uint32_t expected, int64_t timeout_ns);

/* Wakes up to `count` sleepers on word; returns how many woke or -errno. */
int apussys_futex_wake(uint32_t *word, int count);

/* An anonymous shared-memory file that can later be sealed; close-on-exec. fd or -errno. */
int apussys_memfd_create(const char *name);

/* Seals fd so no later mapping or write can modify it, and its size is fixed.
 * Mappings made before the seal stay writable. 0 or -errno. */
int apussys_memfd_seal_future_write(int fd);

/* Sends `length` bytes and `fd_count` descriptors in one message. 0 or -errno. */
int apussys_send_fds(int socket, const void *bytes, size_t length, const int *fds, size_t fd_count);

/* Receives one message: up to `capacity` bytes and `fd_capacity` descriptors (close-on-exec).
 * Returns the byte count (0 at end of stream) and sets *fd_count, or -errno.
 * Descriptors beyond fd_capacity, or a truncated message, are closed and reported as -EMSGSIZE. */
ssize_t apussys_recv_fds(int socket, void *bytes, size_t capacity, int *fds, size_t fd_capacity, size_t *fd_count);

/* Asks the kernel to send `signal` to this process when the thread that spawned it exits. 0 or -errno. */
int apussys_set_parent_death_signal(int signal);

/* Spawns a child: a new process group, working directory `cwd`, environment `envp`, stdin from
 * /dev/null, stdout and stderr to the given fds, `control_fd` (if >= 0) as fd 3, default signal
 * dispositions and an empty signal mask, and SIGKILL as its parent-death signal (the death of the
 * calling thread). `path` without a '/' is searched on the PATH of `envp`.
 * Returns the pid, or -errno when the program could not be started (exec failure included). */
int apussys_spawn(const char *path, char *const argv[], char *const envp[], const char *cwd,
               int stdout_fd, int stderr_fd, int control_fd);

/* Starts `path` as a daemon: in a new session, adopted by init (it outlives the caller), stdin
 * from /dev/null, stdout and stderr to `log_fd`, working directory /. Returns its pid or -errno
 * (an exec failure shows as the daemon exiting with 127 and a line in the log). */
int apussys_spawn_detached(const char *path, char *const argv[], char *const envp[], int log_fd);

/* Starts the guardian: a child process that outlives its parent only to SIGKILL the process
 * groups it was told of (apussys_guard_group) and not told were gone, once the parent has ended,
 * however it ended (SIGKILL included). Returns the write end of the guardian's pipe (close-on-exec),
 * or -errno. */
int apussys_spawn_guardian(void);

/* Tells the guardian of a process group to kill when the parent is gone (`group` > 0), or that
 * the group is gone and must be left alone (-group). 0, or -errno. */
int apussys_guard_group(int guardian, int32_t group);

/* Writes all `length` bytes to `fd`, retrying short writes and EINTR; on a socket with MSG_NOSIGNAL
 * (a peer that is gone gives -EPIPE, not SIGPIPE). 0, or -errno. */
int apussys_write_all(int fd, const void *bytes, size_t length);

/* The user id of the process at the other end of a Unix socket (SO_PEERCRED), or -errno. */
int apussys_peer_uid(int socket);

/* Makes C stdio's stdout line-buffered: a node's stdout is a pipe to the daemon, and its log
 * lines should arrive as they are printed, not when a block fills up. */
void apussys_line_buffer_stdout(void);

/* A pipe with both ends close-on-exec. 0 or -errno. */
int apussys_pipe(int fds[2]);

/* Blocks `signals` in the calling thread (call before starting threads) and returns a signalfd
 * for them (non-blocking, close-on-exec), or -errno. */
int apussys_signalfd(const int *signals, int count);

/* Reads one signal number from a signalfd: the signal, 0 when none is pending, or -errno. */
int apussys_signalfd_read(int fd);

/* Reaps child `pid` (-1: any child), waiting for it when `block` is non-zero. Returns its pid
 * (0 if none has exited and not blocking, -errno on error) and sets *signaled (1 when killed by
 * a signal) and *value (the exit code or the signal number). */
int apussys_reap(pid_t pid, int block, int *signaled, int *value);

/* Limits process `pid` to the `count` CPUs in `cpus` (sched_setaffinity); 0, or an errno. */
int apussys_set_affinity(pid_t pid, const int *cpus, int count);

/* Starts fetching the cache line at `address` for writing, without waiting for it: a shared line
 * another CPU wrote last is made this CPU's own before it is needed. A hint; it never faults. */
/* Crash reports of the operator runtime: on SIGSEGV, SIGBUS, SIGFPE, SIGILL or SIGABRT the
 * calling thread's context line (NUL-terminated, kept alive by the caller; NULL for none) is
 * written to stderr, then the signal takes its default course. */
void apussys_install_crash_report(void);
void apussys_set_crash_context(const char *line);

static inline void apussys_prefetch_for_write(const void *address) {
    __builtin_prefetch(address, 1, 3);
}

/* Starts fetching the cache line at `address` for reading, without waiting for it. A hint; it
 * never faults, whatever the address. */
static inline void apussys_prefetch(const void *address) {
    __builtin_prefetch(address, 0, 3);
}

/* The CPU's time-stamp counter, read without waiting for earlier instructions (no fence): cheaper
 * than clock_gettime. 0 where there is none (not x86-64). */
static inline uint64_t apussys_cycle_counter(void) {
#if defined(__x86_64__)
    return __builtin_ia32_rdtsc();
#else
    return 0;
#endif
}

/* Paces a spin loop between two looks at a line another CPU writes, by reading the counter above
 * and dropping the value: a consumer that looks as fast as it can delays the very store it waits
 * for. Not `pause`, which exits to the host under a hypervisor. docs/performance.md has the
 * measurements behind this choice. Where there is no counter it reads 0 at no cost. */
static inline void apussys_spin_pace(void) {
    (void)apussys_cycle_counter();
}

#endif

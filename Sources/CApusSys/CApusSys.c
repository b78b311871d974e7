#define _GNU_SOURCE
#include "CApusSys.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <string.h>
#include <sys/mman.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010
#endif

#define APUS_MAX_FDS 253 /* SCM_MAX_FD: the kernel limit per message */

int apussys_futex_wait(uint32_t *word, uint32_t expected, int64_t timeout_ns) {
    struct timespec timeout;
    struct timespec *timeout_pointer = NULL;
    if (timeout_ns >= 0) {
        timeout.tv_sec = (time_t)(timeout_ns / 1000000000);
        timeout.tv_nsec = (long)(timeout_ns % 1000000000);
        timeout_pointer = &timeout;
    }
    long result = syscall(SYS_futex, word, FUTEX_WAIT, expected, timeout_pointer, NULL, 0);
    return result == 0 ? 0 : -errno;
}

int apussys_futex_wake(uint32_t *word, int count) {
    long result = syscall(SYS_futex, word, FUTEX_WAKE, count, NULL, NULL, 0);
    return result >= 0 ? (int)result : -errno;
}

int apussys_memfd_create(const char *name) {
    int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    return fd >= 0 ? fd : -errno;
}

int apussys_memfd_seal_future_write(int fd) {
    int seals = F_SEAL_FUTURE_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;
    return fcntl(fd, F_ADD_SEALS, seals) == 0 ? 0 : -errno;
}

int apussys_send_fds(int socket, const void *bytes, size_t length, const int *fds, size_t fd_count) {
    if (fd_count > APUS_MAX_FDS) return -EINVAL;
    struct iovec vector = {.iov_base = (void *)bytes, .iov_len = length};
    union {
        char buffer[CMSG_SPACE(sizeof(int) * APUS_MAX_FDS)];
        struct cmsghdr align;
    } control;
    struct msghdr message = {.msg_iov = &vector, .msg_iovlen = 1};
    if (fd_count > 0) {
        memset(&control, 0, sizeof(control));
        message.msg_control = control.buffer;
        message.msg_controllen = CMSG_SPACE(sizeof(int) * fd_count);
        struct cmsghdr *header = CMSG_FIRSTHDR(&message);
        header->cmsg_level = SOL_SOCKET;
        header->cmsg_type = SCM_RIGHTS;
        header->cmsg_len = CMSG_LEN(sizeof(int) * fd_count);
        memcpy(CMSG_DATA(header), fds, sizeof(int) * fd_count);
    }
    for (;;) {
        ssize_t sent = sendmsg(socket, &message, MSG_NOSIGNAL);
        if (sent == (ssize_t)length) return 0;
        if (sent >= 0) return -EMSGSIZE;
        if (errno != EINTR) return -errno;
    }
}

ssize_t apussys_recv_fds(int socket, void *bytes, size_t capacity, int *fds, size_t fd_capacity, size_t *fd_count) {
    struct iovec vector = {.iov_base = bytes, .iov_len = capacity};
    union {
        char buffer[CMSG_SPACE(sizeof(int) * APUS_MAX_FDS)];
        struct cmsghdr align;
    } control;
    struct msghdr message = {
        .msg_iov = &vector, .msg_iovlen = 1, .msg_control = control.buffer, .msg_controllen = sizeof(control.buffer)};
    ssize_t received;
    do {
        received = recvmsg(socket, &message, MSG_CMSG_CLOEXEC);
    } while (received < 0 && errno == EINTR);
    if (received < 0) return -errno;

    size_t count = 0;
    int overflow = (message.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0;
    for (struct cmsghdr *header = CMSG_FIRSTHDR(&message); header != NULL; header = CMSG_NXTHDR(&message, header)) {
        if (header->cmsg_level != SOL_SOCKET || header->cmsg_type != SCM_RIGHTS) continue;
        size_t n = (header->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        int *incoming = (int *)CMSG_DATA(header);
        for (size_t i = 0; i < n; i++) {
            if (count < fd_capacity && !overflow) {
                fds[count++] = incoming[i];
            } else {
                close(incoming[i]);
                overflow = 1;
            }
        }
    }
    if (overflow) {
        for (size_t i = 0; i < count; i++) close(fds[i]);
        *fd_count = 0;
        return -EMSGSIZE;
    }
    *fd_count = count;
    return received;
}

int apussys_set_parent_death_signal(int signal) {
    return prctl(PR_SET_PDEATHSIG, signal, 0, 0, 0) == 0 ? 0 : -errno;
}

/* Moves fd above the standard three and the control slot, so the dup2 calls below never clobber
 * each other; the copy is close-on-exec, only its dup2 target survives exec. */
static int lift(int fd) {
    return fd < 0 ? fd : fcntl(fd, F_DUPFD_CLOEXEC, 10);
}

/* In a forked child before exec: default dispositions and an empty mask, whatever the parent had. */
static void reset_signals(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = SIG_DFL;
    for (int signal = 1; signal < NSIG; signal++) sigaction(signal, &action, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

static void child_fail(int report) {
    int error = errno;
    ssize_t ignored = write(report, &error, sizeof error);
    (void)ignored;
    _exit(127);
}

int apussys_spawn(const char *path, char *const argv[], char *const envp[], const char *cwd,
               int stdout_fd, int stderr_fd, int control_fd) {
    int report[2];
    if (pipe2(report, O_CLOEXEC) != 0) return -errno;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        int error = errno;
        close(report[0]);
        close(report[1]);
        return -error;
    }
    if (pid == 0) {
        /* Only async-signal-safe calls from here to exec: the parent may have threads. */
        setpgid(0, 0);
        if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) child_fail(report[1]);
        if (getppid() != parent) _exit(127);
        reset_signals();
        int out = lift(stdout_fd), err = lift(stderr_fd), control = lift(control_fd);
        int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (null < 0 || dup2(null, 0) < 0) child_fail(report[1]);
        if (out >= 0 && dup2(out, 1) < 0) child_fail(report[1]);
        if (err >= 0 && dup2(err, 2) < 0) child_fail(report[1]);
        if (control >= 0 && dup2(control, 3) < 0) child_fail(report[1]);
        if (cwd != NULL && chdir(cwd) != 0) child_fail(report[1]);
        if (strchr(path, '/') != NULL) {
            execve(path, argv, envp);
        } else {
            execvpe(path, argv, envp);
        }
        child_fail(report[1]);
    }
    close(report[1]);
    int error = 0;
    ssize_t got;
    do {
        got = read(report[0], &error, sizeof error);
    } while (got < 0 && errno == EINTR);
    close(report[0]);
    if (got == (ssize_t)sizeof error) {
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
        return -error;
    }
    return pid;
}

int apussys_spawn_detached(const char *path, char *const argv[], char *const envp[], int log_fd) {
    int report[2];
    if (pipe2(report, O_CLOEXEC) != 0) return -errno;
    pid_t child = fork();
    if (child < 0) {
        int error = errno;
        close(report[0]);
        close(report[1]);
        return -error;
    }
    if (child == 0) {
        /* The middle process: starts the daemon in a new session and exits, so the daemon is
         * adopted by init and outlives the command that started it. */
        pid_t daemon = fork();
        if (daemon < 0) child_fail(report[1]);
        if (daemon > 0) {
            ssize_t ignored = write(report[1], &daemon, sizeof daemon);
            (void)ignored;
            _exit(0);
        }
        setsid();
        reset_signals();
        int log = lift(log_fd);
        int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (null < 0 || dup2(null, 0) < 0 || dup2(log, 1) < 0 || dup2(log, 2) < 0) _exit(127);
        if (chdir("/") != 0) _exit(127);
        execve(path, argv, envp);
        _exit(127);
    }
    close(report[1]);
    pid_t daemon = 0;
    ssize_t got;
    do {
        got = read(report[0], &daemon, sizeof daemon);
    } while (got < 0 && errno == EINTR);
    close(report[0]);
    int status;
    while (waitpid(child, &status, 0) < 0 && errno == EINTR) {}
    if (got != (ssize_t)sizeof daemon) return -ECHILD;
    return daemon;
}

int apussys_write_all(int fd, const void *bytes, size_t length) {
    const char *cursor = bytes;
    int is_socket = 1;
    while (length > 0) {
        /* send() on a socket, so that a peer that is gone gives EPIPE rather than SIGPIPE. */
        ssize_t written = is_socket ? send(fd, cursor, length, MSG_NOSIGNAL) : write(fd, cursor, length);
        if (written < 0 && is_socket && errno == ENOTSOCK) {
            is_socket = 0;
            continue;
        }
        if (written < 0 && errno == EINTR) continue;
        if (written < 0) return -errno;
        if (written == 0) return -EIO;
        cursor += written;
        length -= (size_t)written;
    }
    return 0;
}

int apussys_peer_uid(int socket) {
    struct ucred credentials;
    socklen_t length = sizeof credentials;
    if (getsockopt(socket, SOL_SOCKET, SO_PEERCRED, &credentials, &length) != 0) return -errno;
    return (int)credentials.uid;
}

void apussys_line_buffer_stdout(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
}

int apussys_pipe(int fds[2]) {
    return pipe2(fds, O_CLOEXEC) == 0 ? 0 : -errno;
}

int apussys_signalfd(const int *signals, int count) {
    sigset_t set;
    sigemptyset(&set);
    for (int i = 0; i < count; i++) sigaddset(&set, signals[i]);
    int result = pthread_sigmask(SIG_BLOCK, &set, NULL);
    if (result != 0) return -result;
    int fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    return fd >= 0 ? fd : -errno;
}

int apussys_signalfd_read(int fd) {
    struct signalfd_siginfo info;
    ssize_t got = read(fd, &info, sizeof info);
    if (got == (ssize_t)sizeof info) return (int)info.ssi_signo;
    if (got < 0 && (errno == EAGAIN || errno == EINTR)) return 0;
    return got < 0 ? -errno : -EIO;
}

int apussys_reap(pid_t pid, int block, int *signaled, int *value) {
    int status = 0;
    pid_t reaped;
    do {
        reaped = waitpid(pid, &status, block ? 0 : WNOHANG);
    } while (reaped < 0 && errno == EINTR);
    if (reaped <= 0) return reaped == 0 ? 0 : -errno;
    pid = reaped;
    if (WIFSIGNALED(status)) {
        *signaled = 1;
        *value = WTERMSIG(status);
    } else {
        *signaled = 0;
        *value = WEXITSTATUS(status);
    }
    return pid;
}

/* The guardian's memory: the process groups it was told of (a fixed table, as malloc is not
 * async-signal-safe after fork). */
#define GUARDED_GROUPS 65536
static pid_t guarded[GUARDED_GROUPS];

int apussys_spawn_guardian(void) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return -errno;
    pid_t pid = fork();
    if (pid < 0) {
        int error = errno;
        close(fds[0]);
        close(fds[1]);
        return -error;
    }
    if (pid == 0) {
        /* Only async-signal-safe calls: the parent may have threads. Keep nothing of the parent's
         * open but the pipe's read end (a socket or pipe held here would hide its closing), and
         * let no signal meant for the parent's process group or terminal end the guardian. */
        if (syscall(SYS_close_range, 0, (unsigned)fds[0] - 1, 0) != 0
            || syscall(SYS_close_range, (unsigned)fds[0] + 1, ~0U, 0) != 0) {
            for (int fd = 0; fd < 65536; fd++) { /* a kernel before 5.9 */
                if (fd != fds[0]) close(fd);
            }
        }
        struct sigaction ignore;
        memset(&ignore, 0, sizeof ignore);
        ignore.sa_handler = SIG_IGN;
        int ignored[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGPIPE, SIGTSTP, SIGTTIN, SIGTTOU};
        for (size_t i = 0; i < sizeof ignored / sizeof ignored[0]; i++) sigaction(ignored[i], &ignore, NULL);
        size_t count = 0;
        int32_t group;
        for (;;) {
            ssize_t got = read(fds[0], &group, sizeof group);
            if (got < 0 && errno == EINTR) continue;
            if (got != (ssize_t)sizeof group) break; /* the parent is gone, however it ended */
            if (group > 0) {
                if (count < GUARDED_GROUPS) guarded[count++] = group;
            } else {
                for (size_t i = 0; i < count; i++) {
                    if (guarded[i] == -group) {
                        guarded[i] = guarded[--count];
                        break;
                    }
                }
            }
        }
        for (size_t i = 0; i < count; i++) kill(-guarded[i], SIGKILL);
        _exit(0);
    }
    close(fds[0]);
    return fds[1];
}

int apussys_guard_group(int guardian, int32_t group) {
    ssize_t written;
    do {
        written = write(guardian, &group, sizeof group);
    } while (written < 0 && errno == EINTR);
    return written == (ssize_t)sizeof group ? 0 : -errno;
}

static __thread const char *crash_context;

void apussys_set_crash_context(const char *line) { crash_context = line; }

static void report_crash(int signal) {
    const char *line = crash_context;
    if (line != NULL) {
        size_t length = strlen(line);
        while (length > 0) {
            ssize_t written = write(2, line, length);
            if (written <= 0) break;
            line += written;
            length -= (size_t)written;
        }
    }
    struct sigaction fallback = {0};
    fallback.sa_handler = SIG_DFL;
    sigaction(signal, &fallback, NULL);
    raise(signal);
}

void apussys_install_crash_report(void) {
    static char stack[65536];
    stack_t alternate = {.ss_sp = stack, .ss_size = sizeof stack, .ss_flags = 0};
    sigaltstack(&alternate, NULL);
    int signals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
    for (size_t i = 0; i < sizeof signals / sizeof signals[0]; i++) {
        struct sigaction action = {0};
        action.sa_handler = report_crash;
        action.sa_flags = SA_ONSTACK | SA_NODEFER;
        sigemptyset(&action.sa_mask);
        sigaction(signals[i], &action, NULL);
    }
}

int apussys_set_affinity(pid_t pid, const int *cpus, int count)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    for (int i = 0; i < count; i++) {
        if (cpus[i] < 0 || cpus[i] >= CPU_SETSIZE)
            return EINVAL;
        CPU_SET(cpus[i], &set);
    }
    return sched_setaffinity(pid, sizeof set, &set) == 0 ? 0 : errno;
}

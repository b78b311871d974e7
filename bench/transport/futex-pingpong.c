/* Raw C reference: two processes ping-pong a payload through one shared page, each side spinning
 * briefly (up to 20 us) and then sleeping on a futex, the floor Apus's transport is measured
 * against. Usage: futex-pingpong SIZE ITERATIONS -> prints "p50_ns p99_ns" of RTT/2. */
#define _GNU_SOURCE
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pingpong.h"

struct side { _Atomic uint32_t sequence; _Atomic uint32_t sleeping; char pad[56]; };
struct shared { struct side to[2]; };

static void ring(struct side *s) {
    atomic_fetch_add(&s->sequence, 1);
    if (atomic_load(&s->sleeping)) syscall(SYS_futex, &s->sequence, FUTEX_WAKE, 1, NULL, NULL, 0);
}

static void await_change(struct side *s, uint32_t seen) {
    uint64_t end = now_ns() + 20000;
    while (atomic_load(&s->sequence) == seen) {
        if (now_ns() > end) {
            atomic_store(&s->sleeping, 1);
            if (atomic_load(&s->sequence) == seen)
                syscall(SYS_futex, &s->sequence, FUTEX_WAIT, seen, NULL, NULL, 0);
            atomic_store(&s->sleeping, 0);
        }
    }
}

int main(int argc, char **argv) {
    size_t size = argc > 1 ? strtoull(argv[1], NULL, 10) : 8;
    int iterations = argc > 2 ? atoi(argv[2]) : 10000;
    struct shared *shared = mmap(NULL, sizeof *shared, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    char *buffer = mmap(NULL, size + 64, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    char *local = malloc(size + 64);
    memset(local, 1, size + 64);
    int warmup = iterations / 10 + 10;
    pid_t child = fork();
    if (child == 0) {
        uint32_t seen = 0;
        for (int i = 0; i < warmup + iterations; i++) {
            await_change(&shared->to[1], seen);
            seen++;
            memcpy(local, buffer, size > 8 ? 8 : size);
            ring(&shared->to[0]);
        }
        _exit(0);
    }
    uint64_t *samples = malloc(sizeof(uint64_t) * (size_t)iterations);
    uint32_t seen = 0;
    for (int i = 0; i < warmup + iterations; i++) {
        uint64_t start = now_ns();
        memcpy(buffer, local, size > 8 ? 8 : size);
        ring(&shared->to[1]);
        await_change(&shared->to[0], seen);
        seen++;
        if (i >= warmup) samples[i - warmup] = (now_ns() - start) / 2;
    }
    waitpid(child, NULL, 0);
    report(samples, iterations);
    return 0;
}

/* The design's hand-off protocol in plain C: what ApusTransport does per sample
 * (docs/architecture.md, "The data plane"),
 * with nothing else, so that a run shows how far the Swift implementation is from the protocol's
 * own cost, and how far the protocol is from the one-line futex ping-pong (futex-pingpong.c).
 *
 * Per hand-off, as ApusTransport does it: reserve a pool slot by its holder word, write the
 * payload, stamp it (the cycle counter on a line anchored to CLOCK_MONOTONIC, as StampClock does),
 * set the edge's holder bit, fill the ring entry and store its stamp last, store tail, fence and
 * look at the consumer's `sleeping` flag. The consumer polls the stamp at head, reads the entry,
 * starts fetching the payload's line, takes the entry by compare-and-swap on head and reads the
 * payload; once it has answered, it releases the slot with an atomic AND (as the Apus bench and a
 * node do). Waiting spins up to 20 us, reading the cycle counter between looks to pace them as
 * ApusTransport does (apussys_spin_pace), then sleeps on the doorbell futex, like the reference.
 *
 * Usage: protocol-pingpong ITERATIONS [--clock-gettime | --no-clock] [--loopback] -> prints
 * "p50_ns p99_ns" of RTT/2 at 8 B. --clock-gettime stamps with a clock_gettime per sample instead,
 * and --no-clock leaves the stamp out, to show what each costs. --loopback hands samples from one
 * process to itself and prints ns per hand-off, like `transport-bench loopback`. */
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

/* A ring of the default queue_size (10) in 16 entries, as ApusTransport lays it out. */
enum { CAPACITY = 10, ENTRIES = 16, SLOTS = 64, EDGE_BIT = 2 };

struct entry {
    _Atomic uint64_t stamp; /* position + 1, stored last */
    uint64_t descriptor, arrival, timestamp, length;
    uint32_t metadata_length;
    uint8_t element_type;
    char pad[19];
};

struct ring {
    _Atomic uint64_t head; char pad0[56];
    _Atomic uint64_t tail; char pad1[56];
    _Atomic uint32_t sequence, sleeping, producer_waiting; char pad2[52];
    struct entry entries[ENTRIES];
};

struct pool {
    struct { _Atomic uint64_t word; char pad[56]; } holders[SLOTS];
    char data[SLOTS][64];
};

struct shared { struct ring rings[2]; struct pool pools[2]; };

struct side {
    struct pool *pool, *peer_pool;
    struct ring *out, *in;
    uint64_t tail, known_head;
    int cursor;
    int held; /* the slot of the peer's pool this side holds, or -1 */
};

enum stamping { COUNTER, CLOCK_GETTIME, NO_CLOCK };
static enum stamping stamping = COUNTER;

/* The stamp clock's fast path: nanoseconds = anchor + (ticks since the anchor) * slope, re-anchored
 * to CLOCK_MONOTONIC every 2^21 ticks. The slope is measured once, before the run. */
static uint64_t anchor_ticks, anchor_ns, slope, window;

static uint64_t ticks(void) { return __builtin_ia32_rdtsc(); }

static uint64_t reanchor(void) {
    anchor_ticks = ticks();
    anchor_ns = now_ns();
    window = 1u << 21;
    return anchor_ns;
}

static uint64_t stamp_now(void) {
    uint64_t elapsed = ticks() - anchor_ticks;
    if (elapsed < window) return anchor_ns + ((elapsed * slope) >> 32);
    return reanchor();
}

static void measure_slope(void) {
    uint64_t t0 = ticks(), n0 = now_ns();
    while (now_ns() - n0 < 10000000) {}
    uint64_t t1 = ticks(), n1 = now_ns();
    slope = (uint64_t)(((unsigned __int128)(n1 - n0) << 32) / (t1 - t0));
}

static void publish(struct side *s, uint64_t value) {
    int slot = s->cursor;
    while (atomic_load_explicit(&s->pool->holders[slot].word, memory_order_acquire) != 0) slot = (slot + 1) % SLOTS;
    atomic_store_explicit(&s->pool->holders[slot].word, 1, memory_order_relaxed);
    s->cursor = (slot + 1) % SLOTS;
    memcpy(s->pool->data[slot], &value, 8);
    uint64_t now = stamping == COUNTER ? stamp_now() : stamping == CLOCK_GETTIME ? now_ns() : value;
    atomic_store_explicit(&s->pool->holders[slot].word, 1u << EDGE_BIT, memory_order_relaxed);

    while (s->tail - s->known_head >= CAPACITY) s->known_head = atomic_load_explicit(&s->out->head, memory_order_acquire);
    struct entry *e = &s->out->entries[s->tail % ENTRIES];
    e->descriptor = (uint64_t)slot;
    e->arrival = now;
    e->timestamp = now;
    e->length = 8;
    e->metadata_length = 0;
    e->element_type = 0;
    atomic_store_explicit(&e->stamp, s->tail + 1, memory_order_release);
    s->tail++;
    atomic_store_explicit(&s->out->tail, s->tail, memory_order_release);

    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&s->out->sleeping, memory_order_relaxed)) {
        atomic_fetch_add(&s->out->sequence, 1);
        syscall(SYS_futex, &s->out->sequence, FUTEX_WAKE, 1, NULL, NULL, 0);
    }
    __builtin_prefetch(&s->pool->holders[s->cursor], 1, 3);
}

static int has_entry(struct ring *r) {
    uint64_t head = atomic_load_explicit(&r->head, memory_order_acquire);
    return atomic_load_explicit(&r->entries[head % ENTRIES].stamp, memory_order_acquire) == head + 1;
}

/* Spins about 20 us (the looks paced by the cycle counter, the clock read every 64 looks, as
 * ApusTransport does), then sleeps on the doorbell: `sleeping` is set before the last look, so a
 * producer that stamps meanwhile wakes us. */
static void wait_for_entry(struct ring *r) {
    uint64_t end = 0;
    for (int checks = 1; !has_entry(r); checks++) {
        (void)ticks();
        if (checks % 64 != 0) continue;
        uint64_t now = now_ns();
        if (end == 0) end = now + 20000;
        if (now < end) continue;
        uint32_t seen = atomic_load(&r->sequence);
        atomic_store(&r->sleeping, 1);
        atomic_thread_fence(memory_order_seq_cst);
        if (!has_entry(r)) syscall(SYS_futex, &r->sequence, FUTEX_WAIT, seen, NULL, NULL, 0);
        atomic_store(&r->sleeping, 0);
    }
}

static uint64_t receive(struct side *s) {
    struct ring *r = s->in;
    wait_for_entry(r);
    uint64_t head = atomic_load_explicit(&r->head, memory_order_acquire);
    struct entry *e = &r->entries[head % ENTRIES];
    uint64_t slot = e->descriptor, length = e->length;
    if (slot >= SLOTS || length > 64) abort();
    __builtin_prefetch(s->peer_pool->data[slot], 0, 3); /* the payload travels while we take the entry */
    uint64_t expected = head;
    if (!atomic_compare_exchange_strong(&r->head, &expected, head + 1)) abort();
    if (atomic_load(&r->producer_waiting)) abort(); /* never waits here: only read, like take() */
    uint64_t value;
    memcpy(&value, s->peer_pool->data[slot], 8);
    s->held = (int)slot;
    return value;
}

/* Lets go of the received sample, as a node does once it has answered. */
static void release(struct side *s) {
    atomic_fetch_and(&s->peer_pool->holders[s->held].word, ~(uint64_t)(1u << EDGE_BIT));
    s->held = -1;
}

/* One process handing samples to itself, as `transport-bench loopback` does: prints ns per hand-off. */
static int loopback(struct shared *shared, int count) {
    struct side s = { &shared->pools[0], &shared->pools[0], &shared->rings[0], &shared->rings[0], 0, 0, 0, -1 };
    uint64_t start = now_ns();
    for (int i = 0; i < count; i++) {
        publish(&s, (uint64_t)i);
        if (receive(&s) != (uint64_t)i) abort();
        release(&s);
    }
    printf("%.1f\n", (double)(now_ns() - start) / count);
    return 0;
}

int main(int argc, char **argv) {
    int iterations = argc > 1 ? atoi(argv[1]) : 10000;
    if (iterations < 1) {
        fprintf(stderr, "usage: protocol-pingpong ITERATIONS [--clock-gettime | --no-clock] [--loopback]\n");
        return 2;
    }
    int in_one_process = 0;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--no-clock") == 0) stamping = NO_CLOCK;
        else if (strcmp(argv[i], "--clock-gettime") == 0) stamping = CLOCK_GETTIME;
        else if (strcmp(argv[i], "--loopback") == 0) in_one_process = 1;
        else {
            fprintf(stderr, "protocol-pingpong: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    measure_slope();
    struct shared *shared = mmap(NULL, sizeof *shared, PROT_READ | PROT_WRITE,
                                 MAP_SHARED | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (shared == MAP_FAILED) return 1;
    if (in_one_process) return loopback(shared, iterations);
    int warmup = iterations / 10 + 10;
    pid_t child = fork();
    if (child == 0) {
        struct side s = { &shared->pools[1], &shared->pools[0], &shared->rings[0], &shared->rings[1], 0, 0, 0, -1 };
        for (int i = 0; i < warmup + iterations; i++) {
            publish(&s, receive(&s));
            release(&s);
        }
        _exit(0);
    }
    struct side s = { &shared->pools[0], &shared->pools[1], &shared->rings[1], &shared->rings[0], 0, 0, 0, -1 };
    uint64_t *samples = malloc(sizeof(uint64_t) * (size_t)iterations);
    for (int i = 0; i < warmup + iterations; i++) {
        uint64_t start = now_ns();
        publish(&s, (uint64_t)i);
        if (receive(&s) != (uint64_t)i) abort();
        uint64_t end = now_ns();
        release(&s);
        if (i >= warmup) samples[i - warmup] = (end - start) / 2;
    }
    waitpid(child, NULL, 0);
    report(samples, iterations);
    return 0;
}

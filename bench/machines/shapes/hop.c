/* What the shape of a hop across machines costs, without Apus: each shape is the least work its
 * processes can do, in plain C on Cyclone DDS. A ping-pong between an app on machine A and one on
 * machine B; each message goes one of these ways (docs/performance.md, "Across machines"):
 *   direct:     the app writes DDS and takes from its own reader (a waitset): ddsperf's shape.
 *   standin:    the app writes DDS; a stand-in process takes on Cyclone's receive thread (a
 *               listener), copies into shared memory and wakes the app through a futex.
 *   shadow:     standin, and the app also hands each message to a process that only takes it
 *               (the bridge-out that keeps what was sent).
 *   standin_ws: standin, with the stand-in taking on a thread of its own (a waitset).
 *   bout:       standin, with the app handing each message to a bridge-out process that writes it.
 *   bridges:    both: a bridge-out writes, the stand-in takes on its own thread (Apus before
 *               2026-12-04's fifth session).
 * Built and run by run.sh. Usage: hop pong SHAPE (on B), then hop ping SHAPE SIZE ROUNDS
 * (on A), which prints RTT/2. */
#define _GNU_SOURCE
#include "shapes.h"
#include <dds/dds.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct { _Atomic uint32_t seq; uint32_t len; uint8_t data[1 << 20]; } chan_t;

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static chan_t *chan_open(const char *name) {
    int fd = shm_open(name, O_RDWR | O_CREAT, 0600);
    if (fd < 0 || ftruncate(fd, sizeof(chan_t)) != 0) { perror(name); exit(1); }
    chan_t *c = mmap(NULL, sizeof(chan_t), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    return c;
}

static void chan_send(chan_t *c, const void *data, uint32_t len) {
    memcpy(c->data, data, len);
    c->len = len;
    atomic_fetch_add_explicit(&c->seq, 1, memory_order_release);
    syscall(SYS_futex, &c->seq, FUTEX_WAKE, 1, NULL, NULL, 0);
}

static uint32_t chan_recv(chan_t *c, uint32_t *seen, void *into) {
    uint32_t s;
    while ((s = atomic_load_explicit(&c->seq, memory_order_acquire)) == *seen)
        syscall(SYS_futex, &c->seq, FUTEX_WAIT, *seen, NULL, NULL, 0);
    *seen = s;
    memcpy(into, c->data, c->len);
    return c->len;
}

static dds_entity_t participant, topic_in, topic_out;

static dds_qos_t *reliable(void) {
    dds_qos_t *q = dds_create_qos();
    dds_qset_reliability(q, DDS_RELIABILITY_RELIABLE, DDS_SECS(10));
    dds_qset_history(q, DDS_HISTORY_KEEP_ALL, 1);
    return q;
}

static void setup(char me) {
    char in[16], out[16];
    snprintf(in, sizeof in, "to_%c", me);
    snprintf(out, sizeof out, "to_%c", me == 'A' ? 'B' : 'A');
    participant = dds_create_participant(DDS_DOMAIN_DEFAULT, NULL, NULL);
    topic_in = dds_create_topic(participant, &shapes_Msg_desc, in, NULL, NULL);
    topic_out = dds_create_topic(participant, &shapes_Msg_desc, out, NULL, NULL);
}

static dds_entity_t make_writer(void) {
    dds_qos_t *q = reliable();
    dds_entity_t w = dds_create_writer(participant, topic_out, q, NULL);
    dds_delete_qos(q);
    return w;
}

static chan_t *in_chan;
static uint8_t buffer[1 << 20];

static void forward(dds_entity_t reader) {
    void *samples[16] = {0};
    dds_sample_info_t infos[16];
    int n = dds_take(reader, samples, infos, 16, 16);
    for (int i = 0; i < n; i++)
        if (infos[i].valid_data) {
            shapes_Msg *m = samples[i];
            chan_send(in_chan, m->data._buffer, m->data._length);
        }
    if (n > 0) dds_return_loan(reader, samples, n);
}

static void on_data(dds_entity_t reader, void *arg) { (void)arg; forward(reader); }

/* The stand-in: takes what arrives and hands it to the app through shared memory. */
static void standin(int listener) {
    dds_qos_t *q = reliable();
    dds_listener_t *l = NULL;
    if (listener) { l = dds_create_listener(NULL); dds_lset_data_available(l, on_data); }
    dds_entity_t reader = dds_create_reader(participant, topic_in, q, l);
    dds_delete_qos(q);
    if (listener) { for (;;) pause(); }
    dds_entity_t ws = dds_create_waitset(participant);
    dds_waitset_attach(ws, dds_create_readcondition(reader, DDS_ANY_STATE), 0);
    for (;;) { dds_waitset_wait(ws, NULL, 0, DDS_INFINITY); forward(reader); }
}

/* The bridge-out: writes what the app hands it. */
static void bridge_out(chan_t *out) {
    dds_entity_t w = make_writer();
    shapes_Msg m = {0};
    uint32_t seen = atomic_load(&out->seq);
    for (;;) {
        m.data._length = chan_recv(out, &seen, buffer);
        m.data._buffer = buffer;
        dds_write(w, &m);
    }
}

/* The shadow: takes what the app hands it and writes nothing. */
static void shadow(chan_t *out) {
    uint32_t seen = atomic_load(&out->seq);
    for (;;) chan_recv(out, &seen, buffer);
}
static chan_t *shadow_chan;
static pid_t helpers[3];
static int nhelpers;

static void spawn(void (*body)(void *), void *arg) {
    pid_t p = fork();
    if (p == 0) { body(arg); _exit(0); }
    helpers[nhelpers++] = p;
}
static char me_g;
static void run_standin(void *listener) { setup(me_g); standin(listener != NULL); }
static void run_bridge_out(void *out) { setup(me_g); bridge_out(out); }
static void run_shadow(void *out) { shadow(out); }

typedef struct { const char *shape; dds_entity_t writer, reader, ws; chan_t *out; uint32_t seen; } app_t;

static void app_init(app_t *a, const char *shape, char me) {
    char name[32];
    me_g = me;
    a->shape = shape;
    snprintf(name, sizeof name, "/apus_shapes_in_%c", me);
    in_chan = chan_open(name);
    a->seen = atomic_load(&in_chan->seq);
    int listener = !strcmp(shape, "standin") || !strcmp(shape, "bout");
    int waitset = !strcmp(shape, "standin_ws") || !strcmp(shape, "bridges");
    if (listener) spawn(run_standin, (void *)1);
    if (waitset) spawn(run_standin, NULL);
    if (!strcmp(shape, "bridges") || !strcmp(shape, "bout")) {
        snprintf(name, sizeof name, "/apus_shapes_out_%c", me);
        a->out = chan_open(name);
        spawn(run_bridge_out, a->out);
    }
    if (!strcmp(shape, "shadow")) {
        spawn(run_standin, (void *)1);
        snprintf(name, sizeof name, "/apus_shapes_shadow_%c", me);
        shadow_chan = chan_open(name);
        spawn(run_shadow, shadow_chan);
    }
    setup(me);
    if (!a->out) a->writer = make_writer();
    if (!strcmp(shape, "direct")) {
        dds_qos_t *q = reliable();
        a->reader = dds_create_reader(participant, topic_in, q, NULL);
        dds_delete_qos(q);
        a->ws = dds_create_waitset(participant);
        dds_waitset_attach(a->ws, dds_create_readcondition(a->reader, DDS_ANY_STATE), 0);
    }
}

static void app_send(app_t *a, uint32_t len) {
    if (a->out) { chan_send(a->out, buffer, len); return; }
    if (shadow_chan) chan_send(shadow_chan, buffer, len);
    shapes_Msg m = {.seq = 0, .data = {._length = len, ._maximum = len, ._buffer = buffer}};
    dds_write(a->writer, &m);
}

static uint32_t app_recv(app_t *a) {
    if (!a->reader) return chan_recv(in_chan, &a->seen, buffer);
    for (;;) {
        void *samples[1] = {0};
        dds_sample_info_t info;
        int n = dds_take(a->reader, samples, &info, 1, 1);
        if (n > 0) {
            uint32_t len = info.valid_data ? ((shapes_Msg *)samples[0])->data._length : 0;
            dds_return_loan(a->reader, samples, n);
            if (info.valid_data) return len;
        } else {
            dds_waitset_wait(a->ws, NULL, 0, DDS_INFINITY);
        }
    }
}

static int compare(const void *x, const void *y) {
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return (a > b) - (a < b);
}

int main(int argc, char **argv) {
    static const char *const shapes = " direct standin shadow standin_ws bout bridges ";
    char key[32];
    int ping = argc == 5 && !strcmp(argv[1], "ping") && atoi(argv[3]) >= 0 && atoi(argv[3]) <= (int)sizeof buffer && atoi(argv[4]) > 0;
    snprintf(key, sizeof key, " %s ", argc >= 3 ? argv[2] : "");
    if ((!ping && !(argc == 3 && !strcmp(argv[1], "pong"))) || !strstr(shapes, key)) {
        fprintf(stderr, "usage: hop pong SHAPE | hop ping SHAPE SIZE ROUNDS\n");
        return 2;
    }
    app_t app = {0};
    app_init(&app, argv[2], ping ? 'A' : 'B');
    if (!ping) {
        for (;;) app_send(&app, app_recv(&app));
    }
    uint32_t size = (uint32_t)atoi(argv[3]);
    int rounds = atoi(argv[4]), warmup = 500;
    sleep(3); /* discovery, both ways */
    uint64_t *rtt = calloc(rounds, sizeof *rtt);
    for (int i = -warmup; i < rounds; i++) {
        uint64_t start = now_ns();
        app_send(&app, size);
        app_recv(&app);
        if (i >= 0) rtt[i] = now_ns() - start;
    }
    qsort(rtt, rounds, sizeof *rtt, compare);
    printf("%s size %u RTT/2 p50 %.1f us p90 %.1f us\n", argv[2], size, rtt[rounds / 2] / 2e3, rtt[rounds * 9 / 10] / 2e3);
    for (int i = 0; i < nhelpers; i++) kill(helpers[i], SIGKILL);
    while (wait(NULL) > 0) {}
    return 0;
}

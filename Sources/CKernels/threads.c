// A small fork-join pool for the convolution kernels: the caller and up to MAX_THREADS - 1
// persistent workers. Each thread owns a contiguous share of a round's jobs and runs it in
// order, then takes what is left of the others' shares, so a thread slowed by other work on
// the machine is helped, while on a quiet machine thread t runs the same share of every layer
// (on two vCPUs this measured 0.5-1 % faster than one shared counter). Workers spin briefly
// after a round (layers follow each other within microseconds) and then sleep on a condition
// variable, so an idle pool costs nothing; the caller runs jobs too and waits only for the last one.
// Exactly `threads` threads run a round, never more (GCD's concurrentPerform measured slower
// once a layer was cut into more jobs than threads). A call made from inside a job (a slice of
// a batch running its layers) runs its jobs on the calling thread; so does zk_parallel_nowait
// while another caller's round holds the pool, so that work done under a lock that a running
// job may wait for (making a weight layout) never waits for that job's round.

#include "internal.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define PAUSE() _mm_pause()
#elif defined(__aarch64__)
#define PAUSE() __asm__ __volatile__("yield")
#else
#define PAUSE() ((void)0)
#endif

enum { MAX_THREADS = 64, SPIN = 20000 };

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static pthread_mutex_t round_lock = PTHREAD_MUTEX_INITIALIZER;  // held by the round running
static int started;                       // workers created
static atomic_ulong generation;           // bumped to start a round
static atomic_int finished;               // jobs done this round
static int round_jobs, round_workers;     // this round: jobs, workers allowed to join
static zk_job_fn round_fn;
static void *round_context;
static _Thread_local int in_job;          // this thread is running a job

/// Per thread t (the caller is 0, worker i is i + 1): the round's generation << 32 | the next
/// job of t's share, jobs [jobs * t / threads, jobs * (t + 1) / threads).
static atomic_ullong next[MAX_THREADS];

/// A round's generation in the high half of next[t].
static unsigned long long tag_of(unsigned long round) { return (unsigned long long)(round & 0xFFFFFFFFu) << 32; }

/// Takes jobs of round `round` (`jobs` jobs on `threads` threads) as thread `thread`: first
/// its own share, in order, then what is left of the others'. Each thread computes the bounds
/// of a share from its own copy of the round's parameters, so a thread still leaving an older
/// round finds the generation changed and takes nothing.
static void run_jobs(unsigned long round, int thread, int threads, zk_job_fn fn, void *context, int jobs) {
    const unsigned long long tag = tag_of(round);
    for (int i = 0; i < threads; i++) {
        const int share = (thread + i) % threads;
        const unsigned long long end = tag | (unsigned long long)((long)jobs * (share + 1) / threads);
        unsigned long long v = atomic_load_explicit(&next[share], memory_order_acquire);
        while ((v & ~0xFFFFFFFFull) == tag && v < end) {
            if (atomic_compare_exchange_weak_explicit(&next[share], &v, v + 1, memory_order_acq_rel, memory_order_acquire)) {
                in_job = 1;
                fn(context, (int)(v & 0xFFFFFFFFu));
                in_job = 0;
                atomic_fetch_add_explicit(&finished, 1, memory_order_release);
                v = atomic_load_explicit(&next[share], memory_order_acquire);
            }
        }
        if ((v & ~0xFFFFFFFFull) != tag) return;
    }
}

static void *worker(void *arg) {
    const int index = (int)(long)arg;
    unsigned long seen = 0;
    for (;;) {
        unsigned long now = atomic_load_explicit(&generation, memory_order_acquire);
        for (int spin = 0; now == seen && spin < SPIN; spin++) {
            PAUSE();
            now = atomic_load_explicit(&generation, memory_order_acquire);
        }
        if (now == seen) {
            pthread_mutex_lock(&lock);
            while ((now = atomic_load_explicit(&generation, memory_order_acquire)) == seen) pthread_cond_wait(&wake, &lock);
            pthread_mutex_unlock(&lock);
        }
        seen = now;
        pthread_mutex_lock(&lock);
        const int allowed = index < round_workers;
        const unsigned long round = atomic_load_explicit(&generation, memory_order_acquire);
        zk_job_fn fn = round_fn;
        void *context = round_context;
        const int jobs = round_jobs, threads = round_workers + 1;
        pthread_mutex_unlock(&lock);
        seen = round;
        if (allowed) run_jobs(round, index + 1, threads, fn, context, jobs);
    }
    return NULL;
}

static void parallel(int threads, int jobs, zk_job_fn fn, void *context, int wait) {
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    if (threads > jobs) threads = jobs;
    if (threads <= 1 || in_job || (wait ? pthread_mutex_lock(&round_lock) : pthread_mutex_trylock(&round_lock)) != 0) {
        for (int j = 0; j < jobs; j++) fn(context, j);
        return;
    }
    pthread_mutex_lock(&lock);
    while (started < threads - 1) {
        pthread_t thread;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&thread, &attr, worker, (void *)(long)started) != 0) {
            pthread_attr_destroy(&attr);
            break;
        }
        pthread_attr_destroy(&attr);
        started++;
    }
    round_fn = fn;
    round_context = context;
    round_jobs = jobs;
    round_workers = threads - 1 < started ? threads - 1 : started;
    const unsigned long round = atomic_load_explicit(&generation, memory_order_relaxed) + 1;
    atomic_store_explicit(&finished, 0, memory_order_relaxed);
    const int shares = round_workers + 1;
    for (int t = 0; t < shares; t++)
        atomic_store_explicit(&next[t], tag_of(round) | (unsigned long long)((long)jobs * t / shares), memory_order_release);
    atomic_store_explicit(&generation, round, memory_order_release);
    pthread_cond_broadcast(&wake);
    pthread_mutex_unlock(&lock);

    run_jobs(round, 0, shares, fn, context, jobs);
    for (int spin = 0; atomic_load_explicit(&finished, memory_order_acquire) < jobs; spin++) {
        if (spin < SPIN) PAUSE();
        else sched_yield();
    }
    pthread_mutex_unlock(&round_lock);
}

void zk_parallel(int threads, int jobs, zk_job_fn fn, void *context) { parallel(threads, jobs, fn, context, 1); }

void zk_parallel_nowait(int threads, int jobs, zk_job_fn fn, void *context) { parallel(threads, jobs, fn, context, 0); }

// ---------------------------------------------------------------------------------------
// Scratch buffers (internal.h): per thread and slot, kept between calls, freed by a pthread
// key's destructor when the thread exits (a thread-local pointer alone leaked them whenever a
// thread that had run a forward ended: Dispatch retires idle workers).

typedef struct {
    float *data;
    size_t count;
} scratch_t;

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
static _Thread_local scratch_t *scratch;

static void scratch_free(void *slots) {
    scratch_t *s = slots;
    for (int i = 0; i < ZK_SCRATCH_SLOTS; i++) free(s[i].data);
    free(s);
}

static void scratch_init(void) { (void)pthread_key_create(&scratch_key, scratch_free); }

float *zk_scratch(int slot, size_t count) {
    if (!scratch) {
        pthread_once(&scratch_once, scratch_init);
        scratch_t *slots = calloc(ZK_SCRATCH_SLOTS, sizeof *slots);
        if (!slots) return NULL;
        if (pthread_setspecific(scratch_key, slots) != 0) {
            free(slots);
            return NULL;
        }
        scratch = slots;
    }
    scratch_t *s = &scratch[slot];
    if (s->count < count) {
        free(s->data);
        s->data = count <= (SIZE_MAX - 63) / sizeof(float) ? aligned_alloc(64, (count * sizeof(float) + 63) / 64 * 64) : NULL;
        s->count = s->data ? count : 0;
    }
    return s->data;
}

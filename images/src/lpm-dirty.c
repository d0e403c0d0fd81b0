/*
 * lpm-dirty: dirty guest memory at a chosen rate, so pre-copy has something to chase.
 *
 *   lpm-dirty [--rate MIB_PER_S] [--wss MIB] [--daemon]
 *
 * The working set (WSS) is mmap'ed and touched, then the dirtier stores 8 bytes into every
 * 4 KiB page in turn, cycling through the working set, paced to the target rate. 4 KiB is
 * QEMU's ppc64 target page, the unit its dirty bitmap tracks, even though the guest kernel
 * uses 64 KiB pages. Rate 0 = idle, rate -1 = as fast as possible.
 *
 * Run-time control: write "rate=N wss=N" to /run/lpm-dirty.ctl; the file is re-read when its
 * mtime changes (checked every 100 ms) and the working set is resized.
 * Every second /run/lpm-dirty.stat gets
 *   "rate_target=N wss=N achieved_mibps=X pages=N"  (pages: total pages dirtied so far),
 * and /run/lpm-dirty.passes the last passes over the working set, one per line,
 *   "END_MS PASS_MS STALL_MS" (END_MS: CLOCK_MONOTONIC at the pass's end; STALL_MS: the
 *   longest the dirtier waited between two of its steps in that pass, i.e. how long the
 *   partition did not run, as seen from inside: a migration's pause, a throttle),
 * so the controller can tell how much the partition slowed down during a migration.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lpm-daemon.h"

#define PAGE 4096ull
#define MIB (1024ull * 1024ull)
#define SLICE_NS 10000000ull   /* pacing granularity: 10 ms */
#define CTL_CHECK_NS 100000000ull
#define STAT_NS 1000000000ull
/* Time the partition did not run (a migration pause, an auto-converge throttle) is not made
 * up for: like a CPU-bound application, it dirties less when it runs less. Two slices leave
 * room for a late timer. */
#define MAX_DEBT_NS (2 * SLICE_NS)
#define CTL_PATH "/run/lpm-dirty.ctl"
#define STAT_PATH "/run/lpm-dirty.stat"
#define PID_PATH "/run/lpm-dirty.pid"
#define PASSES_PATH "/run/lpm-dirty.passes"
#define PASSES 256

struct pass_log {
	uint64_t end_ms[PASSES], pass_ms[PASSES], stall_ms[PASSES];
	unsigned n, next;      /* entries held, slot to write */
	uint64_t start, stall; /* the pass under way: its start and its longest stall (ns) */
	uint64_t last_step;
};

static void pass_step(struct pass_log *p, uint64_t t)
{
	if (p->last_step && t - p->last_step > p->stall)
		p->stall = t - p->last_step;
	p->last_step = t;
}

static void pass_done(struct pass_log *p, uint64_t t)
{
	if (p->start) {
		p->end_ms[p->next] = t / 1000000ull;
		p->pass_ms[p->next] = (t - p->start) / 1000000ull;
		p->stall_ms[p->next] = p->stall / 1000000ull;
		p->next = (p->next + 1) % PASSES;
		if (p->n < PASSES)
			p->n++;
	}
	p->start = t;
	p->stall = 0;
}

static void pass_write(const struct pass_log *p)
{
	static char text[PASSES * 64];
	size_t off = 0;
	for (unsigned i = 0; i < p->n; i++) {
		unsigned k = (p->next + PASSES - p->n + i) % PASSES;
		off += (size_t)snprintf(text + off, sizeof(text) - off,
					"%" PRIu64 " %" PRIu64 " %" PRIu64 "\n", p->end_ms[k],
					p->pass_ms[k], p->stall_ms[k]);
	}
	text[off] = 0;
	write_file_atomic(PASSES_PATH, text);
}

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void sleep_until(uint64_t t)
{
	struct timespec ts = { (time_t)(t / 1000000000ull), (long)(t % 1000000000ull) };
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR && !stop_requested)
		;
}

struct wset {
	unsigned char *mem;
	uint64_t pages;
	uint64_t cursor;
};

/* (Re)allocate the working set and touch every page so it is resident before pacing starts. */
static int wset_resize(struct wset *w, long long wss_mib)
{
	if (w->mem)
		munmap(w->mem, w->pages * PAGE);
	w->mem = NULL;
	w->pages = 0;
	w->cursor = 0;
	if (wss_mib <= 0)
		return 0;
	size_t len = (size_t)wss_mib * MIB;
	void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED) {
		fprintf(stderr, "lpm-dirty: cannot map %lld MiB: %s\n", wss_mib, strerror(errno));
		return -1;
	}
	w->mem = m;
	w->pages = len / PAGE;
	for (uint64_t p = 0; p < w->pages; p++)
		w->mem[p * PAGE] = 1;
	return 0;
}

/* Store 8 non-zero bytes (non-zero so QEMU's zero-page detection cannot skip the page);
 * a wrap of the cursor ends a pass over the working set. */
static inline void dirty_pages(struct wset *w, uint64_t n, uint64_t *stamp,
			       struct pass_log *log)
{
	for (uint64_t i = 0; i < n; i++) {
		volatile uint64_t *slot = (volatile uint64_t *)(w->mem + w->cursor * PAGE);
		*slot = ++*stamp | 1;
		if (++w->cursor == w->pages) {
			w->cursor = 0;
			pass_done(log, now_ns());
		}
	}
}

static int parse_ll(const char *s, long long *out)
{
	char *end = NULL;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || end == s)
		return -1;
	*out = v;
	return 0;
}

/* Apply "rate=N wss=N" (either key may be missing) from the control file. */
static void read_ctl(long long *rate, long long *wss)
{
	char text[256] = { 0 };
	FILE *f = fopen(CTL_PATH, "r");
	if (!f)
		return;
	size_t n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = '\0';
	for (char *tok = strtok(text, " \t\n"); tok; tok = strtok(NULL, " \t\n")) {
		long long v;
		if (strncmp(tok, "rate=", 5) == 0 && parse_ll(tok + 5, &v) == 0 && v >= -1)
			*rate = v;
		else if (strncmp(tok, "wss=", 4) == 0 && parse_ll(tok + 4, &v) == 0 && v >= 0)
			*wss = v;
	}
}

static int usage(void)
{
	fprintf(stderr, "usage: lpm-dirty [--rate MIB_PER_S] [--wss MIB] [--daemon]\n"
			"  rate 0 = idle, -1 = as fast as possible; control: " CTL_PATH "\n");
	return 2;
}

int main(int argc, char **argv)
{
	long long rate = 100, wss = 64;
	int want_daemon = 0;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--rate") == 0 && i + 1 < argc) {
			if (parse_ll(argv[++i], &rate) || rate < -1)
				return usage();
		} else if (strcmp(argv[i], "--wss") == 0 && i + 1 < argc) {
			if (parse_ll(argv[++i], &wss) || wss < 0)
				return usage();
		} else if (strcmp(argv[i], "--daemon") == 0) {
			want_daemon = 1;
		} else {
			return usage();
		}
	}
	struct wset w = { 0 };
	if (wset_resize(&w, wss) < 0)
		return 1;
	if (want_daemon)
		daemonize("lpm-dirty", PID_PATH);

	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);

	struct stat st;
	struct timespec ctl_mtime = { 0, 0 };
	if (stat(CTL_PATH, &st) == 0)
		ctl_mtime = st.st_mtim; /* a stale control file from an earlier run is not an order */

	uint64_t stamp = 0, total = 0, stat_pages = 0;
	uint64_t t = now_ns();
	uint64_t next_ctl = t + CTL_CHECK_NS, next_stat = t, stat_start = t;
	double owed = 0.0; /* pages due but not yet dirtied */
	uint64_t last_slice = t;
	char text[200];
	struct pass_log log;
	memset(&log, 0, sizeof(log));

	while (!stop_requested) {
		t = now_ns();
		if (t >= next_ctl) {
			next_ctl = t + CTL_CHECK_NS;
			if (stat(CTL_PATH, &st) == 0 &&
			    (st.st_mtim.tv_sec != ctl_mtime.tv_sec ||
			     st.st_mtim.tv_nsec != ctl_mtime.tv_nsec)) {
				ctl_mtime = st.st_mtim;
				long long new_wss = wss;
				read_ctl(&rate, &new_wss);
				if (new_wss != wss) {
					if (wset_resize(&w, new_wss) == 0)
						wss = new_wss;
					else
						wset_resize(&w, wss);
				}
				owed = 0.0;
				/* a new setting starts a new, whole pass: from the first page, or the
				 * first pass after it would be a part of one */
				w.cursor = 0;
				log.start = 0;
				/* passes under the old setting are not comparable with the new ones */
				log.n = log.next = 0;
			}
		}
		if (t >= next_stat) {
			double secs = (double)(t - stat_start) / 1e9;
			double mibps = secs > 0 ? (double)stat_pages * PAGE / MIB / secs : 0.0;
			snprintf(text, sizeof(text),
				 "rate_target=%lld wss=%lld achieved_mibps=%.1f pages=%" PRIu64 "\n", rate,
				 wss, mibps, total);
			write_file_atomic(STAT_PATH, text);
			pass_write(&log);
			stat_pages = 0;
			stat_start = t;
			next_stat = t + STAT_NS;
		}
		if (w.pages == 0 || rate == 0) {
			owed = 0.0;
			last_slice = t;
			log.start = log.last_step = 0; /* idle: no pass runs */
			sleep_until(t + CTL_CHECK_NS < next_stat ? t + CTL_CHECK_NS : next_stat);
			continue;
		}
		if (rate < 0) {
			/* unthrottled: one pass over at most 4096 pages, then look at the clock again */
			uint64_t n = w.pages < 4096 ? w.pages : 4096;
			pass_step(&log, t);
			if (!log.start)
				log.start = t;
			dirty_pages(&w, n, &stamp, &log);
			total += n;
			stat_pages += n;
			continue;
		}
		uint64_t elapsed = t - last_slice;
		if (elapsed > MAX_DEBT_NS)
			elapsed = MAX_DEBT_NS;
		last_slice = t;
		owed += (double)rate * MIB / PAGE * (double)elapsed / 1e9;
		uint64_t n = (uint64_t)owed;
		pass_step(&log, t);
		if (!log.start)
			log.start = t;
		if (n > 0) {
			dirty_pages(&w, n, &stamp, &log);
			owed -= (double)n;
			total += n;
			stat_pages += n;
		}
		sleep_until(t + SLICE_NS);
	}
	if (want_daemon)
		unlink(PID_PATH);
	return 0;
}

/*
 * lpm-disk: sequence-numbered, checksummed records on a raw block device, to prove that no
 * acknowledged write is lost or reordered across a live partition migration.
 *
 *   lpm-disk write DEVICE [--interval-ms N] [--count N] [--daemon]
 *   lpm-disk verify DEVICE [--scan-mib N | --full]
 *   lpm-disk clear DEVICE [--mib N]
 *
 * Record i lives at byte offset i*512 and is 512 bytes long (little endian):
 *   0  char[8]  magic "LPMREC01"
 *   8  u64      seq (== i)
 *   16 u64      timestamp, CLOCK_MONOTONIC nanoseconds
 *   24 u32      crc32 (IEEE, as zlib) over bytes 0..23
 *   28          zero padding to 512
 *
 * Writes use O_DIRECT|O_DSYNC, so a record counts as written only once the device has it.
 *
 * verify stops after 16 MiB of consecutive empty records (32768 lost writes in a row cannot be
 * a gap, and stale records of an older, longer run beyond a `clear` must not count);
 * --full scans the whole device, --scan-mib N at most the first N MiB.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lpm-daemon.h"

#define REC_SIZE 512
#define MAGIC "LPMREC01"
#define ALIGN 4096
#define SCAN_CHUNK (1024 * 1024)
#define EMPTY_STOP_RECORDS (16ull * 1024 * 1024 / REC_SIZE)
#define STAT_PATH "/run/lpm-disk.stat"
#define PID_PATH "/run/lpm-disk.pid"

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static uint32_t crc_table[256];

static void crc32_init(void)
{
	for (uint32_t n = 0; n < 256; n++) {
		uint32_t c = n;
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
		crc_table[n] = c;
	}
}

static uint32_t crc32(const unsigned char *p, size_t len)
{
	uint32_t c = 0xFFFFFFFFu;
	while (len--)
		c = crc_table[(c ^ *p++) & 0xFF] ^ (c >> 8);
	return c ^ 0xFFFFFFFFu;
}

static void put_le64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static void put_le32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le64(const unsigned char *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static uint32_t get_le32(const unsigned char *p)
{
	uint32_t v = 0;
	for (int i = 3; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

enum rec_state { REC_VALID, REC_EMPTY, REC_BAD };

/* Classify the record at index idx: valid, empty/foreign (no magic), or bad (magic but wrong
 * CRC or a seq that does not match its position). */
static enum rec_state classify(const unsigned char *rec, uint64_t idx)
{
	if (memcmp(rec, MAGIC, 8) != 0)
		return REC_EMPTY;
	if (crc32(rec, 24) != get_le32(rec + 24))
		return REC_BAD;
	if (get_le64(rec + 8) != idx)
		return REC_BAD;
	return REC_VALID;
}

static void die(const char *what, const char *dev)
{
	fprintf(stderr, "lpm-disk: %s %s: %s\n", what, dev, strerror(errno));
	exit(2);
}

static uint64_t device_size(int fd, const char *dev)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		die("cannot stat", dev);
	if (S_ISBLK(st.st_mode)) {
		uint64_t size = 0;
		if (ioctl(fd, BLKGETSIZE64, &size) < 0)
			die("cannot read the size of", dev);
		return size;
	}
	return (uint64_t)st.st_size;
}

static void *aligned_buffer(size_t size)
{
	void *buf = NULL;
	if (posix_memalign(&buf, ALIGN, size) != 0) {
		fprintf(stderr, "lpm-disk: out of memory\n");
		exit(2);
	}
	memset(buf, 0, size);
	return buf;
}

/* Read [off, off+len) with O_DIRECT; returns bytes read (short at the end of the device). */
static size_t read_chunk(int fd, unsigned char *buf, uint64_t off, size_t len, const char *dev)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = pread(fd, buf + done, len - done, (off_t)(off + done));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("cannot read", dev);
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return done;
}

static int open_device(const char *dev, int flags)
{
	int fd = open(dev, flags | O_DIRECT);
	if (fd < 0 && errno == EINVAL)
		fd = open(dev, flags); /* tmpfs files (tests) have no O_DIRECT */
	if (fd < 0)
		die("cannot open", dev);
	return fd;
}

/* Index of the first record that is not valid in place: where appending continues. */
static uint64_t first_invalid(int fd, uint64_t nrec, const char *dev)
{
	unsigned char *buf = aligned_buffer(SCAN_CHUNK);
	uint64_t idx = 0;
	while (idx < nrec) {
		size_t got = read_chunk(fd, buf, idx * REC_SIZE, SCAN_CHUNK, dev);
		size_t n = got / REC_SIZE;
		if (n == 0)
			break;
		for (size_t i = 0; i < n && idx < nrec; i++, idx++) {
			if (classify(buf + i * REC_SIZE, idx) != REC_VALID) {
				free(buf);
				return idx;
			}
		}
	}
	free(buf);
	return idx;
}

static int usage(void)
{
	fprintf(stderr,
		"usage: lpm-disk write DEVICE [--interval-ms N] [--count N] [--daemon]\n"
		"       lpm-disk verify DEVICE [--scan-mib N | --full]\n"
		"       lpm-disk clear DEVICE [--mib N]\n");
	return 2;
}

static long long parse_num(const char *opt, const char *val)
{
	char *end = NULL;
	if (!val) {
		fprintf(stderr, "lpm-disk: %s needs a value\n", opt);
		exit(2);
	}
	long long v = strtoll(val, &end, 10);
	if (*val == '\0' || *end != '\0' || v < 0) {
		fprintf(stderr, "lpm-disk: %s: not a number: %s\n", opt, val);
		exit(2);
	}
	return v;
}

static int cmd_write(const char *dev, int argc, char **argv)
{
	long long interval_ms = 20, count = -1;
	int want_daemon = 0;
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--interval-ms") == 0)
			interval_ms = parse_num(argv[i], argv[i + 1]), i++;
		else if (strcmp(argv[i], "--count") == 0)
			count = parse_num(argv[i], argv[i + 1]), i++;
		else if (strcmp(argv[i], "--daemon") == 0)
			want_daemon = 1;
		else
			return usage();
	}
	int fd = open_device(dev, O_RDWR | O_DSYNC);
	uint64_t nrec = device_size(fd, dev) / REC_SIZE;
	uint64_t seq = first_invalid(fd, nrec, dev);
	if (want_daemon)
		daemonize("lpm-disk", PID_PATH);

	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);

	unsigned char *rec = aligned_buffer(REC_SIZE);
	uint64_t start_seq = seq;
	long long written = 0;
	int rc = 0;
	char text[160];
	uint64_t next = now_ns();
	while (!stop_requested && (count < 0 || written < count)) {
		if (seq >= nrec) {
			fprintf(stderr, "lpm-disk: %s is full after %" PRIu64 " records\n", dev, seq);
			rc = 1;
			break;
		}
		memset(rec, 0, REC_SIZE);
		memcpy(rec, MAGIC, 8);
		put_le64(rec + 8, seq);
		put_le64(rec + 16, now_ns());
		put_le32(rec + 24, crc32(rec, 24));
		ssize_t n = pwrite(fd, rec, REC_SIZE, (off_t)(seq * REC_SIZE));
		if (n < 0 && errno == EINTR)
			continue;
		if (n != REC_SIZE) {
			fprintf(stderr, "lpm-disk: write of record %" PRIu64 " failed: %s\n", seq,
				n < 0 ? strerror(errno) : "short write");
			rc = 1;
			break;
		}
		written++;
		snprintf(text, sizeof(text), "last_seq=%" PRIu64 " written=%lld first_seq=%" PRIu64 "\n",
			 seq, written, start_seq);
		write_file_atomic(STAT_PATH, text);
		seq++;
		if (count >= 0 && written >= count)
			break;
		/* Pace on an absolute schedule; after a long stall (migration) do not burst. */
		next += (uint64_t)interval_ms * 1000000ull;
		uint64_t now = now_ns();
		if (next > now) {
			struct timespec ts = { (time_t)(next / 1000000000ull),
					       (long)(next % 1000000000ull) };
			clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
		} else {
			next = now;
		}
	}
	close(fd);
	if (written == 0) {
		snprintf(text, sizeof(text), "last_seq=none written=0 first_seq=%" PRIu64 "\n",
			 start_seq);
		write_file_atomic(STAT_PATH, text);
	}
	if (want_daemon)
		unlink(PID_PATH);
	return rc;
}

static int cmd_verify(const char *dev, int argc, char **argv)
{
	long long scan_mib = -1;
	int full = 0;
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--scan-mib") == 0)
			scan_mib = parse_num(argv[i], argv[i + 1]), i++;
		else if (strcmp(argv[i], "--full") == 0)
			full = 1;
		else
			return usage();
	}
	int fd = open_device(dev, O_RDONLY);
	uint64_t size = device_size(fd, dev);
	if (scan_mib >= 0 && (uint64_t)scan_mib * 1024 * 1024 < size)
		size = (uint64_t)scan_mib * 1024 * 1024;
	uint64_t nrec = size / REC_SIZE;
	unsigned char *buf = aligned_buffer(SCAN_CHUNK);
	uint64_t records = 0, bad = 0, gaps = 0, holes_pending = 0;
	int64_t first = -1, last = -1;
	uint64_t idx = 0;
	while (idx < nrec && (full || holes_pending < EMPTY_STOP_RECORDS)) {
		size_t got = read_chunk(fd, buf, idx * REC_SIZE, SCAN_CHUNK, dev);
		size_t n = got / REC_SIZE;
		if (n == 0)
			break;
		for (size_t i = 0; i < n && idx < nrec; i++, idx++) {
			switch (classify(buf + i * REC_SIZE, idx)) {
			case REC_VALID:
				records++;
				if (first < 0)
					first = (int64_t)idx;
				last = (int64_t)idx;
				/* empty records before a valid one were lost writes */
				gaps += holes_pending;
				holes_pending = 0;
				break;
			case REC_EMPTY:
				holes_pending++;
				break;
			case REC_BAD:
				bad++;
				break;
			}
		}
	}
	free(buf);
	close(fd);
	if (first < 0)
		printf("records=0 first=- last=- gaps=0 bad=%" PRIu64 "\n", bad);
	else
		printf("records=%" PRIu64 " first=%" PRId64 " last=%" PRId64 " gaps=%" PRIu64
		       " bad=%" PRIu64 "\n",
		       records, first, last, gaps, bad);
	return (gaps == 0 && bad == 0) ? 0 : 1;
}

static int cmd_clear(const char *dev, int argc, char **argv)
{
	long long mib = 64;
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--mib") == 0)
			mib = parse_num(argv[i], argv[i + 1]), i++;
		else
			return usage();
	}
	int fd = open_device(dev, O_WRONLY | O_DSYNC);
	uint64_t size = device_size(fd, dev);
	uint64_t want = (uint64_t)mib * 1024 * 1024;
	if (want > size)
		want = size;
	unsigned char *buf = aligned_buffer(SCAN_CHUNK);
	uint64_t off = 0;
	while (off < want) {
		size_t len = want - off < SCAN_CHUNK ? (size_t)(want - off) : SCAN_CHUNK;
		ssize_t n = pwrite(fd, buf, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			die("cannot write", dev);
		off += (uint64_t)n;
	}
	free(buf);
	close(fd);
	printf("cleared=%" PRIu64 "\n", off);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 3)
		return usage();
	crc32_init();
	if (strcmp(argv[1], "write") == 0)
		return cmd_write(argv[2], argc - 3, argv + 3);
	if (strcmp(argv[1], "verify") == 0)
		return cmd_verify(argv[2], argc - 3, argv + 3);
	if (strcmp(argv[1], "clear") == 0)
		return cmd_clear(argv[2], argc - 3, argv + 3);
	return usage();
}

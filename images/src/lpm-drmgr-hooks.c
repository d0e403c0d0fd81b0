/*
 * lpm-drmgr-hooks: run the partition's migration hooks the way powerpc-utils' drmgr does.
 *
 *   lpm-drmgr-hooks PHASE [--dir DIR] [--timeout SECONDS] [--lock FILE] [--sigmask drmgr|clear]
 *
 * PHASE is check, undocheck, pre or post. Every hook of DIR (default /etc/drmgr.d/pmig) runs,
 * one after the other, and stdout gets one JSON object per hook, as it finishes:
 *
 *   {"hook":"10-app","path":"/etc/drmgr.d/pmig/10-app","rc":0,"signal":null,"seconds":0.012,
 *    "stdout":"...","stderr":"...","stdout_truncated":false,"stderr_truncated":false,
 *    "timed_out":false,"not_run":false}
 *
 * then one summary object:
 *
 *   {"phase":"check","dir":"/etc/drmgr.d/pmig","hooks":2,"failed":1,"timed_out":0,
 *    "not_run":0,"seconds":0.031,"skipped":[{"name":"README","reason":"not executable"}]}
 *
 * --timeout bounds the whole phase, like drmgr -w bounds the drmgr command: the hook running
 * when it passes is killed with its process group (rc -1, timed_out), later hooks are reported
 * not_run. --sigmask drmgr runs hooks with the signals drmgr blocks still blocked (default
 * clear). --lock is the file drmgr locks while it runs ("" for none).
 *
 * Exit status: 1 when PHASE is check and a hook failed (the migration is refused), 2 when the
 * runner itself could not do its job (usage, unreadable DIR, fork/pipe failure), else 0: the
 * exit codes of undocheck, pre and post hooks are reported but never fatal.
 *
 * What is a hook, and how it runs, follows run_hooks()/run_one_hook() in powerpc-utils
 * src/drmgr/common.c; docs/hooks.md lists the rules and every place this runner differs.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_DIR "/etc/drmgr.d/pmig"
/* drmgr's DR_LOCK_FILE (src/drmgr/dr.h): held while drmgr runs, so hooks see it taken. */
#define DEFAULT_LOCK "/var/lock/dr_config_lock"
/* Per stream; past it the hook's output is read and dropped so the hook never blocks. */
#define CAPTURE_MAX (64 * 1024)

static const char *const phases[] = { "check", "undocheck", "pre", "post" };

struct capture {
	unsigned char *buf;
	size_t len;
	size_t total;
	int fd;
};

struct result {
	int rc;
	int signal;        /* 0 unless the hook died of a signal */
	int timed_out;
	int not_run;       /* the phase deadline passed before the hook's turn */
	int runner_error;  /* fork/pipe failed: not the hook's fault */
	double seconds;
	struct capture out, err;
};

struct skipped {
	char *name;
	const char *reason;
};

static int sigchld_pipe[2] = { -1, -1 };

static void on_sigchld(int sig)
{
	(void)sig;
	int saved = errno;
	/* Wakes poll(); a full pipe already means "something exited". */
	(void)!write(sigchld_pipe[1], "c", 1);
	errno = saved;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die_usage(const char *msg)
{
	if (msg)
		fprintf(stderr, "lpm-drmgr-hooks: %s\n", msg);
	fprintf(stderr, "usage: lpm-drmgr-hooks check|undocheck|pre|post [--dir DIR] "
		"[--timeout SECONDS] [--lock FILE] [--sigmask drmgr|clear]\n");
	exit(2);
}

/* ---- JSON ------------------------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at p (1..4), or 0 if the bytes there are not one. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
	unsigned char c = p[0];
	size_t len;
	uint32_t cp;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	/* overlong forms, UTF-16 surrogates and > U+10FFFF are not valid UTF-8 */
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/*
 * A JSON string. Hook output is arbitrary bytes but JSON text is Unicode: valid UTF-8 passes
 * through, every byte that is not part of valid UTF-8 becomes U+FFFD (as Python's
 * errors="replace" would), control characters are escaped.
 */
static void json_str(FILE *f, const unsigned char *s, size_t n)
{
	fputc('"', f);
	for (size_t i = 0; i < n;) {
		unsigned char c = s[i];
		size_t len = utf8_len(s + i, n - i);
		if (len == 0) {
			fputs("\\ufffd", f);
			i++;
			continue;
		}
		if (len > 1) {
			fwrite(s + i, 1, len, f);
			i += len;
			continue;
		}
		switch (c) {
		case '"': fputs("\\\"", f); break;
		case '\\': fputs("\\\\", f); break;
		case '\n': fputs("\\n", f); break;
		case '\r': fputs("\\r", f); break;
		case '\t': fputs("\\t", f); break;
		case '\b': fputs("\\b", f); break;
		case '\f': fputs("\\f", f); break;
		default:
			if (c < 0x20)
				fprintf(f, "\\u%04x", c);
			else
				fputc(c, f);
		}
		i++;
	}
	fputc('"', f);
}

static void json_cstr(FILE *f, const char *s)
{
	json_str(f, (const unsigned char *)s, strlen(s));
}

/* ---- choosing the hooks ------------------------------------------------------------------ */

/*
 * drmgr's rule, in two steps. run_hooks() scans with is_file_or_link(): only entries whose
 * d_type is DT_REG or DT_LNK (so dotfiles count, directories and FIFOs do not). Then it
 * stat()s the name, following symlinks, and runs it only if that is a regular file with the
 * owner's execute bit (S_IXUSR, not access(X_OK)). Returns NULL for a hook, else why not.
 */
static const char *why_not_hook(const char *path, const struct dirent *de, char *errbuf,
				size_t errlen)
{
	unsigned char type = de->d_type;
	struct stat st;
	if (type == DT_UNKNOWN) {
		/* drmgr would skip it; lpmlab looks (docs/hooks.md, differences) */
		if (lstat(path, &st) == 0)
			type = S_ISREG(st.st_mode) ? DT_REG : S_ISLNK(st.st_mode) ? DT_LNK : DT_DIR;
	}
	if (type == DT_DIR)
		return "directory";
	if (type != DT_REG && type != DT_LNK)
		return "not a regular file or symlink";
	if (stat(path, &st) != 0) {
		snprintf(errbuf, errlen, "cannot stat: %s", strerror(errno));
		return errbuf;
	}
	if (!S_ISREG(st.st_mode))
		return type == DT_LNK ? "symlink to something that is not a regular file"
				      : "not a regular file";
	if (!(st.st_mode & S_IXUSR))
		return "not executable (no owner execute bit)";
	return NULL;
}

/* ---- running one hook -------------------------------------------------------------------- */

/* The signals drmgr leaves unblocked (sig_setup() in common.c); hooks inherit the rest
 * blocked, because drmgr forks and execs them after dr_init() blocked them. */
static void drmgr_sigmask(sigset_t *set)
{
	static const int open_sigs[] = { SIGBUS, SIGXFSZ, SIGSEGV, SIGTRAP, SIGILL, SIGFPE,
					 SIGSYS, SIGPIPE, SIGVTALRM, SIGALRM, SIGQUIT, SIGABRT };
	sigfillset(set);
	for (size_t i = 0; i < sizeof(open_sigs) / sizeof(open_sigs[0]); i++)
		sigdelset(set, open_sigs[i]);
}

static void child_exec(const char *path, const char *phase, int out_w, int err_w,
		       int drmgr_mask)
{
	/* Own process group, so a timeout kills the hook and everything it started. */
	setpgid(0, 0);
	int nul = open("/dev/null", O_RDONLY);
	if (nul < 0 || dup2(nul, 0) < 0 || dup2(out_w, 1) < 0 || dup2(err_w, 2) < 0)
		_exit(255);
	/* Only 0, 1, 2 reach the hook, as under drmgr (its log and lock fds are O_CLOEXEC). */
	long maxfd = sysconf(_SC_OPEN_MAX);
	for (int fd = 3; fd < (maxfd > 0 && maxfd < 65536 ? maxfd : 65536); fd++)
		close(fd);
	if (chdir("/") != 0) {
		dprintf(2, "lpm-drmgr-hooks: cannot chdir to /: %s\n", strerror(errno));
		_exit(255);
	}
	/* Whatever the SSH session left ignored is not the hook's business. */
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			signal(sig, SIG_DFL);
	sigset_t mask;
	if (drmgr_mask)
		drmgr_sigmask(&mask);
	else
		sigemptyset(&mask);
	sigprocmask(SIG_SETMASK, &mask, NULL);

	/* Exactly run_one_hook()'s environment: clearenv(), then these four, in this order. */
	char phase_var[32];
	snprintf(phase_var, sizeof(phase_var), "PHASE=%s", phase);
	char *const envp[] = { "DRC_TYPE=pmig", "DRC_COUNT=0", "ACTION=migrate", phase_var, NULL };
	char *const argv[] = { (char *)path, NULL };
	execve(path, argv, envp);
	/* drmgr exits 255 here too; execve (like drmgr's execl) never falls back to /bin/sh */
	dprintf(2, "lpm-drmgr-hooks: cannot exec %s: %s\n", path, strerror(errno));
	_exit(255);
}

/* Read what is there; returns 0 at EOF (fd closed), 1 otherwise. */
static int drain(struct capture *c)
{
	unsigned char tmp[16384];
	for (;;) {
		ssize_t n = read(c->fd, tmp, sizeof(tmp));
		if (n > 0) {
			size_t room = CAPTURE_MAX - c->len;
			size_t keep = (size_t)n < room ? (size_t)n : room;
			memcpy(c->buf + c->len, tmp, keep);
			c->len += keep;
			c->total += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 1;
		close(c->fd);
		c->fd = -1;
		return 0;
	}
}

static void clear_sigchld_pipe(void)
{
	char buf[64];
	while (read(sigchld_pipe[0], buf, sizeof(buf)) > 0)
		;
}

static int make_pipe(int p[2])
{
	if (pipe2(p, O_CLOEXEC) != 0)
		return -1;
	/* our end only: the hook's end stays blocking like any ordinary pipe */
	return fcntl(p[0], F_SETFL, O_NONBLOCK);
}

/*
 * Run one hook until it exits or the deadline (0: none) passes. Like drmgr, we wait for the
 * hook process itself, not for whatever it left running: once it is reaped, what is already
 * in the pipes is read and the pipes are closed, so a daemon started by a post hook cannot
 * hold the phase open.
 */
static void run_hook(const char *path, const char *phase, double deadline, int drmgr_mask,
		     struct result *r)
{
	int po[2] = { -1, -1 }, pe[2] = { -1, -1 };
	int saved_errno = 0;
	double t0 = now_s();
	r->out.buf = malloc(CAPTURE_MAX);
	r->err.buf = malloc(CAPTURE_MAX);
	if (!r->out.buf || !r->err.buf || make_pipe(po) != 0 || make_pipe(pe) != 0) {
		saved_errno = errno;
		r->runner_error = 1;
		r->rc = -1;
		goto fail;
	}
	fflush(NULL);
	clear_sigchld_pipe();
	pid_t pid = fork();
	if (pid < 0) {
		saved_errno = errno;
		r->runner_error = 1;
		r->rc = -1;
		goto fail;
	}
	if (pid == 0)
		child_exec(path, phase, po[1], pe[1], drmgr_mask);
	setpgid(pid, pid); /* also here: no window where a kill(-pid) would miss */
	close(po[1]);
	close(pe[1]);
	r->out.fd = po[0];
	r->err.fd = pe[0];

	int status = 0, reaped = 0;
	while (!reaped) {
		int timeout_ms = -1;
		if (deadline > 0) {
			double left = deadline - now_s();
			if (left <= 0 && waitpid(pid, &status, WNOHANG) == pid) {
				reaped = 1; /* it made it just in time */
				break;
			}
			if (left <= 0) {
				kill(-pid, SIGKILL);
				r->timed_out = 1;
				while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
					;
				reaped = 1;
				break;
			}
			/* wake up at least every minute: a days-long --timeout must not overflow */
			timeout_ms = left > 60 ? 60000 : (int)(left * 1000) + 1;
		}
		struct pollfd fds[3];
		int nfds = 0;
		fds[nfds++] = (struct pollfd){ .fd = sigchld_pipe[0], .events = POLLIN };
		if (r->out.fd >= 0)
			fds[nfds++] = (struct pollfd){ .fd = r->out.fd, .events = POLLIN };
		if (r->err.fd >= 0)
			fds[nfds++] = (struct pollfd){ .fd = r->err.fd, .events = POLLIN };
		if (poll(fds, (nfds_t)nfds, timeout_ms) < 0 && errno != EINTR) {
			/* cannot watch any more: wait for the hook the way drmgr does */
			while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
				;
			reaped = 1;
			break;
		}
		if (r->out.fd >= 0)
			drain(&r->out);
		if (r->err.fd >= 0)
			drain(&r->err);
		clear_sigchld_pipe();
		pid_t w = waitpid(pid, &status, WNOHANG);
		if (w == pid)
			reaped = 1;
	}
	if (r->out.fd >= 0 && drain(&r->out))
		close(r->out.fd);
	if (r->err.fd >= 0 && drain(&r->err))
		close(r->err.fd);
	r->out.fd = r->err.fd = -1;

	if (r->timed_out) {
		r->rc = -1;
	} else if (WIFSIGNALED(status)) {
		/* drmgr counts a hook killed by a signal as failed (rc 1); we say which signal */
		r->signal = WTERMSIG(status);
		r->rc = 128 + r->signal;
	} else {
		r->rc = WEXITSTATUS(status);
	}
	r->seconds = now_s() - t0;
	return;
fail:
	for (int i = 0; i < 2; i++) {
		if (po[i] >= 0)
			close(po[i]);
		if (pe[i] >= 0)
			close(pe[i]);
	}
	r->out.fd = r->err.fd = -1;
	{
		const char *msg = strerror(saved_errno);
		if (r->err.buf) {
			int n = snprintf((char *)r->err.buf, CAPTURE_MAX,
					 "lpm-drmgr-hooks: cannot start the hook: %s\n", msg);
			r->err.len = r->err.total = n > 0 ? (size_t)n : 0;
		}
	}
	r->seconds = now_s() - t0;
}

static void print_result(const char *name, const char *path, const struct result *r)
{
	printf("{\"hook\":");
	json_cstr(stdout, name);
	printf(",\"path\":");
	json_cstr(stdout, path);
	printf(",\"rc\":%d,\"signal\":", r->rc);
	if (r->signal)
		printf("%d", r->signal);
	else
		printf("null");
	printf(",\"seconds\":%.3f,\"stdout\":", r->seconds);
	json_str(stdout, r->out.buf ? r->out.buf : (const unsigned char *)"", r->out.len);
	printf(",\"stderr\":");
	json_str(stdout, r->err.buf ? r->err.buf : (const unsigned char *)"", r->err.len);
	printf(",\"stdout_truncated\":%s,\"stderr_truncated\":%s,\"stdout_bytes\":%zu,"
	       "\"stderr_bytes\":%zu,\"timed_out\":%s,\"not_run\":%s}\n",
	       r->out.total > r->out.len ? "true" : "false",
	       r->err.total > r->err.len ? "true" : "false", r->out.total, r->err.total,
	       r->timed_out ? "true" : "false", r->not_run ? "true" : "false");
	/* one line per hook as it finishes: the controller (and a human) can follow along */
	fflush(stdout);
}

/* drmgr's dr_lock(): an fcntl write lock on DR_LOCK_FILE, retried each second until the
 * deadline. A lock file we cannot open (no /var/lock) is no reason to refuse the phase. */
static int take_lock(const char *path, double deadline)
{
	if (!path || !*path)
		return -1;
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0444);
	if (fd < 0)
		return -1;
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	while (fcntl(fd, F_SETLK, &fl) != 0) {
		if ((errno != EACCES && errno != EAGAIN) || (deadline > 0 && now_s() >= deadline)) {
			fprintf(stderr, "lpm-drmgr-hooks: %s: %s\n", path, strerror(errno));
			close(fd);
			return -2;
		}
		sleep(1);
	}
	return fd;
}

int main(int argc, char **argv)
{
	const char *phase = NULL, *dir_arg = DEFAULT_DIR, *lock = DEFAULT_LOCK;
	double timeout = 0;
	/*
	 * Default "clear": under drmgr's mask, `sleep 1 & wait` never returns in busybox ash
	 * (this image's /bin/sh), while bash copes, so copying the mask by default would hang
	 * in the lab hooks that work on a RHEL/SLES partition. --sigmask drmgr copies it.
	 */
	int drmgr_mask = 0;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			printf("usage: lpm-drmgr-hooks check|undocheck|pre|post [--dir DIR] "
			       "[--timeout SECONDS] [--lock FILE] [--sigmask drmgr|clear]\n");
			return 0;
		} else if (!strcmp(a, "--dir") || !strcmp(a, "--timeout") || !strcmp(a, "--lock") ||
			   !strcmp(a, "--sigmask")) {
			if (i + 1 >= argc)
				die_usage("option needs a value");
			const char *v = argv[++i];
			if (!strcmp(a, "--dir")) {
				dir_arg = v;
			} else if (!strcmp(a, "--lock")) {
				lock = v;
			} else if (!strcmp(a, "--sigmask")) {
				if (!strcmp(v, "drmgr"))
					drmgr_mask = 1;
				else if (!strcmp(v, "clear"))
					drmgr_mask = 0;
				else
					die_usage("--sigmask is drmgr or clear");
			} else {
				char *end;
				errno = 0;
				timeout = strtod(v, &end);
				if (errno || end == v || *end || timeout < 0)
					die_usage("--timeout needs a number of seconds (0: none)");
			}
		} else if (a[0] == '-') {
			die_usage("unknown option");
		} else if (phase) {
			die_usage("one phase only");
		} else {
			phase = a;
		}
	}
	int known = 0;
	for (size_t i = 0; i < sizeof(phases) / sizeof(phases[0]); i++)
		known |= phase && !strcmp(phase, phases[i]);
	if (!known)
		die_usage(phase ? "the phase is check, undocheck, pre or post" : "no phase");

	double t0 = now_s();
	/* like drmgr -w: one deadline for the whole run, not a budget per hook */
	double deadline = timeout > 0 ? t0 + timeout : 0;

	char dir[4096];
	snprintf(dir, sizeof(dir), "%s", dir_arg);
	for (size_t n = strlen(dir); n > 1 && dir[n - 1] == '/'; n--)
		dir[n - 1] = '\0';

	if (pipe2(sigchld_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
		perror("lpm-drmgr-hooks: pipe");
		return 2;
	}
	struct sigaction sa = { .sa_handler = on_sigchld, .sa_flags = SA_RESTART };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGCHLD, &sa, NULL);
	/* a controller that hangs up must not kill us between hooks with SIGPIPE mid-line */
	signal(SIGPIPE, SIG_IGN);

	int lock_fd = take_lock(lock, deadline);
	if (lock_fd == -2)
		return 2;

	struct dirent **names = NULL;
	int n = scandir(dir, &names, NULL, versionsort);
	int broken = 0;
	if (n < 0) {
		/* drmgr: no /etc/drmgr.d or no pmig/ in it means no hooks, not an error */
		if (errno != ENOENT && errno != ENOTDIR) {
			fprintf(stderr, "lpm-drmgr-hooks: cannot read %s: %s\n", dir, strerror(errno));
			broken = 1;
		}
		n = 0;
	}

	struct skipped *skipped = calloc((size_t)n + 1, sizeof(*skipped));
	char (*errbufs)[160] = calloc((size_t)n + 1, sizeof(*errbufs));
	if (!skipped || !errbufs) {
		perror("lpm-drmgr-hooks");
		return 2;
	}
	int nskipped = 0, nhooks = 0, nfailed = 0, ntimed = 0, nnotrun = 0;
	for (int i = 0; i < n; i++) {
		const char *name = names[i]->d_name;
		if (!strcmp(name, ".") || !strcmp(name, ".."))
			continue;
		char path[8192];
		snprintf(path, sizeof(path), "%s/%s", dir, name);
		const char *why = why_not_hook(path, names[i], errbufs[i], sizeof(errbufs[i]));
		if (why) {
			skipped[nskipped].name = names[i]->d_name;
			skipped[nskipped++].reason = why;
			continue;
		}
		struct result r = { .out.fd = -1, .err.fd = -1 };
		if (deadline > 0 && now_s() >= deadline)
			r.not_run = 1, r.rc = -1;
		else
			run_hook(path, phase, deadline, drmgr_mask, &r);
		print_result(name, path, &r);
		nhooks++;
		nfailed += r.rc != 0;
		ntimed += r.timed_out;
		nnotrun += r.not_run;
		broken |= r.runner_error;
		free(r.out.buf);
		free(r.err.buf);
	}

	printf("{\"phase\":");
	json_cstr(stdout, phase);
	printf(",\"dir\":");
	json_cstr(stdout, dir);
	printf(",\"hooks\":%d,\"failed\":%d,\"timed_out\":%d,\"not_run\":%d,\"seconds\":%.3f,"
	       "\"skipped\":[", nhooks, nfailed, ntimed, nnotrun, now_s() - t0);
	for (int i = 0; i < nskipped; i++) {
		printf("%s{\"name\":", i ? "," : "");
		json_cstr(stdout, skipped[i].name);
		printf(",\"reason\":");
		json_cstr(stdout, skipped[i].reason);
		printf("}");
	}
	printf("]}\n");
	fflush(stdout);
	if (lock_fd >= 0)
		close(lock_fd);
	if (broken)
		return 2;
	/* run_hooks() returns 1 if any hook failed; only the check phase acts on it */
	return (!strcmp(phase, "check") && nfailed) ? 1 : 0;
}

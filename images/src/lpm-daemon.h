/* What lpm-disk and lpm-dirty share: status files and running as a daemon. */
#ifndef LPM_DAEMON_H
#define LPM_DAEMON_H

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* Write via a temporary file and rename, so readers never see half a line. */
static void write_file_atomic(const char *path, const char *text)
{
	char tmp[256];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	if (!f)
		return; /* /run missing is not worth dying for */
	fputs(text, f);
	fclose(f);
	rename(tmp, path);
}

/* Fork twice so the program is re-parented to init and survives the SSH session that
 * started it; the grandchild writes the pid file. */
static void daemonize(const char *prog, const char *pid_path)
{
	pid_t pid = fork();
	if (pid < 0) {
		fprintf(stderr, "%s: fork: ", prog);
		perror("");
		exit(2);
	}
	if (pid > 0)
		exit(0);
	setsid();
	pid = fork();
	if (pid < 0)
		exit(2);
	if (pid > 0)
		_exit(0);
	if (chdir("/") < 0)
		exit(2);
	int nul = open("/dev/null", O_RDWR);
	if (nul >= 0) {
		dup2(nul, 0);
		dup2(nul, 1);
		dup2(nul, 2);
		if (nul > 2)
			close(nul);
	}
	char text[32];
	snprintf(text, sizeof(text), "%d\n", (int)getpid());
	write_file_atomic(pid_path, text);
}

#endif

/* lock.c - one agent per data_dir (see buffer/lock.h). */
#include "lock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

static int mkdirs(const char *dir) {
  char tmp[4096];
  size_t n = strlen(dir);
  if (n == 0 || n >= sizeof tmp) {
    errno = ENAMETOOLONG;
    return -1;
  }
  memcpy(tmp, dir, n + 1);
  for (char *p = tmp + 1; *p; p++) {
    if (*p != '/') continue;
    *p = 0;
    if (mkdir(tmp, 0750) && errno != EEXIST) return -1;
    *p = '/';
  }
  return mkdir(tmp, 0750) && errno != EEXIST ? -1 : 0;
}

/* What the holder wrote: "PID\nHOST\n". */
static void read_holder(int fd, struct sw_datalock_holder *h) {
  char buf[128];
  ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
  memset(h, 0, sizeof *h);
  if (n <= 0) return;
  buf[n] = '\0';
  char *end = NULL;
  long pid = strtol(buf, &end, 10);
  if (end == buf || *end != '\n' || pid <= 0) return;
  h->pid = pid;
  size_t hl = strcspn(end + 1, "\n");
  if (hl >= sizeof h->host) hl = sizeof h->host - 1;
  memcpy(h->host, end + 1, hl);
  h->host[hl] = '\0';
}

/* Ours now: our PID and host for whoever is refused next. A failed write only costs that
 * message its PID. */
static void write_holder(int fd) {
  char host[64] = "", buf[128];
  if (gethostname(host, sizeof host - 1)) host[0] = '\0';
  int n = snprintf(buf, sizeof buf, "%ld\n%s\n", (long)getpid(), host);
  if (ftruncate(fd, 0) == 0 && pwrite(fd, buf, (size_t)n, 0) == n) (void)fdatasync(fd);
}

int sw_datalock_try(int fd, struct sw_datalock_holder *holder) {
  if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
    write_holder(fd);
    return SW_OK;
  }
  if (errno != EWOULDBLOCK && errno != EINTR) return SW_EIO;
  read_holder(fd, holder);
  return SW_EAGAIN;
}

int sw_datalock_open(const char *data_dir, int *fd, struct sw_datalock_holder *holder, char *err,
                     size_t errlen) {
  char path[4200];
  *fd = -1;
  memset(holder, 0, sizeof *holder);
  if (mkdirs(data_dir)) {
    snprintf(err, errlen, "cannot create data_dir %s: %s", data_dir, strerror(errno));
    return SW_EIO;
  }
  snprintf(path, sizeof path, "%s/%s", data_dir, SW_DATALOCK_NAME);
  *fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
  if (*fd < 0) {
    snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
    return SW_EIO;
  }
  int rc = sw_datalock_try(*fd, holder);
  if (rc == SW_EIO) snprintf(err, errlen, "cannot lock %s: %s", path, strerror(errno));
  return rc;
}

void sw_datalock_close(int fd) {
  if (fd >= 0) close(fd); /* closing the last descriptor releases the flock */
}

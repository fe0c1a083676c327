/* Data calls on a routed fd whose object is still being filled in the background: each waits
 * for the bytes it is about to touch, then makes the real call on the real fd. For every
 * other fd (and once the object is complete) the cost is one table lookup. */
#include <errno.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/uio.h>
#include <unistd.h>

#include "preload/pl_fdtab.h"
#include "preload/pl_shim.h"
#include "preload/pl_state.h"
#include "preload/pl_symbols.h"

/* The fill handle of fd when a wait may be needed, with a reference of the caller's (so a
 * close on another thread cannot free it under the call), else NULL. */
static inline rd_file *filling(int fd)
{
	if (!pl_fd_routed(fd) || pl_busy)
		return NULL;
	pl_fd *e = pl_fd_get(fd);
	rd_file *f = e && e->lazy && !rd_complete(e->lazy) ? rd_file_ref(e->lazy) : NULL;
	pl_fd_unref(e);
	return f;
}

/* Waits for [*off, *off+len) (*off < 0: from the fd's position, stored back) and pins it.
 * Returns 0, or -1 with errno after giving back filling()'s reference. */
static int wait_range(rd_file *f, int fd, off_t *off, size_t len)
{
	int saved = errno;
	if (*off < 0 && (*off = lseek(fd, 0, SEEK_CUR)) < 0) {
		rd_file_release(f);
		return -1;
	}
	pl_enter();
	int rc = rd_wait(f, (uint64_t)*off, len);
	if (rc < 0)
		rd_file_release(f);
	pl_leave();
	return pl_ret(rc, saved) < 0 ? -1 : 0;
}

/* Unpins what wait_range pinned and gives back filling()'s reference, keeping the real
 * call's result and errno. */
static ssize_t done(rd_file *f, off_t off, size_t len, ssize_t result)
{
	if (!f)
		return result;
	int saved = errno;
	pl_enter();
	rd_done(f, (uint64_t)off, len);
	rd_file_release(f);
	pl_leave();
	errno = saved;
	return result;
}

static size_t iov_total(const struct iovec *iov, int cnt)
{
	size_t n = 0;
	for (int i = 0; i < cnt; i++)
		n += iov[i].iov_len;
	return n;
}

PL_EXPORT ssize_t read(int fd, void *buf, size_t n)
{
	rd_file *f = filling(fd);
	off_t off = -1;
	if (f && wait_range(f, fd, &off, n) < 0)
		return -1;
	return done(f, off, n, PL_REAL(read)(fd, buf, n));
}

PL_EXPORT ssize_t pread(int fd, void *buf, size_t n, off_t off)
{
	rd_file *f = off >= 0 ? filling(fd) : NULL;
	if (f && wait_range(f, fd, &off, n) < 0)
		return -1;
	return done(f, off, n, PL_REAL(pread)(fd, buf, n, off));
}
PL_ALIAS(pread, pread64);

PL_EXPORT ssize_t readv(int fd, const struct iovec *iov, int cnt)
{
	rd_file *f = cnt > 0 ? filling(fd) : NULL;
	size_t n = f ? iov_total(iov, cnt) : 0;
	off_t off = -1;
	if (f && wait_range(f, fd, &off, n) < 0)
		return -1;
	return done(f, off, n, PL_REAL(readv)(fd, iov, cnt));
}

PL_EXPORT ssize_t preadv(int fd, const struct iovec *iov, int cnt, off_t off)
{
	rd_file *f = cnt > 0 && off >= 0 ? filling(fd) : NULL;
	size_t n = f ? iov_total(iov, cnt) : 0;
	if (f && wait_range(f, fd, &off, n) < 0)
		return -1;
	return done(f, off, n, PL_REAL(preadv)(fd, iov, cnt, off));
}
PL_ALIAS(preadv, preadv64);

PL_EXPORT ssize_t preadv2(int fd, const struct iovec *iov, int cnt, off_t off, int fl)
{
	rd_file *f = cnt > 0 ? filling(fd) : NULL;
	size_t n = f ? iov_total(iov, cnt) : 0;
	off_t at = off; /* -1 means the current position, as for readv */
	if (f && wait_range(f, fd, &at, n) < 0)
		return -1;
	return done(f, at, n, PL_REAL(preadv2)(fd, iov, cnt, off, fl));
}
PL_ALIAS(preadv2, preadv64v2);

/* A mapping outlives any call we see, so its range stays pinned. */
PL_EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	rd_file *f = fd >= 0 && off >= 0 ? filling(fd) : NULL;
	if (f && wait_range(f, fd, &off, len) < 0)
		return MAP_FAILED;
	if (f) { /* the pins stay; the mapping needs no handle */
		pl_enter();
		rd_file_release(f);
		pl_leave();
	}
	return PL_REAL(mmap)(addr, len, prot, flags, fd, off);
}
PL_ALIAS(mmap, mmap64);

PL_EXPORT ssize_t copy_file_range(int in, off_t *inoff, int out, off_t *outoff, size_t n,
				  unsigned fl)
{
	rd_file *f = filling(in);
	off_t off = inoff ? *inoff : -1;
	if (f && wait_range(f, in, &off, n) < 0)
		return -1;
	return done(f, off, n, PL_REAL(copy_file_range)(in, inoff, out, outoff, n, fl));
}

PL_EXPORT ssize_t sendfile(int out, int in, off_t *inoff, size_t n)
{
	rd_file *f = filling(in);
	off_t off = inoff ? *inoff : -1;
	if (f && wait_range(f, in, &off, n) < 0)
		return -1;
	return done(f, off, n, PL_REAL(sendfile)(out, in, inoff, n));
}
PL_ALIAS(sendfile, sendfile64);

PL_EXPORT ssize_t splice(int in, off_t *inoff, int out, off_t *outoff, size_t n, unsigned fl)
{
	rd_file *f = filling(in);
	off_t off = inoff ? *inoff : -1;
	if (f && wait_range(f, in, &off, n) < 0)
		return -1;
	return done(f, off, n, PL_REAL(splice)(in, inoff, out, outoff, n, fl));
}

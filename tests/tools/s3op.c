/* s3op: a thin command line over the s3/ client, so that the integration tests can drive every
 * client operation against a real MinIO and check the result with independent clients.
 *
 * usage: s3op -c CONFIG [-s STORE] CMD ARGS...   (see usage() below)
 *
 * Output is meant for parsing: "key=value" lines on success, and on failure exactly one line
 *   s3op: error: ENOENT (NoSuchKey, status 404, attempts 1, request-id 17F...): message
 * on stderr with exit status 1. Usage errors exit 64, an unusable config 78 (sysexits).
 * Keys and paths are taken verbatim from argv, so any byte string the shell can pass works. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/cfg.h"
#include "common/log.h"
#include "s3/s3.h"

#define EX_USAGE 64
#define EX_CONFIG 78

static const char *prog = "s3op";
static const char *if_match; /* -m */

static void usage(void)
{
	fprintf(stderr,
		"usage: s3op -c CONFIG [-s STORE] [-m ETAG] CMD ARGS...\n"
		"  (-m: get and get-buf read only that version: If-Match)\n"
		"  head-bucket B\n"
		"  head B K                       size=N etag=E mtime=T\n"
		"  get B K OUT [OFF [LEN]]        got=N size=S (OUT created/truncated)\n"
		"  get-buf B K OFF LEN            raw bytes on stdout\n"
		"  put B K IN                     etag=E (s3_put_fd)\n"
		"  put-buf B K IN                 etag=E (s3_put_buf)\n"
		"  del B K\n"
		"  copy SB SK DB DK               etag=E\n"
		"  list B PREFIX [DELIM [MAXKEYS]]  F<TAB>size<TAB>mtime<TAB>etag<TAB>key | D<TAB>prefix\n"
		"  mpu B K IN PARTSIZE            parts=N etag=E\n"
		"  mpu-abort B K IN PARTSIZE NPARTS  upload_id=U\n"
		"  mpu-complete-bad B K           completes with a bogus part list (must fail)\n");
	exit(EX_USAGE);
}

/* The tests match on the symbolic name, which is stable where numbers are not obvious. */
static const struct {
	int num;
	const char *name;
} errno_names[] = {
	{ENOENT, "ENOENT"},     {EACCES, "EACCES"},   {EIO, "EIO"},
	{EINVAL, "EINVAL"},     {EEXIST, "EEXIST"},   {ENAMETOOLONG, "ENAMETOOLONG"},
	{ENOMEM, "ENOMEM"},     {ENOSPC, "ENOSPC"},   {EPERM, "EPERM"},
	{EBADF, "EBADF"},       {EAGAIN, "EAGAIN"},   {ETIMEDOUT, "ETIMEDOUT"},
	{ECONNREFUSED, "ECONNREFUSED"}, {ECONNRESET, "ECONNRESET"},
	{EROFS, "EROFS"},       {EFBIG, "EFBIG"},     {EISDIR, "EISDIR"},
	{ENOTDIR, "ENOTDIR"},   {EFAULT, "EFAULT"},   {E2BIG, "E2BIG"},
	{ECANCELED, "ECANCELED"}, {EPROTO, "EPROTO"}, {ENOTSUP, "ENOTSUP"},
	{EOVERFLOW, "EOVERFLOW"}, {ERANGE, "ERANGE"}, {EBUSY, "EBUSY"},
	{EINTR, "EINTR"},       {EPIPE, "EPIPE"},     {EDQUOT, "EDQUOT"},
	{EXDEV, "EXDEV"},       {ENOTEMPTY, "ENOTEMPTY"}, {ENOSYS, "ENOSYS"},
	{EBADMSG, "EBADMSG"},   {ENODATA, "ENODATA"}, {EHOSTUNREACH, "EHOSTUNREACH"},
	{ESTALE, "ESTALE"},
};

static const char *errno_name(int num)
{
	static char buf[32];
	for (size_t i = 0; i < sizeof(errno_names) / sizeof(errno_names[0]); i++)
		if (errno_names[i].num == num)
			return errno_names[i].name;
	snprintf(buf, sizeof(buf), "E%d", num);
	return buf;
}

static const char *or_dash(const char *s)
{
	return s && *s ? s : "-";
}

/* rc is a negative errno from the client. */
static int fail(int rc, const s3_error *err)
{
	fprintf(stderr, "%s: error: %s (%s, status %d, attempts %d, request-id %s)", prog,
		errno_name(-rc), or_dash(err->code), err->status, err->attempts,
		or_dash(err->request_id));
	if (err->message[0])
		fprintf(stderr, ": %s", err->message);
	fputc('\n', stderr);
	return 1;
}

/* A failure of s3op's own I/O, reported in the same shape so the tests parse one format. */
static int fail_local(int num, const char *what, const char *path)
{
	fprintf(stderr, "%s: error: %s (local, status 0, attempts 0, request-id -): %s %s: %s\n",
		prog, errno_name(num), what, path, strerror(num));
	return 1;
}

/* Decimal only and nothing else: a typo in a test must not become offset 0. */
static uint64_t parse_u64(const char *s)
{
	char *end;
	if (!s[0] || s[0] == '-' || s[0] == '+' || s[0] == ' ')
		usage();
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end)
		usage();
	return (uint64_t)v;
}

static void need_args(int argc, int min, int max)
{
	if (argc < min || argc > max)
		usage();
}

static int write_all(int fd, const void *data, size_t len)
{
	const char *p = data;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int open_input(const char *path, uint64_t *size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	*size = (uint64_t)st.st_size;
	return fd;
}

static int cmd_head_bucket(s3_client *c, char **av, s3_error *err)
{
	int rc = s3_head_bucket(c, av[0], err);
	return rc < 0 ? fail(rc, err) : 0;
}

static int cmd_head(s3_client *c, char **av, s3_error *err)
{
	s3_object_info info;
	memset(&info, 0, sizeof(info));
	int rc = s3_head_object(c, av[0], av[1], &info, err);
	if (rc < 0)
		return fail(rc, err);
	printf("size=%" PRIu64 " etag=%s mtime=%lld\n", info.size, info.etag,
	       (long long)info.mtime);
	return 0;
}

static int cmd_get(s3_client *c, int ac, char **av, s3_error *err)
{
	uint64_t off = ac > 3 ? parse_u64(av[3]) : 0;
	uint64_t len = ac > 4 ? parse_u64(av[4]) : S3_TO_END;
	int fd = open(av[2], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return fail_local(errno, "open", av[2]);
	s3_object_info info;
	memset(&info, 0, sizeof(info));
	uint64_t got = 0;
	int rc = s3_get_fd(c, av[0], av[1], if_match, off, len, fd, 0, &got, &info, err);
	/* close() can report a deferred write error; that is a failed get as well. */
	if (close(fd) < 0 && rc == 0)
		return fail_local(errno, "close", av[2]);
	if (rc < 0)
		return fail(rc, err);
	printf("got=%" PRIu64 " size=%" PRIu64 "\n", got, info.size);
	return 0;
}

static int cmd_get_buf(s3_client *c, char **av, s3_error *err)
{
	uint64_t off = parse_u64(av[2]);
	uint64_t len = parse_u64(av[3]);
	if (len > SIZE_MAX - 1)
		return fail_local(EOVERFLOW, "length", av[3]);
	/* +1 so that LEN 0 still gives a valid, non-NULL buffer. */
	char *buf = malloc((size_t)len + 1);
	if (!buf)
		return fail_local(ENOMEM, "malloc", av[3]);
	size_t got = 0;
	int rc = s3_get_buf(c, av[0], av[1], if_match, off, len, buf, (size_t)len, &got, NULL, err);
	if (rc < 0) {
		free(buf);
		return fail(rc, err);
	}
	rc = write_all(STDOUT_FILENO, buf, got);
	free(buf);
	return rc < 0 ? fail_local(-rc, "write", "stdout") : 0;
}

static int cmd_put(s3_client *c, char **av, s3_error *err)
{
	uint64_t size;
	int fd = open_input(av[2], &size);
	if (fd < 0)
		return fail_local(-fd, "open", av[2]);
	char etag[80] = "";
	int rc = s3_put_fd(c, av[0], av[1], fd, 0, size, etag, err);
	close(fd);
	if (rc < 0)
		return fail(rc, err);
	printf("etag=%s\n", etag);
	return 0;
}

static int read_file(const char *path, char **data, size_t *len)
{
	uint64_t size;
	int fd = open_input(path, &size);
	if (fd < 0)
		return fd;
	char *buf = malloc((size_t)size + 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	size_t done = 0;
	while (done < size) {
		ssize_t n = read(fd, buf + done, (size_t)size - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int e = n < 0 ? errno : EIO; /* the file shrank under us */
			free(buf);
			close(fd);
			return -e;
		}
		done += (size_t)n;
	}
	close(fd);
	*data = buf;
	*len = done;
	return 0;
}

static int cmd_put_buf(s3_client *c, char **av, s3_error *err)
{
	char *data = NULL;
	size_t len = 0;
	int rc = read_file(av[2], &data, &len);
	if (rc < 0)
		return fail_local(-rc, "read", av[2]);
	char etag[80] = "";
	rc = s3_put_buf(c, av[0], av[1], data, len, etag, err);
	free(data);
	if (rc < 0)
		return fail(rc, err);
	printf("etag=%s\n", etag);
	return 0;
}

static int cmd_del(s3_client *c, char **av, s3_error *err)
{
	int rc = s3_delete(c, av[0], av[1], err);
	return rc < 0 ? fail(rc, err) : 0;
}

static int cmd_copy(s3_client *c, char **av, s3_error *err)
{
	char etag[80] = "";
	int rc = s3_copy(c, av[0], av[1], av[2], av[3], etag, err);
	if (rc < 0)
		return fail(rc, err);
	printf("etag=%s\n", etag);
	return 0;
}

/* Raw bytes (fwrite, not %s) so that the key the store sent comes back unchanged. */
static int print_entry(void *arg, const s3_list_entry *e)
{
	(void)arg;
	if (e->is_prefix) {
		fputs("D\t", stdout);
	} else {
		printf("F\t%" PRIu64 "\t%lld\t%s\t", e->size, (long long)e->mtime,
		       e->etag ? e->etag : "");
	}
	fwrite(e->key, 1, strlen(e->key), stdout);
	fputc('\n', stdout);
	return 0;
}

static int cmd_list(s3_client *c, int ac, char **av, s3_error *err)
{
	const char *delim = ac > 2 ? av[2] : NULL;
	unsigned max_keys = 0;
	if (ac > 3) {
		uint64_t v = parse_u64(av[3]);
		if (v > 0xffffffffu)
			usage();
		max_keys = (unsigned)v;
	}
	int rc = s3_list(c, av[0], av[1], delim, max_keys, print_entry, NULL, err);
	return rc < 0 ? fail(rc, err) : 0;
}

/* Uploads parts 1..nparts of the file (the last one may be short) into upload_id. */
static int upload_parts(s3_client *c, const char *bucket, const char *key, const char *upload_id,
			int fd, uint64_t size, uint64_t part_size, int nparts, s3_part *parts,
			s3_error *err)
{
	for (int i = 0; i < nparts; i++) {
		uint64_t off = (uint64_t)i * part_size;
		uint64_t len = size - off < part_size ? size - off : part_size;
		int rc = s3_mpu_part_fd(c, bucket, key, upload_id, i + 1, fd, (off_t)off, len,
					&parts[i], err);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* Best effort: an upload left behind would only cost space in the test bucket, but the
 * original error is what the caller reports. */
static void abort_quietly(s3_client *c, const char *bucket, const char *key, const char *id)
{
	s3_error ignored;
	memset(&ignored, 0, sizeof(ignored));
	(void)s3_mpu_abort(c, bucket, key, id, &ignored);
}

static int cmd_mpu(s3_client *c, int ac, char **av, s3_error *err)
{
	uint64_t part_size = parse_u64(av[3]);
	if (part_size == 0)
		usage();
	uint64_t want_parts = ac > 4 ? parse_u64(av[4]) : 0;
	bool abort_after = ac > 4;

	uint64_t size;
	int fd = open_input(av[2], &size);
	if (fd < 0)
		return fail_local(-fd, "open", av[2]);
	/* An empty file is still one (empty) part: S3 needs at least one to complete. */
	uint64_t nparts = size == 0 ? 1 : (size + part_size - 1) / part_size;
	if (abort_after) {
		if (want_parts > nparts) {
			close(fd);
			return fail_local(EINVAL, "NPARTS exceeds the parts of", av[2]);
		}
		nparts = want_parts;
	}
	if (nparts > S3_MAX_PARTS) {
		close(fd);
		return fail_local(E2BIG, "too many parts for", av[2]);
	}
	s3_part *parts = calloc(nparts ? nparts : 1, sizeof(*parts));
	if (!parts) {
		close(fd);
		return fail_local(ENOMEM, "calloc", "parts");
	}

	char upload_id[S3_UPLOAD_ID_MAX] = "";
	char etag[80] = "";
	int rc = s3_mpu_create(c, av[0], av[1], upload_id, err);
	if (rc == 0)
		rc = upload_parts(c, av[0], av[1], upload_id, fd, size, part_size, (int)nparts,
				  parts, err);
	if (rc == 0 && abort_after) {
		rc = s3_mpu_abort(c, av[0], av[1], upload_id, err);
		if (rc == 0)
			printf("upload_id=%s\n", upload_id);
	} else if (rc == 0) {
		rc = s3_mpu_complete(c, av[0], av[1], upload_id, parts, (int)nparts, etag, err);
		if (rc == 0)
			printf("parts=%" PRIu64 " etag=%s\n", nparts, etag);
		else
			abort_quietly(c, av[0], av[1], upload_id);
	} else if (upload_id[0]) {
		abort_quietly(c, av[0], av[1], upload_id);
	}
	free(parts);
	close(fd);
	return rc < 0 ? fail(rc, err) : 0;
}

static int cmd_mpu_complete_bad(s3_client *c, char **av, s3_error *err)
{
	char upload_id[S3_UPLOAD_ID_MAX] = "";
	int rc = s3_mpu_create(c, av[0], av[1], upload_id, err);
	if (rc < 0)
		return fail(rc, err);
	/* A part that was never uploaded: the store must refuse (InvalidPart). */
	s3_part bogus = {.number = 1};
	snprintf(bogus.etag, sizeof(bogus.etag), "%s", "0123456789abcdef0123456789abcdef");
	char etag[80] = "";
	rc = s3_mpu_complete(c, av[0], av[1], upload_id, &bogus, 1, etag, err);
	if (rc == 0) {
		printf("etag=%s\n", etag);
		return 0;
	}
	abort_quietly(c, av[0], av[1], upload_id);
	return fail(rc, err);
}

int main(int argc, char **argv)
{
	const char *config_path = NULL;
	const char *store_name = "";
	int opt;
	log_init();
	/* '+': stop at the command, so that keys and file names starting with '-' stay operands. */
	while ((opt = getopt(argc, argv, "+c:s:m:h")) != -1) {
		switch (opt) {
		case 'c':
			config_path = optarg;
			break;
		case 's':
			store_name = optarg;
			break;
		case 'm':
			if_match = optarg;
			break;
		default:
			usage();
		}
	}
	if (!config_path || optind >= argc)
		usage();
	const char *cmd = argv[optind];
	char **av = argv + optind + 1;
	int ac = argc - optind - 1;

	/* Check the arguments before touching config or network: usage errors are 64. */
	if (!strcmp(cmd, "head-bucket"))
		need_args(ac, 1, 1);
	else if (!strcmp(cmd, "head") || !strcmp(cmd, "del") || !strcmp(cmd, "mpu-complete-bad"))
		need_args(ac, 2, 2);
	else if (!strcmp(cmd, "get"))
		need_args(ac, 3, 5);
	else if (!strcmp(cmd, "get-buf") || !strcmp(cmd, "copy"))
		need_args(ac, 4, 4);
	else if (!strcmp(cmd, "put") || !strcmp(cmd, "put-buf"))
		need_args(ac, 3, 3);
	else if (!strcmp(cmd, "list"))
		need_args(ac, 2, 4);
	else if (!strcmp(cmd, "mpu"))
		need_args(ac, 4, 4);
	else if (!strcmp(cmd, "mpu-abort"))
		need_args(ac, 5, 5);
	else
		usage();

	char cfg_err[CFG_ERR_MAX] = "";
	cfg *conf = NULL;
	if (cfg_load(config_path, &conf, cfg_err, sizeof(cfg_err)) < 0) {
		fprintf(stderr, "%s: %s\n", prog, cfg_err);
		return EX_CONFIG;
	}
	const cfg_store *store = cfg_find_store(conf, store_name);
	if (!store) {
		fprintf(stderr, "%s: %s: no store named '%s'\n", prog, config_path, store_name);
		cfg_free(conf);
		return EX_CONFIG;
	}

	s3_error err;
	memset(&err, 0, sizeof(err));
	s3_client *client = NULL;
	int rc = s3_client_new(store, &client, &err);
	if (rc < 0) {
		rc = fail(rc, &err);
		cfg_free(conf);
		return rc;
	}

	if (!strcmp(cmd, "head-bucket"))
		rc = cmd_head_bucket(client, av, &err);
	else if (!strcmp(cmd, "head"))
		rc = cmd_head(client, av, &err);
	else if (!strcmp(cmd, "get"))
		rc = cmd_get(client, ac, av, &err);
	else if (!strcmp(cmd, "get-buf"))
		rc = cmd_get_buf(client, av, &err);
	else if (!strcmp(cmd, "put"))
		rc = cmd_put(client, av, &err);
	else if (!strcmp(cmd, "put-buf"))
		rc = cmd_put_buf(client, av, &err);
	else if (!strcmp(cmd, "del"))
		rc = cmd_del(client, av, &err);
	else if (!strcmp(cmd, "copy"))
		rc = cmd_copy(client, av, &err);
	else if (!strcmp(cmd, "list"))
		rc = cmd_list(client, ac, av, &err);
	else if (!strcmp(cmd, "mpu") || !strcmp(cmd, "mpu-abort"))
		rc = cmd_mpu(client, ac, av, &err);
	else
		rc = cmd_mpu_complete_bad(client, av, &err);

	s3_client_free(client);
	cfg_free(conf);
	if (fflush(stdout) != 0 && rc == 0)
		rc = fail_local(errno, "write", "stdout");
	return rc;
}

#include "s3/s3_dl.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fs.h"
#include "common/log.h"

#define S3_LIBRARY "librwsplit-s3.so"

static s3_api api;
static const s3_api *loaded;
static pthread_once_t load_once = PTHREAD_ONCE_INIT;

/* The store library is installed beside this one. */
static int beside_this_library(char *out, size_t cap)
{
	char dir[PATH_MAX];
	if (fs_self_dir(dir, sizeof dir) < 0)
		return -1;
	int n = snprintf(out, cap, "%s/%s", dir, S3_LIBRARY);
	return n < 0 || (size_t)n >= cap ? -1 : 0;
}

static void nothing(void)
{
}

static void load(void)
{
	char path[PATH_MAX];
	if (beside_this_library(path, sizeof path) < 0) {
		log_error("cannot locate %s", S3_LIBRARY);
		return;
	}
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		log_error("cannot load %s: %s", path, dlerror());
		return;
	}
#define S3_API_LOOKUP(name) \
	if (!(*(void **)&api.name = dlsym(h, "s3_" #name))) { \
		log_error("%s does not export s3_%s", path, #name); \
		return; \
	}
	S3_API_FUNCTIONS(S3_API_LOOKUP)
#undef S3_API_LOOKUP
	loaded = &api;
}

const s3_api *s3_dl(void)
{
	pthread_once(&load_once, load);
	return loaded;
}

void s3_dl_use(const s3_api *linked)
{
	api = *linked;
	loaded = &api;
	pthread_once(&load_once, nothing);
}

typedef struct store_client {
	const cfg_store *store;
	s3_client *client;
	struct store_client *next;
} store_client;

static store_client *clients;
static pthread_mutex_t clients_lock = PTHREAD_MUTEX_INITIALIZER;

s3_client *s3_dl_client(const cfg_store *st, int *err, s3_error *e)
{
	s3_error local;
	if (!e)
		e = &local;
	memset(e, 0, sizeof *e);
	*err = 0;
	const s3_api *a = s3_dl();
	if (!a) {
		*err = -ENOSYS;
		return NULL;
	}
	pthread_mutex_lock(&clients_lock);
	store_client *sc = clients;
	while (sc && sc->store != st)
		sc = sc->next;
	if (!sc && (sc = calloc(1, sizeof *sc)) != NULL) {
		*err = a->client_new(st, &sc->client, e);
		if (*err < 0) {
			free(sc);
			sc = NULL;
		} else {
			sc->store = st;
			sc->next = clients;
			clients = sc;
		}
	} else if (!sc) {
		*err = -ENOMEM;
	}
	pthread_mutex_unlock(&clients_lock);
	return sc ? sc->client : NULL;
}

static void fork_prepare(void)
{
	pthread_mutex_lock(&clients_lock);
	for (store_client *sc = clients; loaded && sc; sc = sc->next)
		loaded->client_fork_prepare(sc->client);
}

static void fork_parent(void)
{
	for (store_client *sc = clients; loaded && sc; sc = sc->next)
		loaded->client_fork_parent(sc->client);
	pthread_mutex_unlock(&clients_lock);
}

static void fork_child(void)
{
	for (store_client *sc = clients; loaded && sc; sc = sc->next)
		loaded->client_after_fork(sc->client);
	pthread_mutex_unlock(&clients_lock);
}

const lc_hooks s3_dl_fork_hooks = { fork_prepare, fork_parent, fork_child };

const s3_api *s3_dl_loaded(void)
{
	return loaded;
}

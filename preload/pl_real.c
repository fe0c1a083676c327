/* Resolution of the real libc functions behind every shim, once per process. */
#include <dlfcn.h>
#include <pthread.h>

#include "preload/pl_symbols.h"

pl_real_table pl_real;

static pthread_once_t resolve_once = PTHREAD_ONCE_INIT;

static void resolve(void)
{
#define PL_LOOKUP(ret, name, params) pl_real.name = (pl_##name##_fn)dlsym(RTLD_NEXT, #name);
	PL_SYMBOLS(PL_LOOKUP)
#undef PL_LOOKUP
}

void pl_resolve(void)
{
	pthread_once(&resolve_once, resolve);
}

/* Only in librwsplit-s3.so, which the reader loads on its first request. */
#include "common/log.h"
#include "s3/s3_request.h"

/* That copy of the logger needs the same settings as the preload library's. */
__attribute__((constructor)) static void s3_dso_init(void)
{
	log_init();
}

/* Finalized before libcrypto (a dependency): see s3_shutdown. */
__attribute__((destructor)) static void s3_dso_fini(void)
{
	s3_shutdown();
}

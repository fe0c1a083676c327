/* The runner shared by every unit test binary. */
#ifndef RWSPLIT_UNIT_RUN_H
#define RWSPLIT_UNIT_RUN_H

#include <check.h>
#include <stdlib.h>

/* Runs every test of s (CK_VERBOSITY in the environment picks the output, normal by
 * default), frees s, and returns EXIT_FAILURE if a test failed, else EXIT_SUCCESS. */
static inline int unit_run(Suite *s)
{
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_ENV);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif

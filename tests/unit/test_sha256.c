/* The SHA-256 that names cache entries: FIPS 180-4 example vectors, and agreement with
 * OpenSSL on inputs of every length across block boundaries, fed in odd-sized pieces. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "unit_run.h"
#include "common/sha256.h"

static const struct {
	const char *in;
	const char *hex;
} vectors[] = {
	{ "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" },
	{ "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" },
	{ "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
	  "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1" },
	{ "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnop"
	  "qrlmnopqrsmnopqrstnopqrstu",
	  "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1" },
};

START_TEST(test_vectors)
{
	char hex[65];
	sha256_hex(vectors[_i].in, strlen(vectors[_i].in), hex);
	ck_assert_str_eq(hex, vectors[_i].hex);
}
END_TEST

START_TEST(test_million_a)
{
	char *a = malloc(1000000);
	ck_assert_ptr_nonnull(a);
	memset(a, 'a', 1000000);
	char hex[65];
	sha256_hex(a, 1000000, hex);
	free(a);
	ck_assert_str_eq(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}
END_TEST

START_TEST(test_matches_openssl_in_pieces)
{
	unsigned char data[300];
	for (size_t i = 0; i < sizeof data; i++)
		data[i] = (unsigned char)(i * 131 + 7);
	for (size_t len = 0; len <= sizeof data; len++) {
		unsigned char want[32], got[32];
		SHA256(data, len, want);
		sha256_ctx c;
		sha256_init(&c);
		/* Pieces of 1, 2, 3, ... bytes cross every block boundary differently. */
		for (size_t off = 0, piece = 1; off < len; off += piece, piece++)
			sha256_update(&c, data + off, piece < len - off ? piece : len - off);
		sha256_final(&c, got);
		ck_assert_msg(memcmp(want, got, 32) == 0, "length %zu differs", len);
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("sha256");
	TCase *tc = tcase_create("sha256");
	tcase_add_loop_test(tc, test_vectors, 0, sizeof vectors / sizeof vectors[0]);
	tcase_add_test(tc, test_million_a);
	tcase_add_test(tc, test_matches_openssl_in_pieces);
	suite_add_tcase(s, tc);
	return unit_run(s);
}

/* OpenSSL's libcrypto: SHA-256 for the audit log's hash chain. */
#include <openssl/evp.h>

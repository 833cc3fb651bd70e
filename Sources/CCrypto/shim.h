/* OpenSSL's libcrypto: SHA-256 for the audit log's hash chain. */
#include <openssl/crypto.h>
#include <openssl/evp.h>

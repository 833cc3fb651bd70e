/* OpenSSL's libcrypto: SHA-256 for the audit log's hash chain, Ed25519 for
   MCP call approvals. */
/* SHA-256 through the low-level functions (SHA256_Init…), which OpenSSL 3
   marks deprecated: EVP_Digest would fetch the algorithm from a provider,
   and the first fetch of a process sets the default provider up (about 3.5
   million instructions, a twelfth of a `burrow dry-run`). */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <openssl/x509_vfy.h>
#include <openssl/objects.h>

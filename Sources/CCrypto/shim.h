/* OpenSSL's libcrypto: SHA-256 for the audit log's hash chain, Ed25519 for
   MCP call approvals. */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

/* OpenSSL's libssl: the TLS client of `burrow --url` (burrowd's own TLS is
   swift-nio-ssl's BoringSSL). */
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

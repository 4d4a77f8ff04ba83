// Linked into ConfigLoaderFuzz only: host names in fuzzed configs must not reach DNS (slow, and
// not ours to query). Every name is "not known"; numeric addresses never call getaddrinfo.
#include <netdb.h>
int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints, struct addrinfo **res) {
    (void)node; (void)service; (void)hints;
    if (res) *res = 0;
    return EAI_NONAME;
}

/* Host name resolution through uv_getaddrinfo, with a small TTL cache: one
 * entry per (host, port), shared by the requests waiting for it. */
#include "client/client_int.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void waiter_remove(loom__dns_waiter *w)
{
    w->prev->next = w->next;
    w->next->prev = w->prev;
    w->next = w->prev = w;
    w->entry = NULL;
}

static void entry_free(loom_client *c, loom__dns_entry *e)
{
    e->prev->next = e->next;
    e->next->prev = e->prev;
    c->ndns--;
    free(e->host);
    free(e);
}

/* Makes room when the cache is full: drops entries nobody waits for. */
static void evict(loom_client *c)
{
    uint64_t now = uv_now(c->loop);
    loom__dns_entry *e = c->dns.next;
    while (e != &c->dns && c->ndns >= LOOM__CLIENT_DNS_MAX_ENTRIES) {
        loom__dns_entry *next = e->next;
        if (!e->resolving && (e->expires <= now || c->ndns >= LOOM__CLIENT_DNS_MAX_ENTRIES))
            entry_free(c, e);
        e = next;
    }
}

static void on_resolved(uv_getaddrinfo_t *gai, int status, struct addrinfo *res)
{
    loom__dns_entry *e = gai->data;
    loom_client *c = e->client;
    e->resolving = 0;
    e->naddrs = 0;
    if (status == 0) {
        for (struct addrinfo *ai = res; ai && e->naddrs < LOOM__CLIENT_MAX_ADDRS;
             ai = ai->ai_next) {
            if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) continue;
            if (ai->ai_addrlen > sizeof e->addrs[0]) continue;
            memset(&e->addrs[e->naddrs], 0, sizeof e->addrs[0]);
            memcpy(&e->addrs[e->naddrs], ai->ai_addr, ai->ai_addrlen);
            e->naddrs++;
        }
        if (e->naddrs == 0) status = UV_EAI_NODATA;
    }
    if (res) uv_freeaddrinfo(res);
    if (status == 0 && c->dns_ttl_ms)
        e->expires = uv_now(c->loop) + c->dns_ttl_ms;
    else
        e->expires = 0;
    /* Each callback may start new lookups (a redirect): take one waiter at a time. */
    while (e->waiters.next != &e->waiters) {
        loom__dns_waiter *w = e->waiters.next;
        waiter_remove(w);
        w->cb(w, status, e->addrs, e->naddrs);
    }
    if (c->closing || e->expires == 0) entry_free(c, e);
    loom__client_unref(c);
}

void loom__dns_resolve(loom_client *c, const char *host, unsigned port, loom__dns_waiter *w)
{
    w->next = w->prev = w;
    w->entry = NULL;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
        w->cb(w, 0, &ss, 1);
        return;
    }
    if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
        w->cb(w, 0, &ss, 1);
        return;
    }
    loom__dns_entry *e;
    for (e = c->dns.next; e != &c->dns; e = e->next)
        if (e->port == port && strcmp(e->host, host) == 0) break;
    if (e != &c->dns && !e->resolving && e->expires > uv_now(c->loop)) {
        w->cb(w, 0, e->addrs, e->naddrs);
        return;
    }
    if (e == &c->dns) {
        if (c->ndns >= LOOM__CLIENT_DNS_MAX_ENTRIES) evict(c);
        e = calloc(1, sizeof *e);
        if (!e || !(e->host = strdup(host))) {
            free(e);
            w->cb(w, UV_ENOMEM, NULL, 0);
            return;
        }
        e->client = c;
        e->port = port;
        e->waiters.next = e->waiters.prev = &e->waiters;
        e->next = c->dns.next;
        e->prev = &c->dns;
        c->dns.next->prev = e;
        c->dns.next = e;
        c->ndns++;
    }
    if (!e->resolving) {
        struct addrinfo hints;
        memset(&hints, 0, sizeof hints);
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags = AI_ADDRCONFIG;
        char portstr[8];
        snprintf(portstr, sizeof portstr, "%u", port);
        e->gai.data = e;
        int rc = uv_getaddrinfo(c->loop, &e->gai, on_resolved, e->host, portstr, &hints);
        if (rc) {
            entry_free(c, e);
            w->cb(w, rc, NULL, 0);
            return;
        }
        e->resolving = 1;
        c->refs++;
    }
    w->entry = e;
    w->prev = e->waiters.prev;
    w->next = &e->waiters;
    e->waiters.prev->next = w;
    e->waiters.prev = w;
}

void loom__dns_cancel(loom__dns_waiter *w)
{
    if (w->entry) waiter_remove(w);
}

void loom__dns_shutdown(loom_client *c)
{
    loom__dns_entry *e = c->dns.next;
    while (e != &c->dns) {
        loom__dns_entry *next = e->next;
        if (e->resolving)
            uv_cancel((uv_req_t *)&e->gai); /* on_resolved frees it */
        else
            entry_free(c, e);
        e = next;
    }
}

/* Services between plugins (ABI 1.4): a plugin offers a named, versioned
 * function table in init; other plugins look it up per request, in the
 * snapshot the request pinned. The snapshot holds the provider instance, so
 * a table found for a request stays valid until that request is done, even
 * when the provider is replaced or removed meanwhile (docs/decisions.md).
 *
 * Request watchers let a provider learn when a request it holds something
 * for is aborted or released, so it can give that back. */
#include "plugin/host.h"
#include "util/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CTX(r) ((loom__rctx *)(r)->host_data)

static int valid_service_name(const char *s)
{
    if (!s || !*s || strlen(s) > 64) return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_' || *s == '-' ||
              *s == '.'))
            return 0;
    return 1;
}

int32_t loom__api_service_register(loom_plugin *self, const loom_service_def *def)
{
    if (!self || !self->in_init) return LOOM_ESTATE;
    loom_service_def d;
    memset(&d, 0, sizeof d);
    if (!def || def->size < offsetof(loom_service_def, table) + sizeof(void *)) return LOOM_EINVAL;
    memcpy(&d, def, def->size < sizeof d ? def->size : sizeof d);
    const char *why = NULL;
    if (!valid_service_name(d.name))
        why = "bad service name (want [a-z0-9_.-]{1,64})";
    else if (d.version == 0)
        why = "service version must be at least 1";
    else if (!d.table || *(const uint32_t *)d.table < sizeof(uint32_t))
        why = "service table missing or its size is below 4";
    for (size_t i = 0; !why && i < self->nservices; i++)
        if (strcmp(self->services[i].name, d.name) == 0) why = "service registered twice";
    if (why) {
        loom__err("plugin %s: service %s: %s", self->name ? self->name : self->d.name,
                  d.name && valid_service_name(d.name) ? d.name : "?", why);
        return LOOM_EINVAL;
    }
    loom__reg_service *ss = realloc(self->services, (self->nservices + 1) * sizeof *ss);
    if (!ss) return LOOM_ENOMEM;
    self->services = ss;
    char *name = strdup(d.name);
    if (!name) return LOOM_ENOMEM;
    ss[self->nservices++] = (loom__reg_service){self, name, d.version, d.table};
    return LOOM_OK;
}

void loom__services_free(loom_plugin *p)
{
    for (size_t i = 0; i < p->nservices; i++) free(p->services[i].name);
    free(p->services);
    p->services = NULL;
    p->nservices = 0;
}

int loom__services_index(loom__snapshot *s, char *err, size_t errlen, long *culprit)
{
    size_t n = 0;
    for (size_t i = 0; i < s->nplugins; i++) n += s->plugins[i]->nservices;
    if (n == 0) return 0;
    s->services = calloc(n, sizeof *s->services);
    if (!s->services) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < s->nplugins; i++) {
        loom_plugin *p = s->plugins[i];
        for (size_t k = 0; k < p->nservices; k++) {
            for (size_t j = 0; j < s->nservices; j++)
                if (strcmp(s->services[j].name, p->services[k].name) == 0) {
                    snprintf(err, errlen, "plugin %s: service '%s' is offered by plugin %s too",
                             p->name, p->services[k].name, s->services[j].owner->name);
                    *culprit = (long)i;
                    return -1;
                }
            s->services[s->nservices++] = p->services[k];
        }
    }
    return 0;
}

const void *loom__api_service_get(loom_req *r, const char *name, uint32_t min_version,
                                  uint32_t *version)
{
    if (!r || !name || !CTX(r)) return NULL;
    const loom__snapshot *s = CTX(r)->snap;
    for (size_t i = 0; i < s->nservices; i++)
        if (strcmp(s->services[i].name, name) == 0) {
            if (s->services[i].version < min_version) return NULL;
            if (version) *version = s->services[i].version;
            return s->services[i].table;
        }
    return NULL;
}

int32_t loom__api_req_watch(loom_req *r, loom_req_watch_fn fn, void *ud)
{
    loom__rctx *x = r ? CTX(r) : NULL;
    if (!x || !fn) return LOOM_EINVAL;
    if (x->responded) return LOOM_ESTATE;
    loom__watch *w = loom__arena_alloc(&r->arena, sizeof *w);
    if (!w) return LOOM_ENOMEM;
    w->fn = fn;
    w->ud = ud;
    w->next = NULL;
    w->late = x->aborted;
    if (x->watch_tail)
        x->watch_tail->next = w;
    else
        x->watch = w;
    x->watch_tail = w;
    return x->aborted ? LOOM_EGONE : LOOM_OK;
}

void loom__watch_fire(loom_req *r, int32_t event)
{
    loom__rctx *x = CTX(r);
    /* A watcher may add another (a provider starting its next query while
     * told of the abort): the walk picks it up. */
    for (loom__watch *w = x->watch; w; w = w->next)
        if (event != LOOM_REQ_ABORTED || !w->late) w->fn(r, event, w->ud);
}

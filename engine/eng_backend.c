/* eng_backend.c - backend selection by name, and the CUDA stand-ins for CPU-only builds.
 *
 * With ENG_HAVE_CUDA, eng_backend_cuda() and eng_cuda_describe() come from
 * engine/eng_backend_cuda.cu; without it (NO_CUDA=1 or no nvcc) they are defined here and
 * always report that CUDA is not compiled in.
 */
#include "eng_backend.h"
#include "eng_util.h"

#include <stdio.h>
#include <string.h>

#ifndef ENG_HAVE_CUDA
int eng_backend_cuda(const eng_backend **out) {
    if (out) *out = NULL;
    return eng_err_set(ENG_EDEVICE, "rlprice was built without CUDA (NO_CUDA=1)");
}

const char *eng_cuda_describe(void) { return "not compiled in"; }

void eng_cuda_set_graphs(int on) { (void)on; }

const char *eng_cuda_graphs_status(void) { return "not compiled in"; }
#endif

int eng_device_check(const char *device, const char *where) {
    if (device && (!strcmp(device, "auto") || !strcmp(device, "cpu") || !strcmp(device, "cuda"))) return ENG_OK;
    return eng_err_set(ENG_EINVAL, "%s%sunknown device '%s' (expected auto, cpu or cuda)", where ? where : "",
                       where ? ": " : "", device ? device : "(null)");
}

int eng_backend_select(const char *device, const eng_backend **out) {
    if (!out) return eng_err_set(ENG_EINVAL, "eng_backend_select: out is NULL");
    *out = NULL;
    if (device && eng_device_check(device, NULL)) return ENG_EINVAL;
    if (!device || !strcmp(device, "auto")) {
        const eng_backend *be = NULL;
        if (eng_backend_cuda(&be) == ENG_OK && be) {
            *out = be;
            return ENG_OK;
        }
        char reason[256];
        snprintf(reason, sizeof reason, "%s", eng_err_msg());
        eng_err_clear();
        /* one clean line: the probe's own "no CUDA device: " prefix is not repeated */
        const char *why = reason[0] ? reason : eng_cuda_describe(), *pre = "no CUDA device: ";
        if (!strncmp(why, pre, strlen(pre))) why += strlen(pre);
        ENG_INFO("no CUDA device (%s); using the CPU backend", why);
        *out = eng_backend_cpu();
        return ENG_OK;
    }
    if (!strcmp(device, "cpu")) {
        *out = eng_backend_cpu();
        return ENG_OK;
    }
    /* "cuda" (eng_device_check accepted only the three names) */
    const eng_backend *be = NULL;
    int rc = eng_backend_cuda(&be);
    if (rc != ENG_OK || !be) {
        char reason[256];
        snprintf(reason, sizeof reason, "%s", eng_err_msg());
        return eng_err_set(ENG_EDEVICE, "--device cuda requested but no CUDA backend is available: %s",
                           reason[0] ? reason : eng_cuda_describe());
    }
    *out = be;
    return ENG_OK;
}

eng_backend_counters eng_counters_diff(const eng_backend_counters *b, const eng_backend_counters *a) {
    eng_backend_counters d;
    d.launches = b->launches - a->launches;
    d.copies = b->copies - a->copies;
    d.uploads = b->uploads - a->uploads;
    d.downloads = b->downloads - a->downloads;
    d.syncs = b->syncs - a->syncs;
    d.bytes_up = b->bytes_up - a->bytes_up;
    d.bytes_down = b->bytes_down - a->bytes_down;
    d.graph_launches = b->graph_launches - a->graph_launches;
    d.graph_captures = b->graph_captures - a->graph_captures;
    return d;
}

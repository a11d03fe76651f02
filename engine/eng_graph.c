/* eng_graph.c - recorded commands and the replay-or-capture decision; see eng_graph.h. */
#include "eng_graph.h"

#include <string.h>

#include "eng_util.h"

/* Packs one argument; ENG_EINVAL (no message: the caller falls back to a plain launch) when
 * it does not fit or the alignment is not a power of two up to 16. */
int eng_graph_cmd_arg(eng_graph_cmd *c, const void *arg, size_t bytes, size_t align) {
    if (!c || !arg || align == 0 || align > 16 || (align & (align - 1)) != 0) return ENG_EINVAL;
    if (c->nargs >= ENG_GRAPH_MAX_ARGS) return ENG_EINVAL;
    size_t at = ((size_t)c->size + align - 1) & ~(align - 1);
    if (at + bytes > ENG_GRAPH_ARG_BYTES) return ENG_EINVAL;
    memcpy(c->args + at, arg, bytes);
    c->off[c->nargs++] = (unsigned short)at;
    c->size = (unsigned short)(at + bytes);
    return ENG_OK;
}

/* Same launch shape: kind, function, grid, block and argument layout. */
static int same_shape(const eng_graph_cmd *a, const eng_graph_cmd *b) {
    return a->kind == b->kind && a->func == b->func && !memcmp(a->grid, b->grid, sizeof a->grid) &&
           !memcmp(a->block, b->block, sizeof a->block) && a->nargs == b->nargs && a->size == b->size &&
           !memcmp(a->off, b->off, a->nargs * sizeof a->off[0]);
}

/* See eng_graph.h: 1 replay (patch filled), 0 capture anew. */
int eng_graph_plan(const eng_graph_cmd *old, size_t nold, const eng_graph_cmd *cur, size_t ncur,
                   unsigned char *patch) {
    if (!old || !cur || nold != ncur || ncur == 0) return 0;
    for (size_t i = 0; i < ncur; i++) {
        const eng_graph_cmd *a = &old[i], *b = &cur[i];
        if (!same_shape(a, b)) return 0;
        int differ = memcmp(a->args, b->args, b->size) != 0;
        if (b->kind != ENG_GRAPH_KERNEL) {
            if (differ) return 0;
            if (patch) patch[i] = 0;
            continue;
        }
        if (differ && !patch) return 0;
        if (patch) patch[i] = (unsigned char)differ;
    }
    return 1;
}

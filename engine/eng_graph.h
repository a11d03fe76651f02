/* eng_graph.h - the recorded commands of a training step and the decision to replay a
 * captured CUDA graph or capture a new one (issue 16 item 3; docs/cuda.md "Graphs").
 *
 * The CUDA backend records the device work of a region (be->graph_begin .. be->graph_end)
 * as a list of commands instead of launching it; at the end it either replays the graph it
 * captured for an equal list, patching the kernel arguments that changed (e.g. Adam's bias
 * corrections), or captures a new one.  This file is the backend-independent part: the
 * command record and the comparison, plain C, so the CPU test suite checks the rules.
 */
#ifndef ENG_GRAPH_H
#define ENG_GRAPH_H

#include <stddef.h>

#define ENG_GRAPH_MAX_ARGS 20    /* kernel arguments per command */
#define ENG_GRAPH_ARG_BYTES 192  /* packed argument bytes per command */

typedef enum {
    ENG_GRAPH_KERNEL = 1, /* one of the backend's kernels: func, grid, block, packed arguments */
    ENG_GRAPH_GEMM = 2,   /* one cuBLAS strided batched GEMM: every argument packed in args */
    ENG_GRAPH_COPY = 3    /* one device -> device copy: dst, src, bytes packed in args */
} eng_graph_kind;

/* One recorded command.  Arguments are packed one after the other at their natural alignment
 * into a zero-filled args (so equal arguments are equal bytes); off[k] is where argument k
 * starts (kernels only; nargs = 0 for the other kinds). */
typedef struct eng_graph_cmd {
    int kind;
    const void *func;         /* kernel entry (ENG_GRAPH_KERNEL), NULL otherwise */
    unsigned grid[3], block[3];
    unsigned short nargs, size; /* argument count and packed bytes */
    unsigned short off[ENG_GRAPH_MAX_ARGS];
    unsigned char args[ENG_GRAPH_ARG_BYTES];
} eng_graph_cmd;

/* Appends `bytes` bytes of one argument at its alignment `align` (a power of two <= 16) to c
 * (c->args zero-filled by the caller before the first argument).  Returns 0, or ENG_EINVAL
 * when the argument does not fit (the command cannot be recorded). */
int eng_graph_cmd_arg(eng_graph_cmd *c, const void *arg, size_t bytes, size_t align);

/* Can the graph captured for old[0..nold) run the step recorded as cur[0..ncur)?  Yes (1)
 * when the lists have the same length and, command by command, the same kind and: for a
 * kernel the same function, grid, block and argument layout (the argument VALUES may differ:
 * patch[i] is then set to 1, else 0, and the backend updates that node before the launch);
 * for a GEMM or a copy the same bytes (cuBLAS nodes are not patched: a different GEMM means a
 * new capture).  No (0): capture cur anew (patch is then unspecified).  patch has ncur bytes
 * (may be NULL when no patching is wanted: then any kernel argument change also means 0). */
int eng_graph_plan(const eng_graph_cmd *old, size_t nold, const eng_graph_cmd *cur, size_t ncur,
                   unsigned char *patch);

#endif

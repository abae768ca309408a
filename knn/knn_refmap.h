/* knn_refmap.h — inside the knn module only: where a row that a
 * neighbour list names sits among the reference rows (knn_lof.c,
 * knn_context.c).  An open-addressing hash from row to place, so that a
 * lookup per neighbour costs O(1) however large the sample. */
#ifndef KNN_REFMAP_H
#define KNN_REFMAP_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Where a nameable row's values are kept: its place in ref (open
 * addressing over ref's m rows), or the row itself without ref. */
typedef struct refmap {
    const int32_t *ref;
    uint32_t *slot;
    size_t mask;
} refmap;

static inline size_t ref_hash(int32_t r) { return (size_t)((uint32_t)r * 2654435761u); }

static inline int refmap_init(refmap *mp, const int32_t *ref, size_t m)
{
    memset(mp, 0, sizeof *mp);
    mp->ref = ref;
    if (!ref) return 0;
    size_t cap = 16;
    while (cap < 2 * m) cap <<= 1;
    if (!(mp->slot = malloc(cap * sizeof *mp->slot))) return -1;
    memset(mp->slot, 0xff, cap * sizeof *mp->slot);
    mp->mask = cap - 1;
    for (size_t q = 0; q < m; q++) {
        size_t h = ref_hash(ref[q]) & mp->mask;
        while (mp->slot[h] != UINT32_MAX) h = (h + 1) & mp->mask;
        mp->slot[h] = (uint32_t)q;
    }
    return 0;
}

/* Row r's place, or SIZE_MAX when it is not one a list can name. */
static inline size_t refmap_at(const refmap *mp, int32_t r)
{
    if (!mp->ref) return (size_t)r;
    for (size_t h = ref_hash(r) & mp->mask;; h = (h + 1) & mp->mask) {
        uint32_t q = mp->slot[h];
        if (q == UINT32_MAX) return SIZE_MAX;
        if (mp->ref[q] == r) return q;
    }
}

static inline void refmap_free(refmap *mp) { free(mp->slot); }

#endif

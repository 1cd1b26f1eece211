/* Incremental RAM snapshots: see pagestore.h.
 *
 * Tree shape: a node at level l covers 64^(l+1) pages; level 0 holds page
 * pointers. A leaf's 64 pages are exactly one word of the changed bitmap,
 * so "did anything under this node change" is a scan of whole words. A NULL
 * child is an all-zero page or subtree. Reference counts count parents (and
 * snapshot roots, and the base); nothing is ever modified once shared, except
 * by the importer, which builds a tree nobody else sees yet. */
#include "pagestore.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define PAGE 4096u
#define FAN_BITS 6u
#define FAN (1u << FAN_BITS)
#define POOL_MAX 4096u /* pages kept for reuse: 16 MiB */

struct page {
    uint64_t refs;
    uint8_t data[PAGE];
};

struct node {
    uint64_t refs;
    void *slot[FAN];
};

struct vm_pagestore_snap {
    struct vm_pagestore *ps;
    struct node *root;
    uint64_t pages; /* not all zero */
    struct vm_pagestore_snap *prev, *next;
};

struct vm_pagestore {
    uint64_t ram_size;
    uint64_t npages;
    unsigned levels; /* root level + 1 */
    size_t words;
    uint64_t *changed;
    struct node *base; /* a reference of its own */
    uint64_t base_pages;
    struct vm_pagestore_usage use;
    uint64_t limit;
    struct vm_pagestore_snap *first, *last;
    struct page *spare; /* a copy that turned out shared or zero, for reuse */
    struct page *pool;  /* freed pages, linked through their data */
    /* The save in progress. */
    const uint8_t *ram;
    vm_pagestore_fixup_fn fixup;
    void *fixup_ctx;
    struct vm_pagestore_cost *cost;
    int64_t delta_pages;
};

struct vm_pagestore_import {
    struct vm_pagestore *ps;
    struct node *root;
    uint64_t pages;
    uint64_t next_page;
};

static const uint64_t PAGE_BYTES = sizeof(struct page);
static const uint64_t NODE_BYTES = sizeof(struct node);

/* --- allocation and reference counting ---------------------------------- */

static struct node *node_new(struct vm_pagestore *ps)
{
    struct node *n = calloc(1, sizeof(*n));
    if (!n)
        return NULL;
    n->refs = 1;
    ps->use.nodes++;
    ps->use.bytes += NODE_BYTES;
    return n;
}

/* Freed pages are kept for the next saves, up to POOL_MAX: fresh heap
 * memory costs a page fault per page on first touch, which would double the
 * cost of a save after a delete. */
static void page_put(struct vm_pagestore *ps, struct page *p)
{
    if (!p || --p->refs)
        return;
    ps->use.pages--;
    ps->use.bytes -= PAGE_BYTES;
    if (ps->use.pooled < POOL_MAX) {
        *(struct page **)(void *)p->data = ps->pool;
        ps->pool = p;
        ps->use.pooled++;
    } else {
        free(p);
    }
}

static struct node *node_get(struct node *n)
{
    if (n)
        n->refs++;
    return n;
}

static struct page *page_get(struct page *p)
{
    if (p)
        p->refs++;
    return p;
}

static void node_put(struct vm_pagestore *ps, struct node *n, unsigned level)
{
    if (!n || --n->refs)
        return;
    for (unsigned i = 0; i < FAN; i++) {
        if (level)
            node_put(ps, n->slot[i], level - 1);
        else
            page_put(ps, n->slot[i]);
    }
    ps->use.nodes--;
    ps->use.bytes -= NODE_BYTES;
    free(n);
}

static uint64_t span(unsigned level)
{
    return 1ull << (FAN_BITS * (level + 1));
}

static bool any_changed(const struct vm_pagestore *ps, uint64_t first, unsigned level)
{
    size_t w = (size_t)(first / 64);
    uint64_t n = span(level) / 64;
    size_t end = n > ps->words - w ? ps->words : w + (size_t)n;
    for (; w < end; w++)
        if (ps->changed[w])
            return true;
    return false;
}

static bool is_changed(const struct vm_pagestore *ps, uint64_t page)
{
    return ps->changed[page / 64] >> (page % 64) & 1;
}

/* 64 bytes at a time, stopping at the first that is not zero. */
/* Counts the changed pages (for the cost) and clears the set, in one pass. */
static uint64_t take_changed(struct vm_pagestore *ps)
{
    uint64_t n = 0;
    for (size_t w = 0; w < ps->words; w++) {
        n += (uint64_t)__builtin_popcountll(ps->changed[w]);
        ps->changed[w] = 0;
    }
    return n;
}

static bool all_zero(const uint8_t *p)
{
    const uint64_t *w = (const uint64_t *)(const void *)p;
    for (unsigned i = 0; i < PAGE / 8; i += 8)
        if (w[i] | w[i + 1] | w[i + 2] | w[i + 3] | w[i + 4] | w[i + 5] | w[i + 6] | w[i + 7])
            return false;
    return true;
}

/* --- creation ------------------------------------------------------------ */

int vm_pagestore_create(uint64_t ram_size, struct vm_pagestore **out)
{
    if (!ram_size || ram_size % PAGE || ram_size > (1ull << 46))
        return -EINVAL;
    struct vm_pagestore *ps = calloc(1, sizeof(*ps));
    if (!ps)
        return -ENOMEM;
    ps->ram_size = ram_size;
    ps->npages = ram_size / PAGE;
    ps->levels = 1;
    while (span(ps->levels - 1) < ps->npages)
        ps->levels++;
    ps->words = (size_t)((ps->npages + 63) / 64);
    ps->changed = calloc(ps->words, sizeof(uint64_t));
    if (!ps->changed) {
        free(ps);
        return -ENOMEM;
    }
    *out = ps;
    return 0;
}

void vm_pagestore_destroy(struct vm_pagestore *ps)
{
    if (!ps)
        return;
    while (ps->first)
        vm_pagestore_delete(ps, ps->first);
    node_put(ps, ps->base, ps->levels - 1);
    free(ps->spare);
    while (ps->pool) {
        struct page *p = ps->pool;
        ps->pool = *(struct page **)(void *)p->data;
        free(p);
    }
    free(ps->changed);
    free(ps);
}

uint64_t vm_pagestore_ram_size(const struct vm_pagestore *ps)
{
    return ps->ram_size;
}

uint64_t *vm_pagestore_changed(struct vm_pagestore *ps)
{
    return ps->changed;
}

void vm_pagestore_mark(struct vm_pagestore *ps, uint64_t first, uint64_t count)
{
    if (first >= ps->npages)
        return;
    if (count > ps->npages - first)
        count = ps->npages - first;
    for (uint64_t p = first; p < first + count; p++)
        ps->changed[p / 64] |= 1ull << (p % 64);
}

void vm_pagestore_set_limit(struct vm_pagestore *ps, uint64_t bytes)
{
    ps->limit = bytes;
}

uint64_t vm_pagestore_save_bound(const struct vm_pagestore *ps)
{
    uint64_t pages = 0;
    for (size_t w = 0; w < ps->words; w++)
        pages += (uint64_t)__builtin_popcountll(ps->changed[w]);
    /* Each changed page copies at most its page and one node per level. */
    return pages * (PAGE_BYTES + ps->levels * NODE_BYTES);
}

const struct vm_pagestore_usage *vm_pagestore_usage(const struct vm_pagestore *ps)
{
    return &ps->use;
}

/* --- save ---------------------------------------------------------------- */

static struct page *page_alloc(struct vm_pagestore *ps)
{
    struct page *p = ps->pool;
    if (p) {
        ps->pool = *(struct page **)(void *)p->data;
        ps->use.pooled--;
        return p;
    }
    return malloc(sizeof(*p));
}

/* The page to keep for page p, given the base's copy: NULL when all zero,
 * old (another reference) when equal, else a new copy. Compare before
 * copying: most pages differ from the base early on, or equal it, and a
 * page's copy is the only full pass then. */
static int capture(struct vm_pagestore *ps, uint64_t p, struct page *old, struct page **out)
{
    const uint8_t *src = ps->ram + p * PAGE;
    ps->cost->visited++;
    if (ps->fixup) {
        if (!ps->spare && !(ps->spare = page_alloc(ps)))
            return -ENOMEM;
        memcpy(ps->spare->data, src, PAGE);
        ps->fixup(ps->fixup_ctx, p * PAGE, ps->spare->data);
        src = ps->spare->data;
    }
    if (old && memcmp(old->data, src, PAGE) == 0) {
        ps->cost->shared++;
        *out = page_get(old);
        return 0;
    }
    if (all_zero(src)) {
        *out = NULL;
        ps->delta_pages -= old != NULL;
        return 0;
    }
    if (ps->limit && ps->use.bytes + PAGE_BYTES > ps->limit)
        return -ENOSPC;
    struct page *c = ps->spare;
    if (!c && !(c = page_alloc(ps)))
        return -ENOMEM;
    ps->spare = NULL;
    if (src != c->data) /* not already there (fixed up) */
        memcpy(c->data, src, PAGE);
    c->refs = 1;
    ps->use.pages++;
    ps->use.bytes += PAGE_BYTES;
    ps->cost->copied++;
    ps->delta_pages += old == NULL;
    *out = c;
    return 0;
}

static int save_node(struct vm_pagestore *ps, struct node *old, unsigned level, uint64_t first,
                     struct node **out)
{
    if (!any_changed(ps, first, level)) {
        *out = node_get(old);
        return 0;
    }
    if (ps->limit && ps->use.bytes + NODE_BYTES > ps->limit)
        return -ENOSPC;
    struct node *n = node_new(ps);
    if (!n)
        return -ENOMEM;
    bool same = true, empty = true;
    int err = 0;
    for (unsigned i = 0; i < FAN && !err; i++) {
        uint64_t child = first + (uint64_t)i * (level ? span(level - 1) : 1);
        if (child >= ps->npages)
            break;
        void *was = old ? old->slot[i] : NULL;
        void *now = NULL;
        if (level) {
            struct node *c = NULL;
            err = save_node(ps, was, level - 1, child, &c);
            now = c;
        } else if (is_changed(ps, child)) {
            struct page *c = NULL;
            err = capture(ps, child, was, &c);
            now = c;
        } else {
            now = page_get(was);
        }
        if (err)
            break;
        n->slot[i] = now;
        same &= now == was;
        empty &= now == NULL;
    }
    if (err || same || empty) {
        /* Undo, or nothing new here: the old subtree (or none) serves. */
        node_put(ps, n, level);
        if (err)
            return err;
        *out = same ? node_get(old) : NULL;
        return 0;
    }
    *out = n;
    return 0;
}

int vm_pagestore_save(struct vm_pagestore *ps, const uint8_t *ram, vm_pagestore_fixup_fn fixup,
                      void *fixup_ctx, struct vm_pagestore_snap **out,
                      struct vm_pagestore_cost *cost)
{
    struct vm_pagestore_cost scratch;
    if (!cost)
        cost = &scratch;
    memset(cost, 0, sizeof(*cost));
    struct vm_pagestore_snap *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    ps->ram = ram;
    ps->fixup = fixup;
    ps->fixup_ctx = fixup_ctx;
    ps->cost = cost;
    ps->delta_pages = 0;
    struct node *root;
    int err = save_node(ps, ps->base, ps->levels - 1, 0, &root);
    ps->ram = NULL;
    ps->cost = NULL;
    if (err) {
        free(s);
        return err;
    }
    s->ps = ps;
    s->root = root;
    s->pages = (uint64_t)((int64_t)ps->base_pages + ps->delta_pages);
    s->prev = ps->last;
    if (ps->last)
        ps->last->next = s;
    else
        ps->first = s;
    ps->last = s;
    ps->use.snaps++;
    node_put(ps, ps->base, ps->levels - 1);
    ps->base = node_get(root);
    ps->base_pages = s->pages;
    cost->changed = take_changed(ps);
    *out = s;
    return 0;
}

/* --- load ---------------------------------------------------------------- */

static void put_page(uint8_t *dst, const struct page *p)
{
    if (p)
        memcpy(dst, p->data, PAGE);
    else if (!all_zero(dst)) /* a page never written stays unbacked */
        memset(dst, 0, PAGE);
}

static void load_node(struct vm_pagestore *ps, const struct node *cur, const struct node *want,
                      unsigned level, uint64_t first, uint8_t *ram,
                      struct vm_pagestore_cost *cost)
{
    if (cur == want && !any_changed(ps, first, level))
        return;
    for (unsigned i = 0; i < FAN; i++) {
        uint64_t child = first + (uint64_t)i * (level ? span(level - 1) : 1);
        if (child >= ps->npages)
            break;
        const void *c = cur ? cur->slot[i] : NULL, *w = want ? want->slot[i] : NULL;
        if (level) {
            load_node(ps, c, w, level - 1, child, ram, cost);
            continue;
        }
        cost->visited++;
        if (c != w || is_changed(ps, child)) {
            put_page(ram + child * PAGE, w);
            cost->copied++;
        }
    }
}

void vm_pagestore_load(struct vm_pagestore *ps, const struct vm_pagestore_snap *s, uint8_t *ram,
                       struct vm_pagestore_cost *cost)
{
    struct vm_pagestore_cost scratch;
    if (!cost)
        cost = &scratch;
    memset(cost, 0, sizeof(*cost));
    load_node(ps, ps->base, s->root, ps->levels - 1, 0, ram, cost);
    node_put(ps, ps->base, ps->levels - 1);
    ps->base = node_get(s->root);
    ps->base_pages = s->pages;
    cost->changed = take_changed(ps);
}

/* --- delete and inspection ----------------------------------------------- */

void vm_pagestore_delete(struct vm_pagestore *ps, struct vm_pagestore_snap *s)
{
    if (!s)
        return;
    if (s->prev)
        s->prev->next = s->next;
    else
        ps->first = s->next;
    if (s->next)
        s->next->prev = s->prev;
    else
        ps->last = s->prev;
    node_put(ps, s->root, ps->levels - 1);
    ps->use.snaps--;
    free(s);
}

static uint64_t own_bytes(const struct node *n, unsigned level)
{
    if (!n || n->refs != 1)
        return 0;
    uint64_t b = NODE_BYTES;
    for (unsigned i = 0; i < FAN; i++) {
        if (level)
            b += own_bytes(n->slot[i], level - 1);
        else if (n->slot[i] && ((const struct page *)n->slot[i])->refs == 1)
            b += PAGE_BYTES;
    }
    return b;
}

uint64_t vm_pagestore_snap_bytes(const struct vm_pagestore_snap *s)
{
    return own_bytes(s->root, s->ps->levels - 1);
}

uint64_t vm_pagestore_snap_pages(const struct vm_pagestore_snap *s)
{
    return s->pages;
}

static int walk(const struct node *n, unsigned level, uint64_t first,
                int (*fn)(void *ctx, uint64_t page, const uint8_t *data), void *ctx)
{
    if (!n)
        return 0;
    for (unsigned i = 0; i < FAN; i++) {
        uint64_t child = first + (uint64_t)i * (level ? span(level - 1) : 1);
        int r = 0;
        if (level)
            r = walk(n->slot[i], level - 1, child, fn, ctx);
        else if (n->slot[i])
            r = fn(ctx, child, ((const struct page *)n->slot[i])->data);
        if (r)
            return r;
    }
    return 0;
}

int vm_pagestore_foreach(const struct vm_pagestore_snap *s,
                         int (*fn)(void *ctx, uint64_t page, const uint8_t *data), void *ctx)
{
    return walk(s->root, s->ps->levels - 1, 0, fn, ctx);
}

const uint8_t *vm_pagestore_page(const struct vm_pagestore_snap *s, uint64_t page)
{
    if (page >= s->ps->npages)
        return NULL;
    const struct node *n = s->root;
    for (unsigned level = s->ps->levels - 1; n; level--) {
        unsigned i = (unsigned)(page >> (FAN_BITS * level)) & (FAN - 1);
        if (!level) {
            const struct page *p = n->slot[i];
            return p ? p->data : NULL;
        }
        n = n->slot[i];
    }
    return NULL;
}

/* --- import -------------------------------------------------------------- */

int vm_pagestore_import_begin(struct vm_pagestore *ps, struct vm_pagestore_import **out)
{
    struct vm_pagestore_import *im = calloc(1, sizeof(*im));
    if (!im)
        return -ENOMEM;
    im->ps = ps;
    *out = im;
    return 0;
}

int vm_pagestore_import_page(struct vm_pagestore_import *im, uint64_t page, const uint8_t *data)
{
    struct vm_pagestore *ps = im->ps;
    if (page >= ps->npages || page < im->next_page)
        return -EINVAL;
    im->next_page = page + 1;
    if (all_zero(data))
        return 0;
    if (ps->limit && ps->use.bytes + PAGE_BYTES + ps->levels * NODE_BYTES > ps->limit)
        return -ENOSPC;
    if (!im->root && !(im->root = node_new(ps)))
        return -ENOMEM;
    struct node *n = im->root;
    for (unsigned level = ps->levels - 1; level; level--) {
        unsigned i = (unsigned)(page >> (FAN_BITS * level)) & (FAN - 1);
        if (!n->slot[i] && !(n->slot[i] = node_new(ps)))
            return -ENOMEM;
        n = n->slot[i];
    }
    struct page *p = page_alloc(ps);
    if (!p)
        return -ENOMEM;
    p->refs = 1;
    memcpy(p->data, data, PAGE);
    n->slot[page & (FAN - 1)] = p;
    ps->use.pages++;
    ps->use.bytes += PAGE_BYTES;
    im->pages++;
    return 0;
}

struct vm_pagestore_snap *vm_pagestore_import_end(struct vm_pagestore_import *im)
{
    struct vm_pagestore *ps = im->ps;
    struct vm_pagestore_snap *s = calloc(1, sizeof(*s));
    if (!s) {
        vm_pagestore_import_abort(im);
        return NULL;
    }
    s->ps = ps;
    s->root = im->root;
    s->pages = im->pages;
    s->prev = ps->last;
    if (ps->last)
        ps->last->next = s;
    else
        ps->first = s;
    ps->last = s;
    ps->use.snaps++;
    free(im);
    return s;
}

void vm_pagestore_import_abort(struct vm_pagestore_import *im)
{
    if (!im)
        return;
    node_put(im->ps, im->root, im->ps->levels - 1);
    free(im);
}

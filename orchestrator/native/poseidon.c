/* Poseidon over the BN254 scalar field, as circomlib's Poseidon(n): a shared library for
 * orchestrator/poseidon.py (ctypes), built as build/native/libvbill_poseidon.so.
 *
 * The library holds no constants of its own: orchestrator/poseidon.py derives them from the
 * Grain LFSR and passes them to vbill_poseidon_init, so there is one source of constants.
 * Every field element crossing the API is a 32-byte LITTLE-ENDIAN canonical integer (< r).
 * Arithmetic is fields.h's Fr (4x64-bit Montgomery limbs); state and constants are kept in
 * Montgomery form, inputs are converted in and the output out.
 *
 * Permutation (circomlib): width t = n + 1, state = [0, inputs...], R_F = 8 full rounds split
 * 4 / 4 around R_P partial rounds; every round adds t constants, applies x^5 (to every cell in
 * a full round, to cell 0 in a partial round) and multiplies by the t x t MDS matrix.
 *
 * Optionally (vbill_poseidon_init_sparse) the partial rounds run in the sparse form computed
 * by orchestrator/poseidon.py's _sparse_plan from the same constants: O(t) per partial round
 * instead of O(t^2). Without it the plain form above runs. Every matrix row times the state
 * is one dot product (fr_dot): the 512-bit products are summed unreduced and reduced once.
 *
 * Return codes: 0 ok; VBILL_POSEIDON_E* below (negative) on error. Initialising a width again
 * with the same constants (or plan) is a no-op, so it is safe while other threads hash with
 * it; initialising it with different ones is not. Hashing is re-entrant.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fields.h"

#define VBILL_POSEIDON_EWIDTH (-1)     /* t outside 2..POSEIDON_MAX_T */
#define VBILL_POSEIDON_ECOUNT (-2)     /* constant count does not fit t and R_F = 8 */
#define VBILL_POSEIDON_ECONST (-3)     /* a constant or matrix entry is not < r */
#define VBILL_POSEIDON_EUNINIT (-4)    /* hash before init for this t */
#define VBILL_POSEIDON_EINPUT (-5)     /* an input is not < r */
#define VBILL_POSEIDON_ENOMEM (-6)     /* allocation failed */
#define VBILL_POSEIDON_EARG (-7)       /* a NULL pointer */

#define POSEIDON_MAX_T 17
#define POSEIDON_ROUNDS_F 8

typedef struct {
    int rounds_p;   /* 0: width not initialised */
    fe *rc;         /* (R_F + R_P) * t round constants, Montgomery form */
    fe mds[POSEIDON_MAX_T * POSEIDON_MAX_T];
    /* sparse plan (has_sparse): see orchestrator/poseidon.py _SparsePlan */
    int has_sparse;
    fe *entry;      /* t: constants added before the first partial round */
    fe *entry_b;    /* (t-1)^2: dense matrix applied to state[1..] once */
    fe *pre;        /* R_P: scalar added to state[0] before each partial S-box */
    fe *post;       /* R_P: scalar added after it */
    fe *sp;         /* R_P * (2t - 1): per partial round m00, u[t-1], col[t-1] */
} poseidon_width;

static poseidon_width widths[POSEIDON_MAX_T + 1];

/* Load n canonical little-endian 32-byte words into Montgomery form; 0 or ECONST. */
static int load_words(fe *dst, const uint8_t *src, size_t n) {
    for (size_t i = 0; i < n; i++) {
        fe x;
        memcpy(x.v, src + 32 * i, 32); /* x86-64 is little-endian: limbs are the bytes */
        if (!fr_is_canonical(&x)) return VBILL_POSEIDON_ECONST;
        fr_to_mont(&dst[i], &x);
    }
    return 0;
}

static void free_width(poseidon_width *w) {
    free(w->rc);
    free(w->entry);
    free(w->entry_b);
    free(w->pre);
    free(w->post);
    free(w->sp);
    memset(w, 0, sizeof *w);
}

/* Field products on the BMI2/ADX path where the CPU has it, as in the prover (fields.h): a
 * hash of 16 inputs in ~2/3 of the time; the results are the same words. */
__attribute__((constructor)) static void poseidon_lib_load(void) { fields_init(); }

int vbill_poseidon_init(int t, const uint8_t *constants, size_t n_round_constants,
                        const uint8_t *mds) {
    if (t < 2 || t > POSEIDON_MAX_T) return VBILL_POSEIDON_EWIDTH;
    if (!constants || !mds) return VBILL_POSEIDON_EARG;
    if (n_round_constants % (size_t)t != 0 ||
        n_round_constants / (size_t)t <= POSEIDON_ROUNDS_F ||
        n_round_constants / (size_t)t > 4096)
        return VBILL_POSEIDON_ECOUNT;
    poseidon_width w;
    memset(&w, 0, sizeof w);
    w.rounds_p = (int)(n_round_constants / (size_t)t) - POSEIDON_ROUNDS_F;
    w.rc = malloc(n_round_constants * sizeof(fe));
    if (!w.rc) return VBILL_POSEIDON_ENOMEM;
    int rc = load_words(w.rc, constants, n_round_constants);
    if (rc == 0) rc = load_words(w.mds, mds, (size_t)t * (size_t)t);
    if (rc != 0) {
        free_width(&w);
        return rc;
    }
    poseidon_width *cur = &widths[t];
    if (cur->rounds_p == w.rounds_p && !memcmp(cur->rc, w.rc, n_round_constants * sizeof(fe)) &&
        !memcmp(cur->mds, w.mds, sizeof w.mds)) {
        free_width(&w); /* same constants again: keep the tables (and any sparse plan) in use */
        return 0;
    }
    free_width(cur);
    *cur = w;
    return 0;
}

/* Sparse plan for an initialised width t (same R_P). Layout, all little-endian words:
 * entry[t], entry_b[(t-1)^2] row-major, pre[R_P], post[R_P], then per partial round
 * m00, u[t-1], col[t-1]. */
int vbill_poseidon_init_sparse(int t, const uint8_t *entry, const uint8_t *entry_b,
                               const uint8_t *pre, const uint8_t *post, const uint8_t *sparse) {
    if (t < 2 || t > POSEIDON_MAX_T) return VBILL_POSEIDON_EWIDTH;
    if (!entry || !entry_b || !pre || !post || !sparse) return VBILL_POSEIDON_EARG;
    poseidon_width *w = &widths[t];
    if (w->rounds_p == 0) return VBILL_POSEIDON_EUNINIT;
    size_t np = (size_t)w->rounds_p, k = (size_t)t - 1;
    fe *e = malloc((size_t)t * sizeof(fe)), *eb = malloc(k * k * sizeof(fe));
    fe *a = malloc(np * sizeof(fe)), *b = malloc(np * sizeof(fe));
    fe *s = malloc(np * (2 * k + 1) * sizeof(fe));
    int rc = (e && eb && a && b && s) ? 0 : VBILL_POSEIDON_ENOMEM;
    if (rc == 0) rc = load_words(e, entry, (size_t)t);
    if (rc == 0) rc = load_words(eb, entry_b, k * k);
    if (rc == 0) rc = load_words(a, pre, np);
    if (rc == 0) rc = load_words(b, post, np);
    if (rc == 0) rc = load_words(s, sparse, np * (2 * k + 1));
    if (rc == 0 && w->has_sparse && !memcmp(w->entry, e, (size_t)t * sizeof(fe)) &&
        !memcmp(w->entry_b, eb, k * k * sizeof(fe)) && !memcmp(w->pre, a, np * sizeof(fe)) &&
        !memcmp(w->post, b, np * sizeof(fe)) &&
        !memcmp(w->sp, s, np * (2 * k + 1) * sizeof(fe)))
        rc = 1; /* the same plan again: keep the one in use */
    if (rc != 0) {
        free(e), free(eb), free(a), free(b), free(s);
        return rc > 0 ? 0 : rc;
    }
    free(w->entry), free(w->entry_b), free(w->pre), free(w->post), free(w->sp);
    w->entry = e, w->entry_b = eb, w->pre = a, w->post = b, w->sp = s;
    w->has_sparse = 1;
    return 0;
}

static inline void sbox(fe *x) {
    fe x2, x4;
    fr_sqr(&x2, x);
    fr_sqr(&x4, &x2);
    fr_mul(x, &x4, x);
}

/* r = sum a[i] * b[i] (Montgomery), n <= POSEIDON_MAX_T, with one reduction instead of n:
 * the 512-bit products are summed unreduced (T < 17 r^2 < 2^512), T's upper half is brought
 * below r by subtracting r * 2^256 (at most 3 times; once for n <= 9), so T < r * 2^256 and
 * one Montgomery reduction gives a result < 2r, then one conditional subtraction. */
static inline void fr_dot(fe *r, const fe *a, const fe *b, int n) {
    /* product scanning (Comba): column c collects every a[k].v[i] * b[k].v[c - i] into a
     * 192-bit accumulator (at most 4 * 17 products < 2^135 per column) */
    u64 T[8];
    u128 acc = 0;
    u64 hi = 0;
    for (int c = 0; c < 7; c++) {
        int lo_i = c > 3 ? c - 3 : 0, hi_i = c < 3 ? c : 3;
        for (int k = 0; k < n; k++) {
            const u64 *x = a[k].v, *y = b[k].v;
            for (int i = lo_i; i <= hi_i; i++) {
                u128 z = (u128)x[i] * y[c - i];
                acc += z;
                hi += acc < z;
            }
        }
        T[c] = (u64)acc;
        acc = (acc >> 64) | ((u128)hi << 64);
        hi = 0;
    }
    T[7] = (u64)acc; /* T < 17 r^2 < 2^512: nothing above */
    while (fr_geq_p(&T[4])) {
        u64 b = 0;
        for (int j = 0; j < 4; j++) {
            u128 z = (u128)T[4 + j] - fr_P.v[j] - b;
            T[4 + j] = (u64)z;
            b = (u64)(z >> 64) & 1;
        }
    }
    for (int i = 0; i < 4; i++) {
        u64 m = T[i] * fr_INV, c = 0;
        for (int j = 0; j < 4; j++) {
            u128 z = (u128)m * fr_P.v[j] + T[i + j] + c;
            T[i + j] = (u64)z;
            c = (u64)(z >> 64);
        }
        for (int j = i + 4; j < 8; j++) {
            u128 z = (u128)T[j] + c;
            T[j] = (u64)z;
            c = (u64)(z >> 64);
        }
    }
    fr_reduce_once(r, T[4], T[5], T[6], T[7]);
}

/* state = M * state */
static inline void mix(const poseidon_width *w, int t, fe *state) {
    fe out[POSEIDON_MAX_T];
    for (int i = 0; i < t; i++) fr_dot(&out[i], &w->mds[i * t], state, t);
    memcpy(state, out, (size_t)t * sizeof(fe));
}

static inline void full_round(const poseidon_width *w, int t, fe *state, const fe *rc) {
    for (int i = 0; i < t; i++) {
        fr_add(&state[i], &state[i], &rc[i]);
        sbox(&state[i]);
    }
    mix(w, t, state);
}

static void permute_plain(const poseidon_width *w, int t, fe *state) {
    const int half = POSEIDON_ROUNDS_F / 2, np = w->rounds_p;
    for (int r = 0; r < POSEIDON_ROUNDS_F + np; r++) {
        const fe *rc = &w->rc[r * t];
        if (r < half || r >= half + np) {
            full_round(w, t, state, rc);
        } else {
            for (int i = 0; i < t; i++) fr_add(&state[i], &state[i], &rc[i]);
            sbox(&state[0]);
            mix(w, t, state);
        }
    }
}

static void permute_sparse(const poseidon_width *w, int t, fe *state) {
    const int half = POSEIDON_ROUNDS_F / 2, np = w->rounds_p, k = t - 1;
    for (int r = 0; r < half; r++) full_round(w, t, state, &w->rc[r * t]);
    /* rest = entry_b * (state[1..] + entry[1..]); state[0] keeps its value */
    /* v = [state[0], rest...] with rest = entry_b * (state[1..] + entry[1..]) */
    fe v[POSEIDON_MAX_T], tmp[POSEIDON_MAX_T];
    for (int i = 0; i < k; i++) fr_add(&tmp[i], &state[1 + i], &w->entry[1 + i]);
    for (int i = 0; i < k; i++) fr_dot(&v[1 + i], &w->entry_b[i * k], tmp, k);
    v[0] = state[0];
    for (int q = 0; q < np; q++) {
        /* sp row: m00, u[k] (contiguous: dotted with v), then col[k] */
        const fe *row = &w->sp[(size_t)q * (2 * k + 1)], *col = row + 1 + k;
        fr_add(&v[0], &v[0], &w->pre[q]);
        sbox(&v[0]);
        fr_add(&v[0], &v[0], &w->post[q]);
        fe s0;
        fr_dot(&s0, row, v, t);
        for (int j = 0; j < k; j++) {
            fe p;
            fr_mul(&p, &col[j], &v[0]);
            fr_add(&v[1 + j], &v[1 + j], &p);
        }
        v[0] = s0;
    }
    memcpy(state, v, (size_t)t * sizeof(fe));
    for (int r = half + np; r < POSEIDON_ROUNDS_F + np; r++) full_round(w, t, state, &w->rc[r * t]);
}

static int hash(int t, const uint8_t *inputs, uint8_t *out, int sparse) {
    if (t < 2 || t > POSEIDON_MAX_T) return VBILL_POSEIDON_EWIDTH;
    if (!inputs || !out) return VBILL_POSEIDON_EARG;
    const poseidon_width *w = &widths[t];
    if (w->rounds_p == 0 || (sparse && !w->has_sparse)) return VBILL_POSEIDON_EUNINIT;
    fe state[POSEIDON_MAX_T];
    memset(&state[0], 0, sizeof(fe)); /* 0 is 0 in Montgomery form too */
    for (int i = 1; i < t; i++) {
        fe x;
        memcpy(x.v, inputs + 32 * (i - 1), 32);
        if (!fr_is_canonical(&x)) return VBILL_POSEIDON_EINPUT;
        fr_to_mont(&state[i], &x);
    }
    if (sparse) permute_sparse(w, t, state);
    else permute_plain(w, t, state);
    fe res;
    fr_from_mont(&res, &state[0]);
    memcpy(out, res.v, 32);
    return 0;
}

/* Poseidon(t - 1) of (t-1) little-endian words; the sparse form when it was loaded. */
int vbill_poseidon_hash(int t, const uint8_t *inputs, uint8_t *out) {
    if (t >= 2 && t <= POSEIDON_MAX_T && widths[t].has_sparse) return hash(t, inputs, out, 1);
    return hash(t, inputs, out, 0);
}

/* The plain (textbook) form even when a sparse plan is loaded: the tests' oracle. */
int vbill_poseidon_hash_plain(int t, const uint8_t *inputs, uint8_t *out) {
    return hash(t, inputs, out, 0);
}

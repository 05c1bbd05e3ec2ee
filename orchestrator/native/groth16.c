/* vbill-prover: a native Groth16 prover for BN254 that reproduces snarkjs's groth16 prove.
 *
 * Usage:
 *   vbill-prover [--timing] ZKEY          long-lived: frames on stdin, JSON lines on stdout
 *   vbill-prover [--timing] ZKEY WTNS     one shot: prove one .wtns file
 * Frame: u32 little-endian length, then that many bytes of a .wtns file. Each frame gets one
 * line: {"proof": {...}, "public_signals": [...]} or {"error": "..."}.
 *
 * Algorithm (snarkjs src/groth16_prove.js): A, B evaluations on the domain from the zkey's
 * coefficient section, C = A*B pointwise; each goes iFFT -> times inc^i -> FFT, which gives
 * evaluations on the odd coset (inc = w_{2n}); h = A*B - C there; then
 *   pi_a = alpha1 + sum w_i A_i + r delta1
 *   pi_b = beta2 + sum w_i B2_i + s delta2           (B1 likewise in G1 with beta1, delta1)
 *   pi_c = sum_{i > nPublic} w_i C_i + sum h_i H_i + s pi_a + r B1 - r s delta1.
 * The zkey is parsed once and its bases are expanded into fixed-base MSM tables.
 * Written for vbill (no code taken from other projects).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#if !defined(__x86_64__)
#error "vbill-prover's field arithmetic uses x86-64 inline assembly"
#endif
#include "curves.h"
#include "sysrand.h"

/* ------------------------------------------------------------------ errors and timing */

static char g_err[256];
static int fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_err, sizeof g_err, fmt, ap);
    va_end(ap);
    return -1;
}

static double cpu_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* ------------------------------------------------------------------ binary file sections */

typedef struct {
    const uint8_t *p;
    uint64_t size;
} section;

#define MAX_SECTIONS 16

static uint32_t rd32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t rd64(const uint8_t *p) { return rd32(p) | (uint64_t)rd32(p + 4) << 32; }
static void rdfe(fe *r, const uint8_t *p) {
    for (int i = 0; i < 4; i++) r->v[i] = rd64(p + 8 * i);
}

/* iden3 binfile: magic, u32 version, u32 nSections, then (u32 type, u64 size, data)*.
 * Each section type may appear once. */
static int parse_binfile(const uint8_t *d, size_t len, const char *magic, uint32_t max_version,
                         section *secs) {
    memset(secs, 0, sizeof(section) * MAX_SECTIONS);
    if (len < 12 || memcmp(d, magic, 4) != 0) return fail("not a %s file (bad magic)", magic);
    uint32_t ver = rd32(d + 4), ns = rd32(d + 8);
    if (ver == 0 || ver > max_version) return fail("%s version %u not supported", magic, ver);
    size_t p = 12;
    for (uint32_t i = 0; i < ns; i++) {
        if (len - p < 12) return fail("%s: truncated section header", magic);
        uint32_t type = rd32(d + p);
        uint64_t size = rd64(d + p + 4);
        p += 12;
        if (size > len - p) return fail("%s: section %u overruns the file", magic, type);
        if (type < MAX_SECTIONS) {
            if (secs[type].p) return fail("%s: duplicate section %u", magic, type);
            secs[type].p = d + p;
            secs[type].size = size;
        }
        p += size;
    }
    return 0;
}

static uint8_t *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fail("cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc(n > 0 ? (size_t)n : 1);
    if (n < 0 || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        fclose(f);
        free(buf);
        fail("cannot read %s", path);
        return NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static uint32_t bitrev(uint32_t i, uint32_t power);

/* ------------------------------------------------------------------ the proving key */

typedef struct {
    uint32_t m, c, s; /* matrix (0 = A, 1 = B), constraint, signal */
    fe coef;          /* value * R^2 mod r as stored: Montgomery-multiplying by a plain
                         witness value gives the product in Montgomery form */
} coef_t;

typedef struct {
    uint32_t n_vars, n_public, domain, power;
    g1_aff alpha1, beta1, delta1;
    g2_aff beta2, gamma2, delta2;
    size_t n_coefs;
    coef_t *coefs;
    g1_table A, B1, C, H;
    g2_table B2;
    fe *tw, *tw_inv; /* domain/2 twiddles w^i and w^-i (Montgomery) */
    fe *coset;       /* inc^i / domain at bitrev(i) (Montgomery): iFFT scale and shift */
} zkey_t;

static fe G1_B, G2_B_c0, G2_B_c1; /* curve constants b (Montgomery) */
static fe2 G2_B;

static void init_constants(void) {
    fe three = {{3, 0, 0, 0}};
    fp_to_mont(&G1_B, &three);
    /* b2 = 3 / (9 + u) */
    fe nine = {{9, 0, 0, 0}}, one = {{1, 0, 0, 0}};
    fe2 xi, xi_inv;
    fp_to_mont(&xi.c0, &nine);
    fp_to_mont(&xi.c1, &one);
    fp2_inv(&xi_inv, &xi);
    fp_mul(&G2_B_c0, &xi_inv.c0, &G1_B);
    fp_mul(&G2_B_c1, &xi_inv.c1, &G1_B);
    G2_B.c0 = G2_B_c0;
    G2_B.c1 = G2_B_c1;
}

static const uint8_t FR_MODULUS_LE[32] = {
    0x01, 0x00, 0x00, 0xf0, 0x93, 0xf5, 0xe1, 0x43, 0x91, 0x70, 0xb9, 0x79, 0x48, 0xe8, 0x33, 0x28,
    0x5d, 0x58, 0x81, 0x81, 0xb6, 0x45, 0x50, 0xb8, 0x29, 0xa0, 0x31, 0xe1, 0x72, 0x4e, 0x64, 0x30};

static int load_g1(g1_aff *a, const uint8_t *p) {
    rdfe(&a->x, p);
    rdfe(&a->y, p + 32);
    if (!fp_is_canonical(&a->x) || !fp_is_canonical(&a->y) || !g1_aff_on_curve(a, &G1_B))
        return fail("zkey: G1 point not on the curve");
    return 0;
}
static int load_g2(g2_aff *a, const uint8_t *p) {
    rdfe(&a->x.c0, p);
    rdfe(&a->x.c1, p + 32);
    rdfe(&a->y.c0, p + 64);
    rdfe(&a->y.c1, p + 96);
    if (!fp_is_canonical(&a->x.c0) || !fp_is_canonical(&a->x.c1) ||
        !fp_is_canonical(&a->y.c0) || !fp_is_canonical(&a->y.c1) ||
        !g2_aff_on_curve(a, &G2_B))
        return fail("zkey: G2 point not on the curve");
    return 0;
}

/* Window size minimising the cost of n full-size scalars, in field multiplications: ~7 per
 * batched affine addition of a digit, ~16 per bucket in the reduction (two batched affine
 * additions, see reduce_buckets in curve_impl.h). */
static int pick_window(size_t n) {
    int best = 8;
    double best_cost = 1e300;
    for (int c = 6; c <= 16; c++) {
        double cost = 7.0 * (double)n * (254 / c + 1) + 16.0 * (double)(1 << (c - 1));
        if (cost < best_cost) {
            best_cost = cost;
            best = c;
        }
    }
    return best;
}

static int build_g1_table(g1_table *t, const section *s, size_t count, const char *name,
                          int c) {
    if (s->size != count * 64) return fail("zkey: section %s has the wrong size", name);
    g1_aff *pts = malloc(count * sizeof *pts);
    uint32_t *idx = malloc(count * sizeof *idx);
    size_t n = 0;
    for (size_t i = 0; i < count; i++) {
        if (load_g1(&pts[n], s->p + 64 * i)) {
            free(pts);
            free(idx);
            return -1;
        }
        if (!g1_aff_is_inf(&pts[n])) idx[n++] = (uint32_t)i;
    }
    g1_table_build(t, pts, idx, n, c ? c : pick_window(n));
    free(pts);
    free(idx);
    return 0;
}

static int build_g2_table(g2_table *t, const section *s, size_t count) {
    if (s->size != count * 128) return fail("zkey: section B2 has the wrong size");
    g2_aff *pts = malloc(count * sizeof *pts);
    uint32_t *idx = malloc(count * sizeof *idx);
    size_t n = 0;
    for (size_t i = 0; i < count; i++) {
        if (load_g2(&pts[n], s->p + 128 * i)) {
            free(pts);
            free(idx);
            return -1;
        }
        if (!g2_aff_is_inf(&pts[n])) idx[n++] = (uint32_t)i;
    }
    g2_table_build(t, pts, idx, n, pick_window(n));
    free(pts);
    free(idx);
    return 0;
}

static int load_zkey(zkey_t *z, const char *path) {
    size_t len;
    uint8_t *d = read_file(path, &len);
    if (!d) return -1;
    section s[MAX_SECTIONS];
    int rc = -1;
    if (parse_binfile(d, len, "zkey", 1, s)) goto out;
    for (int i = 1; i <= 9; i++)
        if (!s[i].p) {
            fail("zkey: section %d missing", i);
            goto out;
        }
    if (s[1].size != 4 || rd32(s[1].p) != 1) {
        fail("zkey is not a groth16 key");
        goto out;
    }
    const uint8_t *h = s[2].p;
    if (s[2].size != 4 + 32 + 4 + 32 + 12 + 3 * 64 + 3 * 128 || rd32(h) != 32 ||
        rd32(h + 36) != 32 || memcmp(h + 40, FR_MODULUS_LE, 32) != 0) {
        fail("zkey is not for the bn128 curve");
        goto out;
    }
    z->n_vars = rd32(h + 72);
    z->n_public = rd32(h + 76);
    z->domain = rd32(h + 80);
    z->power = 0;
    while ((1u << z->power) < z->domain) z->power++;
    if ((1u << z->power) != z->domain || z->power < 1 || z->power > 27 ||
        z->n_public >= z->n_vars) {
        fail("zkey: bad header");
        goto out;
    }
    const uint8_t *p = h + 84;
    if (load_g1(&z->alpha1, p) || load_g1(&z->beta1, p + 64) || load_g2(&z->beta2, p + 128) ||
        load_g2(&z->gamma2, p + 256) || load_g1(&z->delta1, p + 384) ||
        load_g2(&z->delta2, p + 448))
        goto out;

    /* coefficients */
    if (s[4].size < 4) {
        fail("zkey: coefficient section too short");
        goto out;
    }
    z->n_coefs = rd32(s[4].p);
    if (s[4].size != 4 + z->n_coefs * 44) {
        fail("zkey: coefficient section has the wrong size");
        goto out;
    }
    z->coefs = malloc((z->n_coefs ? z->n_coefs : 1) * sizeof *z->coefs);
    for (size_t i = 0; i < z->n_coefs; i++) {
        const uint8_t *q = s[4].p + 4 + 44 * i;
        coef_t *c = &z->coefs[i];
        c->m = rd32(q);
        c->c = rd32(q + 4);
        c->s = rd32(q + 8);
        rdfe(&c->coef, q + 12);
        if (c->m > 1 || c->c >= z->domain || c->s >= z->n_vars) {
            fail("zkey: coefficient %zu out of range", i);
            goto out;
        }
    }

    /* C and H share buckets (only their sum is used), so they share a window size */
    int c_ch = pick_window((size_t)z->n_vars - z->n_public - 1 + z->domain);
    if (build_g1_table(&z->A, &s[5], z->n_vars, "A", 0) ||
        build_g1_table(&z->B1, &s[6], z->n_vars, "B1", 0) ||
        build_g2_table(&z->B2, &s[7], z->n_vars) ||
        build_g1_table(&z->C, &s[8], z->n_vars - z->n_public - 1, "C", c_ch) ||
        build_g1_table(&z->H, &s[9], z->domain, "H", c_ch))
        goto out;

    /* roots of unity exactly as ffjavascript's WasmField1: nqr = smallest non-residue (5),
     * w[28] = nqr^t, w[i] = w[i+1]^2; the FFT of size 2^power uses w[power] and the coset
     * shift is inc = w[power + 1] (or Fr.shift = nqr^2 when power == 28, not reachable here) */
    fe nqr_plain = {{5, 0, 0, 0}}, nqr, t = {{0}}, w;
    fr_to_mont(&nqr, &nqr_plain);
    /* t = (r - 1) >> 28 */
    fe rm1 = fr_P;
    rm1.v[0] -= 1;
    for (int i = 0; i < 4; i++) {
        t.v[i] = rm1.v[i] >> 28;
        if (i < 3) t.v[i] |= rm1.v[i + 1] << 36;
    }
    fr_pow(&w, &nqr, &t); /* w[28] */
    fe roots[29];
    roots[28] = w;
    for (int i = 27; i >= 0; i--) fr_sqr(&roots[i], &roots[i + 1]);
    if (!fr_eq(&roots[0], &fr_ONE)) {
        fail("internal: roots of unity");
        goto out;
    }
    fe inc = z->power == 28 ? nqr : roots[z->power + 1];
    if (z->power == 28) fr_sqr(&inc, &nqr);
    fe wn = roots[z->power], wn_inv;
    fr_inv(&wn_inv, &wn);
    size_t half = z->domain / 2;
    z->tw = malloc(half * sizeof(fe));
    z->tw_inv = malloc(half * sizeof(fe));
    z->coset = malloc(z->domain * sizeof(fe));
    fe a = fr_ONE, b = fr_ONE;
    for (size_t i = 0; i < half; i++) {
        z->tw[i] = a;
        z->tw_inv[i] = b;
        fr_mul(&a, &a, &wn);
        fr_mul(&b, &b, &wn_inv);
    }
    fe dom = {{z->domain, 0, 0, 0}};
    fr_to_mont(&dom, &dom);
    fr_inv(&a, &dom);
    for (size_t i = 0; i < z->domain; i++) { /* stored in bit-reversed order, see to_coset */
        z->coset[bitrev((uint32_t)i, z->power)] = a;
        fr_mul(&a, &a, &inc);
    }
    rc = 0;
out:
    free(d);
    return rc;
}

/* ------------------------------------------------------------------ FFT over Fr */

static uint32_t bitrev(uint32_t i, uint32_t power) {
    uint32_t j = 0;
    for (uint32_t b = 0; b < power; b++) j |= ((i >> b) & 1) << (power - 1 - b);
    return j;
}

/* Decimation in frequency, natural order in, bit-reversed order out:
 * a[bitrev(k)] <- sum_j a[j] w^(jk), w the root whose powers tw holds */
static void fft_dif(fe *a, uint32_t n, const fe *tw) {
    for (uint32_t len = n; len >= 2; len >>= 1) {
        uint32_t h = len / 2, step = n / len;
        for (uint32_t s = 0; s < n; s += len) {
            fe u = a[s], v = a[s + h];
            fr_add(&a[s], &u, &v);
            fr_sub(&a[s + h], &u, &v);
            for (uint32_t j = 1; j < h; j++) {
                u = a[s + j];
                v = a[s + j + h];
                fr_add(&a[s + j], &u, &v);
                fr_sub(&v, &u, &v);
                fr_mul(&a[s + j + h], &v, &tw[j * step]);
            }
        }
    }
}

/* Decimation in time, bit-reversed order in, natural order out: a[k] <- sum_j a_j w^(jk) */
static void fft_dit(fe *a, uint32_t n, const fe *tw) {
    for (uint32_t len = 2; len <= n; len <<= 1) {
        uint32_t h = len / 2, step = n / len;
        for (uint32_t s = 0; s < n; s += len) {
            fe t = a[s + h];
            fr_sub(&a[s + h], &a[s], &t);
            fr_add(&a[s], &a[s], &t);
            for (uint32_t j = 1; j < h; j++) {
                fr_mul(&t, &a[s + j + h], &tw[j * step]);
                fr_sub(&a[s + j + h], &a[s + j], &t);
                fr_add(&a[s + j], &a[s + j], &t);
            }
        }
    }
}

/* evaluations on the domain -> evaluations on the odd coset: inverse transform (bit-reversed
 * coefficients), scale coefficient i by inc^i / n, forward transform back to natural order */
static void to_coset(const zkey_t *z, fe *a) {
    fft_dif(a, z->domain, z->tw_inv);
    for (uint32_t i = 0; i < z->domain; i++) fr_mul(&a[i], &a[i], &z->coset[i]);
    fft_dit(a, z->domain, z->tw);
}

/* ------------------------------------------------------------------ output */

/* plain 256-bit integer -> decimal */
static void to_dec(char *out, const fe *x) {
    u64 v[4];
    memcpy(v, x->v, sizeof v);
    char buf[100];
    int n = 0;
    const u64 base = 10000000000000000000ULL; /* 10^19 */
    do {
        u128 rem = 0;
        for (int i = 3; i >= 0; i--) {
            u128 cur = (rem << 64) | v[i];
            v[i] = (u64)(cur / base);
            rem = cur % base;
        }
        u64 r = (u64)rem;
        int nonzero = (v[0] | v[1] | v[2] | v[3]) != 0;
        for (int k = 0; k < 19; k++) {
            buf[n++] = (char)('0' + r % 10);
            r /= 10;
            if (!nonzero && r == 0) break;
        }
    } while (v[0] | v[1] | v[2] | v[3]);
    for (int i = 0; i < n; i++) out[i] = buf[n - 1 - i];
    out[n] = 0;
}

static void fp_dec(char *out, const fe *m) {
    fe p;
    fp_from_mont(&p, m);
    to_dec(out, &p);
}

/* snarkjs G1.toObject(toAffine(p)): [x, y, "1"], infinity as ["0", "1", "0"] */
static void emit_g1(FILE *f, const g1_jac *p) {
    char x[90], y[90];
    if (g1_is_inf(p)) {
        fputs("[\"0\",\"1\",\"0\"]", f);
        return;
    }
    g1_aff a;
    g1_to_aff(&a, p);
    fp_dec(x, &a.x);
    fp_dec(y, &a.y);
    fprintf(f, "[\"%s\",\"%s\",\"1\"]", x, y);
}
static void emit_g2(FILE *f, const g2_jac *p) {
    char x0[90], x1[90], y0[90], y1[90];
    if (g2_is_inf(p)) {
        fputs("[[\"0\",\"0\"],[\"1\",\"0\"],[\"0\",\"0\"]]", f);
        return;
    }
    g2_aff a;
    g2_to_aff(&a, p);
    fp_dec(x0, &a.x.c0);
    fp_dec(x1, &a.x.c1);
    fp_dec(y0, &a.y.c0);
    fp_dec(y1, &a.y.c1);
    fprintf(f, "[[\"%s\",\"%s\"],[\"%s\",\"%s\"],[\"1\",\"0\"]]", x0, x1, y0, y1);
}

/* ------------------------------------------------------------------ proving */

static int random_fr(fe *out) {
    /* uniform in [0, r): rejection sampling on 254-bit values */
    for (;;) {
        uint8_t b[32];
        if (fill_random(b, sizeof b)) return fail("getrandom failed: %s", strerror(errno));
        rdfe(out, b);
        out->v[3] &= (1ULL << 62) - 1;
        if (fr_is_canonical(out)) return 0;
    }
}

typedef struct {
    double witness, abc, fft, msm_a, msm_b1, msm_b2, msm_ch, finish, cpu;
} timing_t; /* CPU ms of the process per phase (the prover is single-threaded) */

static int prove(const zkey_t *z, const uint8_t *wtns, size_t len, FILE *out, int want_timing) {
    timing_t tm;
    double t0 = cpu_ms(), t, c0 = t0;
    section s[MAX_SECTIONS];
    if (parse_binfile(wtns, len, "wtns", 2, s)) return -1;
    if (!s[1].p || !s[2].p) return fail("wtns: header or values section missing");
    if (s[1].size != 40 || rd32(s[1].p) != 32 || memcmp(s[1].p + 4, FR_MODULUS_LE, 32) != 0)
        return fail("wtns is not over the bn128 scalar field");
    uint32_t nw = rd32(s[1].p + 36);
    if (nw != z->n_vars)
        return fail("invalid witness length: circuit %u, witness %u", z->n_vars, nw);
    if (s[2].size != (uint64_t)nw * 32) return fail("wtns: values section has the wrong size");
    fe *w = malloc(nw * sizeof *w);
    for (uint32_t i = 0; i < nw; i++) {
        rdfe(&w[i], s[2].p + 32 * i);
        if (!fr_is_canonical(&w[i])) {
            free(w);
            return fail("wtns: value %u is not a field element", i);
        }
    }
    if (!fr_eq(&w[0], &(fe){{1, 0, 0, 0}})) {
        free(w);
        return fail("wtns: value 0 must be 1");
    }
    t = cpu_ms();
    tm.witness = t - t0;
    t0 = t;

    /* A, B on the domain; C = A * B (all Montgomery) */
    uint32_t n = z->domain;
    fe *a = calloc(n, sizeof *a), *b = calloc(n, sizeof *b), *c = malloc(n * sizeof *c);
    for (size_t i = 0; i < z->n_coefs; i++) {
        const coef_t *k = &z->coefs[i];
        fe prod;
        fr_mul(&prod, &k->coef, &w[k->s]);
        fe *dst = k->m == 0 ? &a[k->c] : &b[k->c];
        fr_add(dst, dst, &prod);
    }
    for (uint32_t i = 0; i < n; i++) fr_mul(&c[i], &a[i], &b[i]);
    t = cpu_ms();
    tm.abc = t - t0;
    t0 = t;
    to_coset(z, a);
    to_coset(z, b);
    to_coset(z, c);
    fe *hs = a; /* h_i = A_i B_i - C_i on the coset, plain form */
    for (uint32_t i = 0; i < n; i++) {
        fe ab;
        fr_mul(&ab, &a[i], &b[i]);
        fr_sub(&ab, &ab, &c[i]);
        fr_from_mont(&hs[i], &ab);
    }
    free(b);
    free(c);
    t = cpu_ms();
    tm.fft = t - t0;
    t0 = t;

    g1_jac pa, pb1, pc, tmp;
    g2_jac pb, tmp2;
    g1_msm(&pa, &z->A, w);
    t = cpu_ms();
    tm.msm_a = t - t0;
    t0 = t;
    g1_msm(&pb1, &z->B1, w);
    t = cpu_ms();
    tm.msm_b1 = t - t0;
    t0 = t;
    g2_msm(&pb, &z->B2, w);
    t = cpu_ms();
    tm.msm_b2 = t - t0;
    t0 = t;
    {
        const g1_table *ch[2] = {&z->C, &z->H};
        const fe *sc[2] = {w + z->n_public + 1, hs};
        g1_msm_multi(&pc, 2, ch, sc); /* sum w_i C_i + sum h_i H_i */
    }
    t = cpu_ms();
    tm.msm_ch = t - t0;
    t0 = t;

    fe r, sr, rs, neg_rs;
    if (random_fr(&r) || random_fr(&sr)) {
        free(a);
        free(w);
        return -1;
    }
    /* r*s mod q_r, then -(r s), as plain integers */
    fe rm, sm;
    fr_to_mont(&rm, &r);
    fr_to_mont(&sm, &sr);
    fr_mul(&rs, &rm, &sm);
    fr_neg(&rs, &rs);
    fr_from_mont(&neg_rs, &rs);

    g1_jac alpha1, beta1, delta1;
    g2_jac beta2, delta2;
    g1_from_aff(&alpha1, &z->alpha1);
    g1_from_aff(&beta1, &z->beta1);
    g1_from_aff(&delta1, &z->delta1);
    g2_from_aff(&beta2, &z->beta2);
    g2_from_aff(&delta2, &z->delta2);

    g1_add(&pa, &pa, &alpha1);
    g1_mul_w4(&tmp, &delta1, &r);
    g1_add(&pa, &pa, &tmp);

    g2_add(&pb, &pb, &beta2);
    g2_mul_w4(&tmp2, &delta2, &sr);
    g2_add(&pb, &pb, &tmp2);

    g1_add(&pb1, &pb1, &beta1);
    g1_mul_w4(&tmp, &delta1, &sr);
    g1_add(&pb1, &pb1, &tmp);

    g1_mul_w4(&tmp, &pa, &sr);
    g1_add(&pc, &pc, &tmp);
    g1_mul_w4(&tmp, &pb1, &r);
    g1_add(&pc, &pc, &tmp);
    g1_mul_w4(&tmp, &delta1, &neg_rs);
    g1_add(&pc, &pc, &tmp);

    fputs("{\"proof\":{\"pi_a\":", out);
    emit_g1(out, &pa);
    fputs(",\"pi_b\":", out);
    emit_g2(out, &pb);
    fputs(",\"pi_c\":", out);
    emit_g1(out, &pc);
    fputs(",\"protocol\":\"groth16\",\"curve\":\"bn128\"},\"public_signals\":[", out);
    for (uint32_t i = 1; i <= z->n_public; i++) {
        char dec[90];
        to_dec(dec, &w[i]);
        fprintf(out, "%s\"%s\"", i > 1 ? "," : "", dec);
    }
    fputs("]", out);
    t = cpu_ms();
    tm.finish = t - t0;
    tm.cpu = cpu_ms() - c0;
    if (want_timing) {
        fprintf(out,
                ",\"timing_ms\":{\"witness\":%.3f,\"abc\":%.3f,\"fft\":%.3f,\"msm_a\":%.3f,"
                "\"msm_b1\":%.3f,\"msm_b2\":%.3f,\"msm_c_h\":%.3f,\"finish\":%.3f,"
                "\"cpu\":%.3f}",
                tm.witness, tm.abc, tm.fft, tm.msm_a, tm.msm_b1, tm.msm_b2, tm.msm_ch,
                tm.finish, tm.cpu);
    }
    fputs("}\n", out);
    fflush(out);
    free(a);
    free(w);
    return 0;
}

/* ------------------------------------------------------------------ main loop */

static void emit_error(const char *msg) {
    fputs("{\"error\":\"", stdout);
    for (const char *p = msg; *p; p++) {
        if (*p == '"' || *p == '\\') fputc('\\', stdout);
        if ((unsigned char)*p < 0x20) continue;
        fputc(*p, stdout);
    }
    fputs("\"}\n", stdout);
    fflush(stdout);
}

static int read_exact(uint8_t *buf, size_t n) {
    size_t got = 0;
    while (got < n) {
        size_t k = fread(buf + got, 1, n - got, stdin);
        if (k == 0) return -1;
        got += k;
    }
    return 0;
}

#define MAX_FRAME (64u << 20)

int main(int argc, char **argv) {
    int want_timing = 0, ai = 1;
    if (ai < argc && strcmp(argv[ai], "--timing") == 0) {
        want_timing = 1;
        ai++;
    }
    if (argc - ai < 1 || argc - ai > 2) {
        fprintf(stderr, "usage: %s [--timing] ZKEY [WTNS]\n", argv[0]);
        return 2;
    }
    fields_init();
    init_constants();
    static zkey_t z;
    double t0 = now_ms();
    if (load_zkey(&z, argv[ai])) {
        emit_error(g_err);
        fprintf(stderr, "vbill-prover: %s\n", g_err);
        return 1;
    }
    double load_ms = now_ms() - t0;
    if (argc - ai == 2) {
        size_t len;
        uint8_t *wt = read_file(argv[ai + 1], &len);
        if (!wt || prove(&z, wt, len, stdout, want_timing)) {
            emit_error(g_err);
            free(wt);
            return 1;
        }
        if (want_timing) fprintf(stderr, "zkey load %.1f ms\n", load_ms);
        free(wt);
        return 0;
    }
    /* ready line, so a parent knows the key is loaded */
    printf("{\"ready\":true,\"n_vars\":%u,\"n_public\":%u,\"domain\":%u,\"load_ms\":%.1f}\n",
           z.n_vars, z.n_public, z.domain, load_ms);
    fflush(stdout);
    uint8_t hdr[4];
    uint8_t *buf = NULL;
    size_t cap = 0;
    while (read_exact(hdr, 4) == 0) {
        uint32_t len = rd32(hdr);
        if (len > MAX_FRAME) {
            /* cannot resynchronise reliably on a bogus length: report and stop */
            emit_error("frame too large");
            return 1;
        }
        if (len > cap) {
            free(buf);
            cap = len;
            buf = malloc(cap ? cap : 1);
        }
        if (read_exact(buf, len)) {
            emit_error("truncated frame");
            return 1;
        }
        if (prove(&z, buf, len, stdout, want_timing)) emit_error(g_err);
    }
    free(buf);
    return 0;
}

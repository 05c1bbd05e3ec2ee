/* vbill-verify: batch Groth16 verification over BN254 (random linear combination).
 *
 * For proofs (A_i, B_i, C_i) with public inputs s_i and random 128-bit r_i, all valid iff
 *   prod_i e(-r_i A_i, B_i) * e(sum r_i alpha, beta) * e(sum r_i vk_x_i, gamma)
 *     * e(sum r_i C_i, delta) == 1,     vk_x_i = IC_0 + sum_j s_ij IC_j,
 * with one final exponentiation for the whole batch. When a batch fails, it is bisected
 * (fresh randomness each time) down to the failing proofs, which are named.
 *
 * Input on stdin, whitespace-separated decimal integers:
 *   alpha.x alpha.y  beta.x0 beta.x1 beta.y0 beta.y1  gamma(4)  delta(4)  nIC  IC[i].x IC[i].y...
 *   N  then per proof: A.x A.y  B.x0 B.x1 B.y0 B.y1  C.x C.y  s_1 .. s_{nIC-1}
 * Output: one JSON line {"valid": true|false, "bad": [indices], "n": N} or {"error": "..."}.
 * With --serve: a {"ready": true} line after the key, then any number of batches (each
 * "N proofs...") answered one line each, until end of input; an error line ends the process.
 * Coordinates must be canonical (< p), points on their curves, B in the order-r subgroup,
 * signals < r; a malformed proof is reported in "bad" (as py_ecc's parser would refuse it).
 * Written for vbill.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#if !defined(__x86_64__)
#error "vbill-verify's field arithmetic uses x86-64 inline assembly"
#endif
#include "curves.h"
#include "sysrand.h"

#include "pairing.h"

static fe G1_B;
static fe2 G2_B;

static void init_constants(void) {
    fe three = {{3, 0, 0, 0}}, nine = {{9, 0, 0, 0}}, one = {{1, 0, 0, 0}};
    fp_to_mont(&G1_B, &three);
    fe2 xi, xi_inv;
    fp_to_mont(&xi.c0, &nine);
    fp_to_mont(&xi.c1, &one);
    fp2_inv(&xi_inv, &xi);
    fp_mul(&G2_B.c0, &xi_inv.c0, &G1_B);
    fp_mul(&G2_B.c1, &xi_inv.c1, &G1_B);
}

/* ---- input ---- */

/* next decimal integer from stdin into a plain 256-bit value; -1 at EOF/garbage/overflow */
static int read_dec(fe *out) {
    int ch;
    do ch = getchar();
    while (ch == ' ' || ch == '\n' || ch == '\t' || ch == '\r');
    if (ch < '0' || ch > '9') return -1;
    u64 v[4] = {0, 0, 0, 0};
    int digits = 0;
    while (ch >= '0' && ch <= '9') {
        if (++digits > 78) return -1;
        u128 carry = (u64)(ch - '0');
        for (int i = 0; i < 4; i++) {
            u128 t = (u128)v[i] * 10 + carry;
            v[i] = (u64)t;
            carry = t >> 64;
        }
        if (carry) return -1;
        ch = getchar();
    }
    memcpy(out->v, v, sizeof v);
    return 0;
}

/* a coordinate: canonical < p, converted to Montgomery form; flags *bad otherwise */
static int read_fp(fe *out, int *bad) {
    fe x;
    if (read_dec(&x)) return -1;
    if (!fp_is_canonical(&x)) *bad = 1;
    else fp_to_mont(out, &x);
    return 0;
}
static int read_g1(g1_aff *p, int *bad) {
    int b = 0;
    if (read_fp(&p->x, &b) || read_fp(&p->y, &b)) return -1;
    if (!b && (g1_aff_is_inf(p) || !g1_aff_on_curve(p, &G1_B))) b = 1;
    *bad |= b;
    return 0;
}
static int read_g2(g2_aff *p, int *bad, int check_subgroup) {
    int b = 0;
    if (read_fp(&p->x.c0, &b) || read_fp(&p->x.c1, &b) || read_fp(&p->y.c0, &b) ||
        read_fp(&p->y.c1, &b))
        return -1;
    if (!b && (g2_aff_is_inf(p) || !g2_aff_on_curve(p, &G2_B))) b = 1;
    if (!b && check_subgroup) {
        g2_jac j, t;
        g2_from_aff(&j, p);
        g2_mul_w4(&t, &j, &fr_P);
        if (!g2_is_inf(&t)) b = 1;
    }
    *bad |= b;
    return 0;
}

typedef struct {
    g1_aff a, c;
    g2_aff b;
    fe *s; /* plain public signals */
    int malformed;
} proof_t;

/* fixed-base table: t[k][d - 1] = d * 16^k * P, so k * P costs at most 64 mixed additions */
typedef struct {
    g1_aff t[64][15];
} fb_table;

static void fb_build(fb_table *T, const g1_aff *base) {
    g1_jac *tmp = malloc(64 * 15 * sizeof *tmp), q, m;
    fe *scratch = malloc(64 * 15 * sizeof *scratch);
    g1_from_aff(&q, base);
    for (int k = 0; k < 64; k++) {
        m = q;
        tmp[k * 15] = m;
        for (int d = 2; d <= 15; d++) {
            g1_add(&m, &m, &q);
            tmp[k * 15 + d - 1] = m;
        }
        for (int i = 0; i < 4; i++) g1_dbl(&q, &q);
    }
    g1_batch_to_aff(&T->t[0][0], tmp, 64 * 15, scratch);
    free(tmp);
    free(scratch);
}

/* r = k * P for a plain scalar k < 2^256 */
static void fb_mul(g1_jac *r, const fb_table *T, const fe *k) {
    g1_set_inf(r);
    for (int i = 0; i < 64; i++) {
        unsigned nib = (unsigned)(k->v[i / 16] >> (4 * (i % 16))) & 15;
        if (nib) g1_madd(r, r, &T->t[i][nib - 1]);
    }
}

typedef struct {
    g1_aff alpha;
    g2_aff beta, gamma, delta;
    uint32_t n_ic;
    g1_aff *ic;
    fb_table *alpha_tab, *ic_tab; /* fixed-base tables for alpha and each IC_j */
    line_t *lines[3];             /* recorded Miller lines of beta, gamma, delta */
} vkey_t;

/* ---- checking ---- */

static void random_128(fe *r) {
    uint8_t b[16];
    if (fill_random(b, sizeof b)) {
        perror("getrandom");
        exit(3);
    }
    memset(r, 0, sizeof *r);
    memcpy(r->v, b, 16);
    if (!r->v[0] && !r->v[1]) r->v[0] = 1;
}

/* Do all proofs idx[0..n) verify?  Malformed proofs must have been removed. */
static int batch_ok(const vkey_t *vk, const proof_t *pr, const uint32_t *idx, size_t n) {
    size_t np = n + 1;
    g1_aff *P = malloc(np * sizeof *P);
    g2_aff *Q = malloc(np * sizeof *Q);
    fe *t = calloc(vk->n_ic, sizeof *t); /* sum_i r_i s_ij (Montgomery); t[0] = sum r_i */
    g1_jac cacc, tmp;
    g1_set_inf(&cacc);
    size_t k = 0;
    for (size_t q = 0; q < n; q++) {
        const proof_t *p = &pr[idx[q]];
        fe r = {{1, 0, 0, 0}}, rm, sm;
        if (n > 1) random_128(&r); /* a lone proof needs no random scaling */
        g1_jac a;
        g1_from_aff(&a, &p->a);
        g1_mul_w4(&tmp, &a, &r);
        g1_neg(&tmp, &tmp);
        if (!g1_is_inf(&tmp)) {
            g1_to_aff(&P[k], &tmp);
            Q[k++] = p->b;
        }
        g1_jac c;
        g1_from_aff(&c, &p->c);
        g1_mul_w4(&tmp, &c, &r);
        g1_add(&cacc, &cacc, &tmp);
        fr_to_mont(&rm, &r);
        fr_add(&t[0], &t[0], &rm);
        for (uint32_t j = 1; j < vk->n_ic; j++) {
            fr_to_mont(&sm, &p->s[j - 1]);
            fr_mul(&sm, &sm, &rm);
            fr_add(&t[j], &t[j], &sm);
        }
    }
    g1_jac alpha_acc, vkx;
    fe plain;
    fr_from_mont(&plain, &t[0]);
    fb_mul(&alpha_acc, vk->alpha_tab, &plain);
    g1_set_inf(&vkx);
    for (uint32_t j = 0; j < vk->n_ic; j++) {
        fr_from_mont(&plain, &t[j]);
        fb_mul(&tmp, &vk->ic_tab[j], &plain);
        g1_add(&vkx, &vkx, &tmp);
    }
    const g1_jac *lhs[3] = {&alpha_acc, &vkx, &cacc};
    g1_aff Pf[3];
    const line_t *lines[3];
    size_t nf = 0;
    for (int j = 0; j < 3; j++) {
        if (g1_is_inf(lhs[j])) continue; /* e(O, Q) = 1 */
        g1_to_aff(&Pf[nf], lhs[j]);
        lines[nf++] = vk->lines[j];
    }
    fe12 f, e;
    int ok = 0;
    if (miller_run(&f, P, Q, k, Pf, lines, nf, NULL) == 0) {
        final_exp(&e, &f);
        ok = fp12_is_one(&e);
    }
    free(P);
    free(Q);
    free(t);
    return ok;
}

/* collect the failing proofs of idx[0..n) into bad (bisection) */
static void bisect(const vkey_t *vk, const proof_t *pr, const uint32_t *idx, size_t n,
                   int known_bad, uint32_t *bad, size_t *nbad) {
    if (n == 0) return;
    if (!known_bad && batch_ok(vk, pr, idx, n)) return;
    if (n == 1) {
        bad[(*nbad)++] = idx[0];
        return;
    }
    size_t h = n / 2;
    int left_ok = batch_ok(vk, pr, idx, h);
    if (!left_ok) bisect(vk, pr, idx, h, 1, bad, nbad);
    /* if the left half is fine, the right half must hold the failure */
    bisect(vk, pr, idx + h, n - h, left_ok, bad, nbad);
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static void die(const char *msg) {
    printf("{\"error\":\"%s\"}\n", msg);
    fflush(stdout);
    exit(2);
}

/* at end of input? (skips whitespace) */
static int at_eof(void) {
    int ch;
    do ch = getchar();
    while (ch == ' ' || ch == '\n' || ch == '\t' || ch == '\r');
    if (ch == EOF) return 1;
    ungetc(ch, stdin);
    return 0;
}

/* read one batch (count, then proofs) and answer it with one JSON line */
static void run_batch(const vkey_t *vk) {
    fe nn;
    if (read_dec(&nn) || nn.v[1] || nn.v[2] || nn.v[3] || nn.v[0] > 100000000)
        die("bad proof count");
    size_t n = (size_t)nn.v[0];
    proof_t *pr = calloc(n ? n : 1, sizeof *pr);
    fe *signals = malloc((n ? n : 1) * vk->n_ic * sizeof(fe));
    uint32_t *good = malloc((n ? n : 1) * sizeof(uint32_t));
    uint32_t *bad = malloc((n ? n : 1) * sizeof(uint32_t));
    size_t ngood = 0, nbad = 0;
    for (size_t i = 0; i < n; i++) {
        proof_t *p = &pr[i];
        p->s = signals + i * vk->n_ic;
        int b = 0;
        if (read_g1(&p->a, &b) || read_g2(&p->b, &b, 1) || read_g1(&p->c, &b))
            die("proofs: malformed input");
        for (uint32_t j = 0; j + 1 < vk->n_ic; j++) {
            if (read_dec(&p->s[j])) die("proofs: malformed signals");
            if (!fr_is_canonical(&p->s[j])) b = 1;
        }
        p->malformed = b;
        if (b) bad[nbad++] = (uint32_t)i;
        else good[ngood++] = (uint32_t)i;
    }
    bisect(vk, pr, good, ngood, 0, bad, &nbad);
    qsort(bad, nbad, sizeof *bad, cmp_u32);
    printf("{\"valid\":%s,\"n\":%zu,\"bad\":[", nbad ? "false" : "true", n);
    for (size_t i = 0; i < nbad; i++) printf("%s%u", i ? "," : "", bad[i]);
    printf("]}\n");
    fflush(stdout);
    free(pr);
    free(signals);
    free(good);
    free(bad);
}

/* vbill-verify [--serve]: the key, then one batch (or, with --serve, batches until EOF) */
int main(int argc, char **argv) {
    int serve = argc > 1 && strcmp(argv[1], "--serve") == 0;
    fields_init();
    init_constants();
    vkey_t vk;
    int vbad = 0;
    if (read_g1(&vk.alpha, &vbad) || read_g2(&vk.beta, &vbad, 1) || read_g2(&vk.gamma, &vbad, 1) ||
        read_g2(&vk.delta, &vbad, 1))
        die("vkey: malformed input");
    fe nic;
    if (read_dec(&nic) || nic.v[1] || nic.v[2] || nic.v[3] || nic.v[0] < 1 || nic.v[0] > 1024)
        die("vkey: bad IC count");
    vk.n_ic = (uint32_t)nic.v[0];
    vk.ic = malloc(vk.n_ic * sizeof *vk.ic);
    for (uint32_t j = 0; j < vk.n_ic; j++)
        if (read_g1(&vk.ic[j], &vbad)) die("vkey: malformed IC");
    if (vbad) die("vkey: a point is not canonical or not on its curve/subgroup");
    vk.alpha_tab = malloc(sizeof(fb_table));
    vk.ic_tab = malloc(vk.n_ic * sizeof(fb_table));
    fb_build(vk.alpha_tab, &vk.alpha);
    for (uint32_t j = 0; j < vk.n_ic; j++) fb_build(&vk.ic_tab[j], &vk.ic[j]);
    const g2_aff *fixed[3] = {&vk.beta, &vk.gamma, &vk.delta};
    for (int j = 0; j < 3; j++) {
        vk.lines[j] = malloc(miller_nsteps() * sizeof(line_t));
        if (g2_prepare(vk.lines[j], fixed[j])) die("vkey: degenerate G2 point");
    }
    if (!serve) {
        run_batch(&vk);
        return 0;
    }
    printf("{\"ready\":true}\n");
    fflush(stdout);
    while (!at_eof()) run_batch(&vk);
    return 0;
}

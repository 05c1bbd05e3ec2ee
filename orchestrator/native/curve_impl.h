/* Short Weierstrass y^2 = x^3 + b group arithmetic (a = 0), instantiated twice by groth16.c:
 * G1 over Fp and G2 over Fp2. Before including, define
 *   FT    the coordinate field type          GP  the group prefix (g1 / g2)
 *   F_(x) the field function named x          (fp_x / fp2_x)
 * Jacobian coordinates (x, y, z) ~ (x/z^2, y/z^3); z = 0 is the point at infinity.
 * Affine (0, 0) is infinity, as in snarkjs files. Formulas: EFD dbl-2009-l, madd-2007-bl,
 * add-2007-bl.
 */
#define CAT_(a, b) a##_##b
#define CAT(a, b) CAT_(a, b)
#define G_(x) CAT(GP, x)

typedef struct { FT x, y, z; } G_(jac);
typedef struct { FT x, y; } G_(aff);

static inline void G_(set_inf)(G_(jac) *r) {
    F_(one)(&r->x);
    F_(one)(&r->y);
    F_(zero)(&r->z);
}
static inline int G_(is_inf)(const G_(jac) *p) { return F_(is_zero)(&p->z); }
static inline int G_(aff_is_inf)(const G_(aff) *p) {
    return F_(is_zero)(&p->x) && F_(is_zero)(&p->y);
}
static inline void G_(from_aff)(G_(jac) *r, const G_(aff) *a) {
    if (G_(aff_is_inf)(a)) {
        G_(set_inf)(r);
        return;
    }
    r->x = a->x;
    r->y = a->y;
    F_(one)(&r->z);
}

static inline void G_(dbl)(G_(jac) *r, const G_(jac) *p) {
    if (G_(is_inf)(p)) {
        *r = *p;
        return;
    }
    FT A, B, C, D, E, F, t, z3;
    F_(sqr)(&A, &p->x);
    F_(sqr)(&B, &p->y);
    F_(sqr)(&C, &B);
    F_(add)(&t, &p->x, &B);
    F_(sqr)(&t, &t);
    F_(sub)(&t, &t, &A);
    F_(sub)(&t, &t, &C);
    F_(dbl)(&D, &t);
    F_(dbl)(&E, &A);
    F_(add)(&E, &E, &A);
    F_(sqr)(&F, &E);
    F_(mul)(&z3, &p->y, &p->z);
    F_(dbl)(&r->z, &z3);
    F_(dbl)(&t, &D);
    F_(sub)(&r->x, &F, &t);
    F_(sub)(&t, &D, &r->x);
    F_(mul)(&t, &E, &t);
    F_(dbl)(&C, &C);
    F_(dbl)(&C, &C);
    F_(dbl)(&C, &C);
    F_(sub)(&r->y, &t, &C);
}

/* r = p + q, q affine and not infinity */
static inline void G_(madd)(G_(jac) *r, const G_(jac) *p, const G_(aff) *q) {
    if (G_(is_inf)(p)) {
        r->x = q->x;
        r->y = q->y;
        F_(one)(&r->z);
        return;
    }
    FT Z1Z1, U2, S2, H, HH, I, J, rr, V, t;
    F_(sqr)(&Z1Z1, &p->z);
    F_(mul)(&U2, &q->x, &Z1Z1);
    F_(mul)(&S2, &q->y, &p->z);
    F_(mul)(&S2, &S2, &Z1Z1);
    F_(sub)(&H, &U2, &p->x);
    F_(sub)(&rr, &S2, &p->y);
    if (F_(is_zero)(&H)) {
        if (F_(is_zero)(&rr)) {
            G_(jac) qj;
            G_(from_aff)(&qj, q);
            G_(dbl)(r, &qj);
        } else {
            G_(set_inf)(r);
        }
        return;
    }
    F_(dbl)(&rr, &rr);
    F_(sqr)(&HH, &H);
    F_(dbl)(&I, &HH);
    F_(dbl)(&I, &I);
    F_(mul)(&J, &H, &I);
    F_(mul)(&V, &p->x, &I);
    FT z3, y1j;
    F_(add)(&z3, &p->z, &H);
    F_(sqr)(&z3, &z3);
    F_(sub)(&z3, &z3, &Z1Z1);
    F_(sub)(&z3, &z3, &HH);
    F_(mul)(&y1j, &p->y, &J);
    F_(dbl)(&y1j, &y1j);
    F_(sqr)(&t, &rr);
    F_(sub)(&t, &t, &J);
    F_(sub)(&t, &t, &V);
    F_(sub)(&r->x, &t, &V);
    F_(sub)(&t, &V, &r->x);
    F_(mul)(&t, &rr, &t);
    F_(sub)(&r->y, &t, &y1j);
    r->z = z3;
}

static inline void G_(add)(G_(jac) *r, const G_(jac) *p, const G_(jac) *q) {
    if (G_(is_inf)(p)) {
        *r = *q;
        return;
    }
    if (G_(is_inf)(q)) {
        *r = *p;
        return;
    }
    FT Z1Z1, Z2Z2, U1, U2, S1, S2, H, I, J, rr, V, t, z3;
    F_(sqr)(&Z1Z1, &p->z);
    F_(sqr)(&Z2Z2, &q->z);
    F_(mul)(&U1, &p->x, &Z2Z2);
    F_(mul)(&U2, &q->x, &Z1Z1);
    F_(mul)(&S1, &p->y, &q->z);
    F_(mul)(&S1, &S1, &Z2Z2);
    F_(mul)(&S2, &q->y, &p->z);
    F_(mul)(&S2, &S2, &Z1Z1);
    F_(sub)(&H, &U2, &U1);
    F_(sub)(&rr, &S2, &S1);
    if (F_(is_zero)(&H)) {
        if (F_(is_zero)(&rr)) {
            G_(dbl)(r, p);
        } else {
            G_(set_inf)(r);
        }
        return;
    }
    F_(dbl)(&rr, &rr);
    F_(dbl)(&I, &H);
    F_(sqr)(&I, &I);
    F_(mul)(&J, &H, &I);
    F_(mul)(&V, &U1, &I);
    F_(add)(&z3, &p->z, &q->z);
    F_(sqr)(&z3, &z3);
    F_(sub)(&z3, &z3, &Z1Z1);
    F_(sub)(&z3, &z3, &Z2Z2);
    F_(mul)(&z3, &z3, &H);
    F_(sqr)(&t, &rr);
    F_(sub)(&t, &t, &J);
    F_(sub)(&t, &t, &V);
    F_(sub)(&r->x, &t, &V);
    F_(sub)(&t, &V, &r->x);
    F_(mul)(&t, &rr, &t);
    F_(mul)(&S1, &S1, &J);
    F_(dbl)(&S1, &S1);
    F_(sub)(&r->y, &t, &S1);
    r->z = z3;
}

static inline void G_(neg)(G_(jac) *r, const G_(jac) *p) {
    *r = *p;
    F_(neg)(&r->y, &p->y);
}

static void G_(to_aff)(G_(aff) *r, const G_(jac) *p) {
    if (G_(is_inf)(p)) {
        F_(zero)(&r->x);
        F_(zero)(&r->y);
        return;
    }
    FT zi, zi2, zi3;
    F_(inv)(&zi, &p->z);
    F_(sqr)(&zi2, &zi);
    F_(mul)(&zi3, &zi2, &zi);
    F_(mul)(&r->x, &p->x, &zi2);
    F_(mul)(&r->y, &p->y, &zi3);
}

/* Montgomery's trick: n conversions for one inversion. tmp holds n field elements. */
static void G_(batch_to_aff)(G_(aff) *out, const G_(jac) *in, size_t n, FT *tmp) {
    FT acc;
    F_(one)(&acc);
    for (size_t i = 0; i < n; i++) {
        tmp[i] = acc;
        if (!G_(is_inf)(&in[i])) F_(mul)(&acc, &acc, &in[i].z);
    }
    F_(inv)(&acc, &acc);
    for (size_t i = n; i-- > 0;) {
        if (G_(is_inf)(&in[i])) {
            F_(zero)(&out[i].x);
            F_(zero)(&out[i].y);
            continue;
        }
        FT zi, zi2, zi3;
        F_(mul)(&zi, &acc, &tmp[i]);
        F_(mul)(&acc, &acc, &in[i].z);
        F_(sqr)(&zi2, &zi);
        F_(mul)(&zi3, &zi2, &zi);
        F_(mul)(&out[i].x, &in[i].x, &zi2);
        F_(mul)(&out[i].y, &in[i].y, &zi3);
    }
}

/* r = k * p for a plain little-endian 256-bit k (double-and-add; used a handful of times) */
static void G_(mul)(G_(jac) *r, const G_(jac) *p, const fe *k) {
    G_(jac) acc;
    G_(set_inf)(&acc);
    for (int i = 255; i >= 0; i--) {
        G_(dbl)(&acc, &acc);
        if ((k->v[i / 64] >> (i % 64)) & 1) G_(add)(&acc, &acc, p);
    }
    *r = acc;
}

/* r = k * p, 4-bit fixed windows (16-entry Jacobian table): ~half the additions of G_(mul) */
static void G_(mul_w4)(G_(jac) *r, const G_(jac) *p, const fe *k) {
    G_(jac) tab[16], acc;
    G_(set_inf)(&tab[0]);
    tab[1] = *p;
    for (int i = 2; i < 16; i++) G_(add)(&tab[i], &tab[i - 1], p);
    int top = 63;
    while (top >= 0 && ((k->v[top / 16] >> (4 * (top % 16))) & 15) == 0) top--;
    G_(set_inf)(&acc);
    for (int i = top; i >= 0; i--) {
        for (int d = 0; d < 4; d++) G_(dbl)(&acc, &acc);
        unsigned nib = (unsigned)(k->v[i / 16] >> (4 * (i % 16))) & 15;
        if (nib) G_(add)(&acc, &acc, &tab[nib]);
    }
    *r = acc;
}

/* Is an affine point on the curve y^2 = x^3 + b ? (infinity counts as on it) */
static int G_(aff_on_curve)(const G_(aff) *a, const FT *b) {
    if (G_(aff_is_inf)(a)) return 1;
    FT l, r;
    F_(sqr)(&l, &a->y);
    F_(sqr)(&r, &a->x);
    F_(mul)(&r, &r, &a->x);
    F_(add)(&r, &r, b);
    return F_(eq)(&l, &r);
}

/* ---- fixed-base multi-scalar multiplication ----
 * At load time each non-zero base P is expanded into W affine points 2^(c*j) * P, so one set
 * of 2^(c-1) buckets serves every window (signed c-bit digits): per proof the cost is one
 * mixed addition per non-zero digit plus one bucket reduction, instead of one reduction per
 * window. Zero scalars and small scalars (witness bits) cost nothing or one addition.
 */
typedef struct {
    size_t n;        /* non-zero bases kept */
    int c, W;        /* window bits, windows per scalar */
    uint32_t *idx;   /* scalar index of each kept base */
    G_(aff) *pts;    /* n * W affine points, row i = base i */
} G_(table);

static void G_(table_build)(G_(table) *t, const G_(aff) *bases, const uint32_t *idx, size_t n,
                            int c) {
    t->n = n;
    t->c = c;
    t->W = 254 / c + 1;
    t->idx = malloc(n * sizeof *t->idx);
    memcpy(t->idx, idx, n * sizeof *idx);
    t->pts = malloc(n * (size_t)t->W * sizeof *t->pts);
    const size_t CH = 1024; /* bases converted per batch */
    G_(jac) *jb = malloc(CH * t->W * sizeof *jb);
    FT *tmp = malloc(CH * t->W * sizeof *tmp);
    for (size_t s = 0; s < n; s += CH) {
        size_t m = n - s < CH ? n - s : CH;
        for (size_t i = 0; i < m; i++) {
            G_(jac) q;
            G_(from_aff)(&q, &bases[s + i]);
            for (int j = 0; j < t->W; j++) {
                jb[i * t->W + j] = q;
                for (int k = 0; k < c; k++) G_(dbl)(&q, &q);
            }
        }
        G_(batch_to_aff)(t->pts + s * t->W, jb, m * t->W, tmp);
    }
    free(jb);
    free(tmp);
}

static void G_(table_free)(G_(table) *t) {
    free(t->idx);
    free(t->pts);
}

/* Signed digits of a plain scalar k < 2^254: sum d_j 2^(c j), |d_j| <= 2^(c-1). */
static inline int G_(digits)(int *d, const fe *k, int c, int W) {
    int carry = 0, nz = 0;
    for (int j = 0; j < W; j++) {
        int bit = j * c, v = 0;
        if (bit < 256) {
            int li = bit / 64, sh = bit % 64;
            u64 w = k->v[li] >> sh;
            if (sh + c > 64 && li < 3) w |= k->v[li + 1] << (64 - sh);
            v = (int)(w & ((1ULL << c) - 1));
        }
        v += carry;
        if (v > (1 << (c - 1))) {
            v -= (1 << c);
            carry = 1;
        } else {
            carry = 0;
        }
        d[j] = v;
        nz |= v;
    }
    return nz != 0;
}

/* Grow-only scratch buffer (the prover is single-threaded; one per group). */
static void *G_(scratch)(int slot, size_t bytes) {
    static void *buf[6];
    static size_t cap[6];
    if (bytes > cap[slot]) {
        free(buf[slot]);
        cap[slot] = bytes + bytes / 4;
        buf[slot] = malloc(cap[slot]);
    }
    return buf[slot];
}

/* Sums each bucket's points in affine coordinates pairwise, a round at a time: every addition
 * of a round shares one field inversion (Montgomery's trick). Bucket b holds len[b] points
 * from work[start[b]]; work2 is as large as work. Returns the array where each non-empty
 * bucket's sum now is, at start[b] (len[b] == 1). nstart is scratch of nb entries. */
static G_(aff) *G_(bucket_sums)(G_(aff) *work, G_(aff) *work2, uint32_t *start, uint32_t *len,
                                uint32_t *nstart, size_t nb, size_t total) {
    size_t max_pairs = total / 2 + 1;
    uint32_t *src =
        G_(scratch)(3, max_pairs * (2 * sizeof(uint32_t) + sizeof(FT) + 2 * sizeof(fe) + 1));
    uint32_t *dst = src + max_pairs;
    FT *den = (FT *)(dst + max_pairs);
    fe *nrm = (fe *)(den + max_pairs); /* the denominators' norms, inverted together in Fp */
    fe *pre = nrm + max_pairs;
    uint8_t *kind = (uint8_t *)(pre + max_pairs);
    for (;;) {
        size_t np = 0;
        uint32_t o = 0;
        for (size_t b = 0; b < nb; b++) {
            uint32_t l = len[b], s0 = start[b];
            nstart[b] = o;
            for (uint32_t k = 0; k + 1 < l; k += 2) {
                src[np] = s0 + k;
                dst[np] = o + k / 2;
                np++;
            }
            if (l & 1) work2[o + l / 2] = work[s0 + l - 1];
            o += (l + 1) / 2;
        }
        if (np == 0) break;
        fe acc = fp_ONE;
        for (size_t p = 0; p < np; p++) {
            const G_(aff) *P = &work[src[p]], *Q = P + 1;
            uint8_t k;
            if (G_(aff_is_inf)(P)) {
                k = 1; /* result Q */
            } else if (G_(aff_is_inf)(Q)) {
                k = 2; /* result P */
            } else if (F_(eq)(&P->x, &Q->x)) {
                if (F_(eq)(&P->y, &Q->y) && !F_(is_zero)(&P->y)) {
                    k = 4; /* doubling: lambda = 3x^2 / 2y */
                    F_(dbl)(&den[p], &P->y);
                } else {
                    k = 3; /* P = -Q: infinity */
                }
            } else {
                k = 0;
                F_(sub)(&den[p], &Q->x, &P->x);
            }
            kind[p] = k;
            if (k == 0 || k == 4) {
                pre[p] = acc;
                fp_mul(&acc, &acc, F_(norm)(&nrm[p], &den[p]));
            }
        }
        fe inv;
        fp_inv(&inv, &acc);
        for (size_t p = np; p-- > 0;) {
            const G_(aff) *P = &work[src[p]], *Q = P + 1;
            G_(aff) *R = &work2[dst[p]];
            uint8_t k = kind[p];
            if (k == 1) {
                *R = *Q;
                continue;
            }
            if (k == 2) {
                *R = *P;
                continue;
            }
            if (k == 3) {
                F_(zero)(&R->x);
                F_(zero)(&R->y);
                continue;
            }
            FT di, lam, num, x3, tt;
            fe dn;
            fp_mul(&dn, &inv, &pre[p]);
            fp_mul(&inv, &inv, F_(norm_of)(&nrm[p], &den[p]));
            F_(from_norm)(&di, &den[p], &dn);
            if (k == 0) {
                F_(sub)(&num, &Q->y, &P->y);
            } else {
                F_(sqr)(&num, &P->x);
                F_(add)(&tt, &num, &num);
                F_(add)(&num, &tt, &num);
            }
            F_(mul)(&lam, &num, &di);
            F_(sqr)(&x3, &lam);
            F_(sub)(&x3, &x3, &P->x);
            F_(sub)(&x3, &x3, &Q->x);
            F_(sub)(&tt, &P->x, &x3);
            F_(mul)(&tt, &lam, &tt);
            F_(sub)(&R->y, &tt, &P->y);
            R->x = x3;
        }
        for (size_t b = 0; b < nb; b++) {
            start[b] = nstart[b];
            len[b] = (len[b] + 1) / 2;
        }
        G_(aff) *sw = work;
        work = work2;
        work2 = sw;
    }
    return work;
}

/* sum over buckets of (b + 1) * S_b, S_b = work[start[b]] for len[b] != 0.
 * With d = b + 1 = hi * 2^k + lo (k = half the digit bits), the sum is
 * 2^k * sum_hi hi * T_hi + sum_lo lo * U_lo, where T_hi sums the S_d sharing hi and U_lo those
 * sharing lo: two affine bucket passes over ~2 nb points (~7 products per addition) and two
 * short running sums, instead of a running sum over all nb buckets (~27 products per bucket
 * in Jacobian coordinates). */
static void G_(reduce_buckets)(G_(jac) *out, const G_(aff) *S, const uint32_t *start,
                               const uint32_t *len, size_t nb) {
    int bits = 0;
    while (((size_t)1 << bits) < nb) bits++;
    const int k = bits / 2;
    const size_t L = (size_t)1 << k, H = (nb >> k) + 1, ng = H + L;
    uint32_t *gstart = G_(scratch)(4, (3 * ng + 1) * sizeof(uint32_t));
    uint32_t *glen = gstart + ng + 1, *gnstart = glen + ng;
    memset(glen, 0, ng * sizeof(uint32_t));
    size_t total = 0;
    for (size_t b = 0; b < nb; b++) {
        if (!len[b] || G_(aff_is_inf)(&S[start[b]])) continue;
        size_t d = b + 1, hi = d >> k, lo = d & (L - 1);
        if (hi) glen[hi]++, total++;
        if (lo) glen[H + lo]++, total++;
    }
    uint32_t off = 0;
    for (size_t g = 0; g < ng; g++) {
        gstart[g] = off;
        gnstart[g] = off; /* fill cursor */
        off += glen[g];
    }
    G_(aff) *work = G_(scratch)(5, (2 * total + 1) * sizeof(G_(aff)));
    for (size_t b = 0; b < nb; b++) {
        if (!len[b] || G_(aff_is_inf)(&S[start[b]])) continue;
        size_t d = b + 1, hi = d >> k, lo = d & (L - 1);
        if (hi) work[gnstart[hi]++] = S[start[b]];
        if (lo) work[gnstart[H + lo]++] = S[start[b]];
    }
    work = G_(bucket_sums)(work, work + total, gstart, glen, gnstart, ng, total);
    G_(jac) run, sum_hi, sum_lo;
    G_(set_inf)(&run);
    G_(set_inf)(&sum_hi);
    for (size_t h = H; h-- > 1;) {
        if (glen[h] && !G_(aff_is_inf)(&work[gstart[h]])) G_(madd)(&run, &run, &work[gstart[h]]);
        G_(add)(&sum_hi, &sum_hi, &run);
    }
    G_(set_inf)(&run);
    G_(set_inf)(&sum_lo);
    for (size_t l = L; l-- > 1;) {
        size_t g = H + l;
        if (glen[g] && !G_(aff_is_inf)(&work[gstart[g]])) G_(madd)(&run, &run, &work[gstart[g]]);
        G_(add)(&sum_lo, &sum_lo, &run);
    }
    for (int i = 0; i < k; i++) G_(dbl)(&sum_hi, &sum_hi);
    G_(add)(out, &sum_hi, &sum_lo);
}

/* out = sum scalars[idx[i]] * base_i.
 * Digits are sorted into buckets (counting sort), then each bucket's points are summed in
 * affine coordinates pairwise, a round at a time: every addition of a round shares one field
 * inversion (Montgomery's trick), ~6 multiplications per addition instead of ~11 for a mixed
 * Jacobian addition. The buckets are then combined with the usual running sum. */
/* Several tables with the same window size can share one set of buckets when only the sum
 * of their MSMs is wanted (pi_c's C and H parts): one bucket reduction instead of two. */
static void G_(msm_multi)(G_(jac) *out, int nparts, const G_(table) *const *ts,
                          const fe *const *scalars_of) {
    const int c = ts[0]->c, W = ts[0]->W;
    const size_t nb = (size_t)1 << (c - 1);
    size_t cells = 0;
    for (int q = 0; q < nparts; q++) cells += ts[q]->n * (size_t)W;
    int32_t *dig = G_(scratch)(0, cells * sizeof(int32_t));
    uint32_t *start = G_(scratch)(1, (3 * nb + 1) * sizeof(uint32_t));
    uint32_t *len = start + nb + 1, *nstart = len + nb;
    memset(start, 0, (nb + 1) * sizeof(uint32_t));
    size_t total = 0;
    size_t cell0 = 0;
    for (int q = 0; q < nparts; q++) {
    const G_(table) *t = ts[q];
    const fe *scalars = scalars_of[q];
    for (size_t i = 0; i < t->n; i++) {
        int32_t *d = dig + cell0 + i * W;
        int dd[64];
        if (!G_(digits)(dd, &scalars[t->idx[i]], c, W)) {
            for (int j = 0; j < W; j++) d[j] = 0;
            continue;
        }
        for (int j = 0; j < W; j++) {
            d[j] = dd[j];
            if (dd[j]) {
                start[(dd[j] > 0 ? dd[j] : -dd[j]) - 1]++;
                total++;
            }
        }
    }
    cell0 += t->n * (size_t)W;
    }
    /* counts -> offsets */
    uint32_t off = 0;
    for (size_t b = 0; b < nb; b++) {
        len[b] = start[b];
        start[b] = off;
        off += len[b];
    }
    /* work holds points bucket by bucket; work2 receives each round's sums */
    G_(aff) *work = G_(scratch)(2, (2 * total + 1) * sizeof(G_(aff)));
    G_(aff) *work2 = work + total;
    {
        uint32_t *fill = nstart; /* reuse as a cursor */
        memcpy(fill, start, nb * sizeof(uint32_t));
        size_t e = 0;
        for (int q = 0; q < nparts; q++) {
            const G_(table) *t = ts[q];
            for (size_t i = 0; i < t->n; i++, e += W) {
                const int32_t *d = dig + e;
                const G_(aff) *row = t->pts + i * W;
                for (int j = 0; j < W; j++) {
                    if (!d[j]) continue;
                    if (d[j] > 0) {
                        work[fill[d[j] - 1]++] = row[j];
                    } else {
                        G_(aff) *w = &work[fill[-d[j] - 1]++];
                        w->x = row[j].x;
                        F_(neg)(&w->y, &row[j].y);
                    }
                }
            }
        }
    }
    work = G_(bucket_sums)(work, work2, start, len, nstart, nb, total);
    G_(reduce_buckets)(out, work, start, len, nb);
}

static void G_(msm)(G_(jac) *out, const G_(table) *t, const fe *scalars) {
    G_(msm_multi)(out, 1, &t, &scalars);
}

#undef G_
#undef CAT
#undef CAT_

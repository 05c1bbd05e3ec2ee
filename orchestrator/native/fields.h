/* BN254 base field Fp, scalar field Fr and the quadratic extension Fp2 = Fp[u]/(u^2 + 1).
 *
 * Elements are 4 little-endian 64-bit limbs in Montgomery form with R = 2^256, the same
 * representation snarkjs/ffjavascript write into .zkey files, so points load without
 * conversion. Multiplication is CIOS Montgomery with the "no final carry" shortcut, valid
 * because both moduli are below 2^254 (top limb < 2^63 - 1). Written for this project.
 */
#ifndef VBILL_FIELDS_H
#define VBILL_FIELDS_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cpuid.h>

typedef uint64_t u64;
typedef unsigned __int128 u128;

typedef struct { u64 v[4]; } fe; /* one Fp or Fr element */

/* Set by fields_init(): 1 when the CPU has BMI2 and ADX (and VBILL_NATIVE_PORTABLE is unset),
 * so multiplications take the mulx/adcx/adox path; 0 (the default) keeps the portable mulq
 * path. A translation unit that never calls fields_init() stays portable. */
static int fields_adx;

static void fields_init(void) {
    unsigned a = 0, b = 0, c = 0, d = 0;
    const char *force = getenv("VBILL_NATIVE_PORTABLE");
    fields_adx = 0;
    if (force && *force && strcmp(force, "0") != 0) return;
    if (__get_cpuid_max(0, NULL) < 7) return;
    __cpuid_count(7, 0, a, b, c, d);
    fields_adx = (b >> 8 & 1) && (b >> 19 & 1); /* BMI2 (mulx), ADX (adcx/adox) */
}

/* Montgomery product with BMI2/ADX (mulx, adcx, adox): the same CIOS rounds as the mulq */
/* version, with the two carry chains of each pass kept apart in CF and OF. Used only   */
/* after fields_init() found both extensions (cpuid), so the build stays portable.      */
#define FIELD_MULX(PFX)                                                                       \
    static inline __attribute__((always_inline)) void PFX##_mul_x(fe *r, const fe *a, const fe *b) {                         \
        u64 r0 = 0, r1 = 0, r2 = 0, r3 = 0, r4 = 0, lo, hi, z; /* the accumulator starts at 0 */\
        __asm__(                                                                              \
            "movq 0(%[b]), %%rdx\n\t"                                                         \
            "xorl %k[z], %k[z]\n\t"                                                           \
            "mulxq 0(%[a]), %[lo], %[hi]\n\t"                                                 \
            "adoxq %[lo], %[r0]\n\t"                                                          \
            "adcxq %[hi], %[r1]\n\t"                                                          \
            "mulxq 8(%[a]), %[lo], %[hi]\n\t"                                                 \
            "adoxq %[lo], %[r1]\n\t"                                                          \
            "adcxq %[hi], %[r2]\n\t"                                                          \
            "mulxq 16(%[a]), %[lo], %[hi]\n\t"                                                \
            "adoxq %[lo], %[r2]\n\t"                                                          \
            "adcxq %[hi], %[r3]\n\t"                                                          \
            "mulxq 24(%[a]), %[lo], %[hi]\n\t"                                                \
            "adoxq %[lo], %[r3]\n\t"                                                          \
            "adcxq %[hi], %[r4]\n\t"                                                          \
            "adoxq %[z], %[r4]\n\t"                                                           \
            "movq %[r0], %%rdx\n\t"                                                           \
            "imulq %[inv], %%rdx\n\t"                                                         \
            "xorl %k[z], %k[z]\n\t"                                                           \
            "mulxq %[p0], %[lo], %[hi]\n\t"                                                   \
            "adoxq %[lo], %[r0]\n\t"                                                          \
            "adcxq %[hi], %[r1]\n\t"                                                          \
            "mulxq %[p1], %[lo], %[hi]\n\t"                                                   \
            "adoxq %[lo], %[r1]\n\t"                                                          \
            "adcxq %[hi], %[r2]\n\t"                                                          \
            "mulxq %[p2], %[lo], %[hi]\n\t"                                                   \
            "adoxq %[lo], %[r2]\n\t"                                                          \
            "adcxq %[hi], %[r3]\n\t"                                                          \
            "mulxq %[p3], %[lo], %[hi]\n\t"                                                   \
            "adoxq %[lo], %[r3]\n\t"                                                          \
            "adcxq %[hi], %[r4]\n\t"                                                          \
            "adoxq %[z], %[r4]\n\t"                                                           \
            "movq 8(%[b]), %%rdx\n\t"                                                         \
            "xorl %k[z], %k[z]\n\t"                                                           \
            "mulxq 0(%[a]), %[lo], %[hi]\n\t"                                                 \
            "adoxq %[lo], %[r1]\n\t"                                                          \
            "adcxq %[hi], %[r2]\n\t"                                                          \
            "mulxq 8(%[a]), %[lo], %[hi]\n\t"                                                 \
            "adoxq %[lo], %[r2]\n\t"                                                          \
            "adcxq %[hi], %[r3]\n\t"                                                          \
            "mulxq 16(%[a]), %[lo], %[hi]\n\t"                                                \
            "adoxq %[lo], %[r3]\n\t"                                                          \
            "adcxq %[hi], %[r4]\n\t"                                                          \
            "mulxq 24(%[a]), %[lo], %[hi]\n\t"                                                \
            "adoxq %[lo], %[r4]\n\t"                                                          \
            "adcxq %[hi], %[r0]\n\t"                                                          \
            "adoxq %[z], %[r0]\n\t"                                                           \
            "movq %[r1], %%rdx\n\t"                                                           \
            "imulq %[inv], %%rdx\n\t"                                                         \
            "xorl %k[z], %k[z]\n\t"                                                           \
            "mulxq %[p0], %[lo], %[hi]\n\t"                                                   \
            "adoxq %[lo], %[r1]\n\t"                                                          \
            "adcxq %[hi], %[r2]\n\t"                                                          \
            "mulxq %[p1], %[lo], %[hi]\n\t"                                                   \
            "adoxq %[lo], %[r2]\n\t"                                                          \
            "adcxq %[hi], %[r3]\n\t"                                                          \
            "mulxq %[p2], %[lo], %[hi]\n\t"                                                   \
            "adoxq %[lo], %[r3]\n\t"                                                          \
            "adcxq %[hi], %[r4]\n\t"                                                          \
            "mulxq %[p3], %[lo], %[hi]\n\t"                                                   \
            "adoxq %[lo], %[r4]\n\t"                                                          \
            "adcxq %[hi], %[r0]\n\t"                                                          \
            "adoxq %[z], %[r0]\n\t"                                                           \
            "movq 16(%[b]), %%rdx\n\t"                                                        \
            "xorl %k[z], %k[z]\n\t"                                                           \
            "mulxq 0(%[a]), %[lo], %[hi]\n\t"                                                 \
            "adoxq %[lo], %[r2]\n\t"                                                          \
            "adcxq %[hi], %[r3]\n\t"                                                          \
            "mulxq 8(%[a]), %[lo], %[hi]\n\t"                                                 \
            "adoxq %[lo], %[r3]\n\t"                                                          \
            "adcxq %[hi], %[r4]\n\t"                                                          \
            "mulxq 16(%[a]), %[lo], %[hi]\n\t"                                                \
            "adoxq %[lo], %[r4]\n\t"                                                          \
            "adcxq %[hi], %[r0]\n\t"                                                          \
            "mulxq 24(%[a]), %[lo], %[hi]\n\t"                                                \
            "adoxq %[lo], %[r0]\n\t"                                                          \
            "adcxq %[hi], %[r1]\n\t"                                                          \
            "adoxq %[z], %[r1]\n\t"                                                           \
            "movq %[r2], %%rdx\n\t"                                                           \
            "imulq %[inv], %%rdx\n\t"                                                         \
            "xorl %k[z], %k[z]\n\t"                                                           \
            "mulxq %[p0], %[lo], %[hi]\n\t"                                                   \
            "adoxq %[lo], %[r2]\n\t"                                                          \
            "adcxq %[hi], %[r3]\n\t"                                                          \
            "mulxq %[p1], %[lo], %[hi]\n\t"                                                   \
            "adoxq %[lo], %[r3]\n\t"                                                          \
            "adcxq %[hi], %[r4]\n\t"                                                          \
            "mulxq %[p2], %[lo], %[hi]\n\t"                                                   \
            "adoxq %[lo], %[r4]\n\t"                                                          \
            "adcxq %[hi], %[r0]\n\t"                                                          \
            "mulxq %[p3], %[lo], %[hi]\n\t"                                                   \
            "adoxq %[lo], %[r0]\n\t"                                                          \
            "adcxq %[hi], %[r1]\n\t"                                                          \
            "adoxq %[z], %[r1]\n\t"                                                           \
            "movq 24(%[b]), %%rdx\n\t"                                                        \
            "xorl %k[z], %k[z]\n\t"                                                           \
            "mulxq 0(%[a]), %[lo], %[hi]\n\t"                                                 \
            "adoxq %[lo], %[r3]\n\t"                                                          \
            "adcxq %[hi], %[r4]\n\t"                                                          \
            "mulxq 8(%[a]), %[lo], %[hi]\n\t"                                                 \
            "adoxq %[lo], %[r4]\n\t"                                                          \
            "adcxq %[hi], %[r0]\n\t"                                                          \
            "mulxq 16(%[a]), %[lo], %[hi]\n\t"                                                \
            "adoxq %[lo], %[r0]\n\t"                                                          \
            "adcxq %[hi], %[r1]\n\t"                                                          \
            "mulxq 24(%[a]), %[lo], %[hi]\n\t"                                                \
            "adoxq %[lo], %[r1]\n\t"                                                          \
            "adcxq %[hi], %[r2]\n\t"                                                          \
            "adoxq %[z], %[r2]\n\t"                                                           \
            "movq %[r3], %%rdx\n\t"                                                           \
            "imulq %[inv], %%rdx\n\t"                                                         \
            "xorl %k[z], %k[z]\n\t"                                                           \
            "mulxq %[p0], %[lo], %[hi]\n\t"                                                   \
            "adoxq %[lo], %[r3]\n\t"                                                          \
            "adcxq %[hi], %[r4]\n\t"                                                          \
            "mulxq %[p1], %[lo], %[hi]\n\t"                                                   \
            "adoxq %[lo], %[r4]\n\t"                                                          \
            "adcxq %[hi], %[r0]\n\t"                                                          \
            "mulxq %[p2], %[lo], %[hi]\n\t"                                                   \
            "adoxq %[lo], %[r0]\n\t"                                                          \
            "adcxq %[hi], %[r1]\n\t"                                                          \
            "mulxq %[p3], %[lo], %[hi]\n\t"                                                   \
            "adoxq %[lo], %[r1]\n\t"                                                          \
            "adcxq %[hi], %[r2]\n\t"                                                          \
            "adoxq %[z], %[r2]\n\t"                                                           \
            : [r0] "+&r"(r0), [r1] "+&r"(r1), [r2] "+&r"(r2), [r3] "+&r"(r3), [r4] "+&r"(r4), \
              [lo] "=&r"(lo), [hi] "=&r"(hi), [z] "=&r"(z)                                    \
            : [a] "r"(a->v), [b] "r"(b->v), [inv] "m"(PFX##_INV), [p0] "m"(PFX##_P.v[0]),     \
              [p1] "m"(PFX##_P.v[1]), [p2] "m"(PFX##_P.v[2]), [p3] "m"(PFX##_P.v[3]),         \
              "m"(*(const u64(*)[4])a->v), "m"(*(const u64(*)[4])b->v)                        \
            : "rdx", "cc");                                                                   \
        PFX##_reduce_once(r, r4, r0, r1, r2);                                                 \
    }

#define FIELD_DEFINE(PFX, P0, P1, P2, P3, INV, R0, R1, R2_, R3, RR0, RR1, RR2, RR3)            \
    static const fe PFX##_P = {{P0, P1, P2, P3}};                                             \
    static const fe PFX##_ONE = {{R0, R1, R2_, R3}};     /* R mod p: Montgomery 1 */          \
    static const fe PFX##_RR = {{RR0, RR1, RR2, RR3}};   /* R^2 mod p */                      \
    static const u64 PFX##_INV = INV;                    /* -p^-1 mod 2^64 */                 \
    static inline int PFX##_geq_p(const u64 t[4]) {                                           \
        for (int i = 3; i >= 0; i--) {                                                        \
            if (t[i] > PFX##_P.v[i]) return 1;                                                \
            if (t[i] < PFX##_P.v[i]) return 0;                                                \
        }                                                                                     \
        return 1;                                                                             \
    }                                                                                         \
    /* r = t < p ? t : t - p, without branches (t < 2p) */                                    \
    static inline void PFX##_reduce_once(fe *r, u64 t0, u64 t1, u64 t2, u64 t3) {             \
        u64 s0 = t0, s1 = t1, s2 = t2, s3 = t3;                                               \
        __asm__("subq %[p0], %[s0]\n\tsbbq %[p1], %[s1]\n\t"                                  \
                "sbbq %[p2], %[s2]\n\tsbbq %[p3], %[s3]\n\t"                                  \
                "cmovcq %[t0], %[s0]\n\tcmovcq %[t1], %[s1]\n\t"                              \
                "cmovcq %[t2], %[s2]\n\tcmovcq %[t3], %[s3]"                                  \
                : [s0] "+&r"(s0), [s1] "+&r"(s1), [s2] "+&r"(s2), [s3] "+&r"(s3)              \
                : [p0] "m"(PFX##_P.v[0]), [p1] "m"(PFX##_P.v[1]), [p2] "m"(PFX##_P.v[2]),     \
                  [p3] "m"(PFX##_P.v[3]), [t0] "r"(t0), [t1] "r"(t1), [t2] "r"(t2),            \
                  [t3] "r"(t3)                                                                \
                : "cc");                                                                      \
        r->v[0] = s0;                                                                         \
        r->v[1] = s1;                                                                         \
        r->v[2] = s2;                                                                         \
        r->v[3] = s3;                                                                         \
    }                                                                                         \
    static inline void PFX##_mul_c(fe *r, const fe *a, const fe *b) {                           \
        u64 t[4] = {0, 0, 0, 0};                                                              \
        for (int i = 0; i < 4; i++) {                                                         \
            u128 x = (u128)a->v[0] * b->v[i] + t[0];                                          \
            u64 A = (u64)(x >> 64);                                                           \
            u64 t0 = (u64)x;                                                                  \
            u64 m = t0 * (u64)(INV);                                                          \
            u128 y = (u128)m * PFX##_P.v[0] + t0;                                             \
            u64 C = (u64)(y >> 64);                                                           \
            for (int j = 1; j < 4; j++) {                                                     \
                x = (u128)a->v[j] * b->v[i] + t[j] + A;                                       \
                A = (u64)(x >> 64);                                                           \
                y = (u128)m * PFX##_P.v[j] + (u64)x + C;                                      \
                C = (u64)(y >> 64);                                                           \
                t[j - 1] = (u64)y;                                                            \
            }                                                                                 \
            t[3] = C + A;                                                                     \
        }                                                                                     \
        if (PFX##_geq_p(t)) PFX##_reduce_once(r, t[0], t[1], t[2], t[3]);                    \
        else memcpy(r->v, t, sizeof t);                                                       \
    }                                                                                         \
    /* Montgomery product, x86-64 asm (mulq; no BMI2/ADX needed): CIOS with separate     */ \
    /* multiply and reduce passes; registers rotate instead of shifting the accumulator.  */ \
    static inline __attribute__((always_inline)) void PFX##_mul_q(fe *r, const fe *a, const fe *b) {                         \
        u64 r0, r1, r2, r3, r4, k, m;                                                         \
        __asm__(                                                                              \
            "xorl %k[r0], %k[r0]\n\t"                                                         \
            "xorl %k[r1], %k[r1]\n\t"                                                         \
            "xorl %k[r2], %k[r2]\n\t"                                                         \
            "xorl %k[r3], %k[r3]\n\t"                                                         \
            "xorl %k[r4], %k[r4]\n\t"                                                         \
            "movq 0(%[a]), %%rax\n\t"                                                         \
            "mulq 0(%[b])\n\t"                                                                \
            "addq %%rax, %[r0]\n\t"                                                           \
            "adcq $0, %%rdx\n\t"                                                              \
            "movq %%rdx, %[k]\n\t"                                                            \
            "movq 8(%[a]), %%rax\n\t"                                                         \
            "mulq 0(%[b])\n\t"                                                                \
            "addq %[k], %%rax\n\t"                                                            \
            "adcq $0, %%rdx\n\t"                                                              \
            "addq %%rax, %[r1]\n\t"                                                           \
            "adcq $0, %%rdx\n\t"                                                              \
            "movq %%rdx, %[k]\n\t"                                                            \
            "movq 16(%[a]), %%rax\n\t"                                                        \
            "mulq 0(%[b])\n\t"                                                                \
            "addq %[k], %%rax\n\t"                                                            \
            "adcq $0, %%rdx\n\t"                                                              \
            "addq %%rax, %[r2]\n\t"                                                           \
            "adcq $0, %%rdx\n\t"                                                              \
            "movq %%rdx, %[k]\n\t"                                                            \
            "movq 24(%[a]), %%rax\n\t"                                                        \
            "mulq 0(%[b])\n\t"                                                                \
            "addq %[k], %%rax\n\t"                                                            \
            "adcq $0, %%rdx\n\t"                                                              \
            "addq %%rax, %[r3]\n\t"                                                           \
            "adcq $0, %%rdx\n\t"                                                              \
            "movq %%rdx, %[r4]\n\t"                                                           \
            "movq %[r0], %[m]\n\t"                                                            \
            "imulq %[inv], %[m]\n\t"                                                          \
            "movq %[m], %%rax\n\t"                                                            \
            "mulq %[p0]\n\t"                                                                  \
            "addq %%rax, %[r0]\n\t"                                                           \
            "adcq $0, %%rdx\n\t"                                                              \
            "movq %%rdx, %[k]\n\t"                                                            \
            "movq %[m], %%rax\n\t"                                                            \
            "mulq %[p1]\n\t"                                                                  \
            "addq %[k], %%rax\n\t"                                                            \
            "adcq $0, %%rdx\n\t"                                                              \
            "addq %%rax, %[r1]\n\t"                                                           \
            "adcq $0, %%rdx\n\t"                                                              \
            "movq %%rdx, %[k]\n\t"                                                            \
            "movq %[m], %%rax\n\t"                                                            \
            "mulq %[p2]\n\t"                                                                  \
            "addq %[k], %%rax\n\t"                                                            \
            "adcq $0, %%rdx\n\t"                                                              \
            "addq %%rax, %[r2]\n\t"                                                           \
            "adcq $0, %%rdx\n\t"                                                              \
            "movq %%rdx, %[k]\n\t"                                                            \
            "movq %[m], %%rax\n\t"                                                            \
            "mulq %[p3]\n\t"                                                                  \
            "addq %[k], %%rax\n\t"                                                            \
            "adcq $0, %%rdx\n\t"                                                              \
            "addq %%rax, %[r3]\n\t"                                                           \
            "adcq $0, %%rdx\n\t"                                                              \
            "movq %%rdx, %[k]\n\t"                                                            \
            "addq %[k], %[r4]\n\t"                                                            \
            "movq 0(%[a]), %%rax\n\t"                                                         \
            "mulq 8(%[b])\n\t"                                                                \
            "addq %%rax, %[r1]\n\t"                                                           \
            "adcq $0, %%rdx\n\t"                                                              \
            "movq %%rdx, %[k]\n\t"                                                            \
            "movq 8(%[a]), %%rax\n\t"                                                         \
            "mulq 8(%[b])\n\t"                                                                \
            "addq %[k], %%rax\n\t"                                                            \
            "adcq $0, %%rdx\n\t"                                                              \
            "addq %%rax, %[r2]\n\t"                                                           \
            "adcq $0, %%rdx\n\t"                                                              \
            "movq %%rdx, %[k]\n\t"                                                            \
            "movq 16(%[a]), %%rax\n\t"                                                        \
            "mulq 8(%[b])\n\t"                                                                \
            "addq %[k], %%rax\n\t"                                                            \
            "adcq $0, %%rdx\n\t"                                                              \
            "addq %%rax, %[r3]\n\t"                                                           \
            "adcq $0, %%rdx\n\t"                                                              \
            "movq %%rdx, %[k]\n\t"                                                            \
            "movq 24(%[a]), %%rax\n\t"                                                        \
            "mulq 8(%[b])\n\t"                                                                \
            "addq %[k], %%rax\n\t"                                                            \
            "adcq $0, %%rdx\n\t"                                                              \
            "addq %%rax, %[r4]\n\t"                                                           \
            "adcq $0, %%rdx\n\t"                                                              \
            "movq %%rdx, %[r0]\n\t"                                                           \
            "movq %[r1], %[m]\n\t"                                                            \
            "imulq %[inv], %[m]\n\t"                                                          \
            "movq %[m], %%rax\n\t"                                                            \
            "mulq %[p0]\n\t"                                                                  \
            "addq %%rax, %[r1]\n\t"                                                           \
            "adcq $0, %%rdx\n\t"                                                              \
            "movq %%rdx, %[k]\n\t"                                                            \
            "movq %[m], %%rax\n\t"                                                            \
            "mulq %[p1]\n\t"                                                                  \
            "addq %[k], %%rax\n\t"                                                            \
            "adcq $0, %%rdx\n\t"                                                              \
            "addq %%rax, %[r2]\n\t"                                                           \
            "adcq $0, %%rdx\n\t"                                                              \
            "movq %%rdx, %[k]\n\t"                                                            \
            "movq %[m], %%rax\n\t"                                                            \
            "mulq %[p2]\n\t"                                                                  \
            "addq %[k], %%rax\n\t"                                                            \
            "adcq $0, %%rdx\n\t"                                                              \
            "addq %%rax, %[r3]\n\t"                                                           \
            "adcq $0, %%rdx\n\t"                                                              \
            "movq %%rdx, %[k]\n\t"                                                            \
            "movq %[m], %%rax\n\t"                                                            \
            "mulq %[p3]\n\t"                                                                  \
            "addq %[k], %%rax\n\t"                                                            \
            "adcq $0, %%rdx\n\t"                                                              \
            "addq %%rax, %[r4]\n\t"                                                           \
            "adcq $0, %%rdx\n\t"                                                              \
            "movq %%rdx, %[k]\n\t"                                                            \
            "addq %[k], %[r0]\n\t"                                                            \
            "movq 0(%[a]), %%rax\n\t"                                                         \
            "mulq 16(%[b])\n\t"                                                               \
            "addq %%rax, %[r2]\n\t"                                                           \
            "adcq $0, %%rdx\n\t"                                                              \
            "movq %%rdx, %[k]\n\t"                                                            \
            "movq 8(%[a]), %%rax\n\t"                                                         \
            "mulq 16(%[b])\n\t"                                                               \
            "addq %[k], %%rax\n\t"                                                            \
            "adcq $0, %%rdx\n\t"                                                              \
            "addq %%rax, %[r3]\n\t"                                                           \
            "adcq $0, %%rdx\n\t"                                                              \
            "movq %%rdx, %[k]\n\t"                                                            \
            "movq 16(%[a]), %%rax\n\t"                                                        \
            "mulq 16(%[b])\n\t"                                                               \
            "addq %[k], %%rax\n\t"                                                            \
            "adcq $0, %%rdx\n\t"                                                              \
            "addq %%rax, %[r4]\n\t"                                                           \
            "adcq $0, %%rdx\n\t"                                                              \
            "movq %%rdx, %[k]\n\t"                                                            \
            "movq 24(%[a]), %%rax\n\t"                                                        \
            "mulq 16(%[b])\n\t"                                                               \
            "addq %[k], %%rax\n\t"                                                            \
            "adcq $0, %%rdx\n\t"                                                              \
            "addq %%rax, %[r0]\n\t"                                                           \
            "adcq $0, %%rdx\n\t"                                                              \
            "movq %%rdx, %[r1]\n\t"                                                           \
            "movq %[r2], %[m]\n\t"                                                            \
            "imulq %[inv], %[m]\n\t"                                                          \
            "movq %[m], %%rax\n\t"                                                            \
            "mulq %[p0]\n\t"                                                                  \
            "addq %%rax, %[r2]\n\t"                                                           \
            "adcq $0, %%rdx\n\t"                                                              \
            "movq %%rdx, %[k]\n\t"                                                            \
            "movq %[m], %%rax\n\t"                                                            \
            "mulq %[p1]\n\t"                                                                  \
            "addq %[k], %%rax\n\t"                                                            \
            "adcq $0, %%rdx\n\t"                                                              \
            "addq %%rax, %[r3]\n\t"                                                           \
            "adcq $0, %%rdx\n\t"                                                              \
            "movq %%rdx, %[k]\n\t"                                                            \
            "movq %[m], %%rax\n\t"                                                            \
            "mulq %[p2]\n\t"                                                                  \
            "addq %[k], %%rax\n\t"                                                            \
            "adcq $0, %%rdx\n\t"                                                              \
            "addq %%rax, %[r4]\n\t"                                                           \
            "adcq $0, %%rdx\n\t"                                                              \
            "movq %%rdx, %[k]\n\t"                                                            \
            "movq %[m], %%rax\n\t"                                                            \
            "mulq %[p3]\n\t"                                                                  \
            "addq %[k], %%rax\n\t"                                                            \
            "adcq $0, %%rdx\n\t"                                                              \
            "addq %%rax, %[r0]\n\t"                                                           \
            "adcq $0, %%rdx\n\t"                                                              \
            "movq %%rdx, %[k]\n\t"                                                            \
            "addq %[k], %[r1]\n\t"                                                            \
            "movq 0(%[a]), %%rax\n\t"                                                         \
            "mulq 24(%[b])\n\t"                                                               \
            "addq %%rax, %[r3]\n\t"                                                           \
            "adcq $0, %%rdx\n\t"                                                              \
            "movq %%rdx, %[k]\n\t"                                                            \
            "movq 8(%[a]), %%rax\n\t"                                                         \
            "mulq 24(%[b])\n\t"                                                               \
            "addq %[k], %%rax\n\t"                                                            \
            "adcq $0, %%rdx\n\t"                                                              \
            "addq %%rax, %[r4]\n\t"                                                           \
            "adcq $0, %%rdx\n\t"                                                              \
            "movq %%rdx, %[k]\n\t"                                                            \
            "movq 16(%[a]), %%rax\n\t"                                                        \
            "mulq 24(%[b])\n\t"                                                               \
            "addq %[k], %%rax\n\t"                                                            \
            "adcq $0, %%rdx\n\t"                                                              \
            "addq %%rax, %[r0]\n\t"                                                           \
            "adcq $0, %%rdx\n\t"                                                              \
            "movq %%rdx, %[k]\n\t"                                                            \
            "movq 24(%[a]), %%rax\n\t"                                                        \
            "mulq 24(%[b])\n\t"                                                               \
            "addq %[k], %%rax\n\t"                                                            \
            "adcq $0, %%rdx\n\t"                                                              \
            "addq %%rax, %[r1]\n\t"                                                           \
            "adcq $0, %%rdx\n\t"                                                              \
            "movq %%rdx, %[r2]\n\t"                                                           \
            "movq %[r3], %[m]\n\t"                                                            \
            "imulq %[inv], %[m]\n\t"                                                          \
            "movq %[m], %%rax\n\t"                                                            \
            "mulq %[p0]\n\t"                                                                  \
            "addq %%rax, %[r3]\n\t"                                                           \
            "adcq $0, %%rdx\n\t"                                                              \
            "movq %%rdx, %[k]\n\t"                                                            \
            "movq %[m], %%rax\n\t"                                                            \
            "mulq %[p1]\n\t"                                                                  \
            "addq %[k], %%rax\n\t"                                                            \
            "adcq $0, %%rdx\n\t"                                                              \
            "addq %%rax, %[r4]\n\t"                                                           \
            "adcq $0, %%rdx\n\t"                                                              \
            "movq %%rdx, %[k]\n\t"                                                            \
            "movq %[m], %%rax\n\t"                                                            \
            "mulq %[p2]\n\t"                                                                  \
            "addq %[k], %%rax\n\t"                                                            \
            "adcq $0, %%rdx\n\t"                                                              \
            "addq %%rax, %[r0]\n\t"                                                           \
            "adcq $0, %%rdx\n\t"                                                              \
            "movq %%rdx, %[k]\n\t"                                                            \
            "movq %[m], %%rax\n\t"                                                            \
            "mulq %[p3]\n\t"                                                                  \
            "addq %[k], %%rax\n\t"                                                            \
            "adcq $0, %%rdx\n\t"                                                              \
            "addq %%rax, %[r1]\n\t"                                                           \
            "adcq $0, %%rdx\n\t"                                                              \
            "movq %%rdx, %[k]\n\t"                                                            \
            "addq %[k], %[r2]\n\t"                                                            \
            : [r0] "=&r"(r0), [r1] "=&r"(r1), [r2] "=&r"(r2), [r3] "=&r"(r3), [r4] "=&r"(r4), \
              [k] "=&r"(k), [m] "=&r"(m)                                                      \
            : [a] "r"(a->v), [b] "r"(b->v), [inv] "m"(PFX##_INV), [p0] "m"(PFX##_P.v[0]),     \
              [p1] "m"(PFX##_P.v[1]), [p2] "m"(PFX##_P.v[2]), [p3] "m"(PFX##_P.v[3]),         \
              "m"(*(const u64(*)[4])a->v), "m"(*(const u64(*)[4])b->v)                        \
            : "rax", "rdx", "cc");                                                            \
        PFX##_reduce_once(r, r4, r0, r1, r2);                                                 \
    }                                                                                         \
    FIELD_MULX(PFX)                                                                           \
    static inline __attribute__((always_inline)) void PFX##_mul(fe *r, const fe *a, const fe *b) {                           \
        if (fields_adx)                                                                       \
            PFX##_mul_x(r, a, b);                                                             \
        else                                                                                  \
            PFX##_mul_q(r, a, b);                                                             \
    }                                                                                         \
    static inline void PFX##_sqr(fe *r, const fe *a) { PFX##_mul(r, a, a); }                  \
    static inline void PFX##_add(fe *r, const fe *a, const fe *b) {                           \
        u64 t0 = a->v[0], t1 = a->v[1], t2 = a->v[2], t3 = a->v[3];                           \
        __asm__("addq %[b0], %[t0]\n\tadcq %[b1], %[t1]\n\t"                                  \
                "adcq %[b2], %[t2]\n\tadcq %[b3], %[t3]"                                      \
                : [t0] "+r"(t0), [t1] "+r"(t1), [t2] "+r"(t2), [t3] "+r"(t3)                  \
                : [b0] "rm"(b->v[0]), [b1] "rm"(b->v[1]), [b2] "rm"(b->v[2]),                 \
                  [b3] "rm"(b->v[3])                                                          \
                : "cc");                                                                      \
        PFX##_reduce_once(r, t0, t1, t2, t3); /* a + b < 2p < 2^255: no carry out */          \
    }                                                                                         \
    static inline void PFX##_sub(fe *r, const fe *a, const fe *b) {                           \
        u64 t0 = a->v[0], t1 = a->v[1], t2 = a->v[2], t3 = a->v[3], m;                        \
        __asm__("subq %[b0], %[t0]\n\tsbbq %[b1], %[t1]\n\t"                                  \
                "sbbq %[b2], %[t2]\n\tsbbq %[b3], %[t3]\n\tsbbq %[m], %[m]"                   \
                : [t0] "+r"(t0), [t1] "+r"(t1), [t2] "+r"(t2), [t3] "+r"(t3), [m] "=&r"(m)    \
                : [b0] "rm"(b->v[0]), [b1] "rm"(b->v[1]), [b2] "rm"(b->v[2]),                 \
                  [b3] "rm"(b->v[3])                                                          \
                : "cc");                                                                      \
        /* m is all ones when a < b: add p back */                                            \
        __asm__("addq %[q0], %[t0]\n\tadcq %[q1], %[t1]\n\t"                                  \
                "adcq %[q2], %[t2]\n\tadcq %[q3], %[t3]"                                      \
                : [t0] "+r"(t0), [t1] "+r"(t1), [t2] "+r"(t2), [t3] "+r"(t3)                  \
                : [q0] "r"(PFX##_P.v[0] & m), [q1] "r"(PFX##_P.v[1] & m),                     \
                  [q2] "r"(PFX##_P.v[2] & m), [q3] "r"(PFX##_P.v[3] & m)                      \
                : "cc");                                                                      \
        r->v[0] = t0;                                                                         \
        r->v[1] = t1;                                                                         \
        r->v[2] = t2;                                                                         \
        r->v[3] = t3;                                                                         \
    }                                                                                         \
    static inline void PFX##_dbl(fe *r, const fe *a) { PFX##_add(r, a, a); }                  \
    static inline int PFX##_is_zero(const fe *a) {                                            \
        return (a->v[0] | a->v[1] | a->v[2] | a->v[3]) == 0;                                  \
    }                                                                                         \
    static inline int PFX##_eq(const fe *a, const fe *b) {                                    \
        return ((a->v[0] ^ b->v[0]) | (a->v[1] ^ b->v[1]) | (a->v[2] ^ b->v[2]) |              \
                (a->v[3] ^ b->v[3])) == 0;                                                    \
    }                                                                                         \
    static inline void PFX##_neg(fe *r, const fe *a) {                                        \
        fe z = {{0, 0, 0, 0}};                                                                \
        PFX##_sub(r, &z, a);                                                                  \
    }                                                                                         \
    static inline void PFX##_zero(fe *r) { memset(r, 0, sizeof *r); }                         \
    static inline void PFX##_one(fe *r) { *r = PFX##_ONE; }                                   \
    /* plain integer (< p) -> Montgomery form */                                              \
    static inline void PFX##_to_mont(fe *r, const fe *a) { PFX##_mul(r, a, &PFX##_RR); }      \
    /* Montgomery form -> plain integer */                                                    \
    static inline void PFX##_from_mont(fe *r, const fe *a) {                                  \
        fe one = {{1, 0, 0, 0}};                                                              \
        PFX##_mul(r, a, &one);                                                                \
    }                                                                                         \
    /* a^e for a plain little-endian exponent (4-bit fixed windows) */                      \
    static inline void PFX##_pow(fe *r, const fe *a, const fe *e) {                           \
        fe tab[16], acc = PFX##_ONE;                                                          \
        tab[0] = PFX##_ONE;                                                                   \
        for (int i = 1; i < 16; i++) PFX##_mul(&tab[i], &tab[i - 1], a);                      \
        for (int i = 63; i >= 0; i--) {                                                       \
            for (int k = 0; k < 4; k++) PFX##_sqr(&acc, &acc);                                \
            unsigned nib = (unsigned)(e->v[i / 16] >> (4 * (i % 16))) & 15;                   \
            if (nib) PFX##_mul(&acc, &acc, &tab[nib]);                                        \
        }                                                                                     \
        *r = acc;                                                                             \
    }                                                                                         \
    /* 1/a by Fermat (a != 0; 0 maps to 0) */                                                 \
    static inline void PFX##_inv(fe *r, const fe *a) {                                        \
        fe e = PFX##_P;                                                                       \
        e.v[0] -= 2; /* p is odd and > 2, no borrow */                                        \
        PFX##_pow(r, a, &e);                                                                  \
    }                                                                                         \
    /* is a plain integer < p ? */                                                            \
    static inline int PFX##_is_canonical(const fe *a) { return !PFX##_geq_p(a->v); }

FIELD_DEFINE(fp, 0x3c208c16d87cfd47ULL, 0x97816a916871ca8dULL, 0xb85045b68181585dULL,
             0x30644e72e131a029ULL, 0x87d20782e4866389ULL, 0xd35d438dc58f0d9dULL,
             0x0a78eb28f5c70b3dULL, 0x666ea36f7879462cULL, 0x0e0a77c19a07df2fULL,
             0xf32cfc5b538afa89ULL, 0xb5e71911d44501fbULL, 0x47ab1eff0a417ff6ULL,
             0x06d89f71cab8351fULL)

FIELD_DEFINE(fr, 0x43e1f593f0000001ULL, 0x2833e84879b97091ULL, 0xb85045b68181585dULL,
             0x30644e72e131a029ULL, 0xc2e1f593efffffffULL, 0xac96341c4ffffffbULL,
             0x36fc76959f60cd29ULL, 0x666ea36f7879462eULL, 0x0e0a77c19a07df2fULL,
             0x1bb8e645ae216da7ULL, 0x53fe3ab1e35c59e3ULL, 0x8c49833d53bb8085ULL,
             0x0216d0b17f4e44a5ULL)

/* ---- Fp2 = Fp[u] / (u^2 + 1); c0 first, as in snarkjs files and JSON ---- */
typedef struct { fe c0, c1; } fe2;

static inline void fp2_add(fe2 *r, const fe2 *a, const fe2 *b) {
    fp_add(&r->c0, &a->c0, &b->c0);
    fp_add(&r->c1, &a->c1, &b->c1);
}
static inline void fp2_sub(fe2 *r, const fe2 *a, const fe2 *b) {
    fp_sub(&r->c0, &a->c0, &b->c0);
    fp_sub(&r->c1, &a->c1, &b->c1);
}
static inline void fp2_dbl(fe2 *r, const fe2 *a) { fp2_add(r, a, a); }
static inline void fp2_neg(fe2 *r, const fe2 *a) {
    fp_neg(&r->c0, &a->c0);
    fp_neg(&r->c1, &a->c1);
}
static inline void fp2_mul(fe2 *r, const fe2 *a, const fe2 *b) {
    fe t0, t1, s0, s1, m;
    fp_mul(&t0, &a->c0, &b->c0);
    fp_mul(&t1, &a->c1, &b->c1);
    fp_add(&s0, &a->c0, &a->c1);
    fp_add(&s1, &b->c0, &b->c1);
    fp_mul(&m, &s0, &s1);
    fp_sub(&m, &m, &t0);
    fp_sub(&r->c1, &m, &t1);
    fp_sub(&r->c0, &t0, &t1);
}
static inline void fp2_sqr(fe2 *r, const fe2 *a) {
    fe s, d, m;
    fp_add(&s, &a->c0, &a->c1);
    fp_sub(&d, &a->c0, &a->c1);
    fp_mul(&m, &a->c0, &a->c1);
    fp_mul(&r->c0, &s, &d);
    fp_add(&r->c1, &m, &m);
}
static inline int fp2_is_zero(const fe2 *a) { return fp_is_zero(&a->c0) && fp_is_zero(&a->c1); }
static inline int fp2_eq(const fe2 *a, const fe2 *b) {
    return fp_eq(&a->c0, &b->c0) && fp_eq(&a->c1, &b->c1);
}
static inline void fp2_zero(fe2 *r) { memset(r, 0, sizeof *r); }
static inline void fp2_one(fe2 *r) {
    r->c0 = fp_ONE;
    fp_zero(&r->c1);
}
static inline void fp2_inv(fe2 *r, const fe2 *a) {
    /* 1/(a0 + a1 u) = (a0 - a1 u) / (a0^2 + a1^2) */
    fe n, t, i;
    fp_sqr(&n, &a->c0);
    fp_sqr(&t, &a->c1);
    fp_add(&n, &n, &t);
    fp_inv(&i, &n);
    fp_mul(&r->c0, &a->c0, &i);
    fp_mul(&t, &a->c1, &i);
    fp_neg(&r->c1, &t);
}

/* Batch inversion in Fp for either field (curve_impl.h): norm(a) is an element of Fp that is
 * zero only when a is, and from_norm turns 1/norm(a) back into 1/a. In Fp they are the
 * identity; in Fp2, norm(a) = a0^2 + a1^2 (non-zero for a != 0: -1 is not a square mod p) and
 * 1/a = (a0 - a1 u) / norm(a), so a batch of Fp2 inversions costs 7 Fp products per element
 * instead of 9. norm() computes it (into n for Fp2; Fp needs no copy), norm_of() finds it again. */
static inline const fe *fp_norm(fe *n, const fe *a) {
    (void)n;
    return a;
}
static inline const fe *fp_norm_of(const fe *n, const fe *a) {
    (void)n;
    return a;
}
static inline void fp_from_norm(fe *r, const fe *a, const fe *ninv) {
    (void)a;
    *r = *ninv;
}
static inline const fe *fp2_norm(fe *n, const fe2 *a) {
    fe t;
    fp_sqr(n, &a->c0);
    fp_sqr(&t, &a->c1);
    fp_add(n, n, &t);
    return n;
}
static inline const fe *fp2_norm_of(const fe *n, const fe2 *a) {
    (void)a;
    return n;
}
static inline void fp2_from_norm(fe2 *r, const fe2 *a, const fe *ninv) {
    fe t;
    fp_mul(&r->c0, &a->c0, ninv);
    fp_mul(&t, &a->c1, ninv);
    fp_neg(&r->c1, &t);
}

#endif

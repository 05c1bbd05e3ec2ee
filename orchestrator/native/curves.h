/* G1 (over Fp) and G2 (over Fp2) of BN254, instantiated once from the generic curve_impl.h.
 *
 * Shared by the prover (groth16.c) and the verifier (verify.c) so that both use the very same
 * group law; each translation unit gets its own static copy.
 * NOTE: include after the x86-64 check; fields.h uses x86-64 inline assembly.
 */
#ifndef VBILL_CURVES_H
#define VBILL_CURVES_H

#include "fields.h"

#define FT fe
#define GP g1
#define F_(x) fp_##x
#include "curve_impl.h"
#undef FT
#undef GP
#undef F_

#define FT fe2
#define GP g2
#define F_(x) fp2_##x
#include "curve_impl.h"
#undef FT
#undef GP
#undef F_

#endif /* VBILL_CURVES_H */

//go:build !noasm

// AES-256-CTR with VAES on YMM registers: two blocks per register, eight
// registers (16 blocks) in flight to cover the latency of VAESENC, which
// issues twice per cycle. The tier guarantees AVX2 and VAES, not AVX-512,
// so only Y0–Y15 exist: the round keys do not fit and are broadcast from
// memory round by round, one load per eight VAESENC.
//
// Counters are kept little-endian (low quadword first) so that VPADDQ can
// step them; VPSHUFB with bswap turns them into the big-endian blocks AES
// encrypts. The Go caller ensures the low quadword never wraps in a call.

#include "textflag.h"

DATA bswap<>+0(SB)/8, $0x08090a0b0c0d0e0f
DATA bswap<>+8(SB)/8, $0x0001020304050607
GLOBL bswap<>(SB), RODATA|NOPTR, $16

// Added to a broadcast counter to get a register's two blocks; inc2
// steps it to the next register.
DATA lanes01<>+0(SB)/8, $0
DATA lanes01<>+8(SB)/8, $0
DATA lanes01<>+16(SB)/8, $1
DATA lanes01<>+24(SB)/8, $0
GLOBL lanes01<>(SB), RODATA|NOPTR, $32

DATA inc2<>+0(SB)/8, $2
DATA inc2<>+8(SB)/8, $0
DATA inc2<>+16(SB)/8, $2
DATA inc2<>+24(SB)/8, $0
GLOBL inc2<>(SB), RODATA|NOPTR, $32

// Shared by both kernels: Y10 inc2, Y11 bswap.

// SETUP turns the counter in x, the low half of y, into a register's
// two blocks. (The callers load x themselves: vet cannot check argument
// references inside macros.)
#define SETUP(x, y) \
	VINSERTI128 $1, x, y, y; \
	VPADDQ      lanes01<>(SB), y, y

// NEXT sets y to the next two big-endian counter blocks and steps ctr.
#define NEXT(ctr, y) \
	VPSHUFB Y11, ctr, y; \
	VPADDQ  Y10, ctr, ctr

// ROUNDS applies rounds 1–13 of the schedule at key to y, through k.
#define ROUNDS(key, k, y) \
	VBROADCASTI128 16(key), k; VAESENC k, y, y; \
	VBROADCASTI128 32(key), k; VAESENC k, y, y; \
	VBROADCASTI128 48(key), k; VAESENC k, y, y; \
	VBROADCASTI128 64(key), k; VAESENC k, y, y; \
	VBROADCASTI128 80(key), k; VAESENC k, y, y; \
	VBROADCASTI128 96(key), k; VAESENC k, y, y; \
	VBROADCASTI128 112(key), k; VAESENC k, y, y; \
	VBROADCASTI128 128(key), k; VAESENC k, y, y; \
	VBROADCASTI128 144(key), k; VAESENC k, y, y; \
	VBROADCASTI128 160(key), k; VAESENC k, y, y; \
	VBROADCASTI128 176(key), k; VAESENC k, y, y; \
	VBROADCASTI128 192(key), k; VAESENC k, y, y; \
	VBROADCASTI128 208(key), k; VAESENC k, y, y

// ---------------------------------------------------------------------
// One stream. Y0–Y7 blocks, Y8 counter, Y9 round key, Y12 round key 0,
// Y13 round key 14, Y14 a temporary.

// ROUND8 applies the round key at rk+off to Y0–Y7.
#define ROUND8(off) \
	VBROADCASTI128 off(AX), Y9; \
	VAESENC Y9, Y0, Y0; VAESENC Y9, Y1, Y1; VAESENC Y9, Y2, Y2; VAESENC Y9, Y3, Y3; \
	VAESENC Y9, Y4, Y4; VAESENC Y9, Y5, Y5; VAESENC Y9, Y6, Y6; VAESENC Y9, Y7, Y7

// LAST finishes y and XORs it into the data at off: AESENCLAST ends by
// XORing its key, so the data is folded into round key 14 first, which
// keeps the XOR off the chain of dependent AES rounds.
#define LAST(y, off) \
	VPXOR       off(SI), Y13, Y14; \
	VAESENCLAST Y14, y, y; \
	VMOVDQU     y, off(DI)

// func xorVAES256(rk *aes256.Schedule, lo, hi uint64, dst, src *byte, n int)
TEXT ·xorVAES256(SB), NOSPLIT, $0-48
	MOVQ           rk+0(FP), AX
	MOVQ           dst+24(FP), DI
	MOVQ           src+32(FP), SI
	MOVQ           n+40(FP), CX
	VBROADCASTI128 (AX), Y12
	VBROADCASTI128 224(AX), Y13
	VMOVDQU        inc2<>(SB), Y10
	VBROADCASTI128 bswap<>(SB), Y11
	VMOVQ   lo+8(FP), X8
	VPINSRQ $1, hi+16(FP), X8, X8
	SETUP(X8, Y8)

	CMPQ CX, $16
	JB   loop2

loop16:
	// 16 counter blocks, whitened with round key 0.
	NEXT(Y8, Y0); NEXT(Y8, Y1); NEXT(Y8, Y2); NEXT(Y8, Y3)
	NEXT(Y8, Y4); NEXT(Y8, Y5); NEXT(Y8, Y6); NEXT(Y8, Y7)
	VPXOR Y12, Y0, Y0; VPXOR Y12, Y1, Y1; VPXOR Y12, Y2, Y2; VPXOR Y12, Y3, Y3
	VPXOR Y12, Y4, Y4; VPXOR Y12, Y5, Y5; VPXOR Y12, Y6, Y6; VPXOR Y12, Y7, Y7

	// Rounds 1–13.
	ROUND8(16); ROUND8(32); ROUND8(48); ROUND8(64); ROUND8(80)
	ROUND8(96); ROUND8(112); ROUND8(128); ROUND8(144); ROUND8(160)
	ROUND8(176); ROUND8(192); ROUND8(208)

	// Round 14 and the data.
	LAST(Y0, 0); LAST(Y1, 32); LAST(Y2, 64); LAST(Y3, 96)
	LAST(Y4, 128); LAST(Y5, 160); LAST(Y6, 192); LAST(Y7, 224)

	ADDQ $256, SI
	ADDQ $256, DI
	SUBQ $16, CX
	CMPQ CX, $16
	JAE  loop16

loop2:
	// Fewer than 16 blocks remain: two at a time. The iterations do not
	// depend on each other, so out-of-order execution overlaps them.
	CMPQ  CX, $2
	JB    tail
	NEXT(Y8, Y0)
	VPXOR Y12, Y0, Y0
	ROUNDS(AX, Y9, Y0)
	LAST(Y0, 0)
	ADDQ  $32, SI
	ADDQ  $32, DI
	SUBQ  $2, CX
	JMP   loop2

tail:
	// One block may remain: the same in the low lanes, which the rest
	// ignores. (The keys are broadcast to both lanes.)
	TESTQ       CX, CX
	JZ          done
	VPSHUFB     X11, X8, X0
	VPXOR       X12, X0, X0
	ROUNDS(AX, Y9, Y0)
	VPXOR       (SI), X13, X14
	VAESENCLAST X14, X0, X0
	VMOVDQU     X0, (DI)

done:
	VZEROUPPER
	RET

// ---------------------------------------------------------------------
// Two streams fused. Y0–Y3 blocks of a, Y4–Y7 the same positions of b,
// Y8/Y9 their counters, Y12/Y13 their round keys.

// ROUND44 applies the round key at off of a (at AX) to Y0–Y3 and of b
// (at R9) to Y4–Y7.
#define ROUND44(off) \
	VBROADCASTI128 off(AX), Y12; \
	VBROADCASTI128 off(R9), Y13; \
	VAESENC Y12, Y0, Y0; VAESENC Y12, Y1, Y1; VAESENC Y12, Y2, Y2; VAESENC Y12, Y3, Y3; \
	VAESENC Y13, Y4, Y4; VAESENC Y13, Y5, Y5; VAESENC Y13, Y6, Y6; VAESENC Y13, Y7, Y7

// XOR3 stores the data at off XORed with keystreams ya and yb.
#define XOR3(ya, yb, off) \
	VPXOR   yb, ya, ya; \
	VPXOR   off(SI), ya, ya; \
	VMOVDQU ya, off(DI)

// func xor2VAES256(rka *aes256.Schedule, loa, hia uint64, rkb *aes256.Schedule, lob, hib uint64, dst, src *byte, n int)
TEXT ·xor2VAES256(SB), NOSPLIT, $0-72
	MOVQ           rka+0(FP), AX
	MOVQ           rkb+24(FP), R9
	MOVQ           dst+48(FP), DI
	MOVQ           src+56(FP), SI
	MOVQ           n+64(FP), CX
	VMOVDQU        inc2<>(SB), Y10
	VBROADCASTI128 bswap<>(SB), Y11
	VMOVQ   loa+8(FP), X8
	VPINSRQ $1, hia+16(FP), X8, X8
	SETUP(X8, Y8)
	VMOVQ   lob+32(FP), X9
	VPINSRQ $1, hib+40(FP), X9, X9
	SETUP(X9, Y9)

	CMPQ CX, $8
	JB   loop2x2

loop8x2:
	// Eight counter blocks of each stream, whitened with its round key 0.
	NEXT(Y8, Y0); NEXT(Y8, Y1); NEXT(Y8, Y2); NEXT(Y8, Y3)
	NEXT(Y9, Y4); NEXT(Y9, Y5); NEXT(Y9, Y6); NEXT(Y9, Y7)
	VBROADCASTI128 (AX), Y12
	VBROADCASTI128 (R9), Y13
	VPXOR Y12, Y0, Y0; VPXOR Y12, Y1, Y1; VPXOR Y12, Y2, Y2; VPXOR Y12, Y3, Y3
	VPXOR Y13, Y4, Y4; VPXOR Y13, Y5, Y5; VPXOR Y13, Y6, Y6; VPXOR Y13, Y7, Y7

	// Rounds 1–13.
	ROUND44(16); ROUND44(32); ROUND44(48); ROUND44(64); ROUND44(80)
	ROUND44(96); ROUND44(112); ROUND44(128); ROUND44(144); ROUND44(160)
	ROUND44(176); ROUND44(192); ROUND44(208)

	// Round 14, then the data.
	VBROADCASTI128 224(AX), Y12
	VBROADCASTI128 224(R9), Y13
	VAESENCLAST Y12, Y0, Y0; VAESENCLAST Y12, Y1, Y1; VAESENCLAST Y12, Y2, Y2; VAESENCLAST Y12, Y3, Y3
	VAESENCLAST Y13, Y4, Y4; VAESENCLAST Y13, Y5, Y5; VAESENCLAST Y13, Y6, Y6; VAESENCLAST Y13, Y7, Y7
	XOR3(Y0, Y4, 0); XOR3(Y1, Y5, 32); XOR3(Y2, Y6, 64); XOR3(Y3, Y7, 96)

	ADDQ $128, SI
	ADDQ $128, DI
	SUBQ $8, CX
	CMPQ CX, $8
	JAE  loop8x2

loop2x2:
	// Fewer than 8 blocks remain: two of each stream at a time.
	CMPQ           CX, $2
	JB             tail2
	NEXT(Y8, Y0)
	NEXT(Y9, Y4)
	VBROADCASTI128 (AX), Y12
	VBROADCASTI128 (R9), Y13
	VPXOR          Y12, Y0, Y0
	VPXOR          Y13, Y4, Y4
	ROUNDS(AX, Y12, Y0)
	ROUNDS(R9, Y13, Y4)
	VBROADCASTI128 224(AX), Y12
	VBROADCASTI128 224(R9), Y13
	VAESENCLAST    Y12, Y0, Y0
	VAESENCLAST    Y13, Y4, Y4
	XOR3(Y0, Y4, 0)
	ADDQ           $32, SI
	ADDQ           $32, DI
	SUBQ           $2, CX
	JMP            loop2x2

tail2:
	// One block may remain: the same in the low lanes, as in xorVAES256.
	TESTQ          CX, CX
	JZ             done2
	VPSHUFB        X11, X8, X0
	VPSHUFB        X11, X9, X4
	VBROADCASTI128 (AX), Y12
	VBROADCASTI128 (R9), Y13
	VPXOR          X12, X0, X0
	VPXOR          X13, X4, X4
	ROUNDS(AX, Y12, Y0)
	ROUNDS(R9, Y13, Y4)
	VBROADCASTI128 224(AX), Y12
	VBROADCASTI128 224(R9), Y13
	VAESENCLAST    X12, X0, X0
	VAESENCLAST    X13, X4, X4
	VPXOR          X4, X0, X0
	VPXOR          (SI), X0, X0
	VMOVDQU        X0, (DI)

done2:
	VZEROUPPER
	RET

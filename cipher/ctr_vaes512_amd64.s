//go:build !noasm

// AES-256-CTR with VAES on ZMM registers: four blocks per register.
// VAESENC on ZMM issues twice per cycle with a latency of four cycles on
// Zen 5 (once per cycle on Intel cores), so the main loops keep eight
// registers (32 blocks) in flight. The round keys are broadcast to all
// four lanes of registers once per call.
//
// Counter blocks. The Go caller ensures that the low quadword of the
// counter never wraps within a call. The main loops make the blocks of an
// iteration from its first one by adding to the last byte (STEPS4), one
// addition per register, whenever that byte does not wrap within them.
// Otherwise (every eighth iteration on average) and in the tails, NEXT
// makes them the long way: counters are kept little-endian (low quadword
// first) so that VPADDQ steps them, in two YMM registers per stream, lo
// for a register's blocks 0 and 1 and hi for 2 and 3, which VPSHUFB
// byte-reverses and VINSERTI64X4 joins. (The tier guarantees AVX-512F but
// not AVX-512BW, so VPSHUFB exists on YMM only; VEX instructions write
// only Y0–Y15, hence the block registers are Z0–Z7.) The short way
// matters because the shuffles compete with VAESENC for execution ports:
// it makes the main loop 10% faster on Zen 5.

#include "textflag.h"

DATA bswap<>+0(SB)/8, $0x08090a0b0c0d0e0f
DATA bswap<>+8(SB)/8, $0x0001020304050607
GLOBL bswap<>(SB), RODATA|NOPTR, $16

// The long way: added to a broadcast little-endian counter, lanes01 and
// lanes23 give a register's blocks 0, 1 and 2, 3; inc4 steps both to the
// next register.
DATA lanes01<>+0(SB)/8, $0
DATA lanes01<>+8(SB)/8, $0
DATA lanes01<>+16(SB)/8, $1
DATA lanes01<>+24(SB)/8, $0
GLOBL lanes01<>(SB), RODATA|NOPTR, $32

DATA lanes23<>+0(SB)/8, $2
DATA lanes23<>+8(SB)/8, $0
DATA lanes23<>+16(SB)/8, $3
DATA lanes23<>+24(SB)/8, $0
GLOBL lanes23<>(SB), RODATA|NOPTR, $32

DATA inc4<>+0(SB)/8, $4
DATA inc4<>+8(SB)/8, $0
DATA inc4<>+16(SB)/8, $4
DATA inc4<>+24(SB)/8, $0
GLOBL inc4<>(SB), RODATA|NOPTR, $32

// The short way: added to big-endian blocks, steps0 turns the first block
// of an iteration, broadcast, into blocks 0–3 and step4 turns blocks
// i..i+3 into i+4..i+7, in the last byte (the top byte of the high
// quadword). inc16 and inc32 then step the long way's counters past the
// iteration.
DATA steps0<>+0(SB)/8, $0
DATA steps0<>+8(SB)/8, $0
DATA steps0<>+16(SB)/8, $0
DATA steps0<>+24(SB)/8, $0x0100000000000000
DATA steps0<>+32(SB)/8, $0
DATA steps0<>+40(SB)/8, $0x0200000000000000
DATA steps0<>+48(SB)/8, $0
DATA steps0<>+56(SB)/8, $0x0300000000000000
GLOBL steps0<>(SB), RODATA|NOPTR, $64

DATA step4<>+0(SB)/8, $0
DATA step4<>+8(SB)/8, $0x0400000000000000
DATA step4<>+16(SB)/8, $0
DATA step4<>+24(SB)/8, $0x0400000000000000
DATA step4<>+32(SB)/8, $0
DATA step4<>+40(SB)/8, $0x0400000000000000
DATA step4<>+48(SB)/8, $0
DATA step4<>+56(SB)/8, $0x0400000000000000
GLOBL step4<>(SB), RODATA|NOPTR, $64

DATA inc16<>+0(SB)/8, $16
DATA inc16<>+8(SB)/8, $0
DATA inc16<>+16(SB)/8, $16
DATA inc16<>+24(SB)/8, $0
GLOBL inc16<>(SB), RODATA|NOPTR, $32

DATA inc32<>+0(SB)/8, $32
DATA inc32<>+8(SB)/8, $0
DATA inc32<>+16(SB)/8, $32
DATA inc32<>+24(SB)/8, $0
GLOBL inc32<>(SB), RODATA|NOPTR, $32

// Round keys 0–14.
#define RK0 Z16
#define RK1 Z17
#define RK2 Z18
#define RK3 Z19
#define RK4 Z20
#define RK5 Z21
#define RK6 Z22
#define RK7 Z23
#define RK8 Z24
#define RK9 Z25
#define RK10 Z26
#define RK11 Z27
#define RK12 Z28
#define RK13 Z29
#define RK14 Z30

// Shared by both kernels: Y12 inc4, Y13 bswap, Y14 scratch.

// SETUP sets the registers lo and hi from the counter in X14. (The
// callers load X14 themselves: vet cannot check argument references
// inside macros.)
#define SETUP(lo, hi) \
	VINSERTI128 $1, X14, Y14, Y14; \
	VPADDQ      lanes01<>(SB), Y14, lo; \
	VPADDQ      lanes23<>(SB), Y14, hi

// NEXT sets z (whose low half is y) to the next four blocks the long
// way, from the counters lo and hi, and steps them.
#define NEXT(lo, hi, y, z) \
	VPSHUFB      Y13, lo, y; \
	VPSHUFB      Y13, hi, Y14; \
	VINSERTI64X4 $1, Y14, z, z; \
	VPADDQ       Y12, lo, lo; \
	VPADDQ       Y12, hi, hi

// STEPS4 sets z0–z3 to 16 blocks the short way, from the counter whose
// little-endian form is x.
#define STEPS4(x, z0, z1, z2, z3) \
	VPSHUFB    X13, x, X14; \
	VSHUFI64X2 $0, Z14, Z14, Z14; \
	VPADDQ     steps0<>(SB), Z14, z0; \
	VPADDQ     step4<>(SB), z0, z1; \
	VPADDQ     step4<>(SB), z1, z2; \
	VPADDQ     step4<>(SB), z2, z3

// ROUNDS applies rounds 1–13 to z.
#define ROUNDS(z) \
	VAESENC RK1, z, z; VAESENC RK2, z, z; VAESENC RK3, z, z; \
	VAESENC RK4, z, z; VAESENC RK5, z, z; VAESENC RK6, z, z; \
	VAESENC RK7, z, z; VAESENC RK8, z, z; VAESENC RK9, z, z; \
	VAESENC RK10, z, z; VAESENC RK11, z, z; VAESENC RK12, z, z; \
	VAESENC RK13, z, z

// ---------------------------------------------------------------------
// One stream. Z0–Z7 blocks, Y8/Y9 counter lo/hi, Z15 a temporary.

// ROUND8 applies round key k to Z0–Z7.
#define ROUND8(k) \
	VAESENC k, Z0, Z0; VAESENC k, Z1, Z1; VAESENC k, Z2, Z2; VAESENC k, Z3, Z3; \
	VAESENC k, Z4, Z4; VAESENC k, Z5, Z5; VAESENC k, Z6, Z6; VAESENC k, Z7, Z7

// LAST finishes z and XORs it into the data at off: AESENCLAST ends by
// XORing its key, so the data is folded into round key 14 first, which
// keeps the XOR off the chain of dependent AES rounds.
#define LAST(z, off) \
	VPXORQ      off(SI), RK14, Z15; \
	VAESENCLAST Z15, z, z; \
	VMOVDQU64   z, off(DI)

// LOADKEYS broadcasts the 15 round keys of the schedule at r to every
// lane of RK0..RK14, where they stay for the whole call.
#define LOADKEYS(r) \
	VBROADCASTI32X4 (r), RK0; \
	VBROADCASTI32X4 16(r), RK1; \
	VBROADCASTI32X4 32(r), RK2; \
	VBROADCASTI32X4 48(r), RK3; \
	VBROADCASTI32X4 64(r), RK4; \
	VBROADCASTI32X4 80(r), RK5; \
	VBROADCASTI32X4 96(r), RK6; \
	VBROADCASTI32X4 112(r), RK7; \
	VBROADCASTI32X4 128(r), RK8; \
	VBROADCASTI32X4 144(r), RK9; \
	VBROADCASTI32X4 160(r), RK10; \
	VBROADCASTI32X4 176(r), RK11; \
	VBROADCASTI32X4 192(r), RK12; \
	VBROADCASTI32X4 208(r), RK13; \
	VBROADCASTI32X4 224(r), RK14

// func xorVAES512(rk *aes256.Schedule, lo, hi uint64, dst, src *byte, n int)
TEXT ·xorVAES512(SB), NOSPLIT, $0-48
	MOVQ rk+0(FP), AX
	MOVQ dst+24(FP), DI
	MOVQ src+32(FP), SI
	MOVQ n+40(FP), CX

	LOADKEYS(AX)
	VMOVDQU         inc4<>(SB), Y12
	VBROADCASTI128  bswap<>(SB), Y13
	VMOVQ           lo+8(FP), X14
	VPINSRQ         $1, hi+16(FP), X14, X14
	SETUP(Y8, Y9)
	MOVQ            lo+8(FP), R10

	CMPQ CX, $32
	JB   loop4

loop32:
	// 32 counter blocks, the short way unless the low byte of the
	// counter, in R10, wraps within them.
	CMPB R10B, $224
	JHI  slow32
	STEPS4(X8, Z0, Z1, Z2, Z3)
	VPADDQ     step4<>(SB), Z3, Z4
	VPADDQ     step4<>(SB), Z4, Z5
	VPADDQ     step4<>(SB), Z5, Z6
	VPADDQ     step4<>(SB), Z6, Z7
	VPADDQ     inc32<>(SB), Y8, Y8
	VPADDQ     inc32<>(SB), Y9, Y9
	JMP        whiten32

slow32:
	NEXT(Y8, Y9, Y0, Z0); NEXT(Y8, Y9, Y1, Z1); NEXT(Y8, Y9, Y2, Z2); NEXT(Y8, Y9, Y3, Z3)
	NEXT(Y8, Y9, Y4, Z4); NEXT(Y8, Y9, Y5, Z5); NEXT(Y8, Y9, Y6, Z6); NEXT(Y8, Y9, Y7, Z7)

whiten32:
	VPXORQ RK0, Z0, Z0; VPXORQ RK0, Z1, Z1; VPXORQ RK0, Z2, Z2; VPXORQ RK0, Z3, Z3
	VPXORQ RK0, Z4, Z4; VPXORQ RK0, Z5, Z5; VPXORQ RK0, Z6, Z6; VPXORQ RK0, Z7, Z7

	// Rounds 1–13, round by round so that eight registers are in flight.
	ROUND8(RK1); ROUND8(RK2); ROUND8(RK3); ROUND8(RK4); ROUND8(RK5)
	ROUND8(RK6); ROUND8(RK7); ROUND8(RK8); ROUND8(RK9); ROUND8(RK10)
	ROUND8(RK11); ROUND8(RK12); ROUND8(RK13)

	// Round 14 and the data.
	LAST(Z0, 0); LAST(Z1, 64); LAST(Z2, 128); LAST(Z3, 192)
	LAST(Z4, 256); LAST(Z5, 320); LAST(Z6, 384); LAST(Z7, 448)

	ADDQ $32, R10
	ADDQ $512, SI
	ADDQ $512, DI
	SUBQ $32, CX
	CMPQ CX, $32
	JAE  loop32

loop4:
	// Fewer than 32 blocks remain: four at a time. The iterations do not
	// depend on each other, so out-of-order execution overlaps them.
	CMPQ   CX, $4
	JB     tail
	NEXT(Y8, Y9, Y0, Z0)
	VPXORQ RK0, Z0, Z0
	ROUNDS(Z0)
	LAST(Z0, 0)
	ADDQ   $64, SI
	ADDQ   $64, DI
	SUBQ   $4, CX
	JMP    loop4

tail:
	// One to three blocks remain: load and store under a mask of two
	// quadwords per block. Masked-off lanes are neither read nor written.
	TESTQ CX, CX
	JZ    done
	SHLQ  $1, CX
	MOVQ  $1, DX
	SHLQ  CX, DX
	DECQ  DX
	KMOVW DX, K1

	NEXT(Y8, Y9, Y0, Z0)
	VPXORQ         RK0, Z0, Z0
	ROUNDS(Z0)
	VMOVDQU64.Z    (SI), K1, Z15
	VPXORQ         RK14, Z15, Z15
	VAESENCLAST    Z15, Z0, Z0
	VMOVDQU64      Z0, K1, (DI)

done:
	VZEROUPPER
	RET

// ---------------------------------------------------------------------
// Two streams fused. Both sets of round keys do not fit in registers:
// those of a are in RK0–RK14, those of b are broadcast from memory (at R9)
// into Z15 round by round. That costs 7% of the throughput on long
// messages, but broadcasting them to the stack once per call instead
// costs more than that on messages of 64 bytes. Z0–Z3 blocks of a, Z4–Z7
// the same positions of b (eight registers in flight again), Y8/Y9 and
// Y10/Y11 the counters of a and b, Z31 a temporary.

// ROUND44 applies round key k of a to Z0–Z3 and the key of b at off to
// Z4–Z7.
#define ROUND44(k, off) \
	VBROADCASTI32X4 off(R9), Z15; \
	VAESENC k, Z0, Z0; VAESENC k, Z1, Z1; VAESENC k, Z2, Z2; VAESENC k, Z3, Z3; \
	VAESENC Z15, Z4, Z4; VAESENC Z15, Z5, Z5; VAESENC Z15, Z6, Z6; VAESENC Z15, Z7, Z7

// ROUNDSB applies rounds 1–13 of b to z.
#define ROUNDSB(z) \
	VBROADCASTI32X4 16(R9), Z15; VAESENC Z15, z, z; \
	VBROADCASTI32X4 32(R9), Z15; VAESENC Z15, z, z; \
	VBROADCASTI32X4 48(R9), Z15; VAESENC Z15, z, z; \
	VBROADCASTI32X4 64(R9), Z15; VAESENC Z15, z, z; \
	VBROADCASTI32X4 80(R9), Z15; VAESENC Z15, z, z; \
	VBROADCASTI32X4 96(R9), Z15; VAESENC Z15, z, z; \
	VBROADCASTI32X4 112(R9), Z15; VAESENC Z15, z, z; \
	VBROADCASTI32X4 128(R9), Z15; VAESENC Z15, z, z; \
	VBROADCASTI32X4 144(R9), Z15; VAESENC Z15, z, z; \
	VBROADCASTI32X4 160(R9), Z15; VAESENC Z15, z, z; \
	VBROADCASTI32X4 176(R9), Z15; VAESENC Z15, z, z; \
	VBROADCASTI32X4 192(R9), Z15; VAESENC Z15, z, z; \
	VBROADCASTI32X4 208(R9), Z15; VAESENC Z15, z, z

// XOR3 stores the data at off XORed with keystreams za and zb.
#define XOR3(za, zb, off) \
	VPTERNLOGQ $0x96, off(SI), zb, za; \
	VMOVDQU64  za, off(DI)

// func xor2VAES512(rka *aes256.Schedule, loa, hia uint64, rkb *aes256.Schedule, lob, hib uint64, dst, src *byte, n int)
TEXT ·xor2VAES512(SB), NOSPLIT, $0-72
	MOVQ rka+0(FP), AX
	MOVQ rkb+24(FP), R9
	MOVQ dst+48(FP), DI
	MOVQ src+56(FP), SI
	MOVQ n+64(FP), CX

	LOADKEYS(AX)
	VMOVDQU         inc4<>(SB), Y12
	VBROADCASTI128  bswap<>(SB), Y13
	VMOVQ           loa+8(FP), X14
	VPINSRQ         $1, hia+16(FP), X14, X14
	SETUP(Y8, Y9)
	VMOVQ           lob+32(FP), X14
	VPINSRQ         $1, hib+40(FP), X14, X14
	SETUP(Y10, Y11)
	MOVQ            loa+8(FP), R10
	MOVQ            lob+32(FP), R11

	CMPQ CX, $16
	JB   loop4x2

loop16x2:
	// 16 counter blocks of each stream, the short way unless the low
	// byte of its counter, in R10 and R11, wraps within them; then the
	// whitening with the stream's round key 0.
	CMPB R10B, $240
	JHI  slowa
	STEPS4(X8, Z0, Z1, Z2, Z3)
	VPADDQ inc16<>(SB), Y8, Y8
	VPADDQ inc16<>(SB), Y9, Y9
	JMP    countersb

slowa:
	NEXT(Y8, Y9, Y0, Z0); NEXT(Y8, Y9, Y1, Z1); NEXT(Y8, Y9, Y2, Z2); NEXT(Y8, Y9, Y3, Z3)

countersb:
	CMPB R11B, $240
	JHI  slowb
	STEPS4(X10, Z4, Z5, Z6, Z7)
	VPADDQ inc16<>(SB), Y10, Y10
	VPADDQ inc16<>(SB), Y11, Y11
	JMP    whiten16x2

slowb:
	NEXT(Y10, Y11, Y4, Z4); NEXT(Y10, Y11, Y5, Z5); NEXT(Y10, Y11, Y6, Z6); NEXT(Y10, Y11, Y7, Z7)

whiten16x2:
	VBROADCASTI32X4 (R9), Z15
	VPXORQ RK0, Z0, Z0; VPXORQ RK0, Z1, Z1; VPXORQ RK0, Z2, Z2; VPXORQ RK0, Z3, Z3
	VPXORQ Z15, Z4, Z4; VPXORQ Z15, Z5, Z5; VPXORQ Z15, Z6, Z6; VPXORQ Z15, Z7, Z7

	// Rounds 1–13.
	ROUND44(RK1, 16); ROUND44(RK2, 32); ROUND44(RK3, 48); ROUND44(RK4, 64)
	ROUND44(RK5, 80); ROUND44(RK6, 96); ROUND44(RK7, 112); ROUND44(RK8, 128)
	ROUND44(RK9, 144); ROUND44(RK10, 160); ROUND44(RK11, 176); ROUND44(RK12, 192)
	ROUND44(RK13, 208)

	// Round 14, then the data XORed with both keystreams in one step.
	VBROADCASTI32X4 224(R9), Z15
	VAESENCLAST RK14, Z0, Z0; VAESENCLAST RK14, Z1, Z1; VAESENCLAST RK14, Z2, Z2; VAESENCLAST RK14, Z3, Z3
	VAESENCLAST Z15, Z4, Z4; VAESENCLAST Z15, Z5, Z5; VAESENCLAST Z15, Z6, Z6; VAESENCLAST Z15, Z7, Z7
	XOR3(Z0, Z4, 0); XOR3(Z1, Z5, 64); XOR3(Z2, Z6, 128); XOR3(Z3, Z7, 192)

	ADDQ $16, R10
	ADDQ $16, R11
	ADDQ $256, SI
	ADDQ $256, DI
	SUBQ $16, CX
	CMPQ CX, $16
	JAE  loop16x2

loop4x2:
	// Fewer than 16 blocks remain: four of each stream at a time.
	CMPQ CX, $4
	JB   tail2
	NEXT(Y8, Y9, Y0, Z0)
	NEXT(Y10, Y11, Y4, Z4)
	VBROADCASTI32X4 (R9), Z15
	VPXORQ          RK0, Z0, Z0
	VPXORQ          Z15, Z4, Z4
	ROUNDS(Z0)
	ROUNDSB(Z4)
	VBROADCASTI32X4 224(R9), Z15
	VAESENCLAST     RK14, Z0, Z0
	VAESENCLAST     Z15, Z4, Z4
	XOR3(Z0, Z4, 0)
	ADDQ            $64, SI
	ADDQ            $64, DI
	SUBQ            $4, CX
	JMP             loop4x2

tail2:
	// One to three blocks remain: masked as in xorVAES512.
	TESTQ CX, CX
	JZ    done2
	SHLQ  $1, CX
	MOVQ  $1, DX
	SHLQ  CX, DX
	DECQ  DX
	KMOVW DX, K1

	NEXT(Y8, Y9, Y0, Z0)
	NEXT(Y10, Y11, Y4, Z4)
	VBROADCASTI32X4 (R9), Z15
	VPXORQ          RK0, Z0, Z0
	VPXORQ          Z15, Z4, Z4
	ROUNDS(Z0)
	ROUNDSB(Z4)
	VBROADCASTI32X4 224(R9), Z15
	VAESENCLAST     RK14, Z0, Z0
	VAESENCLAST     Z15, Z4, Z4
	VMOVDQU64.Z     (SI), K1, Z31
	VPTERNLOGQ      $0x96, Z31, Z4, Z0
	VMOVDQU64       Z0, K1, (DI)

done2:
	VZEROUPPER
	RET

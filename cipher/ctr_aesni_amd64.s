//go:build !noasm

// AES-256-CTR with AES-NI: one block per XMM register, 8 blocks in flight
// because AESENC issues twice per cycle with a latency of about four.
// The tier guarantees AES-NI and SSE4 but not AVX, so this file uses the
// legacy SSE encodings, whose memory operands must be aligned: every load
// of user data or round keys goes through MOVOU.
//
// Counters are kept little-endian (low quadword first) so that PADDQ can
// step them; PSHUFB with bswap turns one into the big-endian block AES
// encrypts. The Go caller ensures the low quadword never wraps in a call.

#include "textflag.h"

DATA bswap<>+0(SB)/8, $0x08090a0b0c0d0e0f
DATA bswap<>+8(SB)/8, $0x0001020304050607
GLOBL bswap<>(SB), RODATA|NOPTR, $16

DATA one<>+0(SB)/8, $1
DATA one<>+8(SB)/8, $0
GLOBL one<>(SB), RODATA|NOPTR, $16

// NEXT sets x to the big-endian block of counter ctr and steps ctr.
#define NEXT(ctr, x) \
	MOVO   ctr, x; \
	PSHUFB X15, x; \
	PADDQ  X14, ctr

// ---------------------------------------------------------------------
// One stream. X0–X7 blocks, X8 counter, X9 round key, X10 a temporary,
// X12 round key 0, X13 round key 14, X14 one, X15 bswap.

// ROUND8 applies the round key at rk+off to X0–X7.
#define ROUND8(off) \
	MOVOU  off(AX), X9; \
	AESENC X9, X0; AESENC X9, X1; AESENC X9, X2; AESENC X9, X3; \
	AESENC X9, X4; AESENC X9, X5; AESENC X9, X6; AESENC X9, X7

// ROUND4 applies the round key at rk+off to X0–X3.
#define ROUND4(off) \
	MOVOU  off(AX), X9; \
	AESENC X9, X0; AESENC X9, X1; AESENC X9, X2; AESENC X9, X3

// LAST finishes block x and XORs it into the data at off: AESENCLAST
// ends by XORing its key, so the data is folded into round key 14 first,
// which keeps the XOR off the chain of dependent AES rounds.
#define LAST(x, off) \
	MOVOU      off(SI), X10; \
	PXOR       X13, X10; \
	AESENCLAST X10, x; \
	MOVOU      x, off(DI)

// func xorAESNI(rk *aes256.Schedule, lo, hi uint64, dst, src *byte, n int)
TEXT ·xorAESNI(SB), NOSPLIT, $0-48
	MOVQ   rk+0(FP), AX
	MOVQ   lo+8(FP), X8
	PINSRQ $1, hi+16(FP), X8
	MOVQ   dst+24(FP), DI
	MOVQ   src+32(FP), SI
	MOVQ   n+40(FP), CX
	MOVOU (AX), X12
	MOVOU 224(AX), X13
	MOVOU one<>(SB), X14
	MOVOU bswap<>(SB), X15
	CMPQ  CX, $8
	JB    four

loop8:
	// Eight counter blocks, whitened with round key 0.
	NEXT(X8, X0); NEXT(X8, X1); NEXT(X8, X2); NEXT(X8, X3)
	NEXT(X8, X4); NEXT(X8, X5); NEXT(X8, X6); NEXT(X8, X7)
	PXOR X12, X0; PXOR X12, X1; PXOR X12, X2; PXOR X12, X3
	PXOR X12, X4; PXOR X12, X5; PXOR X12, X6; PXOR X12, X7

	// Rounds 1–13.
	ROUND8(16); ROUND8(32); ROUND8(48); ROUND8(64); ROUND8(80)
	ROUND8(96); ROUND8(112); ROUND8(128); ROUND8(144); ROUND8(160)
	ROUND8(176); ROUND8(192); ROUND8(208)

	// Round 14 and the data.
	LAST(X0, 0); LAST(X1, 16); LAST(X2, 32); LAST(X3, 48)
	LAST(X4, 64); LAST(X5, 80); LAST(X6, 96); LAST(X7, 112)

	ADDQ $128, SI
	ADDQ $128, DI
	SUBQ $8, CX
	CMPQ CX, $8
	JAE  loop8

four:
	// Fewer than 8 blocks remain: four if possible, as loop8 does.
	CMPQ CX, $4
	JB   tail
	NEXT(X8, X0); NEXT(X8, X1); NEXT(X8, X2); NEXT(X8, X3)
	PXOR X12, X0; PXOR X12, X1; PXOR X12, X2; PXOR X12, X3
	ROUND4(16); ROUND4(32); ROUND4(48); ROUND4(64); ROUND4(80)
	ROUND4(96); ROUND4(112); ROUND4(128); ROUND4(144); ROUND4(160)
	ROUND4(176); ROUND4(192); ROUND4(208)
	LAST(X0, 0); LAST(X1, 16); LAST(X2, 32); LAST(X3, 48)
	ADDQ $64, SI
	ADDQ $64, DI
	SUBQ $4, CX

tail:
	// Up to three blocks remain: one at a time. The iterations do not
	// depend on each other, so out-of-order execution overlaps them.
	TESTQ CX, CX
	JZ    done
	NEXT(X8, X0)
	PXOR  X12, X0
	MOVOU 16(AX), X9; AESENC X9, X0
	MOVOU 32(AX), X9; AESENC X9, X0
	MOVOU 48(AX), X9; AESENC X9, X0
	MOVOU 64(AX), X9; AESENC X9, X0
	MOVOU 80(AX), X9; AESENC X9, X0
	MOVOU 96(AX), X9; AESENC X9, X0
	MOVOU 112(AX), X9; AESENC X9, X0
	MOVOU 128(AX), X9; AESENC X9, X0
	MOVOU 144(AX), X9; AESENC X9, X0
	MOVOU 160(AX), X9; AESENC X9, X0
	MOVOU 176(AX), X9; AESENC X9, X0
	MOVOU 192(AX), X9; AESENC X9, X0
	MOVOU 208(AX), X9; AESENC X9, X0
	LAST(X0, 0)
	ADDQ  $16, SI
	ADDQ  $16, DI
	DECQ  CX
	JMP   tail

done:
	RET

// ---------------------------------------------------------------------
// Two streams fused. X0–X3 blocks of stream a, X4–X7 the same positions
// of stream b, X8/X9 their counters, X10/X11 round keys of a/b, X12 a
// temporary, X14 one, X15 bswap.

// ROUND44 applies round key off of a (at AX) to X0–X3 and of b (at CX)
// to X4–X7.
#define ROUND44(off) \
	MOVOU  off(AX), X10; \
	MOVOU  off(CX), X11; \
	AESENC X10, X0; AESENC X10, X1; AESENC X10, X2; AESENC X10, X3; \
	AESENC X11, X4; AESENC X11, X5; AESENC X11, X6; AESENC X11, X7

// XOR2 stores the data at off XORed with both keystream blocks xa, xb.
#define XOR2(xa, xb, off) \
	MOVOU off(SI), X12; \
	PXOR  xb, xa; \
	PXOR  X12, xa; \
	MOVOU xa, off(DI)

// func xor2AESNI(rka *aes256.Schedule, loa, hia uint64, rkb *aes256.Schedule, lob, hib uint64, dst, src *byte, n int)
TEXT ·xor2AESNI(SB), NOSPLIT, $0-72
	MOVQ   rka+0(FP), AX
	MOVQ   loa+8(FP), X8
	PINSRQ $1, hia+16(FP), X8
	MOVQ   rkb+24(FP), CX
	MOVQ   lob+32(FP), X9
	PINSRQ $1, hib+40(FP), X9
	MOVQ   dst+48(FP), DI
	MOVQ   src+56(FP), SI
	MOVQ   n+64(FP), R8
	MOVOU one<>(SB), X14
	MOVOU bswap<>(SB), X15
	CMPQ  R8, $4
	JB    tail2

loop4:
	// Four blocks of each stream, whitened with its round key 0.
	NEXT(X8, X0); NEXT(X8, X1); NEXT(X8, X2); NEXT(X8, X3)
	NEXT(X9, X4); NEXT(X9, X5); NEXT(X9, X6); NEXT(X9, X7)
	MOVOU (AX), X10
	MOVOU (CX), X11
	PXOR  X10, X0; PXOR X10, X1; PXOR X10, X2; PXOR X10, X3
	PXOR  X11, X4; PXOR X11, X5; PXOR X11, X6; PXOR X11, X7

	// Rounds 1–13.
	ROUND44(16); ROUND44(32); ROUND44(48); ROUND44(64); ROUND44(80)
	ROUND44(96); ROUND44(112); ROUND44(128); ROUND44(144); ROUND44(160)
	ROUND44(176); ROUND44(192); ROUND44(208)

	// Round 14.
	MOVOU      224(AX), X10
	MOVOU      224(CX), X11
	AESENCLAST X10, X0; AESENCLAST X10, X1; AESENCLAST X10, X2; AESENCLAST X10, X3
	AESENCLAST X11, X4; AESENCLAST X11, X5; AESENCLAST X11, X6; AESENCLAST X11, X7

	XOR2(X0, X4, 0); XOR2(X1, X5, 16); XOR2(X2, X6, 32); XOR2(X3, X7, 48)

	ADDQ $64, SI
	ADDQ $64, DI
	SUBQ $4, R8
	CMPQ R8, $4
	JAE  loop4

tail2:
	// Fewer than 4 blocks remain: one of each stream at a time.
	TESTQ R8, R8
	JZ    done2
	NEXT(X8, X0)
	NEXT(X9, X4)
	MOVOU (AX), X10; PXOR X10, X0
	MOVOU (CX), X11; PXOR X11, X4
	MOVOU 16(AX), X10; AESENC X10, X0; MOVOU 16(CX), X11; AESENC X11, X4
	MOVOU 32(AX), X10; AESENC X10, X0; MOVOU 32(CX), X11; AESENC X11, X4
	MOVOU 48(AX), X10; AESENC X10, X0; MOVOU 48(CX), X11; AESENC X11, X4
	MOVOU 64(AX), X10; AESENC X10, X0; MOVOU 64(CX), X11; AESENC X11, X4
	MOVOU 80(AX), X10; AESENC X10, X0; MOVOU 80(CX), X11; AESENC X11, X4
	MOVOU 96(AX), X10; AESENC X10, X0; MOVOU 96(CX), X11; AESENC X11, X4
	MOVOU 112(AX), X10; AESENC X10, X0; MOVOU 112(CX), X11; AESENC X11, X4
	MOVOU 128(AX), X10; AESENC X10, X0; MOVOU 128(CX), X11; AESENC X11, X4
	MOVOU 144(AX), X10; AESENC X10, X0; MOVOU 144(CX), X11; AESENC X11, X4
	MOVOU 160(AX), X10; AESENC X10, X0; MOVOU 160(CX), X11; AESENC X11, X4
	MOVOU 176(AX), X10; AESENC X10, X0; MOVOU 176(CX), X11; AESENC X11, X4
	MOVOU 192(AX), X10; AESENC X10, X0; MOVOU 192(CX), X11; AESENC X11, X4
	MOVOU 208(AX), X10; AESENC X10, X0; MOVOU 208(CX), X11; AESENC X11, X4
	MOVOU 224(AX), X10; AESENCLAST X10, X0; MOVOU 224(CX), X11; AESENCLAST X11, X4
	XOR2(X0, X4, 0)
	ADDQ  $16, SI
	ADDQ  $16, DI
	DECQ  R8
	JMP   tail2

done2:
	RET

//go:build amd64 && !noasm

#include "textflag.h"

// func encryptAESNI(ks *aes256.Schedule, iv *[16]byte, dst, src []byte)
//
// One block at a time: block i's input is plaintext i XOR ciphertext i-1,
// so the loop runs at the latency of that chain. The chain is kept to the
// 14 AES instructions alone: AESENCLAST ends with an XOR of its key, so
// giving it round key 14 XOR (plaintext i+1 XOR round key 0) yields
// ciphertext i already chained and whitened for block i+1. Ciphertext i
// is recovered from that off the chain, with one more XOR.
//
// Registers: AX schedule, BX iv, SI src, DI dst, CX blocks left; X0 the
// chained block, X3-X15 round keys 1-13, X1 and X2 scratch. Round keys 0
// and 14 are reloaded every block, loads the chain never waits for (SSE
// cannot take them as memory operands: that would need 16-byte alignment).
TEXT ·encryptAESNI(SB), NOSPLIT, $0-64
	MOVQ ks+0(FP), AX
	MOVQ iv+8(FP), BX
	MOVQ dst_base+16(FP), DI
	MOVQ src_base+40(FP), SI
	MOVQ src_len+48(FP), CX
	SHRQ $4, CX
	JZ   done

	MOVOU 16(AX), X3
	MOVOU 32(AX), X4
	MOVOU 48(AX), X5
	MOVOU 64(AX), X6
	MOVOU 80(AX), X7
	MOVOU 96(AX), X8
	MOVOU 112(AX), X9
	MOVOU 128(AX), X10
	MOVOU 144(AX), X11
	MOVOU 160(AX), X12
	MOVOU 176(AX), X13
	MOVOU 192(AX), X14
	MOVOU 208(AX), X15

	// X0 = iv XOR plaintext 0 XOR round key 0.
	MOVOU (BX), X0
	MOVOU (SI), X1
	PXOR  X1, X0
	MOVOU (AX), X1
	PXOR  X1, X0

loop:
	// Rounds 1-13.
	AESENC X3, X0
	AESENC X4, X0
	AESENC X5, X0
	AESENC X6, X0
	AESENC X7, X0
	AESENC X8, X0
	AESENC X9, X0
	AESENC X10, X0
	AESENC X11, X0
	AESENC X12, X0
	AESENC X13, X0
	AESENC X14, X0
	AESENC X15, X0
	ADDQ   $16, SI
	DECQ   CX
	JZ     last

	// X1 = next plaintext XOR round key 0, X2 = that XOR round key 14.
	MOVOU (SI), X1
	MOVOU 0(AX), X2
	PXOR  X2, X1
	MOVOU 224(AX), X2
	PXOR  X1, X2

	// Round 14 leaves X0 = ciphertext XOR X1: the next block's input to
	// round 1. XORing X1 back out gives the ciphertext to store.
	AESENCLAST X2, X0
	PXOR       X0, X1
	MOVOU      X1, (DI)
	ADDQ       $16, DI
	JMP        loop

last:
	// No next block: a plain round 14, and the ciphertext chains the
	// next call.
	MOVOU      224(AX), X1
	AESENCLAST X1, X0
	MOVOU      X0, (DI)
	MOVOU      X0, (BX)

done:
	RET

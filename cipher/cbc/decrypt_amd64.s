//go:build amd64 && !noasm

#include "textflag.h"

// func decryptAESNI(ks *aes256.Schedule, iv *[16]byte, dst, src []byte)
//
// ks is the inverse schedule. Plaintext i is D(ciphertext i) XOR
// ciphertext i-1, so blocks decrypt independently: eight go through the
// rounds together, enough to cover AESDEC's latency with its throughput.
//
// Every pass, including a short last one, runs the rounds on all eight
// lanes; lanes past the end carry stale data and are never stored, so a
// pass of one block costs what a pass of eight does, about one block's
// latency.
//
// Registers: AX schedule, BX iv, SI src, DI dst, CX blocks left,
// DX blocks in this pass, R8 its length in bytes; X0-X7 the lanes, X8 the
// round key being applied, X9 and X10 round keys 0 and 14, X13 the pass's
// last ciphertext block, X14 the chaining block, X15 scratch.

// AESDEC8 applies round key k to the eight lanes.
#define AESDEC8(k) \
	AESDEC k, X0; AESDEC k, X1; AESDEC k, X2; AESDEC k, X3; \
	AESDEC k, X4; AESDEC k, X5; AESDEC k, X6; AESDEC k, X7

// ROUND8 applies the round key at offset off of the schedule. Keys 1-13 are
// loaded each pass: one load per eight AESDECs costs nothing.
#define ROUND8(off) MOVOU off(AX), X8; AESDEC8(X8)

// LOAD loads block n of the pass and adds round key 0.
#define LOAD(n, x) MOVOU (16*n)(SI), x; PXOR X9, x

// STORE XORs lane n (n >= 1) with the ciphertext block before it and
// stores it.
#define STORE(n, x) MOVOU (16*n-16)(SI), X15; PXOR X15, x; MOVOU x, (16*n)(DI)

TEXT ·decryptAESNI(SB), NOSPLIT, $0-64
	MOVQ  ks+0(FP), AX
	MOVQ  iv+8(FP), BX
	MOVQ  dst_base+16(FP), DI
	MOVQ  src_base+40(FP), SI
	MOVQ  src_len+48(FP), CX
	SHRQ  $4, CX
	JZ    done
	MOVOU (BX), X14
	MOVOU 0(AX), X9
	MOVOU 224(AX), X10

pass:
	// DX = min(CX, 8).
	MOVQ    $8, DX
	CMPQ    CX, DX
	CMOVQLT CX, DX
	MOVQ    DX, R8
	SHLQ    $4, R8

	// Load the pass's blocks, entering the sequence at the last one.
	CMPQ DX, $8
	JEQ  load7
	CMPQ DX, $7
	JEQ  load6
	CMPQ DX, $6
	JEQ  load5
	CMPQ DX, $5
	JEQ  load4
	CMPQ DX, $4
	JEQ  load3
	CMPQ DX, $3
	JEQ  load2
	CMPQ DX, $2
	JEQ  load1
	JMP  load0

load7:
	LOAD(7, X7)
load6:
	LOAD(6, X6)
load5:
	LOAD(5, X5)
load4:
	LOAD(4, X4)
load3:
	LOAD(3, X3)
load2:
	LOAD(2, X2)
load1:
	LOAD(1, X1)
load0:
	LOAD(0, X0)

	// Rounds 1-14 on all lanes.
	ROUND8(16)
	ROUND8(32)
	ROUND8(48)
	ROUND8(64)
	ROUND8(80)
	ROUND8(96)
	ROUND8(112)
	ROUND8(128)
	ROUND8(144)
	ROUND8(160)
	ROUND8(176)
	ROUND8(192)
	ROUND8(208)
	AESDECLAST X10, X0
	AESDECLAST X10, X1
	AESDECLAST X10, X2
	AESDECLAST X10, X3
	AESDECLAST X10, X4
	AESDECLAST X10, X5
	AESDECLAST X10, X6
	AESDECLAST X10, X7

	// The pass's last ciphertext block chains the next pass. Read it
	// before any store: dst may be src.
	MOVOU -16(SI)(R8*1), X13

	// Store from the last block back. When dst is src, a store then only
	// overwrites ciphertext that no block still to be stored reads.
	CMPQ DX, $8
	JEQ  store7
	CMPQ DX, $7
	JEQ  store6
	CMPQ DX, $6
	JEQ  store5
	CMPQ DX, $5
	JEQ  store4
	CMPQ DX, $4
	JEQ  store3
	CMPQ DX, $3
	JEQ  store2
	CMPQ DX, $2
	JEQ  store1
	JMP  store0

store7:
	STORE(7, X7)
store6:
	STORE(6, X6)
store5:
	STORE(5, X5)
store4:
	STORE(4, X4)
store3:
	STORE(3, X3)
store2:
	STORE(2, X2)
store1:
	STORE(1, X1)
store0:
	// Block 0 chains to the previous pass (or iv).
	PXOR  X14, X0
	MOVOU X0, (DI)
	MOVO  X13, X14

	ADDQ R8, SI
	ADDQ R8, DI
	SUBQ DX, CX
	JNZ  pass

	MOVOU X14, (BX)

done:
	RET

//go:build amd64 && !noasm

#include "textflag.h"

// VAES versions of decryptAESNI (see decrypt_amd64.s), here and in
// decrypt_vaes512_amd64.s: the same passes of eight lanes, each lane now a
// vector of two (ymm) or four (zmm) blocks.
// The block before a lane's first block is ciphertext at src-16 relative
// to that lane, so a lane's XOR vector is one unaligned load, except for
// lane 0, whose first predecessor is the chaining block from the previous
// pass. Lanes are stored last first so that, when dst is src, no store
// overwrites ciphertext that a lane still to be stored reads.

// func decryptYMM(ks *aes256.Schedule, iv *[16]byte, dst, src []byte)
//
// Registers: AX schedule, BX iv, SI src, DI dst, CX lanes left, DX lanes
// in this pass, R8 its length in bytes; Y0-Y7 the lanes, Y8 the round key
// being applied, Y9 and Y10 round keys 0 and 14, X13 the pass's last
// ciphertext block, X14 the chaining block, Y12 scratch. Only Y0-Y15:
// the tier promises AVX2, not AVX-512.

// YDEC applies round key k to the eight lanes.
#define YDEC(k) \
	VAESDEC k, Y0, Y0; VAESDEC k, Y1, Y1; VAESDEC k, Y2, Y2; VAESDEC k, Y3, Y3; \
	VAESDEC k, Y4, Y4; VAESDEC k, Y5, Y5; VAESDEC k, Y6, Y6; VAESDEC k, Y7, Y7

// YROUND broadcasts the round key at offset off to both halves and applies it.
#define YROUND(off) VBROADCASTI128 off(AX), Y8; YDEC(Y8)

// YLOAD loads lane n and adds round key 0.
#define YLOAD(n, y) VPXOR (32*n)(SI), Y9, y

// YSTORE XORs lane n (n >= 1) with its predecessor blocks and stores it.
#define YSTORE(n, y) VPXOR (32*n-16)(SI), y, y; VMOVDQU y, (32*n)(DI)

TEXT ·decryptYMM(SB), NOSPLIT, $0-64
	MOVQ           ks+0(FP), AX
	MOVQ           iv+8(FP), BX
	MOVQ           dst_base+16(FP), DI
	MOVQ           src_base+40(FP), SI
	MOVQ           src_len+48(FP), CX
	SHRQ           $5, CX
	JZ             ydone
	VMOVDQU        (BX), X14
	VBROADCASTI128 0(AX), Y9
	VBROADCASTI128 224(AX), Y10

ypass:
	// DX = min(CX, 8).
	MOVQ    $8, DX
	CMPQ    CX, DX
	CMOVQLT CX, DX
	MOVQ    DX, R8
	SHLQ    $5, R8

	// Load the pass's lanes, entering the sequence at the last one.
	CMPQ DX, $8
	JEQ  yload7
	CMPQ DX, $7
	JEQ  yload6
	CMPQ DX, $6
	JEQ  yload5
	CMPQ DX, $5
	JEQ  yload4
	CMPQ DX, $4
	JEQ  yload3
	CMPQ DX, $3
	JEQ  yload2
	CMPQ DX, $2
	JEQ  yload1
	JMP  yload0

yload7:
	YLOAD(7, Y7)
yload6:
	YLOAD(6, Y6)
yload5:
	YLOAD(5, Y5)
yload4:
	YLOAD(4, Y4)
yload3:
	YLOAD(3, Y3)
yload2:
	YLOAD(2, Y2)
yload1:
	YLOAD(1, Y1)
yload0:
	YLOAD(0, Y0)

	// Rounds 1-14 on all lanes.
	YROUND(16)
	YROUND(32)
	YROUND(48)
	YROUND(64)
	YROUND(80)
	YROUND(96)
	YROUND(112)
	YROUND(128)
	YROUND(144)
	YROUND(160)
	YROUND(176)
	YROUND(192)
	YROUND(208)
	VAESDECLAST Y10, Y0, Y0
	VAESDECLAST Y10, Y1, Y1
	VAESDECLAST Y10, Y2, Y2
	VAESDECLAST Y10, Y3, Y3
	VAESDECLAST Y10, Y4, Y4
	VAESDECLAST Y10, Y5, Y5
	VAESDECLAST Y10, Y6, Y6
	VAESDECLAST Y10, Y7, Y7

	// The pass's last ciphertext block chains the next pass; read it
	// before any store.
	VMOVDQU -16(SI)(R8*1), X13

	// Store, last lane first.
	CMPQ DX, $8
	JEQ  ystore7
	CMPQ DX, $7
	JEQ  ystore6
	CMPQ DX, $6
	JEQ  ystore5
	CMPQ DX, $5
	JEQ  ystore4
	CMPQ DX, $4
	JEQ  ystore3
	CMPQ DX, $3
	JEQ  ystore2
	CMPQ DX, $2
	JEQ  ystore1
	JMP  ystore0

ystore7:
	YSTORE(7, Y7)
ystore6:
	YSTORE(6, Y6)
ystore5:
	YSTORE(5, Y5)
ystore4:
	YSTORE(4, Y4)
ystore3:
	YSTORE(3, Y3)
ystore2:
	YSTORE(2, Y2)
ystore1:
	YSTORE(1, Y1)
ystore0:
	// Lane 0's predecessors are the chaining block and block 0.
	VINSERTI128 $1, (SI), Y14, Y12
	VPXOR       Y12, Y0, Y0
	VMOVDQU     Y0, (DI)
	VMOVDQA     X13, X14

	ADDQ R8, SI
	ADDQ R8, DI
	SUBQ DX, CX
	JNZ  ypass

	VMOVDQU X14, (BX)
	VZEROUPPER

ydone:
	RET

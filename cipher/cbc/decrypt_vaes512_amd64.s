//go:build amd64 && !noasm

#include "textflag.h"

// The VAES512 tier's decryption kernel; decrypt_vaes256_amd64.s describes
// the scheme it shares with the ymm kernel.

// func decryptVAES512(ks *aes256.Schedule, iv *[16]byte, dst, src []byte)
//
// Unlike the ymm kernel this one takes any number of blocks: the last lane
// of the last pass may hold one to three, and AVX-512 masks (K1) confine
// its loads and stores to them; masked-off elements of a memory operand
// cannot fault. Such a lane enters the load and the store sequence through
// a masked version of its step, which then joins the unmasked sequence at
// the next lane down: full lanes never use masks, as masked stores are
// slower (on Zen 5, by about 2 ns a pass).
//
// Registers: AX schedule, BX iv, SI src, DI dst, R10 blocks left, R11
// blocks in this pass, DX its lanes, R8 its length in bytes; Z0-Z7 the
// lanes, Z16-Z30 round keys 0-14 each broadcast to the four blocks, Z12
// scratch, Z13 and Z14 the chaining block of the next and of this pass,
// broadcast to all four blocks.

// ZDEC applies round key k to the eight lanes.
#define ZDEC(k) \
	VAESDEC k, Z0, Z0; VAESDEC k, Z1, Z1; VAESDEC k, Z2, Z2; VAESDEC k, Z3, Z3; \
	VAESDEC k, Z4, Z4; VAESDEC k, Z5, Z5; VAESDEC k, Z6, Z6; VAESDEC k, Z7, Z7

// ZLOAD loads lane n and adds round key 0.
#define ZLOAD(n, z) VPXORQ (64*n)(SI), Z16, z

// ZMLOAD is ZLOAD for a partial lane n, then continues with lane n-1.
// Zeroing, not merging, the masked-off elements keeps the lane from
// depending on the previous pass.
#define ZMLOAD(n, z, next) VPXORQ.Z (64*n)(SI), Z16, K1, z; JMP next

// ZSTORE XORs lane n (n >= 1) with its predecessor blocks and stores it.
#define ZSTORE(n, z) VPXORQ (64*n-16)(SI), z, z; VMOVDQU64 z, (64*n)(DI)

// ZMSTORE is ZSTORE for a partial lane n, then continues with lane n-1.
#define ZMSTORE(n, z, next) \
	VPXORQ.Z (64*n-16)(SI), z, K1, z; VMOVDQU64 z, K1, (64*n)(DI); JMP next

// ZSTORE0 finishes lane 0, whose predecessors are the chaining block
// (block 3 of Z14), then blocks 0-2: VALIGNQ shifts Z14:Z12 right by six
// quadwords. ZMSTORE0 is its partial version.
#define ZSTORE0 \
	VMOVDQU64 (SI), Z12; VALIGNQ $6, Z14, Z12, Z12; VPXORQ Z12, Z0, Z0; \
	VMOVDQU64 Z0, (DI)
#define ZMSTORE0 \
	VMOVDQU64.Z (SI), K1, Z12; VALIGNQ $6, Z14, Z12, Z12; VPXORQ Z12, Z0, Z0; \
	VMOVDQU64 Z0, K1, (DI)

TEXT ·decryptVAES512(SB), NOSPLIT, $0-64
	MOVQ            ks+0(FP), AX
	MOVQ            iv+8(FP), BX
	MOVQ            dst_base+16(FP), DI
	MOVQ            src_base+40(FP), SI
	MOVQ            src_len+48(FP), R10
	SHRQ            $4, R10
	JZ              zdone
	VBROADCASTI32X4 (BX), Z14
	VBROADCASTI32X4 0(AX), Z16
	VBROADCASTI32X4 16(AX), Z17
	VBROADCASTI32X4 32(AX), Z18
	VBROADCASTI32X4 48(AX), Z19
	VBROADCASTI32X4 64(AX), Z20
	VBROADCASTI32X4 80(AX), Z21
	VBROADCASTI32X4 96(AX), Z22
	VBROADCASTI32X4 112(AX), Z23
	VBROADCASTI32X4 128(AX), Z24
	VBROADCASTI32X4 144(AX), Z25
	VBROADCASTI32X4 160(AX), Z26
	VBROADCASTI32X4 176(AX), Z27
	VBROADCASTI32X4 192(AX), Z28
	VBROADCASTI32X4 208(AX), Z29
	VBROADCASTI32X4 224(AX), Z30

zpass:
	// R11 = min(R10, 32) blocks in DX = ceil(R11/4) lanes.
	MOVQ    $32, R11
	CMPQ    R10, R11
	CMOVQLT R10, R11
	MOVQ    R11, R8
	SHLQ    $4, R8
	LEAQ    3(R11), DX
	SHRQ    $2, DX

	// Load the pass's lanes, entering the sequence at the last one.
	TESTQ $3, R11
	JNZ   zmload
	CMPQ  DX, $8
	JEQ   zload7
	CMPQ  DX, $7
	JEQ   zload6
	CMPQ  DX, $6
	JEQ   zload5
	CMPQ  DX, $5
	JEQ   zload4
	CMPQ  DX, $4
	JEQ   zload3
	CMPQ  DX, $3
	JEQ   zload2
	CMPQ  DX, $2
	JEQ   zload1
	JMP   zload0

zmload:
	// The last lane holds m = R11 mod 4 blocks: K1 = 1<<2m - 1, a bit
	// per quadword.
	MOVL  R11, CX
	ANDL  $3, CX
	SHLL  $1, CX
	MOVL  $1, R9
	SHLL  CX, R9
	DECL  R9
	KMOVW R9, K1
	CMPQ  DX, $8
	JEQ   zmload7
	CMPQ  DX, $7
	JEQ   zmload6
	CMPQ  DX, $6
	JEQ   zmload5
	CMPQ  DX, $5
	JEQ   zmload4
	CMPQ  DX, $4
	JEQ   zmload3
	CMPQ  DX, $3
	JEQ   zmload2
	CMPQ  DX, $2
	JEQ   zmload1
	JMP   zmload0

zmload7:
	ZMLOAD(7, Z7, zload6)
zmload6:
	ZMLOAD(6, Z6, zload5)
zmload5:
	ZMLOAD(5, Z5, zload4)
zmload4:
	ZMLOAD(4, Z4, zload3)
zmload3:
	ZMLOAD(3, Z3, zload2)
zmload2:
	ZMLOAD(2, Z2, zload1)
zmload1:
	ZMLOAD(1, Z1, zload0)
zmload0:
	ZMLOAD(0, Z0, zrounds)

zload7:
	ZLOAD(7, Z7)
zload6:
	ZLOAD(6, Z6)
zload5:
	ZLOAD(5, Z5)
zload4:
	ZLOAD(4, Z4)
zload3:
	ZLOAD(3, Z3)
zload2:
	ZLOAD(2, Z2)
zload1:
	ZLOAD(1, Z1)
zload0:
	ZLOAD(0, Z0)

zrounds:
	// Rounds 1-14 on all lanes.
	ZDEC(Z17)
	ZDEC(Z18)
	ZDEC(Z19)
	ZDEC(Z20)
	ZDEC(Z21)
	ZDEC(Z22)
	ZDEC(Z23)
	ZDEC(Z24)
	ZDEC(Z25)
	ZDEC(Z26)
	ZDEC(Z27)
	ZDEC(Z28)
	ZDEC(Z29)
	VAESDECLAST Z30, Z0, Z0
	VAESDECLAST Z30, Z1, Z1
	VAESDECLAST Z30, Z2, Z2
	VAESDECLAST Z30, Z3, Z3
	VAESDECLAST Z30, Z4, Z4
	VAESDECLAST Z30, Z5, Z5
	VAESDECLAST Z30, Z6, Z6
	VAESDECLAST Z30, Z7, Z7

	// The pass's last ciphertext block chains the next pass; read it
	// before any store.
	VBROADCASTI32X4 -16(SI)(R8*1), Z13

	// Store, last lane first; K1 still masks a partial last lane.
	TESTQ $3, R11
	JNZ   zmstore
	CMPQ  DX, $8
	JEQ   zstore7
	CMPQ  DX, $7
	JEQ   zstore6
	CMPQ  DX, $6
	JEQ   zstore5
	CMPQ  DX, $5
	JEQ   zstore4
	CMPQ  DX, $4
	JEQ   zstore3
	CMPQ  DX, $3
	JEQ   zstore2
	CMPQ  DX, $2
	JEQ   zstore1
	JMP   zstore0

zmstore:
	CMPQ DX, $8
	JEQ  zmstore7
	CMPQ DX, $7
	JEQ  zmstore6
	CMPQ DX, $6
	JEQ  zmstore5
	CMPQ DX, $5
	JEQ  zmstore4
	CMPQ DX, $4
	JEQ  zmstore3
	CMPQ DX, $3
	JEQ  zmstore2
	CMPQ DX, $2
	JEQ  zmstore1
	ZMSTORE0
	JMP  zstored

zmstore7:
	ZMSTORE(7, Z7, zstore6)
zmstore6:
	ZMSTORE(6, Z6, zstore5)
zmstore5:
	ZMSTORE(5, Z5, zstore4)
zmstore4:
	ZMSTORE(4, Z4, zstore3)
zmstore3:
	ZMSTORE(3, Z3, zstore2)
zmstore2:
	ZMSTORE(2, Z2, zstore1)
zmstore1:
	ZMSTORE(1, Z1, zstore0)

zstore7:
	ZSTORE(7, Z7)
zstore6:
	ZSTORE(6, Z6)
zstore5:
	ZSTORE(5, Z5)
zstore4:
	ZSTORE(4, Z4)
zstore3:
	ZSTORE(3, Z3)
zstore2:
	ZSTORE(2, Z2)
zstore1:
	ZSTORE(1, Z1)
zstore0:
	ZSTORE0

zstored:
	VMOVDQA64 Z13, Z14
	ADDQ      R8, SI
	ADDQ      R8, DI
	SUBQ      R11, R10
	JNZ       zpass

	VMOVDQU X14, (BX)
	VZEROUPPER

zdone:
	RET

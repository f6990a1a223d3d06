#include "textflag.h"

// func dotRowsAVX2(q *int16, codes *int8, out *int32, dim, rows int)
TEXT ·dotRowsAVX2(SB), NOSPLIT, $0-40
	MOVQ q+0(FP), SI
	MOVQ codes+8(FP), DI
	MOVQ out+16(FP), DX
	MOVQ dim+24(FP), R8
	MOVQ rows+32(FP), R9

row:
	VPXOR Y0, Y0, Y0
	VPXOR Y1, Y1, Y1
	VPXOR Y2, Y2, Y2
	VPXOR Y3, Y3, Y3
	MOVQ SI, AX  // query cursor
	MOVQ R8, CX  // elements left in row

inner:
	VPMOVSXBW (DI), Y4
	VPMOVSXBW 16(DI), Y5
	VPMOVSXBW 32(DI), Y6
	VPMOVSXBW 48(DI), Y7
	VPMADDWD (AX), Y4, Y4
	VPMADDWD 32(AX), Y5, Y5
	VPMADDWD 64(AX), Y6, Y6
	VPMADDWD 96(AX), Y7, Y7
	VPADDD Y4, Y0, Y0
	VPADDD Y5, Y1, Y1
	VPADDD Y6, Y2, Y2
	VPADDD Y7, Y3, Y3
	ADDQ $64, DI
	ADDQ $128, AX
	SUBQ $64, CX
	JG inner

	VPADDD Y1, Y0, Y0
	VPADDD Y3, Y2, Y2
	VPADDD Y2, Y0, Y0
	VEXTRACTI128 $1, Y0, X1
	VPADDD X1, X0, X0
	VPSHUFD $0x4E, X0, X1
	VPADDD X1, X0, X0
	VPSHUFD $0xB1, X0, X1
	VPADDD X1, X0, X0
	VMOVD X0, (DX)
	ADDQ $4, DX
	DECQ R9
	JNZ row

	VZEROUPPER
	RET

// func dotRowsVNNI(q *uint8, codes *int8, out *int32, dim, rows int)
// q holds the query codes + 128 (unsigned). VPDPBUSD multiplies unsigned
// by signed bytes and adds groups of four into int32 lanes; a second
// VPDPBUSD against all-ones bytes sums the row's codes, and
// q.c = (q+128).c - 128*sum(c).
TEXT ·dotRowsVNNI(SB), NOSPLIT, $0-40
	MOVQ q+0(FP), SI
	MOVQ codes+8(FP), DI
	MOVQ out+16(FP), DX
	MOVQ dim+24(FP), R8
	MOVQ rows+32(FP), R9
	MOVL $0x01010101, R10
	VPBROADCASTD R10, Z4

vrow:
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	MOVQ SI, AX
	MOVQ R8, CX

vinner:
	VMOVDQU8 (DI), Z2
	VMOVDQU8 (AX), Z3
	VPDPBUSD Z2, Z3, Z0
	VPDPBUSD Z2, Z4, Z1
	ADDQ $64, DI
	ADDQ $64, AX
	SUBQ $64, CX
	JG vinner

	VPSLLD $7, Z1, Z1
	VPSUBD Z1, Z0, Z0
	VEXTRACTI64X4 $1, Z0, Y1
	VPADDD Y1, Y0, Y0
	VEXTRACTI128 $1, Y0, X1
	VPADDD X1, X0, X0
	VPSHUFD $0x4E, X0, X1
	VPADDD X1, X0, X0
	VPSHUFD $0xB1, X0, X1
	VPADDD X1, X0, X0
	VMOVD X0, (DX)
	ADDQ $4, DX
	DECQ R9
	JNZ vrow

	VZEROUPPER
	RET

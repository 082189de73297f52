// Package fuseproto is the FUSE kernel ABI as Go types: opcodes, the in/out
// structs the opcodes carry, INIT capability bits and the other flag
// families, up to protocol 7.45 (include/uapi/linux/fuse.h in Linux 6.18).
//
// It owns the wire layout only: no I/O, no dispatch, no policy. Package fuse
// builds the session runtime on top of it. It imports only the standard
// library.
//
// # Conventions
//
// Structs are declared in wire order with Go names mirroring the C fields
// (fuse_init_in.max_readahead becomes InitIn.MaxReadahead) and a trailing
// comment giving the byte offset. The FUSE ABI is host-endian and every
// struct is padded to 8 bytes, so package fuse may decode by casting an
// aligned buffer; layout_test.go checks every size and offset against the
// kernel header.
//
// Flag families are named types whose String method comes from a table, so
// debug output reads "ASYNC_READ|BIG_WRITES" instead of 0x21.
//
// Opcodes and INIT bits added after 7.12 carry a comment naming the protocol
// minor that introduced them. The out-of-tree fuse-iomap ABI (opcodes
// 4093-4095) belongs in iomap.go; adding an opcode is one constant plus one
// line in opcodeNames.
package fuseproto

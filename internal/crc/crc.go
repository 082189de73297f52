// Package crc provides the two checksums ext4 uses, in the kernel's conventions:
// crc32c as the kernel's raw ext4_chksum (no pre- or post-inversion), and the
// ANSI crc16 of lib/crc16.c used by the older gdt_csum feature.
//
// It is the only package in e4box that touches hash/crc32; scattered ^ operators
// around crc32.Update are a classic source of bugs, so callers use Crc32c only.
//
// Imports: standard library only.
package crc

import "hash/crc32"

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Crc32c continues a raw crc32c (Castagnoli) over p starting from seed, the
// way the kernel's crc32c()/ext4_chksum() do: no inversion on entry or exit.
// The standard library's crc32.Update inverts on both sides, hence the ^s.
//
// ext4 seeds its chains with ~0 (superblock, filesystem checksum seed) or
// with a previous result (per-inode seeds, group numbers, block numbers).
func Crc32c(seed uint32, p []byte) uint32 {
	return ^crc32.Update(^seed, castagnoli, p)
}

// crc16Table is lib/crc16.c's table: CRC-16 (ANSI, poly x^16+x^15+x^2+1)
// in reflected form, polynomial 0xA001.
var crc16Table = func() (t [256]uint16) {
	for i := range t {
		c := uint16(i)
		for range 8 {
			if c&1 != 0 {
				c = c>>1 ^ 0xA001
			} else {
				c >>= 1
			}
		}
		t[i] = c
	}
	return t
}()

// Crc16 continues the kernel's crc16(crc, buf, len) over p. Like the kernel
// it applies no inversion; ext4's gdt_csum starts the chain with 0xFFFF (~0).
func Crc16(crc uint16, p []byte) uint16 {
	for _, b := range p {
		crc = crc>>8 ^ crc16Table[byte(crc)^b]
	}
	return crc
}

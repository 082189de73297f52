package crc

import (
	"hash/crc32"
	"testing"
)

func TestCrc32cVectors(t *testing.T) {
	check := []byte("123456789")
	// The catalogued CRC-32C check value applies the standard inversions,
	// which the kernel convention leaves to the caller.
	if got := ^Crc32c(^uint32(0), check); got != 0xE3069283 {
		t.Errorf("crc32c check value %#08x, want 0xe3069283", got)
	}
	// Raw convention: seed 0 over zero bytes stays 0, and chaining works.
	if got := Crc32c(0, make([]byte, 32)); got != 0 {
		t.Errorf("crc32c(0, zeros) = %#08x, want 0", got)
	}
	whole := Crc32c(0x12345678, check)
	if part := Crc32c(Crc32c(0x12345678, check[:4]), check[4:]); part != whole {
		t.Errorf("chained %#08x != whole %#08x", part, whole)
	}
	// Against the textbook bitwise definition.
	for _, seed := range []uint32{0, 1, ^uint32(0), 0xdeadbeef} {
		if got, want := Crc32c(seed, check), bitwiseCrc32c(seed, check); got != want {
			t.Errorf("seed %#x: %#08x, bitwise %#08x", seed, got, want)
		}
	}
	if got, want := Crc32c(5, check), ^crc32.Update(^uint32(5), crc32.MakeTable(crc32.Castagnoli), check); got != want {
		t.Errorf("%#x != %#x", got, want)
	}
}

func bitwiseCrc32c(crc uint32, p []byte) uint32 {
	for _, b := range p {
		crc ^= uint32(b)
		for range 8 {
			if crc&1 != 0 {
				crc = crc>>1 ^ 0x82F63B78
			} else {
				crc >>= 1
			}
		}
	}
	return crc
}

func TestCrc16Vectors(t *testing.T) {
	check := []byte("123456789")
	if got := Crc16(0, check); got != 0xBB3D { // CRC-16/ARC
		t.Errorf("crc16(0) = %#04x, want 0xbb3d", got)
	}
	if got := Crc16(0xFFFF, check); got != 0x4B37 { // CRC-16/MODBUS
		t.Errorf("crc16(~0) = %#04x, want 0x4b37", got)
	}
	if got := Crc16(Crc16(0xFFFF, check[:3]), check[3:]); got != 0x4B37 {
		t.Errorf("chained crc16 = %#04x", got)
	}
}

func BenchmarkCrc32c4K(b *testing.B) {
	p := make([]byte, 4096)
	b.SetBytes(int64(len(p)))
	for b.Loop() {
		Crc32c(0, p)
	}
}

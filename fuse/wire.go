package fuse

import "unsafe"

// structBytes views a wire struct (fixed-size, pointer-free, host-endian by
// ABI definition) as its bytes. Byte views carry no
// alignment requirement, so this is safe for any T without pointers.
func structBytes[T any](p *T) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(p)), unsafe.Sizeof(*p))
}

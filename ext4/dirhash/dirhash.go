// Package dirhash computes ext4's htree directory name hashes: legacy
// (dx_hack_hash), half-MD4 and TEA, each in the signed-char and
// unsigned-char flavours, exactly as the kernel's fs/ext4/hash.c defines
// them on disk. Lookups in an indexed directory and insertions into it
// depend on every bit, including the quirks: names are packed into words
// with a length-derived pad, bytes are sign-extended in the signed
// flavours, and the final hash has its low bit cleared with the end-of-
// directory value remapped.
//
// SipHash (casefolded, encrypted directories) is not implemented.
//
// Imports: standard library only.
package dirhash

import (
	"errors"
	"math/bits"
	"strconv"
)

// Version is a hash algorithm number (dx_root_info.hash_version, plus 3
// for the unsigned flavours, which the kernel selects from the
// superblock's s_flags).
type Version uint8

// Hash versions.
const (
	Legacy          Version = 0
	HalfMD4         Version = 1
	Tea             Version = 2
	LegacyUnsigned  Version = 3
	HalfMD4Unsigned Version = 4
	TeaUnsigned     Version = 5
	SipHash         Version = 6
)

var names = [...]string{"legacy", "half_md4", "tea", "legacy_unsigned", "half_md4_unsigned", "tea_unsigned", "siphash"}

func (v Version) String() string {
	if int(v) < len(names) {
		return names[v]
	}
	return "hash_version_" + strconv.Itoa(int(v))
}

// Effective returns the version used to hash names in a directory whose
// dx_root stores stored, on a filesystem whose s_flags say unsignedHash:
// the legacy, half-MD4 and TEA versions switch to their unsigned flavours.
func Effective(stored uint8, unsignedHash bool) Version {
	v := Version(stored)
	if unsignedHash && v <= Tea {
		v += 3
	}
	return v
}

// EOF32 is EXT4_HTREE_EOF_32BIT, the hash value reserved for "end of
// directory" in 32-bit readdir cookies; no name hashes to EOF32<<1.
const EOF32 = 0x7fffffff

// DefaultSeed replaces an all-zero s_hash_seed (the MD4 initial state).
var DefaultSeed = [4]uint32{0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476}

// ErrUnsupported is returned for SipHash and unknown versions.
var ErrUnsupported = errors.New("dirhash: unsupported hash version")

// Hash returns the major and minor hash of name under version v with the
// filesystem's s_hash_seed (all zeros selects DefaultSeed). The major hash
// has its low bit clear (the htree uses it to flag collisions) and is never
// EOF32<<1. Legacy hashes have minor 0.
func Hash(v Version, name []byte, seed [4]uint32) (major, minor uint32, err error) {
	buf := DefaultSeed
	if seed != [4]uint32{} {
		buf = seed
	}
	unsigned := v == LegacyUnsigned || v == HalfMD4Unsigned || v == TeaUnsigned
	var in [8]uint32
	switch v {
	case Legacy, LegacyUnsigned:
		major = dxHackHash(name, unsigned)
	case HalfMD4, HalfMD4Unsigned:
		// 32 bytes per round; an empty name runs no round.
		for p := name; len(p) > 0; p = p[min(32, len(p)):] {
			str2hashbuf(p, in[:8], unsigned)
			halfMD4Transform(&buf, &in)
		}
		major, minor = buf[1], buf[2]
	case Tea, TeaUnsigned:
		for p := name; len(p) > 0; p = p[min(16, len(p)):] {
			str2hashbuf(p, in[:4], unsigned)
			teaTransform(&buf, in[:4])
		}
		major, minor = buf[0], buf[1]
	default:
		return 0, 0, ErrUnsupported
	}
	major &^= 1
	if major == EOF32<<1 {
		major = (EOF32 - 1) << 1
	}
	return major, minor, nil
}

// char widens a name byte the way C's (signed or unsigned) char would.
func char(c byte, unsigned bool) uint32 {
	if unsigned {
		return uint32(c)
	}
	return uint32(int32(int8(c)))
}

// dxHackHash is the legacy hash from ext3's early htree.
func dxHackHash(name []byte, unsigned bool) uint32 {
	hash0, hash1 := uint32(0x12a3fe2d), uint32(0x37abe8f9)
	for _, c := range name {
		h := hash1 + (hash0 ^ char(c, unsigned)*7152373)
		if h&0x80000000 != 0 {
			h -= 0x7fffffff
		}
		hash1, hash0 = hash0, h
	}
	return hash0 << 1
}

// str2hashbuf packs up to 4*len(out) bytes of p into out, big-endian
// within each word (the first byte ends up most significant), starting
// each word from a pad derived from the remaining length len(p), and
// filling the unused words with the pad. The pad uses the whole remaining
// length, not the clipped one: a quirk the on-disk format depends on.
func str2hashbuf(p []byte, out []uint32, unsigned bool) {
	pad := uint32(len(p)) | uint32(len(p))<<8
	pad |= pad << 16
	p = p[:min(len(p), 4*len(out))]
	val, n := pad, 0
	for i, c := range p {
		val = char(c, unsigned) + val<<8
		if i%4 == 3 {
			out[n] = val
			n++
			val = pad
		}
	}
	if n < len(out) {
		out[n] = val
		n++
	}
	for ; n < len(out); n++ {
		out[n] = pad
	}
}

// teaTransform is 16 rounds of the Tiny Encryption Algorithm over buf[0:2]
// keyed by in, added back into buf.
func teaTransform(buf *[4]uint32, in []uint32) {
	const delta = 0x9E3779B9
	var sum uint32
	b0, b1 := buf[0], buf[1]
	a, b, c, d := in[0], in[1], in[2], in[3]
	for range 16 {
		sum += delta
		b0 += (b1<<4 + a) ^ (b1 + sum) ^ (b1>>5 + b)
		b1 += (b0<<4 + c) ^ (b0 + sum) ^ (b0>>5 + d)
	}
	buf[0] += b0
	buf[1] += b1
}

// halfMD4Transform is the cut-down MD4 of the kernel's ext4 (3 rounds of
// 8 steps over 8 input words).
func halfMD4Transform(buf *[4]uint32, in *[8]uint32) {
	const (
		k2 = 0x5A827999
		k3 = 0x6ED9EBA1
	)
	f := func(x, y, z uint32) uint32 { return z ^ (x & (y ^ z)) }
	g := func(x, y, z uint32) uint32 { return (x & y) + ((x ^ y) & z) }
	h := func(x, y, z uint32) uint32 { return x ^ y ^ z }
	a, b, c, d := buf[0], buf[1], buf[2], buf[3]
	type step struct {
		fn func(x, y, z uint32) uint32
		k  uint32
		w  int
		s  int
	}
	// Each step updates one of a, d, c, b in turn (the C code rotates the
	// argument order); steps are listed as (function, constant, word, shift).
	steps := [24]step{
		{f, 0, 0, 3}, {f, 0, 1, 7}, {f, 0, 2, 11}, {f, 0, 3, 19},
		{f, 0, 4, 3}, {f, 0, 5, 7}, {f, 0, 6, 11}, {f, 0, 7, 19},
		{g, k2, 1, 3}, {g, k2, 3, 5}, {g, k2, 5, 9}, {g, k2, 7, 13},
		{g, k2, 0, 3}, {g, k2, 2, 5}, {g, k2, 4, 9}, {g, k2, 6, 13},
		{h, k3, 3, 3}, {h, k3, 7, 9}, {h, k3, 2, 11}, {h, k3, 6, 15},
		{h, k3, 1, 3}, {h, k3, 5, 9}, {h, k3, 0, 11}, {h, k3, 4, 15},
	}
	for i, st := range steps {
		switch i % 4 {
		case 0:
			a = bits.RotateLeft32(a+st.fn(b, c, d)+in[st.w]+st.k, st.s)
		case 1:
			d = bits.RotateLeft32(d+st.fn(a, b, c)+in[st.w]+st.k, st.s)
		case 2:
			c = bits.RotateLeft32(c+st.fn(d, a, b)+in[st.w]+st.k, st.s)
		case 3:
			b = bits.RotateLeft32(b+st.fn(c, d, a)+in[st.w]+st.k, st.s)
		}
	}
	buf[0] += a
	buf[1] += b
	buf[2] += c
	buf[3] += d
}

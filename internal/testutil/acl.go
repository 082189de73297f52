package testutil

import (
	"encoding/binary"
	"fmt"
	"sort"
)

// POSIX ACL xattr names and the kernel's xattr ACL format (what getxattr
// and setxattr exchange; include/uapi/linux/posix_acl_xattr.h). ext4 stores
// a different, compact format on disk; the FUSE server must translate.
const (
	XattrACLAccess  = "system.posix_acl_access"
	XattrACLDefault = "system.posix_acl_default"

	aclXattrVersion = 2
	aclUndefinedID  = 0xFFFFFFFF
)

// ACL entry tags, as in the kernel's posix_acl.h.
const (
	ACLUserObj  uint16 = 0x01
	ACLUser     uint16 = 0x02
	ACLGroupObj uint16 = 0x04
	ACLGroup    uint16 = 0x08
	ACLMask     uint16 = 0x10
	ACLOther    uint16 = 0x20
)

// ACLEntry is one entry of a POSIX ACL. ID is used only by ACLUser and
// ACLGroup entries.
type ACLEntry struct {
	Tag  uint16
	Perm uint16 // rwx bits: 4, 2, 1
	ID   uint32
}

// EncodeACL returns entries in the kernel's xattr ACL format, version 2:
// a little-endian u32 version followed by {u16 tag, u16 perm, u32 id}
// per entry. Entries are sorted by (tag, id) as the kernel requires, and
// ids of entries other than named users and groups are set to undefined.
func EncodeACL(entries []ACLEntry) []byte {
	es := append([]ACLEntry(nil), entries...)
	sort.Slice(es, func(i, j int) bool {
		if es[i].Tag != es[j].Tag {
			return es[i].Tag < es[j].Tag
		}
		return es[i].ID < es[j].ID
	})
	b := binary.LittleEndian.AppendUint32(nil, aclXattrVersion)
	for _, e := range es {
		id := e.ID
		if e.Tag != ACLUser && e.Tag != ACLGroup {
			id = aclUndefinedID
		}
		b = binary.LittleEndian.AppendUint16(b, e.Tag)
		b = binary.LittleEndian.AppendUint16(b, e.Perm)
		b = binary.LittleEndian.AppendUint32(b, id)
	}
	return b
}

// DecodeACL parses the kernel's xattr ACL format. It is the inverse of
// EncodeACL and rejects anything malformed.
func DecodeACL(b []byte) ([]ACLEntry, error) {
	if len(b) < 4 || (len(b)-4)%8 != 0 {
		return nil, fmt.Errorf("acl: bad length %d", len(b))
	}
	if v := binary.LittleEndian.Uint32(b); v != aclXattrVersion {
		return nil, fmt.Errorf("acl: version %d, want %d", v, aclXattrVersion)
	}
	var es []ACLEntry
	for p := b[4:]; len(p) > 0; p = p[8:] {
		es = append(es, ACLEntry{
			Tag:  binary.LittleEndian.Uint16(p),
			Perm: binary.LittleEndian.Uint16(p[2:]),
			ID:   binary.LittleEndian.Uint32(p[4:]),
		})
	}
	return es, nil
}

// FormatACL renders an ACL like getfacl -n does, one entry per comma, for
// readable diffs: "u::rw-,u:1000:r--,g::r--,m::r--,o::---".
func FormatACL(b []byte) string {
	es, err := DecodeACL(b)
	if err != nil {
		return fmt.Sprintf("<%v: %x>", err, b)
	}
	s := ""
	for i, e := range es {
		if i > 0 {
			s += ","
		}
		var tag, id string
		switch e.Tag {
		case ACLUserObj:
			tag = "u"
		case ACLUser:
			tag, id = "u", fmt.Sprint(e.ID)
		case ACLGroupObj:
			tag = "g"
		case ACLGroup:
			tag, id = "g", fmt.Sprint(e.ID)
		case ACLMask:
			tag = "m"
		case ACLOther:
			tag = "o"
		default:
			tag = fmt.Sprintf("?%#x", e.Tag)
		}
		s += tag + ":" + id + ":" + permString(e.Perm)
	}
	return s
}

func permString(p uint16) string {
	b := []byte("---")
	if p&4 != 0 {
		b[0] = 'r'
	}
	if p&2 != 0 {
		b[1] = 'w'
	}
	if p&1 != 0 {
		b[2] = 'x'
	}
	return string(b)
}

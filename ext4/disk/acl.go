package disk

import "encoding/binary"

// POSIX ACL tags (ACL_*), shared by both encodings.
const (
	ACLUserObj  = 0x01
	ACLUser     = 0x02
	ACLGroupObj = 0x04
	ACLGroup    = 0x08
	ACLMask     = 0x10
	ACLOther    = 0x20

	// ACLUndefinedID is the id of entries that carry none in the xattr form.
	ACLUndefinedID = 0xFFFFFFFF

	ExtACLVersion   = 1 // EXT4_ACL_VERSION, ext4_acl_header.a_version
	XattrACLVersion = 2 // POSIX_ACL_XATTR_VERSION of the kernel's xattr form

	extACLHeaderSize = 4
	extACLShortSize  = 4 // ext4_acl_entry_short: e_tag, e_perm
	extACLLongSize   = 8 // ext4_acl_entry: e_tag, e_perm, e_id
	xattrACLEntry    = 8 // posix_acl_xattr_entry: e_tag, e_perm, e_id

	// maxACLEntries bounds conversions; the kernel's limit is far lower in
	// practice (an ACL must fit an xattr value), this only caps allocation.
	maxACLEntries = XattrSizeMax / extACLShortSize
)

// ACLEntry is one entry of a POSIX ACL (ext4_acl_entry and
// posix_acl_xattr_entry share this shape); Id is ACLUndefinedID for tags
// other than ACLUser and ACLGroup.
type ACLEntry struct {
	Tag  uint16 // 0x0 e_tag
	Perm uint16 // 0x2 e_perm
	ID   uint32 // 0x4 e_id
}

func aclHasID(tag uint16) bool { return tag == ACLUser || tag == ACLGroup }

func aclTagKnown(tag uint16) bool {
	switch tag {
	case ACLUserObj, ACLUser, ACLGroupObj, ACLGroup, ACLMask, ACLOther:
		return true
	}
	return false
}

// DecodeExtACL decodes ext4's on-disk ACL (the value of the
// system.posix_acl_* xattrs as stored): header version 1, then entries of 4
// bytes (USER_OBJ, GROUP_OBJ, MASK, OTHER) or 8 bytes with an id (USER,
// GROUP). Unknown tags are corruption, as in the kernel's ext4_acl_from_disk.
func DecodeExtACL(b []byte) ([]ACLEntry, error) {
	const st = "ext4_acl_header"
	if len(b) < extACLHeaderSize {
		return nil, corrupt(st, 0, "short ACL: %d bytes", len(b))
	}
	le := binary.LittleEndian
	if v := le.Uint32(b); v != ExtACLVersion {
		return nil, corrupt(st, 0, "ACL version %d", v)
	}
	// At most one entry per 4 bytes.
	es := make([]ACLEntry, 0, min((len(b)-extACLHeaderSize)/extACLShortSize, maxACLEntries))
	for off := extACLHeaderSize; off < len(b); {
		if len(b)-off < extACLShortSize {
			return nil, corrupt("ext4_acl_entry", off, "truncated entry")
		}
		e := ACLEntry{Tag: le.Uint16(b[off:]), Perm: le.Uint16(b[off+2:]), ID: ACLUndefinedID}
		switch {
		case !aclTagKnown(e.Tag):
			return nil, corrupt("ext4_acl_entry", off, "unknown tag %#x", e.Tag)
		case aclHasID(e.Tag):
			if len(b)-off < extACLLongSize {
				return nil, corrupt("ext4_acl_entry", off, "truncated entry")
			}
			e.ID = le.Uint32(b[off+4:])
			off += extACLLongSize
		default:
			off += extACLShortSize
		}
		es = append(es, e)
	}
	return es, nil
}

// EncodeExtACL encodes entries in ext4's on-disk form.
func EncodeExtACL(es []ACLEntry) []byte {
	le := binary.LittleEndian
	b := le.AppendUint32(nil, ExtACLVersion)
	for _, e := range es {
		b = le.AppendUint16(b, e.Tag)
		b = le.AppendUint16(b, e.Perm)
		if aclHasID(e.Tag) {
			b = le.AppendUint32(b, e.ID)
		}
	}
	return b
}

// DecodeXattrACL decodes the kernel's xattr ACL form (what getxattr
// returns and setxattr takes): version 2, then 8-byte entries. Tags must be
// known and permissions within rwx.
func DecodeXattrACL(b []byte) ([]ACLEntry, error) {
	const st = "posix_acl_xattr_header"
	if len(b) < 4 {
		return nil, corrupt(st, 0, "short ACL: %d bytes", len(b))
	}
	le := binary.LittleEndian
	if v := le.Uint32(b); v != XattrACLVersion {
		return nil, corrupt(st, 0, "ACL version %d", v)
	}
	if (len(b)-4)%xattrACLEntry != 0 {
		return nil, corrupt(st, 0, "size %d is not a whole number of entries", len(b))
	}
	es := make([]ACLEntry, (len(b)-4)/xattrACLEntry)
	for i := range es {
		off := 4 + i*xattrACLEntry
		e := ACLEntry{Tag: le.Uint16(b[off:]), Perm: le.Uint16(b[off+2:]), ID: le.Uint32(b[off+4:])}
		if !aclTagKnown(e.Tag) {
			return nil, corrupt("posix_acl_xattr_entry", off, "unknown tag %#x", e.Tag)
		}
		if e.Perm&^7 != 0 {
			return nil, corrupt("posix_acl_xattr_entry", off+2, "permissions %#x", e.Perm)
		}
		if !aclHasID(e.Tag) {
			e.ID = ACLUndefinedID
		}
		es[i] = e
	}
	return es, nil
}

// EncodeXattrACL encodes entries in the kernel's xattr form; entries
// without an id carry ACLUndefinedID.
func EncodeXattrACL(es []ACLEntry) []byte {
	le := binary.LittleEndian
	b := make([]byte, 0, 4+len(es)*xattrACLEntry)
	b = le.AppendUint32(b, XattrACLVersion)
	for _, e := range es {
		id := e.ID
		if !aclHasID(e.Tag) {
			id = ACLUndefinedID
		}
		b = le.AppendUint16(b, e.Tag)
		b = le.AppendUint16(b, e.Perm)
		b = le.AppendUint32(b, id)
	}
	return b
}

// ExtACLToXattr converts a stored ACL to the form getxattr returns.
func ExtACLToXattr(b []byte) ([]byte, error) {
	es, err := DecodeExtACL(b)
	if err != nil {
		return nil, err
	}
	return EncodeXattrACL(es), nil
}

// XattrACLToExt converts an ACL given to setxattr to the stored form.
func XattrACLToExt(b []byte) ([]byte, error) {
	es, err := DecodeXattrACL(b)
	if err != nil {
		return nil, err
	}
	return EncodeExtACL(es), nil
}

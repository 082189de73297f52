package server

import (
	"encoding/binary"
	"errors"
	"syscall"

	"github.com/e4box/e4box/ext4"
	"github.com/e4box/e4box/fuse"
	"github.com/e4box/e4box/fuseproto"
)

// POSIX ACL duties of a FUSE server. With FUSE_POSIX_ACL the kernel
// enforces ACLs and caches them, but three things that the kernel's own
// filesystems get from the VFS are left to the server:
//   - at create, inheriting the parent's default ACL (posix_acl_create):
//     the new inode's access ACL is the default ACL masked by the create
//     mode, directories also inherit it as their default ACL, and the
//     umask is not applied when the parent has one (hence FUSE_DONT_MASK);
//   - at chmod, rewriting the access ACL's owner, mask (or group) and
//     other entries from the new mode (posix_acl_chmod);
//   - when an access ACL is set, the mode follows it (ext4.SetXattr does
//     that) and set-group-ID is cleared when the kernel says so
//     (FUSE_SETXATTR_ACL_KILL_SGID).
//
// ACLs travel in the kernel's xattr format (posix_acl_xattr_header,
// version 2, then 8-byte entries), which is what ext4.GetXattr returns
// and ext4.SetXattr takes.

const (
	aclAccessName  = "system.posix_acl_access"
	aclDefaultName = "system.posix_acl_default"

	aclVersion  = 2
	aclUserObj  = 0x01
	aclUser     = 0x02
	aclGroupObj = 0x04
	aclGroup    = 0x08
	aclMask     = 0x10
	aclOther    = 0x20
)

type aclEntry struct {
	tag, perm uint16
	id        uint32
}

// maxACLEntries bounds a decoded ACL; the kernel's limit is lower still.
const maxACLEntries = 8192

var errBadACL = errors.New("server: malformed POSIX ACL")

func decodeACL(b []byte) ([]aclEntry, error) {
	if len(b) < 4 || (len(b)-4)%8 != 0 || (len(b)-4)/8 > maxACLEntries ||
		binary.LittleEndian.Uint32(b) != aclVersion {
		return nil, errBadACL
	}
	es := make([]aclEntry, 0, (len(b)-4)/8)
	for p := b[4:]; len(p) >= 8; p = p[8:] {
		es = append(es, aclEntry{
			tag:  binary.LittleEndian.Uint16(p),
			perm: binary.LittleEndian.Uint16(p[2:]),
			id:   binary.LittleEndian.Uint32(p[4:]),
		})
	}
	return es, nil
}

func encodeACL(es []aclEntry) []byte {
	b := make([]byte, 4+8*len(es))
	binary.LittleEndian.PutUint32(b, aclVersion)
	for i, e := range es {
		p := b[4+8*i:]
		binary.LittleEndian.PutUint16(p, e.tag)
		binary.LittleEndian.PutUint16(p[2:], e.perm)
		binary.LittleEndian.PutUint32(p[4:], e.id)
	}
	return b
}

// createMasq is the kernel's posix_acl_create_masq: it restricts acl to
// the permission bits of *mode and *mode to what acl grants, and reports
// whether acl says more than the mode can (named entries or a mask).
func createMasq(acl []aclEntry, mode *uint32) (notEquiv bool, err error) {
	m := *mode & 0o777
	var groupObj, maskObj *aclEntry
	for i := range acl {
		e := &acl[i]
		switch e.tag {
		case aclUserObj:
			e.perm &= uint16(m>>6) | ^uint16(0o7)
			m &= uint32(e.perm)<<6 | ^uint32(0o700)
		case aclUser, aclGroup:
			notEquiv = true
		case aclGroupObj:
			groupObj = e
		case aclOther:
			e.perm &= uint16(m) | ^uint16(0o7)
			m &= uint32(e.perm) | ^uint32(0o7)
		case aclMask:
			maskObj = e
			notEquiv = true
		default:
			return false, errBadACL
		}
	}
	g := maskObj
	if g == nil {
		g = groupObj
	}
	if g == nil {
		return false, errBadACL
	}
	g.perm &= uint16(m>>3) | ^uint16(0o7)
	m &= uint32(g.perm)<<3 | ^uint32(0o70)
	*mode = *mode&^0o777 | m&0o777
	return notEquiv, nil
}

// aclChmod is the kernel's __posix_acl_chmod: the owner, mask (or, with
// no mask, group) and other entries take the new mode's bits.
func aclChmod(acl []aclEntry, mode uint32) error {
	var groupObj, maskObj *aclEntry
	for i := range acl {
		e := &acl[i]
		switch e.tag {
		case aclUserObj:
			e.perm = uint16(mode>>6) & 7
		case aclUser, aclGroup:
		case aclGroupObj:
			groupObj = e
		case aclMask:
			maskObj = e
		case aclOther:
			e.perm = uint16(mode) & 7
		default:
			return errBadACL
		}
	}
	g := maskObj
	if g == nil {
		g = groupObj
	}
	if g == nil {
		return errBadACL
	}
	g.perm = uint16(mode>>3) & 7
	return nil
}

// newInodeACLs is what a new inode in dir gets: the mode to create it
// with, and the access and default ACL values to set on it afterwards
// (nil: none). mode holds the file type and the permission bits as the
// kernel sent them; umask is applied here only when the kernel left it
// to us (FUSE_DONT_MASK) and dir has no default ACL.
func (s *Server) newInodeACLs(r *fuse.Request, dir ext4.Ino, mode, umask uint32) (uint32, []byte, []byte, error) {
	const sIFMT, sIFDIR, sIFLNK = 0o170000, 0o040000, 0o120000
	if mode&sIFMT == sIFLNK {
		return mode, nil, nil, nil
	}
	dontMask := r.Proto != nil && r.Proto.Flags&fuseproto.InitDontMask != 0
	def, err := s.fs.GetXattr(dir, aclDefaultName)
	switch {
	case errors.Is(err, syscall.ENODATA) || errors.Is(err, syscall.EOPNOTSUPP) || err == nil && len(def) == 0:
		if dontMask {
			mode &^= umask & 0o777
		}
		return mode, nil, nil, nil
	case err != nil:
		return 0, nil, nil, err
	}
	acl, err := decodeACL(def)
	if err != nil {
		return 0, nil, nil, &ext4.CorruptError{Kind: "default ACL", Ino: dir, Err: syscall.EUCLEAN}
	}
	notEquiv, err := createMasq(acl, &mode)
	if err != nil {
		return 0, nil, nil, &ext4.CorruptError{Kind: "default ACL", Ino: dir, Err: syscall.EUCLEAN}
	}
	var access, dflt []byte
	if notEquiv {
		access = encodeACL(acl)
	}
	if mode&sIFMT == sIFDIR {
		dflt = def
	}
	return mode, access, dflt, nil
}

// chmodACL rewrites ino's access ACL, if it has one, for the new mode.
func (s *Server) chmodACL(ino ext4.Ino, mode uint32) error {
	val, err := s.fs.GetXattr(ino, aclAccessName)
	if errors.Is(err, syscall.ENODATA) || errors.Is(err, syscall.EOPNOTSUPP) || err == nil && len(val) == 0 {
		return nil
	}
	if err != nil {
		return err
	}
	acl, err := decodeACL(val)
	if err == nil {
		err = aclChmod(acl, mode)
	}
	if err != nil {
		return &ext4.CorruptError{Kind: "access ACL", Ino: ino, Err: syscall.EUCLEAN}
	}
	return s.fs.SetXattr(ino, aclAccessName, encodeACL(acl), 0)
}

package disk

import "encoding/binary"

// jbd2 journal constants (big-endian on disk, unlike the rest of ext4).
const (
	JournalMagic = 0xC03B3998 // h_magic of every journal metadata block

	JournalDescriptorBlock = 1
	JournalCommitBlock     = 2
	JournalSuperblockV1    = 3
	JournalSuperblockV2    = 4
	JournalRevokeBlock     = 5

	JournalSuperblockSize = 1024
)

// JournalSuperblock is the leading part of journal_superblock_t, enough to
// recognise a journal and report its geometry and features; replay is the
// journal package's business. Kernel doc: "Journal (jbd2)".
type JournalSuperblock struct {
	Magic           uint32     // 0x00 h_magic
	BlockType       uint32     // 0x04 h_blocktype (3 or 4)
	HSequence       uint32     // 0x08 h_sequence
	BlockSize       uint32     // 0x0C s_blocksize
	MaxLen          uint32     // 0x10 s_maxlen: journal length in blocks
	First           uint32     // 0x14 s_first: first log block
	Sequence        uint32     // 0x18 s_sequence: first expected commit id
	Start           uint32     // 0x1C s_start: first log block of the log; 0 = clean
	Errno           int32      // 0x20 s_errno
	FeatureCompat   uint32     // 0x24 s_feature_compat (v2)
	FeatureIncompat uint32     // 0x28 s_feature_incompat (v2)
	FeatureRoCompat uint32     // 0x2C s_feature_ro_compat (v2)
	UUID            [16]byte   // 0x30 s_uuid
	NrUsers         uint32     // 0x40 s_nr_users
	DynSuper        uint32     // 0x44 s_dynsuper
	MaxTransaction  uint32     // 0x48 s_max_transaction
	MaxTransData    uint32     // 0x4C s_max_trans_data
	ChecksumType    uint8      // 0x50 s_checksum_type
	Padding2        [3]byte    // 0x51 s_padding2
	NumFCBlocks     uint32     // 0x54 s_num_fc_blks
	Head            uint32     // 0x58 s_head
	Padding         [40]uint32 // 0x5C s_padding
	Checksum        uint32     // 0xFC s_checksum
}

// DecodeJournalSuperblock decodes the first 256 bytes of a journal
// superblock, checking the magic and block type.
func DecodeJournalSuperblock(b []byte) (*JournalSuperblock, error) {
	const st = "journal_superblock_t"
	if len(b) < 0x100 {
		return nil, corrupt(st, 0, "short block: %d bytes", len(b))
	}
	j := new(JournalSuperblock)
	if _, err := binary.Decode(b[:0x100], binary.BigEndian, j); err != nil {
		return nil, corrupt(st, 0, "%v", err)
	}
	if j.Magic != JournalMagic {
		return nil, corrupt(st, 0, "bad magic %#08x", j.Magic)
	}
	if j.BlockType != JournalSuperblockV1 && j.BlockType != JournalSuperblockV2 {
		return nil, corrupt(st, 4, "block type %d is not a superblock", j.BlockType)
	}
	return j, nil
}

// NeedsRecovery reports whether the log holds transactions (s_start != 0).
func (j *JournalSuperblock) NeedsRecovery() bool { return j.Start != 0 }

package ext4

import (
	"fmt"
	"strings"
	"syscall"
	"testing"

	"github.com/e4box/e4box/internal/testutil"
)

// orphanChain returns the orphan list, head first.
func orphanChain(t *testing.T, fs *FS) []Ino {
	t.Helper()
	var chain []Ino
	err := fs.Update(func(tx *Tx) error {
		for ino := Ino(fs.sb.LastOrphan); ino != 0; {
			if len(chain) > 1000 {
				return fmt.Errorf("orphan chain loops: %v", chain[:10])
			}
			chain = append(chain, ino)
			next, err := tx.nextOrphanLocked(ino)
			if err != nil {
				return err
			}
			ino = next
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return chain
}

// TestOrphanEvictOrder unlinks several files while they are "in use",
// then evicts them out of list order: each leaves the chain intact.
func TestOrphanEvictOrder(t *testing.T) {
	img, fs := newRWImage(t, testutil.Ext4, 32, 200)
	m := newModel(t, fs)
	var inos []Ino
	for i := range 5 {
		p := fmt.Sprintf("f%d", i)
		m.create(p)
		inos = append(inos, m.nodes[p].ino)
	}
	for i := range 5 {
		p := fmt.Sprintf("f%d", i)
		in, err := fs.Unlink(RootIno, []byte(p))
		if err != nil || in.Nlink != 0 {
			t.Fatalf("unlink %s: %v", p, err)
		}
		delete(m.nodes, p)
	}
	want := []Ino{inos[4], inos[3], inos[2], inos[1], inos[0]}
	if got := orphanChain(t, fs); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("orphan chain %v, want %v", got, want)
	}
	for _, i := range []int{2, 0, 4, 3, 1} {
		if err := fs.Evict(inos[i]); err != nil {
			t.Fatalf("evict %d: %v", inos[i], err)
		}
		var rest []Ino
		for _, x := range want {
			if x != inos[i] {
				rest = append(rest, x)
			}
		}
		want = rest
		if got := orphanChain(t, fs); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("after evicting %d: chain %v, want %v", inos[i], got, want)
		}
		if _, err := fs.Inode(inos[i]); err != syscall.ESTALE {
			t.Fatalf("evicted inode %d: %v", inos[i], err)
		}
	}
	m.verify(img)
}

// TestOrphanRecovery leaves unlinked but unevicted inodes (and a linked
// one with blocks past i_size) on the orphan list, as a crash would, and
// checks that the next read-write Open frees (or truncates) them.
func TestOrphanRecovery(t *testing.T) {
	for _, v := range []testutil.Variant{testutil.Ext4, testutil.Ext3, testutil.Ext4Inline} {
		t.Run(v.Name, func(t *testing.T) {
			img, fs := newRWImage(t, v, 32, 200)
			before := fs.Statfs()
			m := newModel(t, fs)
			m.mkdir("d")
			m.create("d/f")
			m.symlink("d/slow", strings.Repeat("/x", 150))
			m.symlink("d/fast", "t")
			m.mkdir("d/sub")
			m.create("keep")
			m.create("victim")
			long := func(i int) string { return fmt.Sprintf("%d-%s", i, strings.Repeat("s", 100)) }
			for i := range 40 { // a directory with blocks of its own
				m.create("d/sub/" + long(i))
			}
			var gone []Ino
			for i := range 40 {
				if _, err := fs.Unlink(m.dir("d/sub"), []byte(long(i))); err != nil {
					t.Fatal(err)
				}
				gone = append(gone, m.nodes["d/sub/"+long(i)].ino)
				delete(m.nodes, "d/sub/"+long(i))
			}
			for _, p := range []string{"d/f", "d/slow", "d/fast"} {
				gone = append(gone, m.nodes[p].ino)
				if _, err := fs.Unlink(m.dir("d"), []byte(p[2:])); err != nil {
					t.Fatal(err)
				}
				delete(m.nodes, p)
			}
			gone = append(gone, m.nodes["d/sub"].ino)
			if _, err := fs.Rmdir(m.dir("d"), []byte("sub")); err != nil {
				t.Fatal(err)
			}
			delete(m.nodes, "d/sub")
			gone = append(gone, m.nodes["victim"].ino)
			if replaced, err := fs.Rename(RootIno, []byte("keep"), RootIno, []byte("victim"), 0); err != nil || replaced.Nlink != 0 {
				t.Fatalf("rename over victim: %v", err)
			}
			m.nodes["victim"] = m.nodes["keep"]
			delete(m.nodes, "keep")
			m.rmdir("d")
			// A linked inode with a block past i_size: the kernel truncates
			// such orphans at mount.
			m.create("grown")
			err := fs.Update(func(tx *Tx) error {
				r, err := tx.inodeLocked(m.nodes["grown"].ino)
				if err != nil {
					return err
				}
				if fs.features.inlineData {
					if err := tx.dropInlineDataLocked(r); err != nil {
						return err
					}
				}
				if _, _, err := tx.mapBlocksLocked(r, 2, 1, true); err != nil {
					return err
				}
				tx.orphanAddLocked(r)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if got := len(orphanChain(t, fs)); got != len(gone)+1 {
				t.Fatalf("%d orphans, want %d", got, len(gone)+1)
			}
			if err := fs.Close(); err != nil {
				t.Fatal(err)
			}
			// The next read-write mount processes the list.
			fs = openRW(t, img)
			if ch := orphanChain(t, fs); len(ch) != 0 {
				t.Fatalf("orphans left after mount: %v", ch)
			}
			for _, ino := range gone {
				if _, err := fs.Inode(ino); err != syscall.ESTALE {
					t.Errorf("orphan %d not freed: %v", ino, err)
				}
			}
			g, err := fs.Inode(m.nodes["grown"].ino)
			if err != nil || g.Blocks512() != 0 {
				t.Errorf("truncate orphan: %v, %d sectors", err, g.Blocks512())
			}
			m.fs = fs
			after := fs.Statfs()
			// Two inodes remain (victim, grown); everything else is back.
			if after.Ffree != before.Ffree-2 || after.Bfree != before.Bfree {
				t.Errorf("statfs after recovery: %d inodes %d blocks free, before %d %d",
					after.Ffree, after.Bfree, before.Ffree, before.Bfree)
			}
			m.verify(img)
		})
	}
}

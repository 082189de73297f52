// Package fuse is e4box's FUSE session runtime: mounting, the INIT
// handshake, reading requests from /dev/fuse, dispatching them through one
// opcode table to a FileSystem, writing replies, INTERRUPT handling and
// kernel notifications. It speaks the raw, nodeid-based protocol; the
// meaning of nodeids is the filesystem's business.
//
// It may import fuseproto and golang.org/x/sys/unix only. Subpackage
// fusetest provides an in-memory Conn so the protocol can be tested without
// a kernel.
//
// # Usage
//
//	srv, err := fuse.Mount(dir, fs, &fuse.Options{FsName: image, ReadOnly: true})
//	if err != nil { ... }
//	stop := srv.UnmountOnSignal() // SIGINT/SIGTERM unmount, so Serve returns
//	defer stop()
//	err = srv.Serve() // until unmount (nil), abort (ErrAborted) or failure
//
// Mount uses mount(2) as root and fusermount3 otherwise. Serve may run on
// another goroutine; Ready is closed once INIT is answered and the poll
// probe is over, Done when Serve has returned.
//
// # Requests and concurrency
//
// A small, elastic set of reader goroutines (Options.MaxReaders) reads the
// device; when the last idle reader takes a request it starts another, so
// INTERRUPT and FORGET are always read promptly. Each request then runs on
// its own goroutine, so FileSystem methods must be safe for concurrent use;
// requests with large payloads (WRITE) are bounded by
// Options.MaxLargeRequests because each holds a max_write buffer. FORGET,
// BATCH_FORGET, INTERRUPT and INIT are handled inline by the reader.
//
// Every request is length-checked against its table record before any
// field is read: short or inconsistent requests get EIO, unknown opcodes
// ENOSYS. A panic in a method is recovered, logged with its stack, and
// answered with EIO. INTERRUPT cancels the request's Request.Ctx.
//
// # Serving and accessing the mount in one process
//
// Go's netpoller registers every file os.Open returns with epoll_ctl, and on
// a FUSE file that makes the kernel send POLL and wait for the answer from
// inside runtime code that a GC stop-the-world cannot preempt: if the
// world stops meanwhile, the goroutines that would answer are stopped too
// and the process hangs. The kernel stops sending POLL on a connection
// once one is answered ENOSYS, as every POLL is here. So right after INIT,
// a mounted Server makes the kernel send one from real syscalls: it opens
// ProbeName in the mount root (answered by the runtime with ProbeNodeID,
// never by the FileSystem), polls and closes it. OPEN, TMPFILE and CREATE
// outside the root wait until then, and Ready is closed after it: wait for
// Ready before creating files in the root from the serving process.
// Failures are logged, not fatal.
// Sessions on a bare Conn (NewDevConn, fusetest) skip the probe. See
// pollprobe.go.
//
// # fuse-iomap
//
// Options.Iomap asks for the out-of-tree fuse-iomap protocol (seed ABI,
// fuseproto/iomap.go): discovery before mounting, the INIT bits only when
// the kernel supports and offers them, IOMAP_BEGIN/END/IOEND through the
// optional IomapFileSystem interface, and Server.AddIomapDevice for block
// device registration. On kernels without it (all stock kernels so far)
// the session is classic and Server.IomapStatus says so. The kernel sends
// DESTROY to iomap sessions and waits for it, so Destroy runs before umount
// returns. See iomap.go.
//
// # Shutdown
//
// Serve returns after the kernel reports the unmount (ENODEV), the
// connection is aborted (ECONNABORTED; the dead mount is then detached), or
// INIT fails. It cancels requests still running, waits for them, calls
// FileSystem.Destroy once (if DESTROY did not already) and closes the
// device.
//
// Lock order: Server.mu (interrupt table, reader counts, lifecycle) is a
// leaf lock; no FileSystem method is called with it held.
// Server.iomap.mu (the iomap device cookies) is held only across
// AddIomapDevice's notification write and takes no other lock.
package fuse

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
// # Requests and concurrency
//
// A small, elastic set of reader goroutines reads the device; each request
// then runs on its own goroutine (those with large payloads bounded by
// Options.MaxLargeRequests), so
// FileSystem methods must be safe for concurrent use. FORGET, BATCH_FORGET
// and INTERRUPT are handled inline by the reader. A panic in a method is
// recovered, logged with its stack, and answered with EIO.
//
// Lock order: Server.mu (interrupt table, lifecycle) is a leaf lock; no
// FileSystem method is called with it held.
package fuse

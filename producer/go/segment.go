// SPDX-License-Identifier: MIT

// Package rtm publishes a Go program's metrics into an rtm shared-memory
// segment, which rtm-reader exports (OTLP, Prometheus) and rtm-shmdump
// inspects, with no exporter inside the process.  It is written from
// shm-layout/FORMAT.md and uses the standard library only.
//
// A program opens one segment, creates instruments on it and updates them:
//
//	seg, err := rtm.Open(rtm.Options{ServiceName: "checkout"})
//	reqs, err := seg.Counter(rtm.Def{Name: "http.server.requests", Unit: "{request}"})
//	reqs.Add(1)
//	stop, err := rtm.StartRuntimeMetrics(seg, 10*time.Second)
//
// Updates never allocate, never make a system call and never block.  An
// update pins its goroutine to its P (runtime.procPin) and writes that P's
// own shard, as a C thread writes its own: plain stores, the seqlock for
// histograms (FORMAT.md §7, "producers whose writers are not threads").
package rtm

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"
	"unsafe"
)

// Version is the package version, in the segment's producer field as "rtm-go/<Version>".
const Version = "0.1.0"

// Options for Open.  Only ServiceName is required.
type Options struct {
	ServiceName    string            // OTel service.name; required, < 64 bytes
	ServiceVersion string            // OTel service.version; < 32 bytes
	Resource       map[string]string // more resource attributes (process.runtime.version is added)
	Dir            string            // default: $RTM_DIR, else /dev/shm/rtm
	MaxMetrics     int               // descriptor slots; default 256
	Stripes        int               // private shards, one a P; default GOMAXPROCS, power of 2, <= 64
	ShardBytes     int               // slot bytes per shard; default 8192
	StringBytes    int               // names, units, attributes, bounds; default 32768
	// LockSample, when > 0, turns on the runtime's block and mutex
	// profiles at that rate (runtime.SetBlockProfileRate,
	// runtime.SetMutexProfileFraction) and gives the segment a lock-site
	// table that StartRuntimeMetrics fills from the block profile
	// (profile.go).  0: $RTM_LOCK_SAMPLE, as for C programs; unset: off.
	LockSample int
	LockSites  int // lock-site entries; default 128, at most 4096
}

// Errors returned by the cold paths.
var (
	ErrInvalid = errors.New("rtm: invalid argument")
	ErrNoSpace = errors.New("rtm: segment full") // counted in the segment's dropped_metrics
	ErrExists  = errors.New("rtm: series exists with another kind, unit or bounds")
	ErrClosed  = errors.New("rtm: segment closed")
)

// Segment is one open segment.  Its methods may be called from any goroutine.
type Segment struct {
	mem     []byte         // the shared mapping
	base    unsafe.Pointer // &mem[0]
	data    unsafe.Pointer // base + data_offset: shard 0
	dataOff uintptr
	shard   uintptr // shard size
	mask    uintptr // stripes - 1
	path    string

	sitesOff   uint64 // the lock-site table (0: none) and its entries
	sitesCap   int
	lockSample int

	fellBack    uint32     // a P past the stripes updated shard 0 (shard_fallbacks raised)
	fd          int        // the file's, for reserve
	resMeta     uint64     // reserved end of the header and descriptor table
	resStrings  uint64     // of the string region
	resData     uint64     // bytes reserved at the start of every shard
	mu          sync.Mutex // registration, close
	f           *os.File
	closed      bool
	stringsUsed uint64            // absolute offset of the first free string byte
	dataUsed    uint64            // bytes used in each shard
	series      map[string]uint32 // name + attrs encoding -> descriptor index
}

var openSeq uint32 // unique temporary names within this process

// Open creates and publishes a segment (FORMAT.md §1): exclusive, no-follow,
// every page reserved up front, filled under a hidden name and renamed into
// place so readers never see it half made.
func Open(o Options) (*Segment, error) {
	if o.ServiceName == "" || len(o.ServiceName) >= serviceLen || !validText(o.ServiceName) ||
		len(o.ServiceVersion) >= versionLen || !validText(o.ServiceVersion) {
		return nil, fmt.Errorf("%w: service name or version", ErrInvalid)
	}
	metrics, stripes, shard, strs := def(o.MaxMetrics, 256), def(o.Stripes, 0), def(o.ShardBytes, 8192), def(o.StringBytes, 32768)
	if stripes == 0 {
		// One a P: each P writes its own (metric.go, pinned).
		stripes = runtime.GOMAXPROCS(0)
	}
	for stripes&(stripes-1) != 0 {
		stripes++
	}
	if stripes > 64 {
		stripes = 64
	}
	if metrics > 65536 || shard > 1<<20 || strs > 16<<20 {
		return nil, fmt.Errorf("%w: sizes", ErrInvalid)
	}
	descOff := uint64(headerSize)
	strOff := align(descOff+uint64(metrics)*descSize, cacheLine)
	strSize := align(uint64(strs), 8)
	dataOff := align(strOff+strSize, page)
	shardSize := align(uint64(shard), cacheLine)
	size := align(dataOff+uint64(stripes+1)*shardSize, page)
	sample, err := lockSample(o.LockSample)
	if err != nil {
		return nil, err
	}
	sitesOff, sitesCap := uint64(0), def(o.LockSites, 128)
	if sitesCap > 4096 {
		return nil, fmt.Errorf("%w: LockSites above 4096", ErrInvalid)
	}
	if sample > 0 {
		sitesOff = size
		size = align(size+uint64(sitesCap)*siteSize, page)
	}
	if size > segmentMax {
		return nil, fmt.Errorf("%w: segment larger than 256 MiB", ErrInvalid)
	}
	dir := o.Dir
	if dir == "" {
		dir = os.Getenv("RTM_DIR")
	}
	if dir == "" {
		dir = "/dev/shm/rtm"
	}
	if err := checkDir(dir); err != nil {
		return nil, err
	}
	n := atomic.AddUint32(&openSeq, 1) - 1
	pid := os.Getpid()
	var fd int
	var tmp string
	fd, tmp, err = createTemp(dir)
	if err != nil {
		return nil, &os.PathError{Op: "create", Path: dir, Err: err}
	}
	f := os.NewFile(uintptr(fd), filepath.Join(dir, "(segment being built)"))
	fail := func(e error) (*Segment, error) {
		if tmp != "" {
			os.Remove(tmp)
		}
		f.Close()
		return nil, e
	}
	// Sparse, as the C producer's: pages are reserved as they come into
	// use (Segment.reserve), each before its first store, so a full tmpfs
	// is an error from Open or a registration, never SIGBUS.
	if err := syscall.Ftruncate(fd, int64(size)); err != nil {
		return fail(&os.PathError{Op: "ftruncate", Path: dir, Err: err})
	}
	mem, err := syscall.Mmap(fd, 0, int(size), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		return fail(&os.PathError{Op: "mmap", Path: dir, Err: err})
	}
	s := &Segment{mem: mem, f: f, series: map[string]uint32{}, fd: fd}
	s.base = unsafe.Pointer(&mem[0])
	s.dataOff = uintptr(dataOff)
	s.data = unsafe.Add(s.base, s.dataOff)
	s.shard = uintptr(shardSize)
	s.mask = uintptr(stripes - 1)
	s.stringsUsed = strOff
	// The header, and the lock-site table when there is one (whole: any
	// goroutine may claim any entry).
	if err := s.reserve(&s.resMeta, 0, headerSize); err != nil {
		syscall.Munmap(mem)
		return fail(&os.PathError{Op: "fallocate", Path: dir, Err: err})
	}
	if sample > 0 {
		if err := s.reserve(new(uint64), sitesOff, sitesOff+uint64(sitesCap)*siteSize); err != nil {
			syscall.Munmap(mem)
			return fail(&os.PathError{Op: "fallocate", Path: dir, Err: err})
		}
	}
	if sample > 0 {
		// sites_sample stays 0 (unused) until the first fold stores it.
		s.sitesOff, s.sitesCap, s.lockSample = sitesOff, sitesCap, sample
		s.put32(hCompat, compatSites)
		s.put32(hSitesOffset, uint32(sitesOff))
		s.put32(hSitesCapacity, uint32(sitesCap))
	}

	startTicks := selfStartTicks()
	now := uint64(time.Now().UnixNano())
	s.put32(hMagic, magic)
	s.put16(hMajor, layoutMajor)
	s.put16(hMinor, layoutMinor)
	s.put32(hHeaderSize, headerSize)
	s.put32(hDescSize, descSize)
	s.put64(hSegmentSize, size)
	s.put32(hDescOffset, uint32(descOff))
	s.put32(hDescCapacity, uint32(metrics))
	s.put32(hStringsOffset, uint32(strOff))
	s.put32(hStringsSize, uint32(strSize))
	s.put32(hDataOffset, uint32(dataOff))
	s.put32(hShardCount, uint32(stripes+1))
	s.put32(hShardSize, uint32(shardSize))
	// Every stripe may hold data from the start: readers sum them all.
	s.put32(hShardHWM, uint32(stripes+1))
	s.put32(hPid, uint32(pid))
	s.put32(hUid, uint32(os.Getuid()))
	s.put64(hPidStartTicks, startTicks)
	// Who the process is outside its namespaces (a container), so a
	// reader there finds it (FORMAT.md §4, 1.2).
	s.put64(hPidNS, nsInode("/proc/self/ns/pid"))
	s.put64(hUserNS, nsInode("/proc/self/ns/user"))
	s.put64(hCreatedUnix, now)
	s.put64(hCreatedBoot, bootNanos())
	s.put64(hHeartbeat, now)
	copy(mem[hServiceName:hServiceName+serviceLen-1], o.ServiceName)
	copy(mem[hServiceVersion:hServiceVersion+versionLen-1], o.ServiceVersion)
	copy(mem[hProducer:hProducer+producerLen-1], "rtm-go/"+Version)

	res := map[string]string{"process.runtime.version": runtime.Version()}
	for k, v := range o.Resource {
		res[k] = v
	}
	enc, count, err := encodeAttrs(res)
	if err != nil || count > resourceAttrs || s.stringsUsed+uint64(len(enc)) > strOff+strSize {
		syscall.Munmap(mem)
		return fail(fmt.Errorf("%w: resource attributes", ErrInvalid))
	}
	s.resStrings = strOff
	if err := s.reserve(&s.resStrings, strOff, s.stringsUsed+uint64(len(enc))); err != nil {
		syscall.Munmap(mem)
		return fail(&os.PathError{Op: "fallocate", Path: dir, Err: err})
	}
	s.put32(hResourceOff, uint32(s.stringsUsed))
	s.put32(hResourceLen, uint32(len(enc)))
	s.put16(hResourceCount, uint16(count))
	copy(mem[s.stringsUsed:], enc)
	s.stringsUsed += uint64(len(enc))
	s.put32(hStringsUsed, uint32(s.stringsUsed-strOff))
	s.put32(hState, stateLive)

	// Publishing names a complete header; a taken name (another rtm in
	// this process counts from 0 too, or a file another user planted)
	// moves on to the next number.
	for k := uint32(0); ; k++ {
		name := filepath.Join(dir, fmt.Sprintf("rtm.%d.%d.%d.rtm", pid, startTicks, n+k))
		if tmp == "" {
			err = linkFd(fd, name)
		} else {
			err = renameNoReplace(tmp, name)
		}
		if err == nil {
			s.path = name
			break
		}
		if !errors.Is(err, syscall.EEXIST) || k == 1000 {
			syscall.Munmap(mem)
			return fail(&os.LinkError{Op: "publish", Old: tmp, New: name, Err: err})
		}
	}
	return s, nil
}

// reserve gives the file its pages in [from, to) past *upto (a region's
// reserved end, page-aligned), and moves *upto to the end.  A cold path.
func (s *Segment) reserve(upto *uint64, from, to uint64) error {
	if from < *upto {
		from = *upto
	}
	from &^= page - 1
	to = align(to, page)
	if to <= from {
		return nil
	}
	for {
		err := syscall.Fallocate(s.fd, 0, int64(from), int64(to-from))
		if err != syscall.EINTR {
			if err != nil {
				return err
			}
			break
		}
	}
	*upto = to
	return nil
}

func def(v, d int) int {
	if v <= 0 {
		return d
	}
	return v
}

// Path is the segment's file.
func (s *Segment) Path() string { return s.path }

// Heartbeat records a sign of life (a cold path: it reads the clock).
func (s *Segment) Heartbeat() {
	s.mu.Lock()
	if !s.closed {
		s.store64(hHeartbeat, uint64(time.Now().UnixNano()))
	}
	s.mu.Unlock()
}

// Close marks the segment CLOSED (the reader exports its final values and
// removes it) and detaches it: handles that outlive it write to private
// memory that no one reads, never to a file.
func (s *Segment) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.closed = true
	now := uint64(time.Now().UnixNano())
	s.store64(hClosed, now)
	s.store64(hHeartbeat, now)
	// Sequentially consistent (at least release): pairs with the reader's
	// acquire load of state, so a reader that sees CLOSED sees final values.
	s.store32(hState, stateClosed)
	// Private zero pages at the same address, so late updates from other
	// goroutines land somewhere harmless (FORMAT.md §1, close).
	_, _, errno := syscall.Syscall6(syscall.SYS_MMAP, uintptr(s.base), uintptr(len(s.mem)),
		syscall.PROT_READ|syscall.PROT_WRITE,
		syscall.MAP_PRIVATE|syscall.MAP_ANONYMOUS|syscall.MAP_FIXED, ^uintptr(0), 0)
	err := s.f.Close()
	if errno != 0 {
		return errno
	}
	return err
}

// ---- raw access to the mapping ----

func (s *Segment) p16(off uint64) *uint16 { return (*uint16)(unsafe.Add(s.base, off)) }
func (s *Segment) p32(off uint64) *uint32 { return (*uint32)(unsafe.Add(s.base, off)) }
func (s *Segment) p64(off uint64) *uint64 { return (*uint64)(unsafe.Add(s.base, off)) }

func (s *Segment) put16(off uint64, v uint16) { *s.p16(off) = v }
func (s *Segment) put32(off uint64, v uint32) { *s.p32(off) = v }
func (s *Segment) put64(off uint64, v uint64) { *s.p64(off) = v }

// Fields readers watch change with single aligned atomic stores; Go's
// atomics are sequentially consistent, which covers the release orderings
// FORMAT.md asks for.
func (s *Segment) store32(off uint64, v uint32) { atomic.StoreUint32(s.p32(off), v) }
func (s *Segment) store64(off uint64, v uint64) { atomic.StoreUint64(s.p64(off), v) }
func (s *Segment) load32(off uint64) uint32     { return atomic.LoadUint32(s.p32(off)) }

// ---- helpers ----

// checkDir creates the segment directory shared and sticky if missing,
// only as root (whoever owns the shared directory can remove every segment
// in it: FORMAT.md §1), and refuses one that is a symbolic link, or
// writable by others without the sticky bit (any user could remove or
// replace this process's segment).
func checkDir(dir string) error {
	if os.Geteuid() == 0 {
		if err := os.Mkdir(dir, 0o777); err == nil {
			os.Chmod(dir, 0o777|os.ModeSticky) // shared by every user, like /tmp
		}
	}
	st, err := os.Lstat(dir)
	switch {
	case err != nil:
		return err
	case st.Mode()&os.ModeSymlink != 0:
		return &os.PathError{Op: "open", Path: dir, Err: syscall.ELOOP}
	case !st.IsDir():
		return &os.PathError{Op: "open", Path: dir, Err: syscall.ENOTDIR}
	case st.Mode().Perm()&0o002 != 0 && st.Mode()&os.ModeSticky == 0:
		return &os.PathError{Op: "open", Path: dir, Err: syscall.EPERM}
	}
	return nil
}

const oTmpfile = 0o20000000 | syscall.O_DIRECTORY // O_TMPFILE

// createTemp makes the file a segment is built in: an unnamed O_TMPFILE
// where the filesystem has them (no name another user could take first,
// nothing left behind by a kill), else a random name no one can guess.
func createTemp(dir string) (fd int, tmp string, err error) {
	fd, err = syscall.Open(dir, oTmpfile|syscall.O_RDWR|syscall.O_CLOEXEC, 0o600)
	if err == nil || (err != syscall.EOPNOTSUPP && err != syscall.EISDIR && err != syscall.EINVAL) {
		return fd, "", err
	}
	for tries := 0; tries < 100; tries++ {
		var r [16]byte
		if _, err := rand.Read(r[:]); err != nil {
			return -1, "", err
		}
		tmp = filepath.Join(dir, fmt.Sprintf(".rtm.%d.%x.tmp", os.Getpid(), r))
		fd, err = syscall.Open(tmp, syscall.O_RDWR|syscall.O_CREAT|syscall.O_EXCL|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o600)
		if err != syscall.EEXIST {
			return fd, tmp, err
		}
	}
	return -1, "", syscall.EEXIST
}

// linkFd gives an unnamed file its name; linkat never replaces one.
func linkFd(fd int, name string) error {
	const atSymlinkFollow = 0x400
	self, err := syscall.BytePtrFromString(fmt.Sprintf("/proc/self/fd/%d", fd))
	if err != nil {
		return err
	}
	n, err := syscall.BytePtrFromString(name)
	if err != nil {
		return err
	}
	_, _, e := syscall.Syscall6(syscall.SYS_LINKAT, atFdcwd, uintptr(unsafe.Pointer(self)), atFdcwd,
		uintptr(unsafe.Pointer(n)), atSymlinkFollow, 0)
	if e != 0 {
		return e
	}
	return nil
}

// Field 22 of /proc/self/stat: with the pid, it names this process for good.
func selfStartTicks() uint64 {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 { // after ')' come fields 3..; starttime is the 20th
		return 0
	}
	v, _ := strconv.ParseUint(f[19], 10, 64)
	return v
}

// nsInode is the inode of a /proc/self/ns link's namespace: 0 when /proc
// cannot tell.
func nsInode(path string) uint64 {
	var st syscall.Stat_t
	if syscall.Stat(path, &st) != nil {
		return 0
	}
	return st.Ino
}

func bootNanos() uint64 {
	var ts syscall.Timespec
	const clockBoottime = 7
	if _, _, e := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockBoottime, uintptr(unsafe.Pointer(&ts)), 0); e != 0 {
		return 0
	}
	return uint64(ts.Sec)*1e9 + uint64(ts.Nsec)
}

// UTF-8 without NUL (FORMAT.md §2).
func validText(s string) bool { return utf8.ValidString(s) && !strings.ContainsRune(s, 0) }

// "key NUL value NUL" pairs sorted by key (FORMAT.md §6): one set, one encoding.
func encodeAttrs(m map[string]string) ([]byte, int, error) {
	keys := make([]string, 0, len(m))
	for k := range m {
		if k == "" || !validText(k) || !validText(m[k]) {
			return nil, 0, ErrInvalid
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b []byte
	for _, k := range keys {
		b = append(append(append(append(b, k...), 0), m[k]...), 0)
	}
	if len(b) > attrsMax {
		return nil, 0, ErrInvalid
	}
	return b, len(keys), nil
}

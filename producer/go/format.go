// SPDX-License-Identifier: MIT

package rtm

// The segment format, layout 1.3, as shm-layout/FORMAT.md defines it
// (the lock-site table of 1.1 only when lock profiling is on: profile.go).
// Offsets are byte offsets into the header (§4) and a descriptor (§5).

const (
	magic       = 0x52544D53
	layoutMajor = 1
	layoutMinor = 3

	headerSize = 512
	descSize   = 128
	cacheLine  = 64
	page       = 4096

	serviceLen    = 64 // incl. the NUL
	versionLen    = 32
	producerLen   = 32
	nameMax       = 255
	unitMax       = 63
	descMax       = 1023
	attrsMax      = 4096
	attrCountMax  = 64
	boundsMax     = 254
	shardsMax     = 1024
	segmentMax    = 256 << 20
	resourceAttrs = 64

	stateLive   = 1
	stateClosed = 2

	kindCounter   = 1
	kindUpDown    = 2
	kindGauge     = 3
	kindHistogram = 4

	valueInt    = 1
	valueDouble = 2

	histFixed = 32 // seq, sum, min, max
)

// Header fields (§4).
const (
	hMagic          = 0
	hMajor          = 4
	hMinor          = 6
	hHeaderSize     = 8
	hDescSize       = 12
	hSegmentSize    = 24
	hDescOffset     = 32
	hDescCapacity   = 36
	hStringsOffset  = 40
	hStringsSize    = 44
	hDataOffset     = 48
	hShardCount     = 52
	hShardSize      = 56
	hState          = 64
	hDescCount      = 68
	hStringsUsed    = 72
	hShardHWM       = 76
	hGeneration     = 80
	hDropped        = 88
	hShardFallbacks = 92
	hPid            = 96
	hUid            = 100
	hPidStartTicks  = 104
	hCreatedUnix    = 112
	hCreatedBoot    = 120
	hHeartbeat      = 128
	hClosed         = 136
	hResourceOff    = 144
	hResourceLen    = 148
	hResourceCount  = 152
	hDataUsed       = 156
	hServiceName    = 160
	hServiceVersion = 224
	hProducer       = 256
	hCompat         = 16
	hSitesOffset    = 288 // 1.1
	hSitesCapacity  = 292
	hSitesSample    = 296
	hSitesDropped   = 304
	hPidNS          = 312 // 1.2
	hUserNS         = 320 // 1.2

	compatSites = 1 // compat_features bit 0: a lock-site table
)

// Lock-site entries (§7, "Lock sites").
const (
	siteSize        = 64
	siteAddress     = 0
	siteContentions = 8
	siteWaitNs      = 16
	siteMaxWaitNs   = 24
	siteKind        = 32

	siteMutex  = 1
	siteRWLock = 2
)

// Descriptor fields (§5).
const (
	dKind       = 0
	dValueType  = 1
	dBoundCount = 2
	dSlotOffset = 4
	dSlotSize   = 8
	dNameOff    = 16
	dNameLen    = 20
	dUnitLen    = 22
	dUnitOff    = 24
	dDescOff    = 28
	dDescLen    = 32
	dAttrsOff   = 36
	dAttrsLen   = 40
	dAttrCount  = 44
	dBoundsOff  = 48
	dExpSize    = 52 // 1.3
	dExpScale   = 54 // 1.3
	dStartUnix  = 56
	dFlags      = 12

	descExponential = 1 // flags bit 0 (1.3): base-2 exponential histogram
	descNoSum       = 2 // flags bit 1 (1.3): no sum, min or max known
)

// Histogram slot fields (§7).
const (
	hsSeq     = 0
	hsSum     = 8
	hsMin     = 16
	hsMax     = 24
	hsBuckets = 32
)

func align(v, a uint64) uint64 { return (v + a - 1) &^ (a - 1) }

func histSlotSize(bounds int) uint64 { return align(histFixed+8*uint64(bounds+1), cacheLine) }

const atFdcwd = ^uintptr(99) // AT_FDCWD, -100, for the *at system calls

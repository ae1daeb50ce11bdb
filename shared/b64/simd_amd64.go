//go:build amd64 && !purego

package b64

import "golang.org/x/sys/cpu"

// haveSIMD reports whether segmentio/asm's base64 runs its AVX2 code here.
var haveSIMD = cpu.X86.HasAVX2

//go:build arm64 && !purego

package b64

// haveSIMD: segmentio/asm's base64 runs its NEON code on every arm64 CPU.
const haveSIMD = true

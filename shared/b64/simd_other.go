//go:build !(amd64 || arm64) || purego

package b64

// haveSIMD: segmentio/asm's base64 has no vector code here.
const haveSIMD = false

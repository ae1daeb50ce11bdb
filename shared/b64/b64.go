// Package b64 is padded standard base64 (RFC 4648 §4), the encoding of the
// keys and values in a Lambda Kafka event, made fast for whole events.
//
// Every function here gives exactly the bytes, and the verdict on bad
// input, that encoding/base64's StdEncoding gives (DecodeInPlace, unlike
// it, refuses CR and LF instead of skipping them). The bulk of long inputs
// goes through github.com/segmentio/asm's vector code where the CPU has
// it (AVX2 on amd64, NEON on arm64, as on Lambda's Graviton); the rest,
// and every CPU without it, takes the table-driven scalar code here.
package b64

import simd "github.com/segmentio/asm/base64"

const stdAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

// vector is segmentio/asm's StdEncoding; it is used only where haveSIMD
// says its vector code runs (elsewhere it is plain encoding/base64).
var vector = simd.StdEncoding

// useSIMD is haveSIMD; tests turn it off to check the scalar code on the
// same machine.
var useSIMD = haveSIMD

// simdMin is the input length from which the vector code is worth a call:
// below it the scalar loops are as fast.
const simdMin = 64

package replicate

import (
	"bytes"
	"io"
	"testing"

	"github.com/pierrec/lz4/v4"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestLz4CompressorFrames checks that the compressor writes standard lz4
// frames that decompress to the input, with 256 KiB blocks and no content
// checksum, from pooled writers reused across calls.
func TestLz4CompressorFrames(t *testing.T) {
	c := newLz4Compressor()
	for _, n := range []int{0, 1, 1000, 256 << 10, 1<<20 + 17} {
		src := make([]byte, n)
		for i := range src {
			src[i] = byte(i / 7 % 251)
		}
		var dst bytes.Buffer
		out, codec := c.Compress(&dst, src)
		if codec != kgo.CodecLz4 {
			t.Fatalf("%d bytes: codec %v", n, codec)
		}
		// Frame descriptor: magic (4 bytes), FLG, BD. FLG bit 2 is the
		// content checksum flag; BD bits 4-6 are the block size (5 = 256 KiB).
		if len(out) < 6 || out[4]&0x04 != 0 || out[5]>>4&7 != 5 {
			t.Fatalf("%d bytes: frame descriptor %x, want no content checksum and 256 KiB blocks", n, out[:min(6, len(out))])
		}
		got, err := io.ReadAll(lz4.NewReader(bytes.NewReader(out)))
		if err != nil || !bytes.Equal(got, src) {
			t.Fatalf("%d bytes: round trip err %v, equal %v", n, err, bytes.Equal(got, src))
		}
	}
}

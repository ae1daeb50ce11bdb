package bench

import (
	"encoding/base64"
	"encoding/json"
	"fmt"

	"github.com/aws/aws-lambda-go/events"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/kafkaevent"
)

// A Decoder turns a raw event into records and returns how many it found.
type Decoder struct {
	Name   string
	Decode func(payload []byte) (int, error)
}

// Fast is the replicator's decoder, kafkaevent.Decode.
var Fast = Decoder{Name: "kafkaevent", Decode: func(payload []byte) (int, error) {
	ev, err := kafkaevent.Decode(payload)
	if err != nil {
		return 0, err
	}
	return ev.Records, nil
}}

// StdJSON is the baseline the goal names: encoding/json into
// events.KafkaEvent, leaving keys and values base64 text.
var StdJSON = Decoder{Name: "encoding/json", Decode: func(payload []byte) (int, error) {
	var ev events.KafkaEvent
	if err := json.Unmarshal(payload, &ev); err != nil {
		return 0, err
	}
	n := 0
	for _, rs := range ev.Records {
		n += len(rs)
	}
	return n, nil
}}

// StdJSONRecords is what a handler built on events.KafkaEvent must do to
// get the same result as Fast: encoding/json, then base64-decode keys and
// values into kgo records. It is for information; no goal names it.
var StdJSONRecords = Decoder{Name: "encoding/json+base64→kgo", Decode: func(payload []byte) (int, error) {
	var ev events.KafkaEvent
	if err := json.Unmarshal(payload, &ev); err != nil {
		return 0, err
	}
	n := 0
	for _, rs := range ev.Records {
		out := make([]kgo.Record, len(rs))
		for i, r := range rs {
			k, err := base64.StdEncoding.DecodeString(r.Key)
			if err != nil {
				return 0, fmt.Errorf("key: %w", err)
			}
			v, err := base64.StdEncoding.DecodeString(r.Value)
			if err != nil {
				return 0, fmt.Errorf("value: %w", err)
			}
			hs := make([]kgo.RecordHeader, 0, len(r.Headers))
			for _, h := range r.Headers {
				for hk, hv := range h {
					hs = append(hs, kgo.RecordHeader{Key: hk, Value: hv})
				}
			}
			out[i] = kgo.Record{Topic: r.Topic, Partition: int32(r.Partition), Offset: r.Offset, Timestamp: r.Timestamp.Time, Key: k, Value: v, Headers: hs}
		}
		n += len(out)
	}
	return n, nil
}}

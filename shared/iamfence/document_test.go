package iamfence

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestDocumentExact(t *testing.T) {
	arns, err := TopicARNs("arn:aws:kafka:eu-west-1:123456789012:cluster/src/u-1", []string{"payments", "orders", "payments"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := Document(arns)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"Version":"2012-10-17","Statement":[{"Sid":"KmigCutoverFence","Effect":"Deny",` +
		`"Action":["kafka-cluster:WriteData"],"Resource":[` +
		`"arn:aws:kafka:eu-west-1:123456789012:topic/src/u-1/orders",` +
		`"arn:aws:kafka:eu-west-1:123456789012:topic/src/u-1/payments"]}]}`
	if got != want {
		t.Fatalf("Document =\n%s\nwant\n%s", got, want)
	}
	// Order and duplicates of the input do not change the document.
	again, err := Document([]string{arns[1], arns[0], arns[1], arns[2], arns[0]})
	if err != nil || again != want {
		t.Fatalf("reordered input: %s, %v", again, err)
	}
}

func TestDocumentRejects(t *testing.T) {
	if _, err := Document(nil); !errors.Is(err, ErrNoTopics) {
		t.Errorf("no ARNs: err = %v, want ErrNoTopics", err)
	}
	for _, a := range []string{
		"",
		"*",
		"arn:aws:kafka:us-east-1:123456789012:topic/c/u/*",
		"arn:aws:kafka:us-east-1:123456789012:topic/c/u/ord?rs",
		"arn:aws:kafka:us-east-1:123456789012:cluster/c/u",
		"arn:aws:kafka:us-east-1:123456789012:topic/c/u",
		"arn:aws:kafka:us-east-1:123456789012:topic/c/u/t/x",
		"arn:aws:kafka:us-east-1:123456789012:group/c/u/g",
		"arn:aws:s3:us-east-1:123456789012:topic/c/u/t",
		"arn:aws:kafka:us-east-1:123456789012:topic/c/u/a b",
	} {
		_, err := Document([]string{"arn:aws:kafka:us-east-1:123456789012:topic/c/u/ok", a})
		var e *TopicARNError
		if !errors.As(err, &e) || e.ARN != a {
			t.Errorf("Document with %q: err = %v, want *TopicARNError naming it", a, err)
		}
	}
}

// TestDocumentSizeLimit: a document of exactly MaxDocumentChars is
// accepted; one more character is refused, saying how many topics fit.
func TestDocumentSizeLimit(t *testing.T) {
	const cluster = "arn:aws:kafka:us-east-1:123456789012:cluster/src/u-1"
	topics := make([]string, 60) // 60 topics of 200 characters: ~15,000 characters
	for i := range topics {
		topics[i] = fmt.Sprintf("t%03d-%s", i, strings.Repeat("x", 195))
	}
	arns, err := TopicARNs(cluster, topics)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Document(arns)
	var e *TooLargeError
	if !errors.As(err, &e) {
		t.Fatalf("60 long topics: err = %v, want *TooLargeError", err)
	}
	if e.Topics != 60 || e.Limit != MaxDocumentChars || e.Chars <= MaxDocumentChars {
		t.Fatalf("TooLargeError %+v", *e)
	}
	fits, err := Document(arns[:e.Fit])
	if err != nil || len(fits) > MaxDocumentChars {
		t.Fatalf("the %d topics said to fit: %d characters, %v", e.Fit, len(fits), err)
	}
	if _, err := Document(arns[:e.Fit+1]); err == nil {
		t.Fatalf("%d topics fit, but TooLargeError said %d", e.Fit+1, e.Fit)
	}
	if !strings.Contains(e.Error(), fmt.Sprintf("%d topics fit", e.Fit)) {
		t.Errorf("message %q does not say how many fit", e.Error())
	}

	// Lengthen topics (their unique prefixes keep the order) until the
	// document is exactly at the limit.
	base, err := Document(arns[:e.Fit])
	if err != nil {
		t.Fatal(err)
	}
	padded := append([]string(nil), topics[:e.Fit]...)
	for i, pad := 0, MaxDocumentChars-len(base); pad > 0; i++ {
		n := min(pad, maxTopicLen-len(padded[i]))
		padded[i] += strings.Repeat("y", n)
		pad -= n
	}
	arns, err = TopicARNs(cluster, padded)
	if err != nil {
		t.Fatal(err)
	}
	exact, err := Document(arns)
	if err != nil || len(exact) != MaxDocumentChars {
		t.Fatalf("document of %d characters: %v", len(exact), err)
	}
	over := append(append([]string(nil), padded[:len(padded)-1]...), padded[len(padded)-1]+"z")
	if len(over[len(over)-1]) > maxTopicLen {
		t.Fatal("test setup: the last topic has no room for one more character")
	}
	arns, _ = TopicARNs(cluster, over)
	if _, err := Document(arns); !errors.As(err, &e) || e.Chars != MaxDocumentChars+1 || e.Fit != len(over)-1 {
		t.Fatalf("one character over: err = %v", err)
	}
}

func TestSameDocument(t *testing.T) {
	doc := `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":["a"],"Resource":["r1","r2"]}]}`
	for _, tc := range []struct {
		other string
		same  bool
	}{
		{doc, true},
		{"{\n  \"Statement\": [ {\"Resource\":[\"r1\",\"r2\"], \"Action\":[\"a\"], \"Effect\":\"Deny\"} ],\n  \"Version\": \"2012-10-17\"\n}", true},
		{`{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":["a"],"Resource":["r2","r1"]}]}`, false},
		{`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["a"],"Resource":["r1","r2"]}]}`, false},
		{`not json`, false},
	} {
		if got := sameDocument(doc, tc.other); got != tc.same {
			t.Errorf("sameDocument(doc, %s) = %v, want %v", tc.other, got, tc.same)
		}
	}
	// IAM returns documents URL-encoded.
	enc := "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Deny%22%2C%22Action%22%3A%5B%22a%22%5D%2C%22Resource%22%3A%5B%22r1%22%2C%22r2%22%5D%7D%5D%7D"
	if d := decodeDocument(enc); d != doc {
		t.Errorf("decodeDocument = %s", d)
	}
	if d := decodeDocument("100%"); d != "100%" {
		t.Errorf("an undecodable document is kept as it is, got %q", d)
	}
}

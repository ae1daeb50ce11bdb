package iamfence

import (
	"context"
	"errors"
	"testing"
)

func fenceDoc(t *testing.T) string {
	t.Helper()
	arns, err := TopicARNs(testCluster, []string{"orders", "payments.v1"})
	if err != nil {
		t.Fatal(err)
	}
	doc, err := Document(arns)
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// TestArgs: bad arguments are refused before any IAM call (the nil API
// would panic if called).
func TestArgs(t *testing.T) {
	ctx := context.Background()
	doc := fenceDoc(t)
	for _, tc := range []struct {
		name  string
		roles []string
		doc   string
		is    error
		as    any
	}{
		{"no roles", nil, doc, ErrNoRoles, nil},
		{"bad role", []string{"ok", "arn:aws:sts::123456789012:assumed-role/p/s"}, doc, nil, new(*RoleNameError)},
		{"doc not JSON", []string{"ok"}, "deny all", ErrInvalidDocument, nil},
		{"doc not an object", []string{"ok"}, "[]", ErrInvalidDocument, nil},
		{"doc null", []string{"ok"}, "null", ErrInvalidDocument, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for name, call := range map[string]func() error{
				"Plan":  func() error { _, _, err := Plan(ctx, nil, tc.roles, tc.doc); return err },
				"Apply": func() error { _, _, err := Apply(ctx, nil, nil, tc.roles, tc.doc); return err },
			} {
				err := call()
				if tc.is != nil && !errors.Is(err, tc.is) {
					t.Errorf("%s: err = %v, want %v", name, err, tc.is)
				}
				if tc.as != nil && !errors.As(err, tc.as) {
					t.Errorf("%s: err = %v (%T), want %T", name, err, err, tc.as)
				}
			}
		})
	}
}

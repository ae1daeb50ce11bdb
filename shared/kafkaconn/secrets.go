package kafkaconn

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// SecretsManager reads secrets from AWS Secrets Manager, caching each value
// for the life of the process (a warm Lambda container).
type SecretsManager struct {
	client *secretsmanager.Client
	mu     sync.Mutex
	cache  map[string]string
}

// NewSecretsManager wraps an AWS config.
func NewSecretsManager(cfg aws.Config) *SecretsManager {
	return &SecretsManager{client: secretsmanager.NewFromConfig(cfg), cache: map[string]string{}}
}

// SecretString returns the secret's string value.
func (s *SecretsManager) SecretString(ctx context.Context, arn string) (string, error) {
	s.mu.Lock()
	v, ok := s.cache[arn]
	s.mu.Unlock()
	if ok {
		return v, nil
	}
	out, err := s.client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn)})
	if err != nil {
		return "", fmt.Errorf("getting secret %s: %w", arn, err)
	}
	if out.SecretString == nil {
		return "", fmt.Errorf("secret %s has no string value", arn)
	}
	s.mu.Lock()
	s.cache[arn] = *out.SecretString
	s.mu.Unlock()
	return *out.SecretString, nil
}

// ErrSecretNotFound is returned by SecretsMap for an ARN it does not hold.
var ErrSecretNotFound = errors.New("kafkaconn: no such secret")

// SecretsMap is a Secrets answering from a map of ARN to secret string,
// for local runs and tests: the clients are then built by the same path as
// with Secrets Manager.
type SecretsMap map[string]string

// SecretString returns the secret stored under arn.
func (m SecretsMap) SecretString(_ context.Context, arn string) (string, error) {
	v, ok := m[arn]
	if !ok {
		return "", fmt.Errorf("secret %s: %w", arn, ErrSecretNotFound)
	}
	return v, nil
}

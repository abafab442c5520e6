// Package awsclient is the one place that turns zcloud's small AWS settings
// (region, endpoint override, credentials) into an aws.Config and service
// clients, so production and tests (moto_server) build clients the same way.
package awsclient

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/sns"
)

// Config selects the AWS account, region and endpoint. The zero value plus a
// Region uses the SDK's default credential chain against real AWS.
type Config struct {
	Region string `yaml:"region" json:"region"`
	// Endpoint overrides every service's endpoint (BaseEndpoint), e.g. a
	// moto_server URL in tests. Empty means the real AWS endpoints.
	Endpoint string `yaml:"endpoint,omitempty" json:"endpoint,omitempty"`
	// Profile picks a shared-config profile for the default chain.
	Profile string `yaml:"profile,omitempty" json:"profile,omitempty"`
	// Static credentials, for tests; when AccessKeyID is empty the default
	// chain (env, shared files, instance role...) is used.
	AccessKeyID     string `yaml:"-" json:"-"`
	SecretAccessKey string `yaml:"-" json:"-"`
	SessionToken    string `yaml:"-" json:"-"`
	// MaxAttempts bounds the SDK's own retries per call (0: SDK default).
	MaxAttempts int `yaml:"max_attempts,omitempty" json:"max_attempts,omitempty"`
}

// Load builds the aws.Config for c.
func Load(ctx context.Context, c Config) (aws.Config, error) {
	if c.Region == "" {
		return aws.Config{}, errors.New("awsclient: region is required")
	}
	opts := []func(*config.LoadOptions) error{config.WithRegion(c.Region)}
	if c.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(c.Profile))
	}
	if c.AccessKeyID != "" {
		opts = append(opts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, c.SessionToken)))
	}
	if c.Endpoint != "" {
		opts = append(opts, config.WithBaseEndpoint(c.Endpoint))
	}
	if c.MaxAttempts > 0 {
		opts = append(opts, config.WithRetryMaxAttempts(c.MaxAttempts))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("awsclient: load config: %w", err)
	}
	return cfg, nil
}

// EC2 returns an EC2 client for c.
func EC2(ctx context.Context, c Config) (*ec2.Client, error) {
	cfg, err := Load(ctx, c)
	if err != nil {
		return nil, err
	}
	return ec2.NewFromConfig(cfg), nil
}

// SNS returns an SNS client for c.
func SNS(ctx context.Context, c Config) (*sns.Client, error) {
	cfg, err := Load(ctx, c)
	if err != nil {
		return nil, err
	}
	return sns.NewFromConfig(cfg), nil
}

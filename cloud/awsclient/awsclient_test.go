package awsclient

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"zcloud/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

func TestClientsReachTheEndpoint(t *testing.T) {
	m := testenv.SharedMoto(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := Config{Region: m.Region, Endpoint: m.Endpoint, AccessKeyID: "testing", SecretAccessKey: "testing"}
	e, err := EC2(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.DescribeRegions(ctx, &ec2.DescribeRegionsInput{}); err != nil {
		t.Fatalf("ec2 via moto: %v", err)
	}
	s, err := SNS(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ListTopics(ctx, &sns.ListTopicsInput{}); err != nil {
		t.Fatalf("sns via moto: %v", err)
	}
	// The endpoint really is the override: a dead one fails, fast.
	cfg.Endpoint, cfg.MaxAttempts = "http://127.0.0.1:1", 1
	e, _ = EC2(ctx, cfg)
	if _, err := e.DescribeRegions(ctx, &ec2.DescribeRegionsInput{}); err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Fatalf("dead endpoint: %v", err)
	}
}

func TestLoadNeedsARegion(t *testing.T) {
	if _, err := Load(context.Background(), Config{}); err == nil {
		t.Fatal("no region accepted")
	}
}

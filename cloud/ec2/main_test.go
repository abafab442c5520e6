package ec2

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdk "github.com/aws/aws-sdk-go-v2/service/ec2"

	"zcloud/cloud/awsclient"
	"zcloud/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// motoEnv is a Client on the shared moto_server plus what launches need.
type motoEnv struct {
	c      *Client
	api    *sdk.Client
	ami    string
	subnet string
	az     string
}

func newMotoEnv(t *testing.T) *motoEnv {
	t.Helper()
	m := testenv.SharedMoto(t)
	ctx := context.Background()
	api, err := awsclient.EC2(ctx, awsclient.Config{Region: m.Region, Endpoint: m.Endpoint, AccessKeyID: "testing", SecretAccessKey: "testing"})
	if err != nil {
		t.Fatal(err)
	}
	e := &motoEnv{api: api, c: New(api, fastOptions())}
	// AMI validation is off in moto (MOTO_ENABLE_AMI_VALIDATION), and
	// DescribeImages takes seconds there, so any well-formed id will do.
	e.ami = "ami-0123456789abcdef0"
	subs, err := api.DescribeSubnets(ctx, &sdk.DescribeSubnetsInput{})
	if err != nil || len(subs.Subnets) == 0 {
		t.Fatalf("moto has no subnets: %v", err)
	}
	e.subnet = aws.ToString(subs.Subnets[0].SubnetId)
	e.az = aws.ToString(subs.Subnets[0].AvailabilityZone)
	return e
}

func fastOptions() Options {
	return Options{PollInterval: 20 * time.Millisecond, SpotFulfilmentTimeout: 2 * time.Second}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// unique returns a fresh token so tests sharing one moto never collide.
func unique(prefix string) string {
	b := make([]byte, 6)
	rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

package notify

import (
	"context"
	"fmt"
	"strings"
	"unicode"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sns/types"
)

// SNSAPI is the part of *sns.Client SNS uses.
type SNSAPI interface {
	Publish(context.Context, *sns.PublishInput, ...func(*sns.Options)) (*sns.PublishOutput, error)
}

// SNS publishes events to a topic.
type SNS struct {
	API      SNSAPI
	TopicARN string
}

// snsSubjectMax is SNS's limit: under 100 printable ASCII characters, no
// line breaks.
const snsSubjectMax = 99

// Notify implements Notifier. The subject is made SNS-safe; severity and
// fields travel as message attributes so subscriptions can filter on them.
func (s SNS) Notify(ctx context.Context, e Event) error {
	e = e.withDefaults()
	attrs := map[string]types.MessageAttributeValue{
		"severity": {DataType: aws.String("String"), StringValue: aws.String(string(e.Severity))},
	}
	for k, v := range e.Fields {
		if v != "" && len(attrs) < 10 { // SNS allows 10 attributes
			attrs[k] = types.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
		}
	}
	in := &sns.PublishInput{
		TopicArn:          aws.String(s.TopicARN),
		Subject:           aws.String(snsSubject(fmt.Sprintf("[zcloud %s] %s", e.Severity, e.Subject))),
		Message:           aws.String(messageText(e)),
		MessageAttributes: attrs,
	}
	if _, err := s.API.Publish(ctx, in); err != nil {
		return fmt.Errorf("notify: sns publish to %s: %w", s.TopicARN, err)
	}
	return nil
}

func snsSubject(s string) string {
	s = strings.Map(func(r rune) rune {
		if r > unicode.MaxASCII || !unicode.IsPrint(r) {
			return ' '
		}
		return r
	}, s)
	if len(s) > snsSubjectMax {
		s = s[:snsSubjectMax-3] + "..."
	}
	return s
}

// messageText is the plain-text body: the event body, then its fields.
func messageText(e Event) string {
	var b strings.Builder
	b.WriteString(e.Body)
	if len(e.Fields) > 0 {
		b.WriteString("\n")
		for _, k := range sortedKeys(e.Fields) {
			fmt.Fprintf(&b, "\n%s: %s", k, e.Fields[k])
		}
	}
	fmt.Fprintf(&b, "\n\ntime: %s", e.Time.Format("2006-01-02T15:04:05Z07:00"))
	return b.String()
}

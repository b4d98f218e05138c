package actors

import (
	"strings"
	"testing"
)

func TestPushRegistrationBounds(t *testing.T) {
	for p, want := range map[string]bool{
		"apns": true, "fcm": true, "my_push.v2-x": true, strings.Repeat("p", 32): true,
		"": false, "APNS": false, "bad provider": false, strings.Repeat("p", 33): false, "fcm/x": false,
	} {
		if validProvider(p) != want {
			t.Errorf("validProvider(%q) = %v", p, !want)
		}
	}
	for tok, want := range map[string]bool{
		"": true, "a1b2": true, strings.Repeat("t", maxPushToken): true,
		strings.Repeat("t", maxPushToken+1): false, "has space": false, "tab\t": false, "tök": false, "del\x7f": false,
	} {
		if validPushToken(tok) != want {
			t.Errorf("validPushToken(%.20q) = %v", tok, !want)
		}
	}
}

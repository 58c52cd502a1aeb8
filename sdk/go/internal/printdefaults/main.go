// Command printdefaults prints the defaults this SDK shares with the C and
// Python SDKs, as one JSON line, from the exported constants:
//
//	{"default_timeout_ms":5000,"keepalive_ttl_fraction":0.3333333333333333,"keepalive_jitter":0.1}
//
// tests/sdk_defaults runs it (go run ./internal/printdefaults in sdk/go) and
// compares the three SDKs.
package main

import (
	"encoding/json"
	"fmt"
	"os"

	garbagetruck "github.com/garbagetruck/garbagetruck/sdk/go"
)

func main() {
	line, err := json.Marshal(struct {
		DefaultTimeoutMS     int64   `json:"default_timeout_ms"`
		KeepAliveTTLFraction float64 `json:"keepalive_ttl_fraction"`
		KeepAliveJitter      float64 `json:"keepalive_jitter"`
	}{
		DefaultTimeoutMS:     garbagetruck.DefaultTimeout.Milliseconds(),
		KeepAliveTTLFraction: garbagetruck.KeepAliveTTLFraction,
		KeepAliveJitter:      garbagetruck.KeepAliveJitter,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "printdefaults:", err)
		os.Exit(1)
	}
	fmt.Println(string(line))
}

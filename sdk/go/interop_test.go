package garbagetruck

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/garbagetruck/garbagetruck/sdk/go/gttest"
)

// gtctl runs the C command-line client against endpoint; it skips the test
// when gtctl has not been built.
func gtctl(t *testing.T, endpoint string, args ...string) (stdout, stderr string, exitCode int) {
	t.Helper()
	bin, err := gttest.FindGtctl()
	if err != nil {
		t.Skipf("interop with the C SDK needs gtctl (build it with `cmake --build <build> --target gtctl`, or set GT_GTCTL_BIN): %v", err)
	}
	cmd := exec.Command(bin, append([]string{"--endpoint", endpoint}, args...)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errOut.String(), code
}

func TestInteropWithGtctl(t *testing.T) {
	if _, err := gttest.FindGtctl(); err != nil {
		t.Skipf("interop with the C SDK needs gtctl (build it with `cmake --build <build> --target gtctl`, or set GT_GTCTL_BIN): %v", err)
	}
	b := gttest.Start(t)
	c := dial(t, b.Endpoint, "interop-service")
	ctx := testCtx(t, 20*time.Second)

	// Created in Go, released by gtctl.
	l, err := c.CreateTempFileLease(ctx, "/tmp/from-go", time.Minute, "")
	if err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := gtctl(t, b.Endpoint, "release", l.ID, "--service", "interop-service"); code != 0 {
		t.Fatalf("gtctl release: exit %d\n%s%s", code, out, errOut)
	}
	got, err := c.GetLease(ctx, l.ID)
	if err != nil || got.State != LeaseReleased {
		t.Fatalf("after gtctl release: %+v, %v", got, err)
	}
	// Released twice: gtctl reports the broker's error code.
	_, errOut, code := gtctl(t, b.Endpoint, "release", l.ID, "--service", "interop-service")
	if code != 1 || !strings.HasPrefix(errOut, "LEASE_ENDED") {
		t.Errorf("second release: exit %d, stderr %q", code, errOut)
	}

	// Created by gtctl, released in Go.
	out, errOut, code := gtctl(t, b.Endpoint, "create", "--object", "/tmp/from-c", "--type", "TEMPORARY_FILE",
		"--service", "interop-service", "--ttl", "60", "--meta", "path=/tmp/from-c")
	if code != 0 {
		t.Fatalf("gtctl create: exit %d\n%s%s", code, out, errOut)
	}
	id := strings.TrimSpace(out)
	fromC, err := c.GetLease(ctx, id)
	if err != nil {
		t.Fatalf("GET %q: %v", id, err)
	}
	if fromC.ObjectID != "/tmp/from-c" || fromC.ObjectType != ObjectTypeTemporaryFile || fromC.TTL != time.Minute ||
		fromC.Metadata["path"] != "/tmp/from-c" || fromC.ServiceID != "interop-service" {
		t.Errorf("lease created by gtctl: %+v", fromC)
	}
	released, err := c.ReleaseLease(ctx, id)
	if err != nil || released.State != LeaseReleased {
		t.Fatalf("Go release of the gtctl lease: %+v, %v", released, err)
	}

	// Both see the same record.
	out, errOut, code = gtctl(t, b.Endpoint, "--json", "get", id)
	if code != 0 {
		t.Fatalf("gtctl get: exit %d\n%s%s", code, out, errOut)
	}
	var asJSON map[string]any
	if err := json.Unmarshal([]byte(out), &asJSON); err != nil {
		t.Fatalf("gtctl --json get: %v\n%s", err, out)
	}
	if asJSON["id"] != id || asJSON["state"] != "RELEASED" || asJSON["object_id"] != "/tmp/from-c" {
		t.Errorf("gtctl sees %v", asJSON)
	}
}

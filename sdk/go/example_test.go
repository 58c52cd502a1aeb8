package garbagetruck_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"time"

	garbagetruck "github.com/garbagetruck/garbagetruck/sdk/go"
	"github.com/garbagetruck/garbagetruck/sdk/go/gttest"
)

// The functions used by the examples below are the code snippets of
// README.md, verbatim (TestReadmeSnippets checks it). Each example starts a
// real broker with gttest, runs a snippet against it and prints what happened.

// launch starts a broker for an example; the example's output shows the
// error if there is none.
func launch(settings ...string) *gttest.Broker {
	broker, err := gttest.Launch(settings...)
	if err != nil {
		fmt.Println("cannot start the broker:", err)
		return nil
	}
	return broker
}

// ---- README: quick start

func quickStart(endpoint string) error {
	ctx := context.Background()
	client, err := garbagetruck.Dial(ctx, endpoint, "upload-service")
	if err != nil {
		return err
	}
	defer client.Close()

	lease, err := client.CreateLease(ctx, garbagetruck.CreateRequest{
		ObjectID:   "/tmp/report.pdf",
		ObjectType: garbagetruck.ObjectTypeTemporaryFile,
		TTL:        10 * time.Minute,
		Metadata:   map[string]string{"owner": "reports"},
	})
	if err != nil {
		return err
	}
	fmt.Println("leased", lease.ObjectID, "until", lease.ExpiresAt.Sub(lease.CreatedAt))

	lease, err = client.ReleaseLease(ctx, lease.ID)
	if err != nil {
		return err
	}
	fmt.Println(lease.ObjectID, "is", lease.State)
	return nil
}

func Example() {
	broker := launch()
	if broker == nil {
		return
	}
	defer broker.Stop()
	if err := quickStart(broker.Endpoint); err != nil {
		fmt.Println(err)
	}
	// Output:
	// leased /tmp/report.pdf until 10m0s
	// /tmp/report.pdf is RELEASED
}

// ---- README: temporary file

func processUpload(ctx context.Context, client *garbagetruck.Client) error {
	path := "/tmp/user-upload-123.jpg"
	// Delete the file after an hour unless released earlier.
	lease, err := client.CreateTempFileLease(ctx, path, time.Hour, "http://my-service/cleanup-file")
	if err != nil {
		return err
	}

	processImage(path)

	// Done: release early; the broker calls the cleanup endpoint now.
	_, err = client.ReleaseLease(ctx, lease.ID)
	return err
}

func processImage(path string) { fmt.Println("processing", path) }

func Example_temporaryFile() {
	broker := launch()
	if broker == nil {
		return
	}
	defer broker.Stop()
	ctx := context.Background()
	client, err := garbagetruck.Dial(ctx, broker.Endpoint, "upload-service")
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	if err := processUpload(ctx, client); err != nil {
		fmt.Println(err)
	}
	for lease, err := range client.ListLeases(ctx, garbagetruck.ListFilter{ServiceID: "upload-service"}) {
		if err != nil {
			fmt.Println(err)
			break
		}
		fmt.Println(lease.ObjectType, lease.ObjectID, lease.Metadata["path"], lease.State)
	}
	// Output:
	// processing /tmp/user-upload-123.jpg
	// TEMPORARY_FILE /tmp/user-upload-123.jpg /tmp/user-upload-123.jpg RELEASED
}

// ---- README: database row

func createUserSession(ctx context.Context, client *garbagetruck.Client, sessionID string) error {
	// Protect the row: if this service crashes, the row is cleaned up in 30 minutes.
	lease, err := client.CreateDBRowLease(ctx, "user_sessions", sessionID, 30*time.Minute,
		"http://auth-service/cleanup-session")
	if err != nil {
		return err
	}

	// The user is active: extend the session.
	if _, err := client.RenewLease(ctx, lease.ID, 30*time.Minute); err != nil {
		return err
	}

	// The user logs out: clean up now.
	_, err = client.ReleaseLease(ctx, lease.ID)
	return err
}

func Example_databaseRow() {
	broker := launch()
	if broker == nil {
		return
	}
	defer broker.Stop()
	ctx := context.Background()
	client, err := garbagetruck.Dial(ctx, broker.Endpoint, "auth-service")
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	if err := createUserSession(ctx, client, "s-42"); err != nil {
		fmt.Println(err)
	}
	leases, _, err := client.ListPage(ctx, garbagetruck.ListFilter{ObjectID: "user_sessions:s-42"}, "")
	if err != nil {
		fmt.Println(err)
		return
	}
	l := leases[0]
	fmt.Println(l.ObjectID, l.Metadata["table"], l.Metadata["row_id"], l.Renewals, l.State)
	// Output:
	// user_sessions:s-42 user_sessions s-42 1 RELEASED
}

// ---- README: blob storage

func uploadTempFile(ctx context.Context, client *garbagetruck.Client, key string, keep bool) error {
	// The blob was uploaded to the "temp-uploads" bucket under key.
	lease, err := client.CreateBlobLease(ctx, "temp-uploads", key, time.Hour,
		"http://storage-service/delete-s3-object")
	if err != nil {
		return err
	}

	if keep {
		// Moved to permanent storage: release, but keep the object.
		_, err = client.ReleaseLease(ctx, lease.ID, garbagetruck.Retain())
	} else {
		// Not needed: release, and the blob is deleted.
		_, err = client.ReleaseLease(ctx, lease.ID)
	}
	return err
}

func Example_blobStorage() {
	broker := launch()
	if broker == nil {
		return
	}
	defer broker.Stop()
	ctx := context.Background()
	client, err := garbagetruck.Dial(ctx, broker.Endpoint, "storage-service")
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	events, cancel := context.WithCancel(ctx)
	defer cancel()
	sub, err := client.Subscribe(events, broker.EventsEndpoint, garbagetruck.SubscribeOptions{
		Topics: []string{garbagetruck.ServicePrefix("storage-service") + "reclaimed."},
	})
	if err != nil {
		log.Fatal(err)
	}

	if err := uploadTempFile(ctx, client, "report-1.csv", true); err != nil {
		fmt.Println(err)
	}
	if err := uploadTempFile(ctx, client, "scratch-2.csv", false); err != nil {
		fmt.Println(err)
	}
	select {
	case ev := <-sub.Events(): // only the blob that was not kept is reclaimed
		fmt.Println(ev.Kind, ev.Lease.ObjectID, ev.Reason)
	case <-time.After(10 * time.Second):
		fmt.Println("no event")
	}
	// Output:
	// object.reclaimed temp-uploads/scratch-2.csv released
}

// ---- README: WebSocket session

func handleWebSocketConnection(ctx context.Context, client *garbagetruck.Client,
	sessionID, userID string, messages <-chan string) error {
	// If this process dies, the session is force-closed after 5 minutes.
	lease, err := client.CreateSessionLease(ctx, sessionID, userID, 5*time.Minute,
		"http://websocket-service/force-disconnect")
	if err != nil {
		return err
	}
	for range messages { // each message proves the connection is alive
		if _, err := client.RenewLease(ctx, lease.ID, 5*time.Minute); err != nil {
			return err
		}
	}
	// The connection closed normally.
	_, err = client.ReleaseLease(ctx, lease.ID)
	return err
}

func Example_webSocketSession() {
	broker := launch()
	if broker == nil {
		return
	}
	defer broker.Stop()
	ctx := context.Background()
	client, err := garbagetruck.Dial(ctx, broker.Endpoint, "websocket-service")
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	messages := make(chan string, 3)
	messages <- "hello"
	messages <- "ping"
	messages <- "bye"
	close(messages)
	if err := handleWebSocketConnection(ctx, client, "ws-7", "user-1", messages); err != nil {
		fmt.Println(err)
	}
	leases, _, err := client.ListPage(ctx, garbagetruck.ListFilter{ObjectType: garbagetruck.ObjectTypeWebSocketSession}, "")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(leases[0].ObjectID, leases[0].Metadata["user_id"], leases[0].Renewals, leases[0].State)
	// Output:
	// ws-7 user-1 3 RELEASED
}

// ---- README: keep-alive

func runExport(ctx context.Context, client *garbagetruck.Client, work <-chan struct{}) error {
	// Hold the scratch directory for as long as the export runs; the
	// client renews the lease in the background.
	held, err := client.Hold(ctx, garbagetruck.CreateRequest{
		ObjectID:   "/scratch/export-9",
		ObjectType: garbagetruck.ObjectTypeTemporaryFile,
		TTL:        30 * time.Second,
	})
	if err != nil {
		return err
	}
	select {
	case <-work: // the export finished
		return held.Release(ctx)
	case <-held.Done(): // lost: someone else released it, or the broker was unreachable
		return fmt.Errorf("export aborted: %w", held.Err())
	}
}

func Example_keepAlive() {
	broker := launch()
	if broker == nil {
		return
	}
	defer broker.Stop()
	ctx := context.Background()
	client, err := garbagetruck.Dial(ctx, broker.Endpoint, "export-service")
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	finished := make(chan struct{})
	close(finished)
	fmt.Println("export:", runExport(ctx, client, finished))
	// Output:
	// export: <nil>
}

// ---- README: events

func watchReclaims(ctx context.Context, client *garbagetruck.Client, eventsEndpoint string,
	fromSeq uint64, handle func(garbagetruck.Event)) error {
	// Every temporary file of upload-service that was reclaimed, from event
	// fromSeq on: in order, each once, history first. Persist the last
	// handled ev.Seq to resume after a restart.
	sub, err := client.Subscribe(ctx, eventsEndpoint, garbagetruck.SubscribeOptions{
		Topics:  []string{garbagetruck.ServicePrefix("upload-service") + "reclaimed.TEMPORARY_FILE"},
		FromSeq: &fromSeq,
	})
	if err != nil {
		return err
	}
	for ev := range sub.Events() { // until ctx ends
		handle(ev)
	}
	return sub.Err() // nil when ctx ended; ErrTooOld if events were lost for good
}

func Example_events() {
	broker := launch("--min-lease", "0.05")
	if broker == nil {
		return
	}
	defer broker.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client, err := garbagetruck.Dial(ctx, broker.Endpoint, "upload-service")
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	seen := 0
	watched := make(chan error)
	go func() {
		watched <- watchReclaims(ctx, client, broker.EventsEndpoint, 1, func(ev garbagetruck.Event) {
			fmt.Println("delete", ev.Lease.ObjectID, "because its lease", ev.Reason)
			if seen++; seen == 2 {
				cancel()
			}
		})
	}()
	client.CreateTempFileLease(ctx, "/tmp/a", 300*time.Millisecond, "") // expires
	b, _ := client.CreateTempFileLease(ctx, "/tmp/b", time.Minute, "")
	client.ReleaseLease(ctx, b.ID)
	fmt.Println(<-watched)
	// Output:
	// delete /tmp/b because its lease released
	// delete /tmp/a because its lease expired
	// <nil>
}

// ---- README: errors

func renewOrRecreate(ctx context.Context, client *garbagetruck.Client, leaseID string) (*garbagetruck.Lease, error) {
	lease, err := client.RenewLease(ctx, leaseID, 0)
	switch {
	case errors.Is(err, garbagetruck.ErrLeaseEnded), errors.Is(err, garbagetruck.ErrNotFound):
		// Too late: the object may be reclaimed already. Start over.
		return nil, fmt.Errorf("lease gone, recreate the object: %w", err)
	case errors.Is(err, context.DeadlineExceeded):
		// No reply in time: the renewal may or may not have happened. RENEW is safe to retry.
		return client.RenewLease(ctx, leaseID, 0)
	case err != nil:
		var be *garbagetruck.BrokerError
		if errors.As(err, &be) {
			return nil, fmt.Errorf("broker says %s: %s", be.Code, be.Message)
		}
		return nil, err
	}
	return lease, nil
}

func Example_errors() {
	broker := launch()
	if broker == nil {
		return
	}
	defer broker.Stop()
	ctx := context.Background()
	client, err := garbagetruck.Dial(ctx, broker.Endpoint, "cart-service")
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	lease, _ := client.CreateDBRowLease(ctx, "carts", "9", time.Minute, "")
	client.ReleaseLease(ctx, lease.ID)
	_, err = renewOrRecreate(ctx, client, lease.ID)
	fmt.Println(errors.Is(err, garbagetruck.ErrLeaseEnded))
	// Output:
	// true
}

// ---- README: CURVE

func dialSecure(ctx context.Context, endpoint, serverCert, clientCert string) (*garbagetruck.Client, error) {
	// The broker's public certificate (or its Z85 key) and this service's
	// secret certificate, both made by `gtctl keygen`. The key names the
	// service, so the service id may be left empty.
	return garbagetruck.Dial(ctx, endpoint, "",
		garbagetruck.WithServerKey(serverCert),
		garbagetruck.WithClientCert(clientCert))
}

func Example_curve() {
	dir, err := os.MkdirTemp("", "gt-curve-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	curve, err := gttest.NewCurve(dir)
	if err != nil {
		log.Fatal(err)
	}
	upload, err := curve.AddClient("upload", gttest.Principal{Service: "upload-service"})
	if err != nil {
		log.Fatal(err)
	}
	broker := launch(curve.Args()...)
	if broker == nil {
		return
	}
	defer broker.Stop()
	ctx := context.Background()
	client, err := dialSecure(ctx, broker.Endpoint, curve.ServerCert, upload.SecretCert)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	lease, err := client.CreateLease(ctx, garbagetruck.CreateRequest{ObjectID: "/tmp/secure"})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("leased for", lease.ServiceID)
	_, err = client.Stats(ctx) // a service's key may not read STATS
	fmt.Println(errors.Is(err, garbagetruck.ErrPermissionDenied))
	// Output:
	// leased for upload-service
	// true
}

// ---- README: webhook

func cleanupServer(secret []byte) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST /cleanup-file", garbagetruck.CallbackHandler(secret,
		func(ctx context.Context, cb *garbagetruck.Callback) error {
			// Called once the object is reclaimed, possibly more than once:
			// deleting must be idempotent.
			err := os.Remove(cb.ObjectID)
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			return err // an error answers 500: the broker retries
		}))
	return mux
}

func ExampleCallbackHandler() {
	secret := []byte("shared-secret")
	server := httptest.NewServer(cleanupServer(secret))
	defer server.Close()

	file, _ := os.CreateTemp("", "upload-*.jpg")
	file.Close()
	// What the broker sends when the file's last lease ends:
	body := fmt.Sprintf(`{"lease_id":"0123456789abcdef0123456789abcdef","object_id":%q,`+
		`"object_type":"TEMPORARY_FILE","service_id":"upload-service","metadata":{},`+
		`"payload":"","reason":"expired","seq":12,"fence":1,"attempt":1}`, file.Name())
	now := time.Now()
	req, _ := http.NewRequest("POST", server.URL+"/cleanup-file", strings.NewReader(body))
	req.Header.Set(garbagetruck.HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	req.Header.Set(garbagetruck.HeaderSignature, garbagetruck.Sign([]byte(body), secret, now))
	req.Header.Set(garbagetruck.HeaderIdempotencyKey, "12")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	_, statErr := os.Stat(file.Name())
	fmt.Println(resp.StatusCode, errors.Is(statErr, os.ErrNotExist))
	// Output:
	// 204 true
}

func ExampleVerifySignature() {
	secret := []byte("shared-secret")
	body := []byte(`{"lease_id":"0123456789abcdef0123456789abcdef"}`)
	header := http.Header{}
	now := time.Now()
	header.Set(garbagetruck.HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	header.Set(garbagetruck.HeaderSignature, garbagetruck.Sign(body, secret, now))

	fmt.Println(garbagetruck.VerifySignature(body, header, secret, 5*time.Minute))
	err := garbagetruck.VerifySignature(body, header, []byte("wrong"), 5*time.Minute)
	fmt.Println(errors.Is(err, garbagetruck.ErrBadSignature))
	// Output:
	// <nil>
	// true
}

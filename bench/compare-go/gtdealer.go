package main

// batchDealer: the GarbageTruck driver's request sockets, a DEALER each,
// driven through a small C loop that sends a whole batch of requests and
// reads as many replies in one cgo call. Through pebbe/zmq4 each frame
// costs about six cgo calls and an allocation, which made the load
// client's CPU per operation about twice go-redis's on the two cores the
// servers share with it. Replies are checked and decoded in Go as before.

/*
#cgo pkg-config: libzmq
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#define GT_DEALER_TRUNCATED    0xFFFFFFFFu

//  Send count requests (sizes [i] bytes each, back to back in out), then
//  receive count replies into in, each as [u32 size][bytes]; a reply too
//  long for the room left has its size as GT_DEALER_TRUNCATED (and no
//  bytes).  Receiving waits as the socket's ZMQ_RCVTIMEO (timeout_ms)
//  says.  Returns the replies received (fewer if one did not come in
//  time), or -1 if a request could not be sent; *used is the bytes of in
//  they take.
//
//  A signal interrupts a blocking zmq_recv (EINTR), and the Go runtime
//  sends them to its threads (SIGURG, to preempt goroutines): taken for a
//  timeout, it cut a connection's load short at random.  So a wait a
//  signal interrupted goes on while less than timeout_ms has passed since
//  it began (each retry waits the socket's timeout again: a reply that
//  never comes is given up after at most twice timeout_ms).
static int64_t
gt_dealer_now_ms (void)
{
    struct timespec now;
    clock_gettime (CLOCK_MONOTONIC, &now);
    return (int64_t) now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

static int
gt_dealer_exchange (void *socket, const char *out, const int *sizes, int count,
                    char *in, int cap, long timeout_ms, int *used)
{
    *used = 0;
    for (int i = 0; i < count; i++) {
        int rc;
        while ((rc = zmq_send (socket, out, (size_t) sizes [i], 0)) < 0 && errno == EINTR)
            ;
        if (rc < 0)
            return -1;
        out += sizes [i];
    }
    int at = 0, received = 0;
    for (; received < count; received++) {
        int room = cap - at - 4;
        int64_t began = gt_dealer_now_ms ();
        int size;
        while ((size = zmq_recv (socket, in + at + 4, room > 0 ? (size_t) room : 0, 0)) < 0 && errno == EINTR)
            if (gt_dealer_now_ms () - began >= timeout_ms)
                break;
        if (size < 0)
            break;                      //  timed out
        uint32_t stored = (uint32_t) size;
        if (size > room) {
            stored = GT_DEALER_TRUNCATED;
            size = 0;
        }
        memcpy (in + at, &stored, sizeof (stored));
        at += 4 + size;
    }
    *used = at;
    return received;
}
*/
import "C"

import (
	"encoding/binary"
	"time"
	"unsafe"
)

type batchDealer struct {
	ctx   unsafe.Pointer // its own libzmq context
	sock  unsafe.Pointer // the DEALER socket
	out   []byte         // a batch's requests, back to back
	sizes []C.int        // their sizes
	in    []byte         // a batch's replies
	wait  time.Duration  // the receive timeout
}

const dealerTruncated = 0xFFFFFFFF

// newBatchDealer connects a DEALER to endpoint: no high-water marks, no
// linger, a receive timeout.
func newBatchDealer(endpoint string, timeout time.Duration) (*batchDealer, error) {
	d := &batchDealer{ctx: C.zmq_ctx_new(), in: make([]byte, 4<<20), wait: timeout}
	if d.ctx == nil {
		return nil, zmqError("zmq_ctx_new")
	}
	if d.sock = C.zmq_socket(d.ctx, C.ZMQ_DEALER); d.sock == nil {
		err := zmqError("zmq_socket")
		C.zmq_ctx_term(d.ctx)
		return nil, err
	}
	var err error
	for _, option := range []struct {
		name  C.int
		value int
	}{{C.ZMQ_LINGER, 0}, {C.ZMQ_SNDHWM, 0}, {C.ZMQ_RCVHWM, 0}, {C.ZMQ_RCVTIMEO, int(timeout.Milliseconds())}} {
		if err == nil {
			err = setIntOption(d.sock, option.name, option.value)
		}
	}
	if err == nil {
		address := C.CString(endpoint)
		if C.zmq_connect(d.sock, address) != 0 {
			err = zmqError("zmq_connect " + endpoint)
		}
		C.free(unsafe.Pointer(address))
	}
	if err != nil {
		d.close()
		return nil, err
	}
	return d, nil
}

// exchange sends the requests and hands each reply to each, in the order
// they came (a reply is valid during the call only; one too long for the
// buffer comes as nil). It returns how many replies came before the
// receive timeout, or an error if a request could not be sent.
func (d *batchDealer) exchange(requests [][]byte, each func(reply []byte)) (int, error) {
	d.out, d.sizes = d.out[:0], d.sizes[:0]
	for _, request := range requests {
		d.out = append(d.out, request...)
		d.sizes = append(d.sizes, C.int(len(request)))
	}
	if len(requests) == 0 || len(d.out) == 0 {
		return 0, nil
	}
	var used C.int
	received := C.gt_dealer_exchange(d.sock, (*C.char)(unsafe.Pointer(&d.out[0])), &d.sizes[0], C.int(len(requests)),
		(*C.char)(unsafe.Pointer(&d.in[0])), C.int(len(d.in)), C.long(d.wait.Milliseconds()), &used)
	if received < 0 {
		return 0, zmqError("zmq_send")
	}
	for at, k := 0, 0; k < int(received); k++ {
		size := binary.NativeEndian.Uint32(d.in[at:])
		at += 4
		if size == dealerTruncated {
			each(nil)
			continue
		}
		each(d.in[at : at+int(size)])
		at += int(size)
	}
	return int(received), nil
}

func (d *batchDealer) close() {
	if d.sock != nil {
		C.zmq_close(d.sock)
		d.sock = nil
	}
	if d.ctx != nil {
		C.zmq_ctx_term(d.ctx)
		d.ctx = nil
	}
}

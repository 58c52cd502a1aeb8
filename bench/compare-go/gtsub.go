package main

// eventSub: the GarbageTruck driver's SUB socket, read through a small C
// loop that takes every event queued in one cgo call. Through pebbe/zmq4
// each frame costs about six cgo calls (init, recv, data, copy, close, and
// a getsockopt for "more") and an allocation: in the burst case (100,000
// events due in one millisecond) that subscriber used about 250 ms of CPU,
// more than twice the broker's thread, and was what the benchmark measured.
// The events are checked and decoded in Go exactly as before.

/*
#cgo pkg-config: libzmq
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

//  Longest topic kept (GTLP's topics are at most 255 bytes) and the room
//  the loop wants left before it takes one more event
#define GT_SUB_TOPIC_MAX    256
#define GT_SUB_ROOM         (8 + GT_SUB_TOPIC_MAX + 64 * 1024)
#define GT_SUB_TRUNCATED    0xFFFFFFFFu

//  Wait up to timeout_ms for an event, then take every event queued
//  without waiting, each as [u32 topic size][u32 body size][topic][body]
//  in buf, until fewer than GT_SUB_ROOM bytes are left.  A frame too long
//  for its room has its size as GT_SUB_TRUNCATED (and no bytes); parts
//  after the second are dropped.  Returns the bytes used, or -1 on an
//  error other than a signal.
static int
gt_sub_drain (void *socket, long timeout_ms, char *buf, int cap)
{
    zmq_pollitem_t item = { socket, 0, ZMQ_POLLIN, 0 };
    int rc = zmq_poll (&item, 1, timeout_ms);
    if (rc < 0)
        return errno == EINTR ? 0 : -1;
    int used = 0;
    while (rc > 0 && cap - used >= GT_SUB_ROOM) {
        char *record = buf + used;
        int topic = zmq_recv (socket, record + 8, GT_SUB_TOPIC_MAX, ZMQ_DONTWAIT);
        if (topic < 0)
            break;                      //  none queued (EAGAIN), or a signal
        uint32_t sizes [2] = { (uint32_t) topic, 0 };
        int kept = topic;
        if (topic > GT_SUB_TOPIC_MAX) {
            sizes [0] = GT_SUB_TRUNCATED;
            kept = 0;
        }
        int more = 0;
        size_t more_size = sizeof (more);
        zmq_getsockopt (socket, ZMQ_RCVMORE, &more, &more_size);
        if (more) {
            int room = cap - used - 8 - kept;
            //  (the parts of a message come together: a wait here is a
            //  signal's, EINTR, from the Go runtime; see gtdealer.go)
            int body;
            while ((body = zmq_recv (socket, record + 8 + kept, (size_t) room, 0)) < 0 && errno == EINTR)
                ;
            if (body < 0)
                return -1;
            sizes [1] = (uint32_t) body;
            if (body > room) {
                sizes [1] = GT_SUB_TRUNCATED;
                body = 0;
            }
            kept += body;
            zmq_getsockopt (socket, ZMQ_RCVMORE, &more, &more_size);
            while (more) {
                char spare [1];
                int rc;
                while ((rc = zmq_recv (socket, spare, sizeof (spare), 0)) < 0 && errno == EINTR)
                    ;
                if (rc < 0)
                    return -1;
                zmq_getsockopt (socket, ZMQ_RCVMORE, &more, &more_size);
            }
        }
        memcpy (record, sizes, sizeof (sizes));
        used += 8 + kept;
    }
    return used;
}
*/
import "C"

import (
	"encoding/binary"
	"errors"
	"time"
	"unsafe"
)

type eventSub struct {
	ctx  unsafe.Pointer // its own libzmq context
	sock unsafe.Pointer // the SUB socket
	buf  []byte         // what one drain took
}

const subTruncated = 0xFFFFFFFF

func zmqError(what string) error {
	return errors.New(what + ": " + C.GoString(C.zmq_strerror(C.zmq_errno())))
}

func setIntOption(sock unsafe.Pointer, option C.int, value int) error {
	v := C.int(value)
	if C.zmq_setsockopt(sock, option, unsafe.Pointer(&v), C.size_t(unsafe.Sizeof(v))) != 0 {
		return zmqError("zmq_setsockopt")
	}
	return nil
}

func (s *eventSub) setInt(option C.int, value int) error {
	return setIntOption(s.sock, option, value)
}

func (s *eventSub) setBytes(option C.int, value string) error {
	p := C.CBytes([]byte(value))
	defer C.free(p)
	if C.zmq_setsockopt(s.sock, option, p, C.size_t(len(value))) != 0 {
		return zmqError("zmq_setsockopt")
	}
	return nil
}

// newEventSub connects a SUB socket to endpoint with these subscriptions.
func newEventSub(endpoint string, topics []string) (*eventSub, error) {
	s := &eventSub{ctx: C.zmq_ctx_new(), buf: make([]byte, 4<<20)}
	if s.ctx == nil {
		return nil, zmqError("zmq_ctx_new")
	}
	if s.sock = C.zmq_socket(s.ctx, C.ZMQ_SUB); s.sock == nil {
		err := zmqError("zmq_socket")
		C.zmq_ctx_term(s.ctx)
		return nil, err
	}
	err := s.setInt(C.ZMQ_LINGER, 0)
	if err == nil {
		err = s.setInt(C.ZMQ_RCVHWM, 0)
	}
	if err == nil {
		err = s.setInt(C.ZMQ_RCVBUF, 8<<20)
	}
	for _, topic := range topics {
		if err == nil {
			err = s.setBytes(C.ZMQ_SUBSCRIBE, topic)
		}
	}
	if err == nil {
		address := C.CString(endpoint)
		if C.zmq_connect(s.sock, address) != 0 {
			err = zmqError("zmq_connect " + endpoint)
		}
		C.free(unsafe.Pointer(address))
	}
	if err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

func (s *eventSub) unsubscribe(topic string) error {
	return s.setBytes(C.ZMQ_UNSUBSCRIBE, topic)
}

// drain waits up to timeout for events and hands each one queued to each
// (topic and body are valid during the call only; a frame too long for
// the buffer comes as nil). It returns how many it handed over.
func (s *eventSub) drain(timeout time.Duration, each func(topic, body []byte)) (int, error) {
	used := C.gt_sub_drain(s.sock, C.long(timeout.Milliseconds()), (*C.char)(unsafe.Pointer(&s.buf[0])),
		C.int(len(s.buf)))
	if used < 0 {
		return 0, zmqError("zmq_recv")
	}
	events := 0
	for at := 0; at < int(used); events++ {
		topicSize := binary.NativeEndian.Uint32(s.buf[at:])
		bodySize := binary.NativeEndian.Uint32(s.buf[at+4:])
		at += 8
		var topic, body []byte
		if topicSize != subTruncated {
			topic = s.buf[at : at+int(topicSize)]
			at += int(topicSize)
		}
		if bodySize != subTruncated {
			body = s.buf[at : at+int(bodySize)]
			at += int(bodySize)
		}
		each(topic, body)
	}
	return events, nil
}

func (s *eventSub) close() {
	if s.sock != nil {
		C.zmq_close(s.sock)
		s.sock = nil
	}
	if s.ctx != nil {
		C.zmq_ctx_term(s.ctx)
		s.ctx = nil
	}
}

package main

// etcd driver: one clientv3 client (one gRPC connection) per connection, D
// goroutines per client so that D requests are in flight on each. A logical
// create is LeaseGrant + Put with the lease; renew is LeaseKeepAliveOnce;
// release is LeaseRevoke (which deletes the key). Expiry: a watch on the key
// prefix for DELETE events.

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

const etcdPrefix = "lease/"

type etcdDriver struct {
	clients   []*clientv3.Client // one per connection (+1 for lock-step and watch)
	ids       []int64            // lease id of item i (0 until created)
	deadlines []atomic.Int64     // expiry load: grant reply time + TTL, wall ms
}

func newEtcdDriver(endpoint string, conns, items int) (*etcdDriver, error) {
	d := &etcdDriver{ids: make([]int64, items)}
	for c := 0; c <= conns; c++ {
		client, err := clientv3.New(clientv3.Config{
			Endpoints:   []string{endpoint},
			DialTimeout: 5 * time.Second,
			Logger:      zap.NewNop(),
		})
		if err != nil {
			d.close()
			return nil, err
		}
		d.clients = append(d.clients, client)
	}
	return d, nil
}

func (d *etcdDriver) close() {
	for _, c := range d.clients {
		_ = c.Close()
	}
	d.clients = nil
}

func etcdKey(i int) string { return etcdPrefix + strconv.Itoa(i) }

func (d *etcdDriver) prepare(opKind, []int, time.Duration) {}

func (d *etcdDriver) created(i int) bool { return d.ids[i] != 0 }

// one performs one logical operation on item i.
func (d *etcdDriver) one(client *clientv3.Client, op opKind, i int, ttlSeconds int64) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	switch op {
	case opCreate:
		grant, err := client.Grant(ctx, ttlSeconds)
		if err != nil {
			return false
		}
		if _, err := client.Put(ctx, etcdKey(i), gtService, clientv3.WithLease(grant.ID)); err != nil {
			return false
		}
		atomic.StoreInt64(&d.ids[i], int64(grant.ID))
	case opRenew:
		if _, err := client.KeepAliveOnce(ctx, clientv3.LeaseID(atomic.LoadInt64(&d.ids[i]))); err != nil {
			return false
		}
	case opRelease:
		if _, err := client.Revoke(ctx, clientv3.LeaseID(atomic.LoadInt64(&d.ids[i]))); err != nil {
			return false
		}
	}
	return true
}

// window runs do(i) for items with depth goroutines pulling the next item,
// so that depth requests stay in flight until stop.
func window(items []int, depth int, stop time.Time, do func(i int) bool) (done, errs int) {
	var next, okCount, errCount atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < depth; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) {
				k := int(next.Add(1)) - 1
				if k >= len(items) {
					return
				}
				if do(items[k]) {
					okCount.Add(1)
				} else {
					errCount.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return int(okCount.Load()), int(errCount.Load())
}

func (d *etcdDriver) run(c int, op opKind, items []int, depth int, stop time.Time) (done, errs int) {
	ttl := int64(createTTL / time.Second)
	return window(items, depth, stop, func(i int) bool { return d.one(d.clients[c], op, i, ttl) })
}

func (d *etcdDriver) lockstep(items []int, count int, stop time.Time) []float64 {
	client := d.clients[len(d.clients)-1]
	var lat []float64
	for k := 0; k < count && time.Now().Before(stop); k++ {
		start := time.Now()
		if !d.one(client, opRenew, items[k%len(items)], 0) {
			continue
		}
		lat = append(lat, float64(time.Since(start).Nanoseconds())/1e3)
	}
	return lat
}

// load grants whole-second TTLs chosen so that each lease falls due in the
// second after its planned deadline; the deadline recorded is the grant's
// reply time + TTL (the server starts the TTL before it replies, so this
// is never earlier than the true deadline: it favours etcd).
func (d *etcdDriver) load(c int, items []int, depth int, stop time.Time, deadline func(i int) int64) int {
	if d.deadlines == nil {
		panic("etcd load: deadlines not allocated") // programmer error
	}
	client := d.clients[c]
	done, _ := window(items, depth, stop, func(i int) bool {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		ttl := (deadline(i) - time.Now().UnixMilli() + 999) / 1000
		grant, err := client.Grant(ctx, max(ttl, 1))
		if err != nil {
			return false
		}
		d.deadlines[i].Store(time.Now().UnixMilli() + grant.TTL*1000)
		if _, err = client.Put(ctx, etcdKey(i), gtService, clientv3.WithLease(grant.ID)); err != nil {
			return false
		}
		atomic.StoreInt64(&d.ids[i], int64(grant.ID))
		return true
	})
	return done
}

func (d *etcdDriver) subscribe(ctx context.Context, deliver func(i int, deadlineMS float64, recvUS int64)) error {
	client := d.clients[len(d.clients)-1]
	watch := client.Watch(ctx, etcdPrefix, clientv3.WithPrefix(), clientv3.WithFilterPut(), clientv3.WithCreatedNotify())
	select {
	case first, ok := <-watch: // the watch's creation notice
		if !ok {
			return context.Canceled
		}
		if err := first.Err(); err != nil {
			return err
		}
	case <-time.After(10 * time.Second):
		return context.DeadlineExceeded
	}
	go func() {
		for resp := range watch {
			recv := time.Now().UnixMicro()
			for _, ev := range resp.Events {
				if ev.Type != clientv3.EventTypeDelete {
					continue
				}
				i, err := strconv.Atoi(strings.TrimPrefix(string(ev.Kv.Key), etcdPrefix))
				if err == nil && i >= 0 && i < len(d.deadlines) {
					deliver(i, float64(d.deadlines[i].Load()), recv)
				}
			}
		}
	}()
	return nil
}

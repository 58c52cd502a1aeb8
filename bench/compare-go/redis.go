package main

// Redis driver: go-redis pipelines (D commands per round trip) on C pooled
// connections; expiry through keyspace notifications (__keyevent@0__:expired).

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

const redisExpiredChannel = "__keyevent@0__:expired"

type redisDriver struct {
	client *redis.Client
	ok     []bool // item i was created
}

func newRedisDriver(addr string, conns, items int) *redisDriver {
	client := redis.NewClient(&redis.Options{
		Addr:            addr,
		PoolSize:        conns + 2, // the C workers, the lock-step client and the subscriber
		MinIdleConns:    conns,
		ReadTimeout:     15 * time.Second,
		WriteTimeout:    15 * time.Second,
		DisableIdentity: true,
		Protocol:        2,
	})
	return &redisDriver{client: client, ok: make([]bool, items)}
}

func (d *redisDriver) close() { _ = d.client.Close() }

func redisKey(i int) string { return "lease:" + strconv.Itoa(i) }

func (d *redisDriver) prepare(opKind, []int, time.Duration) {}

func (d *redisDriver) created(i int) bool { return d.ok[i] }

// pipeline sends one command per item of batch in one round trip; a
// successful SET marks its item created.
func (d *redisDriver) pipeline(batch []int, add func(pipe redis.Pipeliner, i int) redis.Cmder) (done, errs int) {
	ctx := context.Background()
	pipe := d.client.Pipeline()
	cmds := make([]redis.Cmder, len(batch))
	for k, i := range batch {
		cmds[k] = add(pipe, i)
	}
	_, _ = pipe.Exec(ctx)
	for k, cmd := range cmds {
		if cmd.Err() != nil {
			errs++
			continue
		}
		switch c := cmd.(type) {
		case *redis.BoolCmd: // PEXPIRE: false when the key is missing
			if !c.Val() {
				errs++
				continue
			}
		case *redis.IntCmd: // DEL: how many keys it deleted
			if c.Val() != 1 {
				errs++
				continue
			}
		case *redis.StatusCmd, *redis.Cmd: // SET
			d.ok[batch[k]] = true
		}
		done++
	}
	return done, errs
}

func (d *redisDriver) command(op opKind, ttl time.Duration) func(redis.Pipeliner, int) redis.Cmder {
	ctx := context.Background()
	switch op {
	case opCreate:
		return func(p redis.Pipeliner, i int) redis.Cmder {
			return p.Set(ctx, redisKey(i), gtService, ttl) // SET k v PX ttl (ttl is not whole seconds)
		}
	case opRenew:
		return func(p redis.Pipeliner, i int) redis.Cmder { return p.PExpire(ctx, redisKey(i), ttl) }
	default:
		return func(p redis.Pipeliner, i int) redis.Cmder { return p.Del(ctx, redisKey(i)) }
	}
}

func (d *redisDriver) run(c int, op opKind, items []int, depth int, stop time.Time) (done, errs int) {
	add := d.command(op, createTTL)
	for off := 0; off < len(items) && time.Now().Before(stop); off += depth {
		batch := items[off:min(off+depth, len(items))]
		n, e := d.pipeline(batch, add)
		done += n
		errs += e
	}
	return done, errs
}

func (d *redisDriver) lockstep(items []int, count int, stop time.Time) []float64 {
	ctx := context.Background()
	var lat []float64
	for k := 0; k < count && time.Now().Before(stop); k++ {
		start := time.Now()
		if ok, err := d.client.PExpire(ctx, redisKey(items[k%len(items)]), createTTL).Result(); err != nil || !ok {
			continue
		}
		lat = append(lat, float64(time.Since(start).Nanoseconds())/1e3)
	}
	return lat
}

// load sets each key with an absolute deadline: SET k v PXAT deadline.
func (d *redisDriver) load(c int, items []int, depth int, stop time.Time, deadline func(i int) int64) int {
	ctx := context.Background()
	add := func(p redis.Pipeliner, i int) redis.Cmder {
		return p.Do(ctx, "set", redisKey(i), gtService, "pxat", deadline(i))
	}
	done := 0
	for off := 0; off < len(items) && time.Now().Before(stop); off += depth {
		n, _ := d.pipeline(items[off:min(off+depth, len(items))], add)
		done += n
	}
	return done
}

func (d *redisDriver) subscribe(ctx context.Context, deliver func(i int, deadlineMS float64, recvUS int64)) error {
	pubsub := d.client.Subscribe(ctx, redisExpiredChannel)
	if _, err := pubsub.Receive(ctx); err != nil { // the subscription's confirmation
		pubsub.Close()
		return err
	}
	go func() { // closing the subscription ends the blocking read below
		<-ctx.Done()
		pubsub.Close()
	}()
	go func() {
		for {
			m, err := pubsub.ReceiveMessage(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				time.Sleep(10 * time.Millisecond) // go-redis reconnects; do not spin meanwhile
				continue
			}
			recv := time.Now().UnixMicro()
			if i, err := strconv.Atoi(strings.TrimPrefix(m.Payload, "lease:")); err == nil {
				deliver(i, -1, recv) // the deadline is the PXAT the loader chose
			}
		}
	}()
	return nil
}

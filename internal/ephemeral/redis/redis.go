// Package redis is the Redis ephemeral.Store, for any number of service
// nodes sharing one Redis (or Redis Cluster). It is the only package that
// imports go-redis.
//
// Every operation is a single Redis command or a single Lua script, so each
// is atomic across nodes:
//   - Take is GETDEL (Redis 6.2+);
//   - SetNX is SET NX PX;
//   - SetUnless is a SET PX per plain write, then a script that checks the
//     guard and SETs the guarded keys (the guard and the guarded keys share
//     a slot, see package ephemeral; a Cluster client splits a pipeline per
//     node);
//   - Set and SetUnless of concurrent callers share pipelines (package
//     coalesce): one round trip for the writes of many requests;
//   - Incr is a script doing INCRBY and, when the key has no expiry yet
//     (it was just created), PEXPIRE;
//   - Allow is a sliding-window log in a sorted set (score = event time in
//     microseconds from the Redis server's clock, so nodes with skewed clocks
//     agree), trimmed, counted, appended to and re-expired inside one script.
//
// Keys are "<prefix>kv:<key>" for values and counters and "<prefix>rl:<key>"
// for Allow windows; every script touches one key, or keys the caller gave
// one hash tag, so it is Cluster-safe. The prefix must hold no "{", or it
// would be the hash tag of every key.
// TTLs are sent in whole milliseconds, rounded up.
package redis

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/trustid/trustid/internal/coalesce"
	"github.com/trustid/trustid/internal/ephemeral"
)

var _ ephemeral.Store = (*Store)(nil)

// Store is an ephemeral.Store on Redis.
type Store struct {
	c      goredis.UniversalClient
	prefix string
	owns   bool
	writes *coalesce.Group[*write, bool] // Set and SetUnless
}

func newStore(c goredis.UniversalClient, prefix string, owns bool) *Store {
	s := &Store{c: c, prefix: prefix, owns: owns}
	// Two pipelines at once: one in flight while the next fills.
	s.writes = coalesce.New(2, maxPipeline, s.pipeWrites)
	return s
}

// New connects to the Redis at rawURL (redis://[user:password@]host:port/db or
// rediss:// for TLS), checks it answers, and returns a Store whose keys all
// start with prefix (e.g. "trustid:"). Close closes the connection pool.
func New(ctx context.Context, rawURL, prefix string) (*Store, error) {
	opts, err := goredis.ParseURL(rawURL)
	if err != nil {
		// The URL may hold a password: never echo it.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("redis: parse url: %w", err)
	}
	c := goredis.NewClient(opts)
	s := newStore(c, prefix, true)
	if err := s.Ping(ctx); err != nil {
		_ = c.Close()
		return nil, err
	}
	return s, nil
}

// NewCluster connects to the Redis Cluster that seeds (host:port) belong
// to, with password when not empty, checks every master answers, and
// returns a Store whose keys all start with prefix. Operations go to the
// node owning their key's slot; SetUnless's script needs its guard and
// guarded keys in one slot (a shared hash tag, see package ephemeral),
// and a pipeline is split per node by the client. Close closes the client.
func NewCluster(ctx context.Context, seeds []string, password, prefix string) (*Store, error) {
	if len(seeds) == 0 {
		return nil, errors.New("redis: cluster: no seed address")
	}
	c := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: seeds, Password: password})
	s := newStore(c, prefix, true)
	if err := s.Ping(ctx); err != nil {
		_ = c.Close()
		return nil, err
	}
	return s, nil
}

// NewFromClient returns a Store on an existing client (a single node,
// sentinel or cluster client). The caller keeps ownership: Close does not
// close c.
func NewFromClient(c goredis.UniversalClient, prefix string) *Store {
	return newStore(c, prefix, false)
}

func (s *Store) kv(key string) string { return s.prefix + "kv:" + key }
func (s *Store) rl(key string) string { return s.prefix + "rl:" + key }

// ms converts a TTL to whole milliseconds, rounding up so a positive TTL
// never becomes zero.
func ms(ttl time.Duration) int64 {
	return int64((ttl + time.Millisecond - 1) / time.Millisecond)
}

func checkTTL(op string, ttl time.Duration) error {
	if ttl <= 0 {
		return fmt.Errorf("redis: %s: ttl %v: %w", op, ttl, ephemeral.ErrInvalid)
	}
	return nil
}

func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	// CROSSSLOT: a script's keys in several Redis Cluster slots, the
	// caller's mistake (keys that must share a hash tag, package ephemeral).
	if strings.Contains(msg, "not an integer") || strings.Contains(msg, "overflow") || strings.HasPrefix(msg, "CROSSSLOT") {
		return fmt.Errorf("redis: %s: %w: %v", op, ephemeral.ErrInvalid, err)
	}
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("redis: %s: %w", op, err)
	}
	// Everything else is the server's or the connection's fault (down, OOM
	// at maxmemory, READONLY replica, LOADING, timeouts).
	return fmt.Errorf("redis: %s: %w: %w", op, ephemeral.ErrUnavailable, err)
}

// Set implements ephemeral.Store (pipelined with concurrent writes).
func (s *Store) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := checkTTL("set", ttl); err != nil {
		return err
	}
	_, err := s.writes.Do(ctx, &write{plain: []ephemeral.Write{{Key: key, Value: value, TTL: ttl}}})
	return err
}

// SetNX implements ephemeral.Store.
func (s *Store) SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	if err := checkTTL("setnx", ttl); err != nil {
		return false, err
	}
	err := s.c.Do(ctx, "SET", s.kv(key), value, "NX", "PX", ms(ttl)).Err()
	if errors.Is(err, goredis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, wrap("setnx", err)
	}
	return true, nil
}

// setUnlessScript stores the guarded writes unless KEYS[1] exists.
// KEYS[2..n] are the guarded keys; ARGV holds a value and a TTL in
// milliseconds for each. It returns 1 when it stored, 0 when the guard
// was there.
var setUnlessScript = goredis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
for i = 2, #KEYS do
  redis.call('SET', KEYS[i], ARGV[2*i-3], 'PX', ARGV[2*i-2])
end
return 1
`)

// SetUnless implements ephemeral.Store with one pipeline (see package doc).
func (s *Store) SetUnless(ctx context.Context, guard string, guarded []ephemeral.Write, plain ...ephemeral.Write) (bool, error) {
	// Checked here too, not only by a cluster (CROSSSLOT), so a key without
	// its hash tag fails on a single Redis as well.
	if err := ephemeral.CheckSlot(guard, guarded); err != nil {
		return false, err
	}
	op := &write{plain: plain}
	op.keys = make([]string, 0, 1+len(guarded))
	op.args = make([]any, 0, 2*len(guarded))
	op.keys = append(op.keys, s.kv(guard))
	for _, w := range guarded {
		if err := checkTTL("setunless", w.TTL); err != nil {
			return false, err
		}
		op.keys = append(op.keys, s.kv(w.Key))
		op.args = append(op.args, w.Value, ms(w.TTL))
	}
	for _, w := range plain {
		if err := checkTTL("setunless", w.TTL); err != nil {
			return false, err
		}
	}
	return s.writes.Do(ctx, op)
}

// write is a Set (no keys) or a SetUnless, sent in a pipeline with the
// writes of concurrent callers (package coalesce): under load the token
// writes of many requests share one round trip.
type write struct {
	plain []ephemeral.Write
	keys  []string // SetUnless's script: the guard, then the guarded keys
	args  []any
}

// maxPipeline is the most writes one pipeline carries.
const maxPipeline = 64

// pipeWrites sends the writes of calls in one pipeline: each write's SETs,
// then its guard script. The pipeline is not a transaction: each write is
// atomic as alone (its script is), and one failing fails only itself.
func (s *Store) pipeWrites(ctx context.Context, calls []*coalesce.Call[*write, bool]) {
	pipe := s.c.Pipeline()
	sets := make([][]*goredis.Cmd, len(calls))
	guards := make([]*goredis.Cmd, len(calls))
	for i, c := range calls {
		for _, w := range c.In.plain {
			sets[i] = append(sets[i], pipe.Do(ctx, "SET", s.kv(w.Key), w.Value, "PX", ms(w.TTL)))
		}
		if c.In.keys != nil {
			// EVALSHA: a pipeline cannot fall back to EVAL by itself
			// (Script.Run would see no error before Exec), so a server
			// that lacks the script gets it in a second round trip below,
			// once per server start.
			guards[i] = setUnlessScript.EvalSha(ctx, pipe, c.In.keys, c.In.args...)
		}
	}
	_, _ = pipe.Exec(ctx) // each command's error is checked below
	for i, c := range calls {
		op := "set"
		if c.In.keys != nil {
			op = "setunless"
		}
		c.Out, c.Err = true, nil
		for _, cmd := range sets[i] {
			if err := cmd.Err(); err != nil {
				c.Out, c.Err = false, wrap(op, err)
				break
			}
		}
		g := guards[i]
		if c.Err != nil || g == nil {
			continue
		}
		if err := g.Err(); err != nil && goredis.HasErrorPrefix(err, "NOSCRIPT") {
			g = setUnlessScript.Eval(ctx, s.c, c.In.keys, c.In.args...)
		}
		n, err := g.Int64()
		c.Out, c.Err = err == nil && n == 1, wrap(op, err)
	}
}

func bytesResult(op string, b []byte, err error) ([]byte, error) {
	if errors.Is(err, goredis.Nil) {
		return nil, ephemeral.ErrNotFound
	}
	if err != nil {
		return nil, wrap(op, err)
	}
	if b == nil {
		b = []byte{}
	}
	return b, nil
}

// Get implements ephemeral.Store.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	b, err := s.c.Get(ctx, s.kv(key)).Bytes()
	return bytesResult("get", b, err)
}

// Take implements ephemeral.Store with GETDEL.
func (s *Store) Take(ctx context.Context, key string) ([]byte, error) {
	b, err := s.c.GetDel(ctx, s.kv(key)).Bytes()
	return bytesResult("take", b, err)
}

// Delete implements ephemeral.Store.
func (s *Store) Delete(ctx context.Context, key string) error {
	return wrap("delete", s.c.Del(ctx, s.kv(key)).Err())
}

// incrScript adds ARGV[1] to KEYS[1] and gives a counter without an expiry
// (a new one) the TTL ARGV[2] in milliseconds; an existing expiry is kept.
var incrScript = goredis.NewScript(`
local n = redis.call('INCRBY', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) == -1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return n
`)

// Incr implements ephemeral.Store.
func (s *Store) Incr(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error) {
	if err := checkTTL("incr", ttl); err != nil {
		return 0, err
	}
	n, err := incrScript.Run(ctx, s.c, []string{s.kv(key)}, delta, ms(ttl)).Int64()
	if err != nil {
		return 0, wrap("incr", err)
	}
	return n, nil
}

// allowScript is the sliding-window log. KEYS[1] is a sorted set of event
// members scored by time in microseconds (server clock). ARGV: limit,
// window in microseconds, a unique member for this event. It returns 0 when
// the event is allowed (and recorded), otherwise the microseconds until the
// next event would be allowed (at least 1). An event at t is in the window
// while now < t + window.
var allowScript = goredis.NewScript(`
local limit = tonumber(ARGV[1])
local win = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', now - win))
local n = redis.call('ZCARD', KEYS[1])
if n < limit then
  redis.call('ZADD', KEYS[1], string.format('%.0f', now), ARGV[3])
  redis.call('PEXPIRE', KEYS[1], string.format('%.0f', math.ceil(win / 1000)))
  return 0
end
local e = redis.call('ZRANGE', KEYS[1], n - limit, n - limit, 'WITHSCORES')
local retry = tonumber(e[2]) + win - now
if retry < 1 then retry = 1 end
return string.format('%.0f', retry)
`)

// Allow implements ephemeral.Store with a sliding-window log (see package doc).
func (s *Store) Allow(ctx context.Context, key string, limit int, window time.Duration) (bool, time.Duration, error) {
	if window <= 0 || limit < 1 {
		return false, 0, fmt.Errorf("redis: allow: limit %d window %v: %w", limit, window, ephemeral.ErrInvalid)
	}
	winUS := int64((window + time.Microsecond - 1) / time.Microsecond)
	member := rand.Text() // unique per event: two events in one microsecond stay two
	res, err := allowScript.Run(ctx, s.c, []string{s.rl(key)}, limit, winUS, member).Int64()
	if err != nil {
		return false, 0, wrap("allow", err)
	}
	if res == 0 {
		return true, 0, nil
	}
	return false, time.Duration(res) * time.Microsecond, nil
}

// Ping implements ephemeral.Store: on a cluster, every master answers.
func (s *Store) Ping(ctx context.Context) error {
	if cc, ok := s.c.(*goredis.ClusterClient); ok {
		return wrap("ping", cc.ForEachMaster(ctx, func(ctx context.Context, c *goredis.Client) error {
			return c.Ping(ctx).Err()
		}))
	}
	return wrap("ping", s.c.Ping(ctx).Err())
}

// Close closes the client if New created it.
// Clear deletes every key under the store's prefix (tests and tools that
// own a prefix; never call it on a shared one).
func (s *Store) Clear(ctx context.Context) error {
	// SCAN lists one server's keys: on a cluster, each master's.
	if cc, ok := s.c.(*goredis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, c *goredis.Client) error {
			return s.clear(ctx, c)
		})
	}
	return s.clear(ctx, s.c)
}

func (s *Store) clear(ctx context.Context, c goredis.UniversalClient) error {
	iter := c.Scan(ctx, 0, s.prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		if err := c.Unlink(ctx, iter.Val()).Err(); err != nil {
			return wrap("clear", err)
		}
	}
	return wrap("clear", iter.Err())
}

func (s *Store) Close() error {
	if !s.owns {
		return nil
	}
	return wrap("close", s.c.Close())
}

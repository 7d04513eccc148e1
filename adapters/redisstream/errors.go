package redisstream

import "errors"

// ErrReservedEventType marks an event type whose stream name would collide
// with the adapter's own keys, such as "dlq".
var ErrReservedEventType = errors.New("event type is reserved by the redis adapter")
